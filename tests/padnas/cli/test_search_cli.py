"""``padnas search / show / export``: bad input fails fast with one line and exit 2, nothing is
trained; show and export work on a run directory."""

from __future__ import annotations

import json

import pytest

from padnas.cli.main import main
from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.space import get_space


def test_unreachable_window_fails_before_training(lut_file, tmp_path, cli, expect_error):
    out = tmp_path / "run"
    res = cli(search, *["--lut", lut_file, "--latency-window", "500:600", "--out", out])
    msg = expect_error(res, 2)
    # refused by the reachable-range check itself, not by the sampling fallback after it
    assert msg.startswith("error: no architecture meets the latency window 500:600 ms: the basic")
    assert "space reaches" in msg and "too narrow" not in msg
    assert not out.exists()


def test_lut_for_another_space_or_resolution(lut_file, tmp_path, cli, expect_error):
    res = cli(search, *["--lut", lut_file, "--space", "large", "--out", tmp_path / "r"])
    assert "large" in expect_error(res, 2)
    res = cli(search, *["--lut", lut_file, "--resolution", "160", "--out", tmp_path / "r"])
    assert "160" in expect_error(res, 2)
    res = cli(search, *["--lut", tmp_path / "missing.json", "--out", tmp_path / "r"])
    assert "not found" in expect_error(res, 2)


def test_run_directory_refusals(lut_file, tmp_path, cli, expect_error):
    from padnas.run.plan import plan_search
    from padnas.run.rundir import RunDir

    out = tmp_path / "run"
    RunDir.open(out, plan_search(str(lut_file), seed=1).settings.to_config(), resume=False)
    res = cli(search, *["--lut", lut_file, "--out", out, "--seed", "2", "--resume"])
    # refused when the run directory is opened, after the plan's lines
    expect_error(res, 2, "another configuration", alone=False)
    res = cli(search, *["--lut", lut_file, "--out", out, "--seed", "1"])
    expect_error(res, 2, "--resume", alone=False)
    res = cli(search, *["--lut", lut_file, "--stages", "1", "--out", tmp_path / "x"])
    expect_error(res, 2, "--stages")
    res = cli(search, *["--lut", lut_file, "--latency-window", "70-60", "--out", tmp_path / "x"])
    expect_error(res, 2, "MIN:MAX")
    # show on an unfinished run reports progress
    res = cli(show, out)
    assert res.exit_code == 0 and "unfinished" in res.output
    expect_error(cli(show, tmp_path / "nothing"), 2, "no run directory at")


def test_export_from_run_dir_label(tmp_path, cli, expect_error):
    run = tmp_path / "run"
    run.mkdir()
    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    # the files export checks: a finished run's config, state and final result
    config = {"format": 1, "method": "I-Supernet", "space": "basic", "stages": 2}
    (run / "config.json").write_text(json.dumps(config))
    (run / "state.json").write_text(json.dumps({"done": {"final": {}}}))
    # (the fields export reads back are checked: the space, each model's arch and objectives)
    model = {"label": "A", "arch": arch, "one_shot_accuracy": 0.5, "latency_ms": 70.0}
    space = get_space("basic").to_dict()
    (run / "final.json").write_text(json.dumps({"space": space, "models": [model]}))
    out = tmp_path / "a.onnx"
    res = cli(export, *[f"{run}:A", "--format", "onnx", "--resolution", "64", "-o", out])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    import onnx

    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 64
    res = cli(export, *[f"{run}:C", "--format", "onnx"])
    assert "not 'C'" in expect_error(res, 2)
    res = cli(export, *["K3E1-XX", "--format", "onnx"])
    expect_error(res, 2)


def test_a_resumed_run_keeps_its_mode(lut_file, tmp_path, cli, expect_error, frozen):
    """A run never mixes the deterministic and the normal mode (exit 2, one line, nothing
    written); --deterministic outside its pinned environment, on another device or on more
    threads is refused before any work."""
    from dataclasses import replace

    from padnas.run.plan import plan_search
    from padnas.run.rundir import RunDir

    settings = plan_search(str(lut_file), seed=1).settings
    det, normal = tmp_path / "det", tmp_path / "normal"
    RunDir.open(det, replace(settings, deterministic=True).to_config(), resume=False)
    RunDir.open(normal, settings.to_config(), resume=False)
    assert json.loads((det / "config.json").read_text())["deterministic"] is True
    common = ["--lut", lut_file, "--seed", "1", "--resume", "--out"]
    before = frozen(tmp_path)
    res = cli(search, *common, det)
    words = ["was run with --deterministic", "cannot mix modes"]
    expect_error(res, 2, *words, alone=False, unchanged=before)
    res = cli(search, *common, normal, "--deterministic")
    expect_error(res, 2, "was run without --deterministic", alone=False, unchanged=before)
    # this test process's environment is not pinned: a fresh deterministic run is refused
    res = cli(search, "--lut", lut_file, "--out", tmp_path / "new", "--deterministic")
    expect_error(res, 2, "--deterministic needs the CPU environment pinned", alone=False)
    assert not (tmp_path / "new").exists()
    res = cli(search, "--lut", lut_file, "--out", tmp_path / "x", "--deterministic", "--threads", 2)
    expect_error(res, 2, "--deterministic runs one thread")
    res = cli(
        search,
        "--lut",
        lut_file,
        "--out",
        tmp_path / "x",
        "--deterministic",
        "--accelerator",
        "cuda",
    )
    expect_error(res, 2, "it runs on the CPU")


def test_a_resumed_run_keeps_its_sampler_and_strides(lut_file, tmp_path, cli, expect_error, frozen):
    """--sampler and --dropped-strides are part of a run's configuration: a resume that names
    others is refused before any work; a run from before dropped strides has none."""
    from dataclasses import replace

    from padnas.run.plan import plan_search
    from padnas.run.rundir import RunDir, RunDirError

    settings = plan_search(str(lut_file), seed=1).settings
    preset = settings.preset.replace(sampler="transitions", dropped_strides=2)
    run = tmp_path / "run"
    RunDir.open(run, replace(settings, preset=preset).to_config(), resume=False)
    before = frozen(tmp_path)
    common = ["--lut", lut_file, "--seed", "1", "--resume", "--out", run]
    res = cli(search, *common, "--dropped-strides", "0")
    expect_error(res, 2, "another configuration", "dropped_strides", alone=False, unchanged=before)
    res = cli(search, *common, "--sampler", "uniform")
    expect_error(res, 2, "another configuration", "sampler", alone=False, unchanged=before)
    res = cli(main, "search", "--lut", lut_file, "--out", tmp_path / "new", "--dropped-strides", 6)
    expect_error(res, 2, "--dropped-strides", "0<=x<=5")
    old = tmp_path / "old"
    RunDir.open(old, settings.to_config(), resume=False)
    config = json.loads((old / "config.json").read_text())
    del config["preset"]["dropped_strides"], config["preset"]["sampler"]
    (old / "config.json").write_text(json.dumps(config))
    # a run from before both options ran uniform paths at the deployed strides...
    RunDir.check(old, settings.to_config(), resume=True)
    # ...and nothing else
    with pytest.raises(RunDirError, match="sampler"):
        RunDir.check(old, replace(settings, preset=preset).to_config(), resume=True)
