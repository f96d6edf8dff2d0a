"""Forged checkpoints: a file that loads as a checkpoint but lacks its metadata, names an
unknown kind of network, misses a key, claims 0 classes or holds weights that do not fit the
network its metadata describes is refused with one line naming the file (exit 2), never a
``KeyError`` or torch's multi-line ``Error(s) in loading state_dict``.

The checkpoint is made once per module by the real ``padnas supernet train`` (digits, the quick
preset shrunk as in search_support.py); each test forges a copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile_support import ARCH
from search_support import invoke

from padnas.cli.evaluate import evaluate
from padnas.cli.training import supernet
from padnas.core.errors import exit_code
from padnas.train.checkpoint import CheckpointError, load_child


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory) -> Path:
    """A real supernet checkpoint (one epoch on digits), never changed."""
    out = tmp_path_factory.mktemp("supernet")
    r = invoke(supernet, ["train", "--data", "digits", "--out", out])
    assert r.exit_code == 0, r.output
    return out / "checkpoint.pt"


def _forge(trained: Path, folder: Path, change) -> Path:
    """A copy of the trained checkpoint, changed by ``change(ckpt)``, as folder/checkpoint.pt."""
    ckpt = torch.load(trained, map_location="cpu", weights_only=True)
    change(ckpt)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / "checkpoint.pt")
    return folder / "checkpoint.pt"


def _meta(key, value=None):
    """A change that sets ``meta[key]`` (None: deletes it)."""

    def change(ckpt):
        if value is None:
            del ckpt["meta"][key]
        else:
            ckpt["meta"][key] = value

    return change


def _drop_weight(ckpt):
    ckpt["model"].pop(next(iter(ckpt["model"])))


FORGERIES = [
    (lambda c: c.pop("meta"), ["has no metadata"]),
    (_meta("kind", "teapot"), ["unknown kind of network ('teapot')"]),
    (_meta("space"), ["the metadata has no valid 'space'"]),
    (_meta("proxy"), ["the metadata has no valid 'proxy'"]),
    (_meta("num_classes"), ["the metadata has no valid 'num_classes'"]),
    (_meta("num_classes", 0), ["num_classes must be 1..100000, got 0"]),
    (_meta("num_classes", 10**9), ["num_classes must be 1..100000"]),
    (_meta("num_classes", 3), ["the weights do not fit the network its metadata describes"]),
    (_meta("proxy", {"resolution": 7}), ["the metadata is not valid", "resolution 7"]),
    (_meta("space", {"family": "basic"}), ["the metadata is not valid", "layer_ops"]),
    (_drop_weight, ["the weights do not fit the network its metadata describes"]),
    (lambda c: c.update(model="weights"), ["holds no network weights"]),
    (lambda c: c.update(global_step=-1), ["global_step must be a count >= 0"]),
    # format 1: trained with residuals from the proxy's rounded widths, another topology
    (lambda c: c.update(format=1), ["older padnas (checkpoint format 1)", "train again"]),
]


@pytest.mark.parametrize("change, words", FORGERIES)
def test_evaluate_refuses_a_forged_supernet(trained, tmp_path, change, words, expect_error, frozen):
    path = _forge(trained, tmp_path / "forged", change)
    before = frozen(tmp_path)
    res = invoke(evaluate, ["--supernet", path, "--arch", ARCH, "--data", "digits"])
    expect_error(res, 2, str(path), *words, unchanged=before)


@pytest.mark.parametrize("change, words", FORGERIES[:7])
def test_training_does_not_resume_from_a_forged_checkpoint(
    trained, tmp_path, change, words, expect_error, frozen
):
    # supernet train --out continues the checkpoint it finds there: a forged one is refused
    path = _forge(trained, tmp_path / "forged", change)
    before = frozen(tmp_path)
    res = invoke(supernet, ["train", "--data", "digits", "--out", path.parent])
    expect_error(res, 2, str(path), *words, alone=False, unchanged=before)


def test_a_child_checkpoint_needs_its_arch(trained, tmp_path):
    path = _forge(trained, tmp_path / "forged", _meta("kind", "child"))
    with pytest.raises(CheckpointError, match="the metadata has no valid 'arch'") as err:
        load_child(path)
    assert exit_code(err.value) == 2 and str(path) in str(err.value)
    with pytest.raises(CheckpointError, match="holds a supernet, not a stand-alone network"):
        load_child(trained)
