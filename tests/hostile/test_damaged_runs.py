"""Damaged and half-made run directories, bounds and paths: nothing is written before
every option is checked, every damaged file is named, a lost final.json is rebuilt on --resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from repo_support import PIXEL3
from search_support import mock_lut, run_pipeline, tiny_data, tiny_plan

from latency.backends.adb.serials import AdbSerialError, parse_serial
from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.core.errors import exit_code
from padnas.run.rundir import LoadedRun, RunDir
from padnas.search.ces import CESConfig


def _invoke(cmd, args, env=None):
    return CliRunner().invoke(cmd, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lut") / "mock-basic.json"
    mock_lut("basic").save(path)
    return path


def _tiny_plan(lut_file):
    """Two stages, one supernet epoch, one CES generation: the least that finishes a run."""
    return tiny_plan(lut_file, 2, epochs=(1,), ces=CESConfig(pop_size=6, generations=1))


def _execute(plan, out: Path, *, resume: bool) -> None:
    run_pipeline(plan, tiny_data(), out, resume=resume)


@pytest.fixture(scope="module")
def finished(lut_file, tmp_path_factory) -> tuple[Path, object]:
    """A real finished run (2 stages, tiny settings), copied by each test that damages it."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "done"
    plan = _tiny_plan(lut_file)
    _execute(plan, out, resume=False)
    return out, plan


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(finished[0], dst)
    return dst


# ---- 4. nothing written before every input is checked -----------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (["--seed", "-1"], ["--seed must be 0.."]),
        (["--accelerator", "tpu:9"], ["'tpu:9' is not a torch device"]),
        (["--accelerator", "cuda:3"], ["cuda:3"]),
        (["--stages", "100"], ["--stages must be 2..10", "100"]),
        (["--stages", "1"], ["--stages must be 2..10"]),
        (["--data", "nosuch"], []),
    ],
)
def test_bad_options_leave_no_run_directory(lut_file, tmp_path, args, words, expect_error, frozen):
    out = tmp_path / "out"
    before = frozen(out, lut_file)
    res = _invoke(search, ["--lut", lut_file, "--out", out, "-q", *args])
    expect_error(res, 2, *words, alone=False, unchanged=before)
    assert not out.exists()
    # the same command with good values is not refused for a "not empty" --out
    res = _invoke(search, ["--lut", lut_file, "--out", out, "--stages", "0"])
    assert "not empty" not in res.output


def test_resume_where_there_is_no_run(lut_file, tmp_path, expect_error, frozen):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    for name, words in [
        ("missing", ["does not exist", "drop --resume"]),
        ("empty", ["is empty", "drop --resume"]),
        ("other", ["not a padnas run directory"]),
    ]:
        before = frozen(tmp_path / name, lut_file)
        res = _invoke(search, ["--lut", lut_file, "--out", tmp_path / name, "--resume"])
        expect_error(res, 2, *words, alone=False, unchanged=before)


# ---- 5. one loader for show, export and --resume ----------------------------------------------
@pytest.mark.parametrize(
    "name, damage, words",
    [
        ("final.json", None, ["final.json is missing", "--resume"]),
        ("final.json", '{"models": [', ["final.json", "truncated"]),
        ("final.json", '{"models": 3}', ["final.json is damaged"]),
        ("state.json", '{"done": ', ["state.json", "truncated"]),
        ("state.json", "[]", ["state.json", "must hold an object"]),
        ("config.json", None, ["not a padnas run directory"]),
        ("config.json", "\xff garbage", ["config.json", "not valid JSON"]),
        ("config.json", '{"format": 99}', ["config.json", "written by a newer padnas"]),
        ("summary.json", None, ["summary.json is missing"]),
    ],
)
def test_show_and_export_name_the_damaged_file(run_copy, name, damage, words, expect_error, frozen):
    target = run_copy / name
    if damage is None:
        target.unlink()
    else:
        target.write_text(damage)
    before = frozen(run_copy)
    expect_error(_invoke(show, [run_copy]), 2, *words, unchanged=before)
    if name != "summary.json":  # export needs only config, state and final
        res = _invoke(export, [f"{run_copy}:A", "--format", "onnx"])
        expect_error(res, 2, *words, unchanged=before)


def test_resume_refuses_damaged_bookkeeping_without_writing(lut_file, run_copy, frozen):
    (run_copy / "state.json").write_text('{"done": {"final": {}')
    before = frozen(run_copy)
    config = _tiny_plan(lut_file).settings.to_config()
    with pytest.raises(Exception) as err:
        RunDir.check(run_copy, config, resume=True)
        LoadedRun(run_copy)
    assert "state.json" in str(err.value) and exit_code(err.value) == 2
    assert before.changed() == []


def test_missing_final_is_rebuilt_on_resume(finished, run_copy):
    _, plan = finished
    original = json.loads((run_copy / "final.json").read_text())
    (run_copy / "final.json").unlink()
    loaded = LoadedRun(run_copy)
    assert loaded.finished and "final.json is missing" in loaded.damage()
    # what search --resume does: forget the finished step, replay the stages from their files
    RunDir(run_copy).unmark("final")
    _execute(plan, run_copy, resume=True)
    assert json.loads((run_copy / "final.json").read_text()) == original
    assert LoadedRun(run_copy).damage() is None


def test_show_of_a_finished_run(finished):
    res = _invoke(show, [finished[0]])
    assert res.exit_code == 0, res.output


# ---- 6. targets, paths and serials ------------------------------------------------------------
def test_export_targets(tmp_path, monkeypatch, expect_error, frozen):
    monkeypatch.chdir(tmp_path)
    before = frozen(tmp_path)  # nothing is written into the current directory
    expect_error(_invoke(export, [""]), 2, "ARCH is empty", unchanged=before)
    long_arch = "-".join(["K3E3"] * 60)
    expect_error(_invoke(export, [long_arch]), 2, "60", unchanged=before)
    res = _invoke(export, ["runs/none:A"])
    expect_error(res, 2, "no run directory at runs/none", unchanged=before)


def test_output_folder_that_cannot_be_created(tmp_path, expect_error, frozen):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = frozen(tmp_path)
    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    res = _invoke(export, [arch, "--format", "onnx", "-o", blocker / "sub" / "a.onnx"])
    expect_error(
        res, 2, "cannot create the folder of -o", "is a file, not a directory", unchanged=before
    )
    res = _invoke(search, ["--lut", tmp_path / "x.json", "--out", blocker / "run"])
    expect_error(res, 2, alone=False, unchanged=before)


def test_cache_that_cannot_be_created(tmp_path, latency_cli, monkeypatch, expect_error, frozen):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("PADNAS_CACHE", str(blocker / "cache"))
    before = frozen(tmp_path)
    res = CliRunner().invoke(
        __import__("latency.cli.app", fromlist=["main"]).main,
        ["profile", "--device", "mock", "--space", "basic", "-q"],
    )
    expect_error(
        res, 2, "cannot create $PADNAS_CACHE", "is a file, not a directory", unchanged=before
    )


@pytest.mark.parametrize("bad", ["x;rm -rf /", "usb:$(id)", "a b:5555", "host_1:5555", "usb:a/b"])
def test_malformed_serials_are_refused(bad):
    with pytest.raises(AdbSerialError, match="malformed --serial") as err:
        parse_serial(bad)
    assert exit_code(err.value) == 2


def test_malformed_serial_on_the_command_line(latency_cli, expect_error):
    res = latency_cli("devices", "--serial", "x;rm -rf /")
    expect_error(res, 2, "malformed --serial")


def test_predict_targets(tmp_path, latency_cli, expect_error, frozen):
    lut = PIXEL3
    txt = tmp_path / "net.txt"
    txt.write_text("{}")
    before = frozen(txt, lut, tmp_path / "no")  # (the private cache may be made)
    expect_error(latency_cli("predict", tmp_path, "--lut", lut), 2, "is a directory")
    expect_error(latency_cli("predict", txt, "--lut", lut), 2, "a file that is not .json")
    res = latency_cli("predict", tmp_path / "no" / "net", "--lut", lut)
    expect_error(res, 2, "file not found", unchanged=before)
