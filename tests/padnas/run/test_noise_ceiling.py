"""A search's noise ceiling end to end on tiny settings: measured by default where the preset
says so and reported in ``show --json``, ``summary.txt`` and the plot; skipped with
``--no-noise-ceiling``; a resume never retrains the second supernet; a killed run stops it; a
forged ceiling or second supernet is refused. The summary's sentences are checked on
constructed numbers. No timing is asserted."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from search_support import (
    TINY_CES,
    TINY_PRESET,
    invoke,
    run_pipeline,
    search_args,
    tiny_data,
    tiny_plan,
    tiny_quick,
)

from padnas.cli.runs import show
from padnas.cli.search import search
from padnas.run.pipeline import Hooks
from padnas.run.report import render_ceiling, render_summary
from padnas.run.settings import PRESETS, Preset
from padnas.search.ceiling import CeilingConfig, measure_ceiling, twin_seed
from padnas.space import get_space
from padnas.train.background import BackgroundTraining
from padnas.train.checkpoint import load_checkpoint

TWIN = Path("stage-1/twin/ckpt/checkpoint.pt")
CEILING = Path("stage-1/noise_ceiling.json")


@pytest.fixture(scope="module")
def ceiling_on(tmp_path_factory):
    """The tiny quick preset with the noise ceiling on by default (at most 8 archs)."""
    with tiny_quick(tmp_path_factory.mktemp("cache")), pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "quick", Preset(TINY_PRESET, TINY_CES, CeilingConfig(archs=8)))
        yield


@pytest.fixture(scope="module")
def measured(ceiling_on, lut_file, tmp_path_factory) -> Path:
    """A finished run through the CLI that measured its ceiling (the preset's default)."""
    run = tmp_path_factory.mktemp("runs") / "measured"
    r = invoke(search, search_args(lut_file, run))
    assert r.exit_code == 0, r.output
    return run


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_show_json_and_summary_carry_the_ceiling(measured):
    r = invoke(show, [measured, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    block = doc["noise_ceiling"]
    records = _json(measured / CEILING)["records"]
    evaluated = doc["stages"][1]["evaluations"]
    assert block["archs"] == len(records) == min(8, evaluated)
    assert -1 <= block["tau"] <= 1 and 0 <= block["p_value"] <= 1
    assert block["seeds"] == [0, twin_seed(0)] and block["recal_seed"] == 0
    assert doc["config"]["noise_ceiling"] == {
        "archs": 8,
        "seeds": [0, twin_seed(0)],
        "recal_seed": 0,
    }
    diff = np.array([x["accuracy"] - x["twin_accuracy"] for x in records])
    assert block["acc_difference_std"] == pytest.approx(diff.std(ddof=1))
    assert block["accuracy_noise"] == pytest.approx(diff.std(ddof=1) / np.sqrt(2))
    # the first supernet's accuracies are the ones its search measured (same recalibration)
    searched = _json(measured / "stage-2/search.json")["records"]
    by_arch = {x["arch"]: x["accuracy"] for x in searched}
    assert all(by_arch[x["arch"]] == x["accuracy"] for x in records)
    # the archs are spread along the evaluated set's latencies: the fastest and the slowest
    lats = sorted(x["latency_ms"] for x in searched)
    got = sorted(x["latency_ms"] for x in records)
    assert got[0] == lats[0] and got[-1] == lats[-1]
    assert load_checkpoint(measured / TWIN)["meta"]["seed"] == twin_seed(0)
    # every step of the final models, in the summary and the text, with its verdict
    final = doc["final"]
    assert len(block["steps"]) == max(0, len(final) - 1) + (len(final) > 2)
    text = (measured / "summary.txt").read_text()
    assert f"seeds 0 and {twin_seed(0)}" in text and "Kendall tau" in text
    # what the accuracies were measured on: the digits validation split (20 a class)
    assert (block["eval_images"], block["eval_split"]) == (200, "val")
    assert "scored on 200 validation images" in text
    for st in block["steps"]:
        verdict = "within the ranking noise" if st["within_noise"] else "beyond the ranking noise"
        assert f"{st['from']} → {st['to']}" in text and verdict in text
    assert (measured / "pareto.png").stat().st_size > 0


def test_no_noise_ceiling_skips_it(ceiling_on, measured, lut_file, tmp_path, expect_error):
    from padnas.search.ces import nondominated_ranks

    out = tmp_path / "off"
    # ...and ranks by accuracy, as the paper does, against the preset's log-likelihood
    r = invoke(search, [*search_args(lut_file, out), "--no-noise-ceiling", "--rank-by", "accuracy"])
    assert r.exit_code == 0, r.output
    assert not (out / "stage-1/twin").exists() and not (out / CEILING).exists()
    assert _json(out / "summary.json")["noise_ceiling"] is None
    assert _json(out / "config.json")["noise_ceiling"] is None
    text = (out / "summary.txt").read_text()
    assert "noise ceiling: not measured" in text and "log-lik" not in text
    stored = _json(out / "stage-2/search.json")
    F = np.array([[-x["accuracy"], x["latency_ms"]] for x in stored["records"]])
    assert stored["rank_by"] == "accuracy"
    assert [x["rank"] for x in stored["records"]] == list(nondominated_ranks(F))
    # --resume continues a run as it started, whatever the preset's defaults
    r = invoke(search, [*search_args(lut_file, out), "--resume"])
    assert r.exit_code == 0 and "is finished" in r.stderr, r.output
    # ...and a run that measures its ceiling cannot be resumed without it
    r = invoke(search, [*search_args(lut_file, measured), "--resume", "--no-noise-ceiling"])
    expect_error(r, 2, "another configuration", "noise_ceiling", alone=False)


def test_resume_does_not_retrain_the_second_supernet(measured, lut_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(measured, out)
    twin_before = (out / TWIN).read_bytes(), (out / TWIN).stat().st_mtime_ns
    (out / CEILING).unlink()  # measured again from the stored second supernet...
    (out / "summary.json").unlink()  # ...when --resume rebuilds the damaged result

    def no_training(self):
        raise AssertionError("the second supernet was trained again")

    monkeypatch.setattr(BackgroundTraining, "start", no_training)
    r = invoke(search, [*search_args(lut_file, out), "--resume"])
    assert r.exit_code == 0, r.output
    assert "rebuilding" in r.stderr
    assert ((out / TWIN).read_bytes(), (out / TWIN).stat().st_mtime_ns) == twin_before
    assert _json(out / CEILING) == _json(measured / CEILING)
    seconds = ("eval_seconds", "twin_train_seconds")
    again, first = (
        {k: v for k, v in _json(p / "summary.json")["noise_ceiling"].items() if k not in seconds}
        for p in (out, measured)
    )
    assert again == first


def test_a_ceiling_measured_by_a_helper_beside_the_finetune_is_the_same(
    ceiling_on, lut_file, tmp_path
):
    """Three stages, so that a finetune follows the first search: with a helper the second
    supernet's scores are measured there while this process finetunes; the ceiling, the search
    and its models are those of one process."""
    runs = {}
    for processes in (1, 2):
        out = runs[processes] = tmp_path / f"p{processes}"
        args = [*search_args(lut_file, out), "--stages", "3", "--eval-processes", processes]
        r = invoke(search, args)
        assert r.exit_code == 0, r.output
    one, two = runs[1], runs[2]
    assert "one-shot evaluation in 2 processes" in (two / "summary.txt").read_text()
    assert _json(two / CEILING) == _json(one / CEILING)
    assert _json(two / "final.json") == _json(one / "final.json")
    blocks = [_json(p / "summary.json")["noise_ceiling"] for p in (one, two)]
    assert [b["eval_beside_finetune"] for b in blocks] == [False, True]
    assert "by helper processes beside the first finetune" in (two / "summary.txt").read_text()
    # a resume that measures it again, with no finetune left to overlap, measures the same
    (two / CEILING).unlink()
    (two / "summary.json").unlink()
    args = [*search_args(lut_file, two), "--stages", "3", "--eval-processes", "2", "--resume"]
    assert invoke(search, args).exit_code == 0
    assert _json(two / CEILING) == _json(one / CEILING)


class Kill(Exception):
    pass


def test_a_killed_run_stops_the_second_supernet_and_resumes_it(lut_file, tmp_path):
    data = tiny_data()
    plan = tiny_plan(lut_file, 2, epochs=(2,), noise_ceiling=True)
    plan.settings = replace(plan.settings, ceiling=CeilingConfig(archs=6))
    run_pipeline(plan, data, tmp_path / "ref")

    def kill(k, step, loss):
        if k == 1 and step == 2:
            raise Kill

    out = tmp_path / "killed"
    with pytest.raises(Kill):
        run_pipeline(plan, data, out, hooks=Hooks(on_train_step=kill))
    assert multiprocessing.active_children() == []  # the second supernet's process is gone
    summary = run_pipeline(plan, data, out, resume=True)
    assert _json(out / CEILING) == _json(tmp_path / "ref" / CEILING)
    assert summary["noise_ceiling"]["archs"] == len(_json(out / CEILING)["records"]) <= 6


def test_a_forged_ceiling_is_refused_before_anything_is_written(
    measured, lut_file, tmp_path, expect_error, frozen
):
    out = tmp_path / "run"
    shutil.copytree(measured, out)
    (out / "summary.json").unlink()  # a damaged result: --resume reads the stage files back
    data = _json(out / CEILING)
    data["records"][0]["twin_accuracy"] = 1.5
    (out / CEILING).write_text(json.dumps(data))
    before = frozen(out)
    r = invoke(search, [*search_args(lut_file, out), "--resume"])
    expect_error(r, 2, "noise_ceiling.json", "twin_accuracy", alone=False, unchanged=before)


def test_a_forged_second_supernet_is_refused(measured, lut_file, tmp_path, expect_error):
    out = tmp_path / "run"
    shutil.copytree(measured, out)
    for name in ("summary.json", str(CEILING)):
        (out / name).unlink()
    state = _json(out / "state.json")
    del state["done"]["train-1-twin"]  # so the second supernet's training resumes, in a child
    (out / "state.json").write_text(json.dumps(state))
    (out / TWIN).write_bytes(b"not a checkpoint")
    r = invoke(search, [*search_args(lut_file, out), "--resume"])
    expect_error(r, 2, "is not a padnas checkpoint", alone=False)


# ---- the summary's words, on constructed numbers ---------------------------------------------
def _summary(accs: list[float], noise: float) -> dict:
    """A summary of final models with ``accs`` and a ceiling whose differences have std
    ``noise`` (accuracies 0..1)."""
    space = get_space("basic")
    rng = np.random.default_rng(0)
    archs = [str(space.decode(g)) for g in space.sample_genomes(rng, 4)]
    base = np.array([0.60, 0.62, 0.64, 0.66])
    twin = base + noise * np.array([1, -1, 1, -1]) * np.sqrt(3) / 2  # std of the diff = noise
    ceiling = measure_ceiling(archs, [50, 60, 70, 80], base, twin, seeds=(0, 1), recal_seed=0)
    assert ceiling.step_noise == pytest.approx(noise)
    models = [
        {
            "label": label,
            "arch": archs[0],
            "latency_ms": 50.0 + i,
            "latency_source": "mock",
            "one_shot_accuracy": a,
            "macs": 1e6,
            "params": 1e5,
        }
        for i, (label, a) in enumerate(zip("ABC", accs, strict=False))
    ]
    config = {
        "space": "basic",
        "stages": 2,
        "data": "digits",
        "preset": {"name": "quick"},
        "seed": 0,
        "lut": {"device": "mock", "label": "x", "sources": ["mock"], "calibrated": False},
        "latency_window_ms": [40, 90],
        "window_rule": "given",
        "ces": {"pop_size": 6, "generations": 2},
        "p_th": 0.01,
        "max_rank": 10,
    }
    return {
        "method": "I-Supernet",
        "config": config,
        "stages": [],
        "final": models,
        "final_notes": [],
        "noise_ceiling": ceiling.summary(models),
    }


def test_summary_says_when_steps_are_within_the_noise():
    # std of a difference 1.55 points: band ±3.1; A -> C rises 1.2 points
    text = render_summary(_summary([0.600, 0.605, 0.612], 0.0155))
    assert (
        "A → C rises 1.2 points, within the ranking noise (±3.1): these models are not "
        "distinguishable by one-shot accuracy"
    ) in text
    assert "beyond" not in text
    # scored on the validation split, with steps lost in the noise: where more images help
    block = _summary([0.600, 0.605, 0.612], 0.0155)
    block["noise_ceiling"] |= {"eval_images": 1000, "eval_split": "val"}
    text = render_summary(block)
    assert "scored on 1000 validation images" in text
    assert "much of this noise is which 1000 images were drawn" in text
    assert "--eval-images 5000" in text
    block["noise_ceiling"] |= {"eval_images": 2000, "eval_split": "holdout"}
    text = render_summary(block)
    assert "scored on 2000 held-out images" in text
    assert "which 2000 images were drawn" in text and "--eval-images 5000" in text
    block["noise_ceiling"] |= {"eval_images": 5000, "eval_split": "holdout"}
    text = render_summary(block)
    assert "scored on 5000 held-out images" in text and "much of this noise" not in text


def test_summary_says_when_steps_rise_beyond_the_noise():
    text = render_summary(_summary([0.60, 0.65, 0.70], 0.0155))
    assert "A → B rises 5.0 points, beyond the ranking noise (±3.1)" in text
    assert "A → C rises 10.0 points, beyond the ranking noise (±3.1)" in text
    assert "not distinguishable" not in text
    summary = _summary([0.60, 0.65, 0.70], 0.0155)
    summary["noise_ceiling"] |= {"eval_images": 1000, "eval_split": "val"}
    assert "much of this noise" not in render_summary(summary)  # nothing was lost in it


def test_summary_of_a_run_without_a_ceiling_says_it_is_unknown():
    summary = _summary([0.6, 0.7], 0.01)
    summary["noise_ceiling"] = None
    assert render_ceiling(None) == [
        "noise ceiling: not measured (--no-noise-ceiling): how far this ranking can be "
        "trusted is unknown"
    ]
    assert "noise ceiling: not measured" in render_summary(summary)


def test_a_search_ranked_by_log_likelihood_keeps_both_scores_and_judges_in_its_own(
    ceiling_on, lut_file, tmp_path, expect_error
):
    from scipy.stats import kendalltau

    from padnas.search.ces import nondominated_ranks

    out = tmp_path / "ll"
    r = invoke(search, [*search_args(lut_file, out), "--rank-by", "log-likelihood"])
    assert r.exit_code == 0, r.output
    assert "ranked by one-shot log-likelihood" in r.stderr
    assert _json(out / "config.json")["preset"]["rank_by"] == "log_likelihood"
    stored = _json(out / "stage-2/search.json")
    assert stored["rank_by"] == "log_likelihood"
    records = stored["records"]
    assert all(0 <= x["accuracy"] <= 1 and x["log_likelihood"] <= 0 for x in records)
    F = np.array([[-x["log_likelihood"], x["latency_ms"]] for x in records])
    assert [x["rank"] for x in records] == list(nondominated_ranks(F))
    doc = json.loads(invoke(show, [out, "--json"]).stdout)
    final = doc["final"]
    assert final and all(m["one_shot_log_likelihood"] <= 0 for m in final)
    # the final models rise in log-likelihood, the score the search ranked by
    lls = [m["one_shot_log_likelihood"] for m in final]
    assert lls == sorted(lls) and len(set(lls)) == len(lls)
    block, ceiling = doc["noise_ceiling"], _json(out / CEILING)
    assert block["rank_by"] == ceiling["rank_by"] == "log_likelihood"
    ll = [x["log_likelihood"] for x in ceiling["records"]]
    twin_ll = [x["twin_log_likelihood"] for x in ceiling["records"]]
    assert block["tau"] == pytest.approx(kendalltau(ll, twin_ll).statistic)
    acc = [x["accuracy"] for x in ceiling["records"]]
    twin_acc = [x["twin_accuracy"] for x in ceiling["records"]]
    assert block["accuracy_tau"] == pytest.approx(kendalltau(acc, twin_acc).statistic)
    assert all("nats" in st and "points" not in st for st in block["steps"])
    text = (out / "summary.txt").read_text()
    assert "log-lik" in text and "by log-likelihood (by accuracy" in text
    # --resume keeps the ranking it started with; another one is refused before any write
    r = invoke(search, [*search_args(lut_file, out), "--resume"])
    assert r.exit_code == 0 and "is finished" in r.stderr, r.output
    r = invoke(search, [*search_args(lut_file, out), "--resume", "--rank-by", "accuracy"])
    expect_error(r, 2, "another configuration", "rank_by", alone=False)


def test_the_second_supernet_is_not_handed_the_held_out_images(
    ceiling_on, lut_file, tmp_path, monkeypatch
):
    """It only trains: the spare images (there for --eval-images) stay in the search's process,
    while the ceiling is still measured (on the first process's data)."""
    from padnas.data.datasets import load_data

    handed = []
    init = BackgroundTraining.__init__

    def spy(self, space, data, *args, **kwargs):
        handed.append(data)
        init(self, space, data, *args, **kwargs)

    monkeypatch.setattr(BackgroundTraining, "__init__", spy)
    out = tmp_path / "run"
    r = invoke(search, search_args(lut_file, out))
    assert r.exit_code == 0, r.output
    full = load_data("digits", TINY_PRESET.resolution, 0, TINY_PRESET.train_per_class)
    assert full.spare_per_class > 0  # the search's own data has them
    (data,) = handed
    assert data.spare is None and data.spare_per_class == 0
    assert (data.spec, len(data.train), len(data.val)) == (
        full.spec,
        len(full.train),
        len(full.val),
    )
    assert _json(out / "summary.json")["noise_ceiling"]["archs"] >= 2
