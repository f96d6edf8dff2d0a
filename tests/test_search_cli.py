"""``padnas search / show / export``: bad input fails fast with one line and exit 2, nothing is
trained; show and export work on a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from search_support import mock_lut

from padnas.search_cli import export, search, show


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lut") / "mock-basic.json"
    mock_lut("basic").save(path)
    return path


def _invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def _one_line_error(res, code=2):
    assert res.exit_code == code, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output
    return lines[0]


def test_unreachable_window_fails_before_training(lut_file, tmp_path):
    out = tmp_path / "run"
    res = _invoke(search, ["--lut", lut_file, "--latency-window", "500:600", "--out", out])
    msg = _one_line_error(res)
    assert "500:600 ms" in msg and "reaches" in msg
    assert not out.exists()


def test_lut_for_another_space_or_resolution(lut_file, tmp_path):
    res = _invoke(search, ["--lut", lut_file, "--space", "large", "--out", tmp_path / "r"])
    assert "large" in _one_line_error(res)
    res = _invoke(search, ["--lut", lut_file, "--resolution", "160", "--out", tmp_path / "r"])
    assert "160" in _one_line_error(res)
    res = _invoke(search, ["--lut", tmp_path / "missing.json", "--out", tmp_path / "r"])
    assert "not found" in _one_line_error(res)


def test_run_directory_refusals(lut_file, tmp_path):
    from padnas.plan import plan_search
    from padnas.rundir import RunDir

    out = tmp_path / "run"
    RunDir.open(out, plan_search(str(lut_file), seed=1).settings.to_config(), resume=False)
    res = _invoke(search, ["--lut", lut_file, "--out", out, "--seed", "2", "--resume"])
    assert "another configuration" in _one_line_error(res)
    res = _invoke(search, ["--lut", lut_file, "--out", out, "--seed", "1"])
    assert "--resume" in _one_line_error(res)
    res = _invoke(search, ["--lut", lut_file, "--stages", "1", "--out", tmp_path / "x"])
    assert "--stages" in _one_line_error(res)
    res = _invoke(search, ["--lut", lut_file, "--latency-window", "70-60", "--out", tmp_path / "x"])
    assert "MIN:MAX" in _one_line_error(res)
    # show on an unfinished run reports progress
    res = _invoke(show, [out])
    assert res.exit_code == 0 and "unfinished" in res.output
    res = _invoke(show, [tmp_path / "nothing"])
    _one_line_error(res)


def test_export_from_run_dir_label(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    # the files export checks: a finished run's config, state and final result
    config = {"format": 1, "method": "I-Supernet", "space": "basic", "stages": 2}
    (run / "config.json").write_text(json.dumps(config))
    (run / "state.json").write_text(json.dumps({"done": {"final": {}}}))
    (run / "final.json").write_text(
        json.dumps({"space": {"family": "basic"}, "models": [{"label": "A", "arch": arch}]})
    )
    out = tmp_path / "a.onnx"
    res = _invoke(export, [f"{run}:A", "--format", "onnx", "--resolution", "64", "-o", out])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 0
    import onnx

    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 64
    res = _invoke(export, [f"{run}:C", "--format", "onnx"])
    assert "not 'C'" in _one_line_error(res)
    res = _invoke(export, ["K3E1-XX", "--format", "onnx"])
    _one_line_error(res)
