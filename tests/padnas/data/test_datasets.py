"""Datasets: Fashion-MNIST IDX files, embedded mnist5k/digits splits as Section 4.1, image
folders, bad specs."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from padnas.data.datasets import DataError, iterate_batches, load_data


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
    with pytest.raises(
        DataError,
        match="choose one of fashion, fashion:DIR, mnist5k, digits or imagefolder:PATH",
    ):
        load_data("cifar10", 32, 0)
    with pytest.raises(DataError, match=r"does not exist.*PATH/train/<class>"):
        load_data(f"imagefolder:{tmp_path / 'missing'}", 32, 0)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no training images"):
        load_data(f"imagefolder:{tmp_path / 'empty'}", 32, 0)


# ---- Fashion-MNIST from IDX files ----------------------------------------------------------------
def _write_idx(path, arr, *, gz=True, magic=None):
    """An IDX file of uint8 ``arr`` as the format defines it (magic, big-endian dims, bytes)."""
    arr = np.asarray(arr, dtype=np.uint8)
    head = (magic if magic is not None else 0x800 + arr.ndim).to_bytes(4, "big")
    head += b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    raw = head + arr.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def _tiny_fashion(folder, per_class=12, test_per_class=3, gz=True):
    """A Fashion-MNIST-shaped folder: class c's images are all filled with the value 20*c."""
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), n)
        images = np.repeat(labels[:, None, None] * 20, 28 * 28).reshape(-1, 28, 28)
        _write_idx(folder / f"{part}-images-idx3-ubyte", images, gz=gz)
        _write_idx(folder / f"{part}-labels-idx1-ubyte", labels, gz=gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_reads_idx_files_and_splits_per_class(tmp_path, gz):
    folder = _tiny_fashion(tmp_path / f"fm{gz}", gz=gz)
    d = load_data(f"fashion:{folder}", 32, seed=0)
    # 12 training images per class: 12 // 5 = 2 held out for validation, 10 kept for training
    assert (len(d.train), len(d.val), len(d.test)) == (100, 20, 30)
    assert d.num_classes == 10 and d.classes[0] == "t-shirt"
    assert np.array_equal(np.bincount(d.val.labels), np.full(10, 2))
    assert np.array_equal(np.bincount(d.test.labels), np.full(10, 3))
    # images decode to their class's fill value: normalised pixels are constant per image and
    # increase with the label
    x, y = d.test.fetch(list(range(len(d.test))))
    assert x.shape == (30, 3, 32, 32)
    means = [float(x[y == c].mean()) for c in range(10)]
    assert means == sorted(means) and means[0] < means[-1]
    capped = load_data(f"fashion:{folder}", 32, seed=0, train_per_class=4)
    assert np.array_equal(np.bincount(capped.train.labels), np.full(10, 4))
    # the capped pool is fixed: another seed re-carves validation from the same 60 images
    other = load_data(f"fashion:{folder}", 32, seed=1, train_per_class=4)
    pool = lambda b: sorted(map(tuple, b.train.images.flatten(1)[:, :1].tolist()))  # noqa: E731
    assert len(other.train) == len(capped.train) and pool(other) == pool(capped)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", r"train-images-idx3-ubyte\.gz is truncated or padded: header says 120x28x28"),
        ("magic", r"train-images-idx3-ubyte\.gz is not an IDX file of 3-D unsigned bytes"),
        ("missing", r"t10k-labels-idx1-ubyte\[\.gz\] not found in .*apt-get install dataset-fash"),
        ("not-gzip", r"cannot read .*train-images-idx3-ubyte\.gz"),
    ],
)
def test_damaged_fashion_files_are_refused_in_one_line(tmp_path, damage, message):
    folder = _tiny_fashion(tmp_path / damage)
    images = folder / "train-images-idx3-ubyte.gz"
    if damage == "truncate":
        raw = gzip.decompress(images.read_bytes())
        images.write_bytes(gzip.compress(raw[:-100]))
    elif damage == "magic":
        _write_idx(folder / "train-images-idx3-ubyte", np.zeros((120, 28, 28)), magic=0x0801)
    elif damage == "missing":
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    else:
        images.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=message) as err:
        load_data(f"fashion:{folder}", 32, seed=0)
    assert "\n" not in str(err.value)


def test_missing_fashion_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"does not exist; install Debian's dataset-fashion-mnist"):
        load_data(f"fashion:{tmp_path / 'nowhere'}", 32, seed=0)


def test_normalisation_statistics_are_exact_and_thread_independent():
    """float64 from an integer histogram: the thread count (a float32 reduction's order) no
    longer moves the mean and std, and both equal the exact values of the pixels."""
    from padnas.data.grey import pixel_statistics

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (3000, 1, 32, 32), dtype=np.uint8))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, d1 = pixel_statistics(images, chunk=700), load_data("digits", 32, seed=0)
        torch.set_num_threads(2)
        two, d2 = pixel_statistics(images), load_data("digits", 32, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert one == two
    assert (d1.train.mean, d1.train.std) == (d2.train.mean, d2.train.std)
    px = images.numpy().astype(np.float64).ravel() / 255.0
    assert one[0] == pytest.approx(px.mean(), rel=1e-15)
    assert one[1] == pytest.approx(px.std(ddof=1), rel=1e-12)


# ---- the holdout split: images no run of the proxy size sees ------------------------------------
def _rows(split):
    """Each image of an in-memory split as a hashable row of its uint8 pixels."""
    return {tuple(r) for r in split.images.flatten(1).tolist()}


def test_holdout_is_disjoint_from_every_seeds_training_and_the_same_for_every_seed():
    a = load_data("mnist5k", 16, seed=0, train_per_class=100)
    b = load_data("mnist5k", 16, seed=1, train_per_class=100)
    # 350 + 50 per class, 100 + 50 of them in the capped pool: 250 spare per class
    assert a.spare_per_class == 250
    ha, hb = a.holdout(1000), b.holdout(1000)
    assert np.array_equal(np.bincount(ha.labels), np.full(10, 100))
    assert _rows(ha) == _rows(hb)  # the same images whatever the run's seed
    seen = _rows(a.train) | _rows(a.val) | _rows(b.train) | _rows(b.val) | _rows(a.test)
    assert not _rows(ha) & seen
    # normalised like the run's own training images (the statistics the net was trained with)
    assert (ha.mean, ha.std) == (a.train.mean, a.train.std)


def test_holdout_sizes_are_checked_and_uncapped_sets_have_none(tmp_path):
    capped = load_data("mnist5k", 16, seed=0, train_per_class=100)
    for bad in (1005, 5, 2510):
        message = rf"multiple of the 10 classes between 10 and 2500 .*{bad}"
        with pytest.raises(DataError, match=message):
            capped.holdout(bad)
        assert not capped.can_hold_out(bad)  # what a preset's default falls back on
    assert capped.can_hold_out(10) and capped.can_hold_out(2500)
    assert not load_data("digits", 16, seed=0).can_hold_out(100)
    with pytest.raises(DataError, match=r"keeps no held-out images.*--split val"):
        load_data("digits", 16, seed=0).holdout(100)
