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
import gzip
from pathlib import Path

import numpy as np

from padnas.core.errors import UsageError

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
# IDX magic numbers: two zero bytes, the type code (0x08 = unsigned byte), the number of dims.
_MAGIC = {3: 0x00000803, 1: 0x00000801}
HOW_TO_GET = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
    "fashion:DIR with the four IDX files of Fashion-MNIST"
)


class IdxError(UsageError):
    """A missing, truncated or malformed IDX file (bad input: exit code 2)."""


def _locate(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise IdxError(f"Fashion-MNIST file {stem}[.gz] not found in {folder}; {HOW_TO_GET}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in the IDX file ``path`` (gzip-compressed or not), of ``ndim`` dims.

    The header is checked against the file's length, so a truncated download or a file of the
    wrong kind is refused with its name instead of producing garbage images.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IdxError(f"cannot read {path}: {exc}") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{path} is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != _MAGIC[ndim]:
        raise IdxError(
            f"{path} is not an IDX file of {ndim}-D unsigned bytes "
            f"(magic 0x{magic:08x}, expected 0x{_MAGIC[ndim]:08x})"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise IdxError(
            f"{path} is truncated or padded: header says {'x'.join(map(str, shape))} "
            f"({size} bytes of data), the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=2)
def load_fashion(folder: str | Path = DEFAULT_DIR) -> dict[str, np.ndarray]:
    """``train_images`` [60000,28,28], ``train_labels``, ``test_images`` [10000,28,28],
    ``test_labels`` (uint8 / int64), checked for consistent counts and labels 0..9."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IdxError(f"Fashion-MNIST folder {folder} does not exist; {HOW_TO_GET}")
    out: dict[str, np.ndarray] = {}
    for key, stem in FILES.items():
        arr = read_idx(_locate(folder, stem), 3 if key.endswith("images") else 1)
        out[key] = arr if key.endswith("images") else arr.astype(np.int64)
    for part in ("train", "test"):
        images, labels = out[f"{part}_images"], out[f"{part}_labels"]
        if len(images) != len(labels):
            raise IdxError(f"{folder}: {len(images)} {part} images but {len(labels)} {part} labels")
        if len(labels) and int(labels.max()) >= len(CLASSES):
            raise IdxError(f"{folder}: {part} label {int(labels.max())} is not a class (0..9)")
    return out
