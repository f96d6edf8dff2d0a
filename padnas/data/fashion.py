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
import zlib
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


#: the most data bytes one IDX file may declare: five times Fashion-MNIST's training images
#: (47 MB), so that reading any one file, good or bad, stays far under a gigabyte
MAX_IDX_BYTES = 256 * 2**20
#: how far a gzip file may inflate: real image data compresses 2-10x, while a small file that
#: claims a huge array is a bomb (deflate reaches ~1000x on zeros)
MAX_GZIP_RATIO = 100
#: below this many bytes the ratio is not checked: a tiny synthetic set may compress very well
RATIO_FREE_BYTES = 8 * 2**20
_CHUNK = 1 << 20
_REPLACE = "replace it with an intact copy of the file"


def _locate(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise IdxError(f"Fashion-MNIST file {stem}[.gz] not found in {folder}; {HOW_TO_GET}")


def _read_exactly(stream, path: Path, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise IdxError(f"{path} is truncated: it ends inside its {what}; {_REPLACE}")
    return data


def _check_shape(path: Path, shape: tuple[int, ...], stored: int) -> int:
    """The data bytes ``shape`` declares, refused before anything is inflated when a dimension
    is 0 or the total is more than a sane file holds (``stored``: the file's size on disk)."""
    text = "x".join(map(str, shape))
    if 0 in shape:
        raise IdxError(f"{path} declares an empty array ({text}); {_REPLACE}")
    size = 1
    for n in shape:  # Python integers: a product of 32-bit dims cannot overflow here
        size *= n
    if size > MAX_IDX_BYTES:
        raise IdxError(
            f"{path} declares {text} ({size} bytes), more than the {MAX_IDX_BYTES >> 20} MiB an "
            f"IDX file of this kind may hold; {_REPLACE}"
        )
    if path.suffix == ".gz" and size > max(RATIO_FREE_BYTES, stored * MAX_GZIP_RATIO):
        raise IdxError(
            f"{path} declares {text} ({size} bytes) but is only {stored} bytes compressed "
            f"(over {MAX_GZIP_RATIO}x): a gzip bomb or a damaged header; {_REPLACE}"
        )
    return size


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in the IDX file ``path`` (gzip-compressed or not), of ``ndim`` dims.

    The file is streamed: its header (magic, dims) is read and checked first, the size it
    declares is bounded (:data:`MAX_IDX_BYTES`, and :data:`MAX_GZIP_RATIO` times a gzip file's
    size), and only then is the data read, into an array of exactly that size, so a bomb or a
    wrong kind of file is refused naming it before it costs memory, and a truncated or padded
    file is refused instead of producing garbage images.
    """
    try:
        stored = path.stat().st_size
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as stream:
            magic = int.from_bytes(_read_exactly(stream, path, 4, "header"), "big")
            if magic != _MAGIC[ndim]:
                raise IdxError(
                    f"{path} is not an IDX file of {ndim}-D unsigned bytes "
                    f"(magic 0x{magic:08x}, expected 0x{_MAGIC[ndim]:08x}); {_REPLACE}"
                )
            head = _read_exactly(stream, path, 4 * ndim, "header")
            shape = tuple(int.from_bytes(head[4 * i : 4 * i + 4], "big") for i in range(ndim))
            size = _check_shape(path, shape, stored)
            out = np.empty(size, dtype=np.uint8)
            view, got = memoryview(out), 0
            while got < size:
                n = stream.readinto(view[got : got + _CHUNK])
                if not n:
                    break
                got += n
            extra = stream.read(1)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxError(f"cannot read {path}: {exc}; {_REPLACE}") from None
    if got != size or extra:
        held = f"{got}" if got != size else "more"
        raise IdxError(
            f"{path} is truncated or padded: header says {'x'.join(map(str, shape))} "
            f"({size} bytes of data), the file holds {held}; {_REPLACE}"
        )
    return out.reshape(shape)


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
