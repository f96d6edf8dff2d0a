"""Hostile images in an ``imagefolder:PATH``: a header declaring more pixels than an image may
have is refused before it is decoded, as one line naming the file, whether it is decoded in the
main process or in a DataLoader worker."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from padnas.cli import main
from padnas.data.datasets import MAX_IMAGE_PIXELS, DataError, iterate_batches, load_data
from padnas.data.loader import BatchFeeder

torch.set_num_threads(1)

ARCH = "K3E1-" + "-".join(["K3E3", "K5E6", "ID", "K7E3"] * 5) + "-K3E6"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels and whose data is empty:
    what a bomb looks like until it is decoded, in a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


@pytest.fixture
def folder(tmp_path):
    """Two classes of 5 training and 1 test image each, all small and valid."""
    from PIL import Image

    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("val", 1)):
        for c in range(2):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    return root


# 20000x20000 is past Pillow's own refusal (2x its 89 M pixel limit); 9000x9000 is under it and
# past padnas's cap, so only padnas's check refuses it
@pytest.mark.parametrize("side", [20000, 9000])
def test_oversized_image_is_refused_naming_it(folder, side):
    assert side * side > MAX_IMAGE_PIXELS
    bomb = folder / "val" / "class1" / "0.png"
    png_header_only(bomb, side, side)
    test = load_data(f"imagefolder:{folder}", 32, seed=0).test
    with pytest.raises(DataError) as err:
        test.fetch(list(range(len(test))))
    message = str(err.value)
    assert f"image {bomb} is" in message and "remove it or shrink it" in message
    assert "\n" not in message


@pytest.mark.parametrize("how", ["feeder", "iterate"])
def test_oversized_image_in_a_worker_is_refused_in_one_line(folder, how):
    bomb = folder / "val" / "class0" / "0.png"
    png_header_only(bomb, 20000, 20000)
    test = load_data(f"imagefolder:{folder}", 32, seed=0).test
    batches = [[0], [1]]
    with pytest.raises(DataError) as err:
        if how == "feeder":
            with BatchFeeder(test, num_workers=1, prefetch_factor=1) as feed:
                list(feed(batches))
        else:
            list(iterate_batches(test, batches, num_workers=1))
    message = str(err.value)
    assert message.startswith(f"image {bomb} is larger than"), message
    assert "\n" not in message and "DataLoader worker" not in message


def test_a_worker_still_delivers_good_batches(folder):
    """The refusal path leaves good batches as they were: the same pixels as without workers."""
    test = load_data(f"imagefolder:{folder}", 32, seed=0).test
    got = list(iterate_batches(test, [[0, 1]], num_workers=1))
    want = test.fetch([0, 1])
    assert torch.equal(got[0][0], want[0]) and torch.equal(got[0][1], want[1])


def test_train_command_refuses_a_bomb_in_one_line(folder, tmp_path, cli, expect_error, frozen):
    bomb = folder / "train" / "class1" / "3.png"
    png_header_only(bomb, 20000, 20000)
    before = frozen(folder)
    r = cli(
        main,
        "train",
        "--arch",
        ARCH,
        "--data",
        f"imagefolder:{folder}",
        "--epochs",
        "1",
        "--workers",
        "1",
        "--resolution",
        "32",
        "--accelerator",
        "cpu",
        "--out",
        tmp_path / "run",
    )
    expect_error(r, 2, str(bomb), "remove it or shrink it", alone=False, unchanged=before)
