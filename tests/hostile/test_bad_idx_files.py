"""Hostile Fashion-MNIST IDX files given through ``--data fashion:DIR``: each one is refused by the
one IDX reader before it is trained on, as one line naming the file, exit 2, with the folder left
as it was; a gzip bomb is refused from its header, before it is inflated."""

from __future__ import annotations

import gzip
import tracemalloc

import numpy as np
import pytest

from padnas.cli import main
from padnas.data.fashion import IdxError, read_idx

ARCH = "K3E1-" + "-".join(["K3E3", "K5E6", "ID", "K7E3"] * 5) + "-K3E6"


def _idx(shape, data: bytes, ndim_magic: int | None = None) -> bytes:
    """The bytes of an IDX file: magic, big-endian dims, ``data`` (not checked against dims)."""
    head = (0x800 + (ndim_magic or len(shape))).to_bytes(4, "big")
    return head + b"".join(int(n).to_bytes(4, "big") for n in shape) + data


def _write(path, shape, data: bytes) -> None:
    path.write_bytes(gzip.compress(_idx(shape, data), compresslevel=1))


def _fashion(folder, train=(50, 28, 28), test=(10, 28, 28), test_labels=None):
    """A valid Fashion-MNIST-shaped folder (5 train, 1 test image per class), one part of which
    the caller may replace: the image shapes, or the test labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, shape in (("train", train), ("t10k", test)):
        n = shape[0]
        labels = np.arange(n, dtype=np.uint8) % 10
        if part == "t10k" and test_labels is not None:
            labels = np.asarray(test_labels, dtype=np.uint8)
        images = np.repeat(labels * 20, int(np.prod(shape[1:]))).astype(np.uint8)
        _write(folder / f"{part}-images-idx3-ubyte.gz", shape, images.tobytes())
        _write(folder / f"{part}-labels-idx1-ubyte.gz", labels.shape, labels.tobytes())
    return folder


def _train(cli, folder, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--arch", ARCH, "--data", f"fashion:{folder}", "--epochs", "1"]
    return cli(main, *args, "--out", out)


def test_a_valid_folder_loads(tmp_path):
    from padnas.data.datasets import load_data

    bundle = load_data(f"fashion:{_fashion(tmp_path / 'fm')}", 32, seed=0)
    assert (len(bundle.train), len(bundle.test)) == (40, 10)


@pytest.mark.parametrize(
    ("damage", "file", "fragments"),
    [
        # train 28x28 but test 32x32: the parts are not one set
        ("sizes", "t10k-images", ["holds 32x32 images", "holds 28x28"]),
        ("zero-rows", "t10k-images", ["declares an empty array (0x28x28)"]),
        ("zero-dim", "train-images", ["declares an empty array (50x0x28)"]),
        # three dims of 2^32-1: a product far past int64, refused before any arithmetic in numpy
        ("overflow", "train-images", ["declares 4294967295x4294967295x4294967295", "MiB"]),
        ("label-255", "t10k-labels", ["label 255 is not a class (0..9)"]),
        ("empty-test", "t10k-labels", ["declares an empty array (0)"]),
        ("missing-test", "t10k-images", ["not found in", "apt-get install"]),
    ],
)
def test_bad_idx_files_are_refused_naming_the_file(
    tmp_path, cli, expect_error, frozen, damage, file, fragments
):
    folder = tmp_path / "fm"
    if damage == "sizes":
        _fashion(folder, test=(10, 32, 32))
    elif damage == "label-255":
        _fashion(folder, test_labels=[255, *range(9)])
    else:
        _fashion(folder)
    if damage == "zero-rows":
        _write(folder / "t10k-images-idx3-ubyte.gz", (0, 28, 28), b"")
    elif damage == "zero-dim":
        _write(folder / "train-images-idx3-ubyte.gz", (50, 0, 28), b"")
    elif damage == "overflow":
        _write(folder / "train-images-idx3-ubyte.gz", (2**32 - 1,) * 3, b"\0" * 1000)
    elif damage == "empty-test":
        _write(folder / "t10k-labels-idx1-ubyte.gz", (0,), b"")
    elif damage == "missing-test":
        (folder / "t10k-images-idx3-ubyte.gz").unlink()
    before = frozen(tmp_path)
    r = _train(cli, folder, tmp_path)
    line = expect_error(r, 2, *fragments, unchanged=before)
    assert file in line, line
    assert not (tmp_path / "run").exists()


def test_gzip_bomb_is_refused_from_its_header(tmp_path, cli, expect_error, frozen):
    """64 MiB of zeros compress to ~64 KiB (ratio ~1000): the header claims the whole inflated
    size. It fits the absolute cap, so only the ratio check can refuse it, and it must do so
    before inflating: the reader allocates next to nothing."""
    folder = _fashion(tmp_path / "fm")
    bomb = folder / "train-images-idx3-ubyte.gz"
    n = 64 * 2**20 // (28 * 28)
    bomb.write_bytes(gzip.compress(_idx((n, 28, 28), bytes(n * 28 * 28)), compresslevel=9))
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(IdxError, match="a gzip bomb or a damaged header"):
            read_idx(bomb, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # inflating it whole would take 64 MiB
    before = frozen(tmp_path)
    expect_error(_train(cli, folder, tmp_path), 2, str(bomb), "gzip bomb", unchanged=before)


def test_a_bomb_past_the_absolute_cap_is_refused_without_reading_its_data(tmp_path):
    """A claim of 60000 images of 4096x4096 (over 1 TB) in a tiny file: refused from the
    header alone, whatever the compression ratio."""
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx((60000, 4096, 4096), b"\0" * 64))
    with pytest.raises(IdxError, match=r"declares 60000x4096x4096 \(\d+ bytes\), more than"):
        read_idx(path, 3)


def test_truncated_and_padded_data_are_refused(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    _write(path, (10,), bytes(9))
    with pytest.raises(IdxError, match=r"truncated or padded: header says 10 .* holds 9"):
        read_idx(path, 1)
    _write(path, (10,), bytes(11))
    with pytest.raises(IdxError, match=r"truncated or padded: header says 10 .* holds more"):
        read_idx(path, 1)
    path.write_bytes(gzip.compress(b"\0\0\x08"))
    with pytest.raises(IdxError, match="ends inside its header"):
        read_idx(path, 1)
