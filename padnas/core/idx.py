"""IDX files (the MNIST family's format): four big-endian header fields and raw bytes, read
with numpy and checked like any input a user may hand over.

Used by the data sets (:mod:`padnas.data.fashion`) and by the int8 exporter, whose
representative set is drawn from the task's own images (:mod:`latency.export.quantize`).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from padnas.core.errors import UsageError

# IDX magic numbers: two zero bytes, the type code (0x08 = unsigned byte), the number of dims.
_MAGIC = {3: 0x00000803, 1: 0x00000801}


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
REPLACE = "replace it with an intact copy of the file"


def _read_exactly(stream, path: Path, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise IdxError(f"{path} is truncated: it ends inside its {what}; {REPLACE}")
    return data


def _check_shape(path: Path, shape: tuple[int, ...], stored: int) -> int:
    """The data bytes ``shape`` declares, refused before anything is inflated when a dimension
    is 0 or the total is more than a sane file holds (``stored``: the file's size on disk)."""
    text = "x".join(map(str, shape))
    if 0 in shape:
        raise IdxError(f"{path} declares an empty array ({text}); {REPLACE}")
    size = 1
    for n in shape:  # Python integers: a product of 32-bit dims cannot overflow here
        size *= n
    if size > MAX_IDX_BYTES:
        raise IdxError(
            f"{path} declares {text} ({size} bytes), more than the {MAX_IDX_BYTES >> 20} MiB an "
            f"IDX file of this kind may hold; {REPLACE}"
        )
    if path.suffix == ".gz" and size > max(RATIO_FREE_BYTES, stored * MAX_GZIP_RATIO):
        raise IdxError(
            f"{path} declares {text} ({size} bytes) but is only {stored} bytes compressed "
            f"(over {MAX_GZIP_RATIO}x): a gzip bomb or a damaged header; {REPLACE}"
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
                    f"(magic 0x{magic:08x}, expected 0x{_MAGIC[ndim]:08x}); {REPLACE}"
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
        raise IdxError(f"cannot read {path}: {exc}; {REPLACE}") from None
    if got != size or extra:
        held = f"{got}" if got != size else "more"
        raise IdxError(
            f"{path} is truncated or padded: header says {'x'.join(map(str, shape))} "
            f"({size} bytes of data), the file holds {held}; {REPLACE}"
        )
    return out.reshape(shape)
