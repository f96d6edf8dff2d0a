"""BatchFeeder on a tiny image folder: persistent workers decode exactly what the main process
would, epoch by epoch, and training with workers ends with the same weights as without."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from padnas.data.datasets import load_data
from padnas.data.loader import BatchFeeder, EpochBatch
from padnas.run.settings import PRESETS
from padnas.search.oneshot import OneShotEvaluator
from padnas.space import get_space
from padnas.train.loop import build_supernet, train_supernet

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("val", 3)):
        for c in range(2):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
                arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.jpg", quality=90)
    return load_data(f"imagefolder:{root}", 32, seed=0)


def _direct(split, batches, epoch):
    split.set_epoch(epoch)
    return [split.fetch(b) for b in batches]


def test_persistent_workers_follow_the_epoch_and_match_the_main_process(folder):
    train = folder.train
    batches = [[0, 1, 2], [3, 4, 5, 6], [7, 15]]
    with BatchFeeder(train, num_workers=2, prefetch_factor=2) as feed:
        for epoch in (0, 1, 0, 3):  # the same workers serve every call
            got = list(feed(batches, epoch))
            want = _direct(train, batches, epoch)
            assert len(got) == len(want)
            for (xg, yg), (xw, yw) in zip(got, want, strict=True):
                assert torch.equal(xg, xw) and torch.equal(yg, yw)
        # augmentation really moves with the epoch the batch carries
        first = [next(iter(feed(batches, e)))[0] for e in (0, 1)]
        assert not torch.equal(*first)
        # an interrupted pass does not disturb the next one
        next(iter(feed(batches, 2)))
        assert torch.equal(list(feed(batches, 2))[2][0], _direct(train, batches, 2)[2][0])


def test_in_memory_splits_and_bad_worker_counts():
    d = load_data("digits", 32, seed=0)
    feed = BatchFeeder(d.train, num_workers=4)  # in memory: no processes needed
    ((x, y),) = list(feed([[0, 1]]))
    assert torch.equal(x, d.train.fetch([0, 1])[0]) and y.tolist() == d.train.labels[:2].tolist()
    with pytest.raises(ValueError, match="num_workers"):
        BatchFeeder(d.train, num_workers=-1)
    b = EpochBatch([1, 2], 7)
    import pickle

    again = pickle.loads(pickle.dumps(b))
    assert again == [1, 2] and again.epoch == 7


def test_training_and_evaluation_with_workers_equal_without(folder, tmp_path):
    sp = get_space("basic")
    arch = sp.sample(np.random.default_rng(1))
    states, accs = [], []
    for workers in (0, 2):
        cfg = PRESETS["quick"].train.replace(batch_size=8, num_workers=workers)
        net = build_supernet(sp, cfg, folder.num_classes, seed=0)
        train_supernet(net, folder, cfg, tmp_path / f"w{workers}", seed=0, epochs=2, progress=False)
        states.append(net.state_dict())
        ev = OneShotEvaluator.from_config(
            net, folder, cfg.replace(recal_images=8, recal_batch_size=8, eval_batch_size=3)
        )
        accs.append([ev.evaluate(arch), ev.evaluate(sp.sample(np.random.default_rng(2)))])
        assert ev.prefix_cache_bytes == 0  # streamed images: no prefix outputs kept
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k
    assert accs[0] == accs[1]
