"""--precision: per-device resolution, autocast reaching the forward passes, record, refusals."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from padnas.cli import main
from padnas.data.datasets import TensorSplit, load_data
from padnas.run.settings import PRESETS
from padnas.search.oneshot import OneShotEvaluator, evaluate_model
from padnas.space import get_space
from padnas.train.checkpoint import load_checkpoint
from padnas.train.loop import build_supernet, train_arch, train_supernet
from padnas.train.precision import PrecisionError, resolve_precision

torch.set_num_threads(1)

CFG = PRESETS["quick"].train.replace(batch_size=64)
ARCH = "K3E1-" + "-".join(["K3E3", "K5E6", "ID", "K7E3"] * 5) + "-K3E6"


def tiny_data():
    d = load_data("digits", 32, seed=0)
    t = d.train
    return dataclasses.replace(d, train=TensorSplit(t.images[:128], t.labels[:128], t.mean, t.std))


class DtypeProbe:
    """Records the dtype of the stem convolution's output on every forward."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seen: list[torch.dtype] = []
        self.handle = module.register_forward_hook(lambda m, i, out: self.seen.append(out.dtype))


def _first_conv(net: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_resolution_per_device():
    assert resolve_precision("auto", "cpu").name == "fp32"
    assert resolve_precision("BF16", "cpu").name == "bf16"
    assert resolve_precision("fp32", "cpu").dtype is None
    assert resolve_precision("bf16", "cpu").dtype == torch.bfloat16
    assert not resolve_precision("bf16", "cpu").grad_scaler().is_enabled()
    with pytest.raises(PrecisionError, match="CUDA GPUs only"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(PrecisionError, match="fp32, bf16, fp16, auto"):
        resolve_precision("fp8", "cpu")
    if not torch.cuda.is_available():
        assert resolve_precision("auto", None).name == "fp32"


@pytest.mark.parametrize(("name", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_training_forward_runs_under_the_configured_autocast(tmp_path, name, dtype):
    data, sp = tiny_data(), get_space("basic")
    cfg = CFG.replace(precision=name)
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    probe = DtypeProbe(_first_conv(net))
    before = net.head.classifier.weight.detach().clone()
    train_supernet(net, data, cfg, tmp_path, seed=0, epochs=1, progress=False)
    assert probe.seen and set(probe.seen) == {dtype}
    # the weights stay float32 and were trained
    assert net.head.classifier.weight.dtype == torch.float32
    assert not torch.equal(before, net.head.classifier.weight)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["meta"]["config"]["precision"] == name


def test_one_shot_evaluation_recalibrates_and_measures_under_autocast():
    data, sp = tiny_data(), get_space("basic")
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    probe = DtypeProbe(_first_conv(net))
    arch = sp.validate(ARCH)
    kw = {"recal_batches": 1, "batch_size": 64}
    ev16 = OneShotEvaluator(net, data, precision="bf16", **kw)
    acc16 = ev16.evaluate(arch)
    assert set(probe.seen) == {torch.bfloat16}  # recalibration and accuracy passes alike
    probe.seen.clear()
    acc32 = OneShotEvaluator(net, data, precision="fp32", **kw).evaluate(arch)
    assert set(probe.seen) == {torch.float32}
    assert 0.0 <= acc16 <= 1.0 and abs(acc16 - acc32) < 0.1  # same net, lower precision
    # BN running statistics are float32 again afterwards
    assert all(b.dtype == torch.float32 for b in net.buffers() if b.is_floating_point())
    probe.seen.clear()
    child = net.extract(arch)
    probe = DtypeProbe(_first_conv(child))
    evaluate_model(child, data.val, precision="bf16")
    assert set(probe.seen) == {torch.bfloat16}


def test_resuming_in_another_precision_is_refused(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    train_supernet(net, data, CFG, tmp_path, seed=0, epochs=1, progress=False)
    net = build_supernet(sp, CFG, data.num_classes, seed=0)
    with pytest.raises(Exception, match="precision"):
        train_supernet(
            net, data, CFG.replace(precision="bf16"), tmp_path, seed=0, epochs=1, progress=False
        )


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_records_the_resolved_precision_and_refuses_fp16_on_cpu(tmp_path, expect_error, frozen):
    r = run("supernet", "train", "--epochs", "0", "--data", "digits", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    meta = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["meta"]
    assert meta["config"]["precision"] == ("bf16" if torch.cuda.is_available() else "fp32")
    r = run(
        "supernet",
        "train",
        "--epochs",
        "0",
        "--data",
        "digits",
        "--precision",
        "bf16",
        "--accelerator",
        "cpu",
        "--out",
        tmp_path / "b",
    )
    assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["meta"]["config"]["precision"] == (
        "bf16"
    )
    r = run(
        "evaluate",
        "--supernet",
        tmp_path / "b",
        "--arch",
        ARCH,
        "--json",
        "--recal-images",
        "64",
        "--precision",
        "bf16",
        "--accelerator",
        "cpu",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["precision"] == "bf16"
    for command in (
        ["supernet", "train", "--epochs", "0", "--out", tmp_path / "c"],
        ["train", "--arch", ARCH, "--epochs", "0", "--out", tmp_path / "d"],
        ["evaluate", "--supernet", tmp_path / "b", "--arch", ARCH],
    ):
        before = frozen(tmp_path)
        r = run(*command, "--precision", "fp16", "--accelerator", "cpu")
        expect_error(
            r,
            2,
            "--precision fp16 runs on CUDA GPUs only; on the CPU use fp32 or bf16",
            unchanged=before,
        )
    assert not (tmp_path / "c").exists()  # refused before anything was written
    r = run("supernet", "train", "--precision", "fp8")
    expect_error(r, 2, "fp32")


def test_standalone_training_under_bf16(tmp_path):
    data, sp = tiny_data(), get_space("basic")
    net = train_arch(
        sp, ARCH, data, CFG.replace(precision="bf16"), tmp_path, seed=0, epochs=1, progress=False
    )
    assert load_checkpoint(tmp_path / "checkpoint.pt")["meta"]["config"]["precision"] == "bf16"
    assert net.head.classifier.weight.dtype == torch.float32


def test_search_records_precision_in_config_and_refuses_fp16_on_cpu(
    tmp_path, lut_file, cli, expect_error, frozen
):
    from padnas.cli.search import search

    out = tmp_path / "run"
    base = ["--lut", lut_file, "--out", out, "--accelerator", "cpu"]
    r = cli(search, *base, "--precision", "fp16")
    expect_error(r, 2, "--precision fp16 runs on CUDA GPUs only", alone=False)
    assert not out.exists()
    # the data are loaded before the run directory is opened: a missing image folder
    # is refused with nothing written
    missing = ["--data", f"imagefolder:{tmp_path / 'none'}"]
    before = frozen(tmp_path, lut_file)
    r = cli(search, *base, *missing, "--precision", "bf16")
    expect_error(r, 2, "none", alone=False, unchanged=before)
    assert not out.exists()
