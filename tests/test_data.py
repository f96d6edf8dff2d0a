"""Datasets: embedded mnist5k/digits splits as Section 4.1, image folders, bad specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from padnas.data import DataError, iterate_batches, load_data


def _all(split):
    return split.fetch(np.arange(len(split)))


def test_mnist5k_splits_follow_the_paper():
    d = load_data("mnist5k", 32, seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (3500, 500, 1000)
    assert d.num_classes == 10
    assert np.bincount(d.val.labels).tolist() == [50] * 10  # fixed number per class
    assert np.bincount(d.test.labels).tolist() == [100] * 10
    x, y = d.train.fetch([0, 1, 2])
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey -> RGB
    tr, va, te = (d.train.images.flatten(1), d.val.images.flatten(1), d.test.images.flatten(1))
    # the splits are disjoint: no image of one appears in another
    seen = {bytes(r.numpy()) for r in te}
    assert not any(bytes(r.numpy()) in seen for r in va)
    assert sum(bytes(r.numpy()) in seen for r in tr) <= 2  # MNIST may hold exact duplicates


def test_validation_split_is_seeded_and_test_split_fixed():
    a, b, c = load_data("mnist5k", 32, 0), load_data("mnist5k", 32, 0), load_data("mnist5k", 32, 1)
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    assert torch.equal(a.test.images, c.test.images)  # the "original validation set"


def test_digits_and_resolution():
    d = load_data("digits", 64, seed=0)
    assert (len(d.val), len(d.test)) == (200, 300)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    x, _ = _all(d.val)
    assert x.shape[1:] == (3, 64, 64)
    assert abs(float(_all(d.train)[0].mean())) < 0.05  # normalised with the train statistics


def _make_folder(root, classes=3, per_class=12, val=4):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", val)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)
                img = Image.fromarray(arr)
                if i % 3 == 0:
                    img = img.convert("L")  # grey files become RGB
                img.save(d / f"{i}.png")
    (root / "train" / "class0" / "notes.txt").write_text("not an image")


def test_imagefolder(tmp_path):
    _make_folder(tmp_path)
    d = load_data(f"imagefolder:{tmp_path}", 32, seed=0)
    assert d.classes == ("class0", "class1", "class2")
    # at most a fifth of each class is held out (12 // 5 = 2); the val folder is the test set
    assert (len(d.train), len(d.val), len(d.test)) == (30, 6, 12)
    x, y = d.train.fetch([0, 5, 29])
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [0, 0, 2]
    # training crops are seeded by (seed, epoch, index): same epoch same pixels, next epoch new
    d.train.set_epoch(0)
    again = d.train.fetch([0, 5, 29])[0]
    assert torch.equal(x, again)
    d.train.set_epoch(1)
    assert not torch.equal(x, d.train.fetch([0, 5, 29])[0])
    # evaluation images are deterministic centre crops
    assert torch.equal(d.val.fetch([1])[0], d.val.fetch([1])[0])
    # worker processes decode the same pixels as the main process
    batches = [[0, 1, 2], [3, 4]]
    loaded = list(iterate_batches(d.train, batches, num_workers=2))
    for (xb, yb), b in zip(loaded, batches, strict=True):
        xd, yd = d.train.fetch(b)
        assert torch.equal(xb, xd) and torch.equal(yb, yd)


def test_bad_specs_name_the_choices(tmp_path):
    with pytest.raises(DataError, match="choose one of mnist5k, digits or imagefolder:PATH"):
        load_data("cifar10", 32, 0)
    with pytest.raises(DataError, match=r"does not exist.*PATH/train/<class>"):
        load_data(f"imagefolder:{tmp_path / 'missing'}", 32, 0)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no training images"):
        load_data(f"imagefolder:{tmp_path / 'empty'}", 32, 0)
