"""Fashion-MNIST from its IDX files: 70,000 real 28x28 grey images of 10 clothing classes.

Why this set: on the embedded MNIST-5k digits every architecture of the latency window scores about
the same (the task is too easy), so a search there cannot show an accuracy/latency trade-off.
Fashion-MNIST is harder (a small CNN reaches ~90 %, not ~99 %), real, and Debian packages it as
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``), so no download happens at run
time and no new Python dependency is needed: the IDX format is four big-endian header fields and
raw bytes, read here with numpy.

``fashion`` reads the Debian copy; ``fashion:DIR`` reads the same four files (``.gz`` or not) from
another folder.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from padnas.core.idx import REPLACE as _REPLACE
from padnas.core.idx import IdxError, read_idx

__all__ = ["CLASSES", "DEFAULT_DIR", "FILES", "IdxError", "load_fashion", "read_idx"]

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
)
HOW_TO_GET = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
    "fashion:DIR with the four IDX files of Fashion-MNIST"
)


def _locate(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise IdxError(f"Fashion-MNIST file {stem}[.gz] not found in {folder}; {HOW_TO_GET}")


@functools.lru_cache(maxsize=2)
def load_fashion(folder: str | Path = DEFAULT_DIR) -> dict[str, np.ndarray]:
    """``train_images`` [60000,28,28], ``train_labels``, ``test_images`` [10000,28,28],
    ``test_labels`` (uint8 / int64), checked for matching counts, one image size for both
    parts and labels 0..9: a set that breaks any of these is refused, never trained on."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IdxError(f"Fashion-MNIST folder {folder} does not exist; {HOW_TO_GET}")
    out: dict[str, np.ndarray] = {}
    paths: dict[str, Path] = {}
    for key, stem in FILES.items():
        paths[key] = _locate(folder, stem)
        arr = read_idx(paths[key], 3 if key.endswith("images") else 1)
        out[key] = arr if key.endswith("images") else arr.astype(np.int64)
    for part in ("train", "test"):
        images, labels = out[f"{part}_images"], out[f"{part}_labels"]
        if len(images) != len(labels):
            raise IdxError(
                f"{paths[f'{part}_labels']} holds {len(labels)} labels for the "
                f"{len(images)} images of {paths[f'{part}_images'].name}; {_REPLACE}"
            )
        if int(labels.max()) >= len(CLASSES):
            raise IdxError(
                f"{paths[f'{part}_labels']}: label {int(labels.max())} is not a class "
                f"(0..{len(CLASSES) - 1}); {_REPLACE}"
            )
    train_hw, test_hw = out["train_images"].shape[1:], out["test_images"].shape[1:]
    if train_hw != test_hw:
        raise IdxError(
            f"{paths['test_images']} holds {test_hw[0]}x{test_hw[1]} images but "
            f"{paths['train_images'].name} holds {train_hw[0]}x{train_hw[1]}: both parts must "
            f"come from one set; {_REPLACE}"
        )
    return out
