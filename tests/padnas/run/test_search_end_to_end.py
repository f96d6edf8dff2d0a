"""``padnas search`` through the CLI to the end on tiny settings, then ``show``, ``show --json``,
the finished path and ``export RUN:A``; the untested exit-2 paths, one exit 1 and one exit 130.

The CLI offers only the quick and paper presets; the tiny run swaps the quick preset's epochs and
CES budget in place (``monkeypatch``), so the command line, the planning, the run directory and
the output are the real ones."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from search_support import TINY_CES, TINY_PRESET

from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.run.pipeline import Pipeline
from padnas.run.settings import PRESETS, Preset
from padnas.space import get_space


@pytest.fixture
def tiny_quick(monkeypatch, padnas_cache):
    """The quick preset shrunk to seconds: one supernet epoch, 6 x 2 CES, one stand-alone epoch."""
    monkeypatch.setitem(PRESETS, "quick", Preset(TINY_PRESET, TINY_CES))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _search_args(lut_file, out):
    return ["--lut", lut_file, "--data", "digits", "--stages", "2", "--out", out, "-q"]


def test_search_show_export_end_to_end(tiny_quick, cli, lut_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    r = cli(search, *_search_args(lut_file, out))
    assert r.exit_code == 0, r.output
    final = json.loads((out / "final.json").read_text())
    labels = [m["label"] for m in final["models"]]
    # up to three models (the basic space's), labelled in order; a 12-evaluation search may
    # leave fewer distinct front members to choose from
    assert (
        labels == ["A", "B", "C"][: len(labels)] and labels and final["space"]["family"] == "basic"
    )
    summary = (out / "summary.txt").read_text()
    assert r.stdout == summary and "I-Supernet" in summary
    assert f"run directory: {out}" in r.stderr

    r = cli(show, out)
    assert r.exit_code == 0 and r.stdout == summary
    r = cli(show, out, "--json")
    assert r.exit_code == 0
    head = {"run_dir": str(out), "finished": True}
    platform = json.loads((out / "config.json").read_text())["platform"]
    summary_json = json.loads((out / "summary.json").read_text())
    assert json.loads(r.stdout) == {**head, **summary_json, "platform": platform}
    # config.json records what the run computed with
    assert platform["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert platform["threads"] == 1 and platform["deterministic"] is False
    assert platform["torch"] == torch.__version__ and "ATEN_CPU_CAPABILITY" in platform["env"]
    assert summary_json["config"]["deterministic"] is False

    # the same command again with --resume: nothing is trained, the summary is printed
    r = cli(search, *_search_args(lut_file, out), "--resume")
    assert r.exit_code == 0, r.output
    assert f"{out} is finished; its summary:" in r.stderr and r.stdout == summary

    # export model A by label and, by default, from the plain arch string into the current dir
    r = cli(export, f"{out}:A", "--format", "onnx", "--resolution", "64", "-o", tmp_path / "a.onnx")
    assert r.exit_code == 0, r.output
    dims = onnx.load(str(tmp_path / "a.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 64, 64]
    monkeypatch.chdir(tmp_path)
    arch = final["models"][0]["arch"]
    r = cli(export, arch, "--format", "onnx", "--resolution", "64")
    expected = tmp_path / f"basic-{arch.lower()}.onnx"
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == expected.name and expected.stat().st_size > 0


def test_interrupted_search_exits_130_and_says_resume(
    tiny_quick, cli, lut_file, tmp_path, monkeypatch
):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Pipeline, "execute", interrupted)
    out = tmp_path / "run"
    r = cli(search, *_search_args(lut_file, out))
    assert r.exit_code == 130
    assert f"stopped: {out} keeps everything so far; add --resume to the same command" in r.stderr
    assert "Traceback" not in r.output and (out / "config.json").is_file()


def test_corrupt_store_is_a_runtime_failure_exit_1(latency_cli, padnas_cache, expect_error):
    assert latency_cli("profile", "--device", "mock", "--space", "basic", "-q").exit_code == 0
    store = padnas_cache / "measurements" / "mock.jsonl"
    lines = store.read_text().splitlines()
    store.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", "x.json")
    expect_error(r, 1, "mock.jsonl:2")


@pytest.fixture
def finished_run(tmp_path):
    """A run directory with a final.json (what export reads), made by hand."""
    run = tmp_path / "done"
    run.mkdir()
    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    # (the fields export reads back are checked: the space, each model's arch and objectives)
    models = [{"label": "A", "arch": arch, "one_shot_accuracy": 0.5, "latency_ms": 70.0}]
    # the files export checks: a finished run's config, state and final result
    config = {"format": 1, "method": "I-Supernet", "space": "basic", "stages": 2}
    (run / "config.json").write_text(json.dumps(config))
    (run / "state.json").write_text(json.dumps({"done": {"final": {}}}))
    space = get_space("basic").to_dict()
    (run / "final.json").write_text(json.dumps({"space": space, "models": models}))
    return run


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--threads", "-1"], ["--threads must be >= 0, got -1"]),
        (["--eval-processes", "-1"], ["--eval-processes must be >= 0, got -1"]),
        (["--p-th", "1"], ["--p-th must be in [0, 1), got 1.0"]),
        (["--stages", "1"], ["--stages must be 2..10", "got 1"]),
        (["--latency-window", "60"], ["MIN:MAX"]),
        (["--p-th", "-0.5"], ["--p-th must be in [0, 1), got -0.5"]),
    ],
)
def test_search_refusals_are_one_line(cli, lut_file, tmp_path, expect_error, args, fragments):
    out = tmp_path / "run"
    expect_error(cli(search, "--lut", lut_file, "--out", out, *args), 2, *fragments)
    assert not out.exists()


def test_show_and_export_refusals_are_one_line(cli, finished_run, tmp_path, expect_error):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    expect_error(cli(show, unfinished, "--json"), 2, "not a padnas run directory (no config.json)")
    expect_error(cli(show, tmp_path / "nothing", "--json"), 2, "no run directory at")
    expect_error(cli(show, tmp_path / "nothing"), 2, "no run directory at")
    expect_error(cli(show, unfinished), 2, "not a padnas run directory (no config.json)")
    expect_error(
        cli(export, unfinished, "--format", "onnx"),
        2,
        "not a padnas run directory (no config.json)",
    )
    expect_error(
        cli(export, f"{finished_run}:A", "--space", "large", "--format", "onnx"),
        2,
        "searched the basic space, not large",
    )
    expect_error(
        cli(export, f"{finished_run}:A", "--format", "onnx", "-o", tmp_path / "a.tflite"),
        2,
        "must end in .onnx for --format onnx",
    )
    expect_error(cli(export, f"{finished_run}:Z", "--format", "onnx"), 2, "has models A, not 'Z'")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["measure", "missing.tflite", "--device", "mock"], ["missing.tflite"]),
        (["export-lut", "--device", "nokia3310", "-o", "x.json"], ["unknown device 'nokia3310'"]),
        (["validate", "--lut", "missing.json", "--device", "mock"], ["missing.json"]),
    ],
)
def test_latency_refusals_are_one_line(latency_cli, expect_error, args, fragments):
    expect_error(latency_cli(*args), 2, *fragments)


def test_search_scores_on_held_out_images_and_resume_keeps_them(
    tiny_quick, cli, lut_file, tmp_path
):
    out = tmp_path / "held"
    # with the noise ceiling: the second supernet trains in another process, given the data
    r = cli(search, *_search_args(lut_file, out), "--eval-images", "300", "--noise-ceiling")
    assert r.exit_code == 0, r.output
    assert "ranked by one-shot log-likelihood on 300 held-out images" in r.stderr
    assert json.loads((out / "config.json").read_text())["preset"]["eval_images"] == 300
    rows = [json.loads(line) for line in (out / "evaluated.jsonl").read_text().splitlines()]
    # every accuracy counts correct answers among 300 images, not the 200 of the val split
    accs = [row["accuracy"] for row in rows]
    assert all(abs(a * 300 - round(a * 300)) < 1e-9 for a in accs)
    assert any(abs(a * 200 - round(a * 200)) > 1e-9 for a in accs)
    # --resume without the option continues as the run started; another size is refused
    r = cli(search, *_search_args(lut_file, out), "--resume")
    assert r.exit_code == 0, r.output
    r = cli(search, *_search_args(lut_file, out), "--resume", "--eval-images", "100")
    assert r.exit_code == 2 and "another configuration" in r.output


def test_search_refuses_held_out_images_the_data_does_not_have(cli, lut_file, tmp_path):
    out = tmp_path / "run"
    r = cli(search, *_search_args(lut_file, out), "--eval-images", "300")
    assert r.exit_code == 2 and "data digits keeps no held-out images" in r.output
    assert "padnas search --eval-images 0" in r.output  # the fix for this command, too
    assert not out.exists()


def _preset_scores_on(monkeypatch, images: int) -> None:
    """The tiny quick preset, naming ``images`` held-out images as its default scoring set."""
    from dataclasses import replace

    monkeypatch.setitem(
        PRESETS, "quick", Preset(replace(TINY_PRESET, eval_images=images), TINY_CES)
    )


def _accuracy_denominators(out) -> set[int]:
    """Which of 200 (digits' validation split) and 300 every evaluated accuracy is a count of."""
    rows = [json.loads(line) for line in (out / "evaluated.jsonl").read_text().splitlines()]
    return {
        n
        for n in (200, 300)
        if all(abs(r["accuracy"] * n - round(r["accuracy"] * n)) < 1e-9 for r in rows)
    }


def test_a_presets_held_out_images_are_a_default_the_data_may_lack(
    tiny_quick, monkeypatch, cli, lut_file, tmp_path
):
    # digits keeps 300 spare images at 20 a class: the preset's 300 are used...
    _preset_scores_on(monkeypatch, 300)
    out = tmp_path / "held"
    r = cli(search, *_search_args(lut_file, out))
    assert r.exit_code == 0, r.output
    assert "on 300 held-out images" in r.stderr and "note: data" not in r.stderr
    assert json.loads((out / "config.json").read_text())["preset"]["eval_images"] == 300
    assert 300 in _accuracy_denominators(out)
    # ...but not 5,000: the run says so and scores on the validation split, as it records
    _preset_scores_on(monkeypatch, 5000)
    out = tmp_path / "val"
    r = cli(search, *_search_args(lut_file, out))
    assert r.exit_code == 0, r.output
    assert "keeps fewer than the preset's 5000 held-out images" in r.stderr
    assert json.loads((out / "config.json").read_text())["preset"]["eval_images"] == 0
    assert _accuracy_denominators(out) == {200}
    # asked for on the command line, the same size is a demand: refused before any write
    out = tmp_path / "asked"
    r = cli(search, *_search_args(lut_file, out), "--eval-images", "5000")
    assert r.exit_code == 2 and "held-out images must be a multiple" in r.output
    assert not out.exists()


def test_evaluate_scores_where_the_presets_search_scores(tiny_quick, monkeypatch, cli, tmp_path):
    from padnas.cli import main

    _preset_scores_on(monkeypatch, 300)
    net = tmp_path / "sn"
    r = cli(main, "supernet", "train", "--data", "digits", "--out", net)
    assert r.exit_code == 0, r.output
    args = ["evaluate", "--supernet", net, "--random", "3", "--json"]
    r = cli(main, *args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    # the search's own 300 held-out images (the same for every seed), and its ranking score
    assert (doc["split"], doc["images"], doc["rank_by"]) == ("holdout", 300, "log_likelihood")
    assert (
        "scored on 300 holdout images" in r.stderr
        and "ranks by one-shot log-likelihood" in r.stderr
    )
    same = json.loads(cli(main, *args, "--split", "holdout", "--holdout-images", "300").stdout)
    assert same["results"] == doc["results"]
    other = json.loads(cli(main, *args, "--split", "val").stdout)
    assert other["images"] == 200 and other["results"] != doc["results"]
