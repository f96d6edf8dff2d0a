"""A supernet trained in a spawned process: the same weights as training it here, a finished
checkpoint never trained again, the child's error raised in the parent with its type, and a
stopped child leaving a resumable checkpoint and no temporary file. No timing is asserted."""

from __future__ import annotations

import time

import pytest
import torch
from search_support import TINY_PRESET, tiny_data

from padnas.core.errors import exit_code
from padnas.space import get_space
from padnas.train.background import BackgroundTraining
from padnas.train.checkpoint import CheckpointError, load_checkpoint
from padnas.train.loop import build_supernet, train_supernet

CFG = TINY_PRESET.replace(batch_size=32)  # tiny_data: 96 training images, 3 steps an epoch


@pytest.fixture(autouse=True)
def one_thread():
    """The child trains with one thread (BackgroundTraining's default); so does this process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _background(ckpt, *, seed=3, epochs=1) -> BackgroundTraining:
    return BackgroundTraining(
        get_space("basic"), tiny_data(), CFG, ckpt, seed=seed, epochs=epochs, lr=0.05
    )


def test_trains_as_here_and_never_twice(tmp_path):
    ckpt = tmp_path / "bg"
    with _background(ckpt) as bg:
        assert bg.start().wait() >= 0
    data = tiny_data()
    here = build_supernet(get_space("basic"), CFG, data.num_classes, 3)
    train_supernet(here, data, CFG, tmp_path / "here", seed=3, epochs=1, lr=0.05, progress=False)
    saved = load_checkpoint(ckpt / "checkpoint.pt")
    assert saved["done"]
    for k, v in here.state_dict().items():
        assert torch.equal(saved["model"][k], v), k
    stamp = (ckpt / "checkpoint.pt").stat().st_mtime_ns
    with _background(ckpt) as bg:  # finished: loaded, not trained again
        bg.start().wait()
    assert (ckpt / "checkpoint.pt").stat().st_mtime_ns == stamp
    # another seed's training in the same folder: the child's refusal reaches the parent
    with _background(ckpt, seed=4) as bg, pytest.raises(CheckpointError) as err:
        bg.start().wait()
    assert "belongs to another training" in str(err.value) and exit_code(err.value) == 2


def test_a_stopped_child_leaves_a_resumable_checkpoint(tmp_path):
    ckpt = tmp_path / "bg"
    bg = _background(ckpt, epochs=500).start()
    try:
        for _ in range(600):  # until its first epoch is on disk (or a minute has passed)
            if (ckpt / "checkpoint.pt").exists():
                break
            time.sleep(0.1)
    finally:
        bg.stop()
    assert not bg.running
    assert not list(ckpt.glob("*.tmp")) and not list(ckpt.glob(".*.tmp"))
    saved = load_checkpoint(ckpt / "checkpoint.pt")
    assert not saved["done"] and saved["global_step"] > 0
