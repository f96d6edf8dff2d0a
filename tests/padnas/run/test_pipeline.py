"""The progressive pipeline (Algorithm 1) end to end on tiny settings: stages 2/3/4, kill and
resume anywhere, bad input before training, and the run directory it leaves."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from search_support import mock_lut, run_pipeline, tiny_data, tiny_plan

from latency.lut.table import LutError
from padnas.core.errors import exit_code
from padnas.data.datasets import DataBundle
from padnas.run.pipeline import Hooks
from padnas.run.plan import plan_search
from padnas.run.rundir import RunDir, RunDirError
from padnas.run.selection import final_notes, select_final
from padnas.run.settings import PRESETS, stage_schedule
from padnas.search.window import WindowError
from padnas.space import get_space
from padnas.train.checkpoint import load_checkpoint
from padnas.train.config import Stage


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> DataBundle:
    return tiny_data()


def _plan(lut_file, stages=4, **kw):
    """A tiny plan whose first supernet stage runs two epochs (the later ones one)."""
    return tiny_plan(lut_file, stages, epochs=(2, 1, 1), **kw)


def _result(out: Path) -> dict:
    final = json.loads((out / "final.json").read_text())
    evaluated = (out / "evaluated.jsonl").read_text()
    last = sorted(out.glob("stage-*/ckpt/checkpoint.pt"))[-1]
    weights = load_checkpoint(last)["model"]
    return {"final": final, "evaluated": evaluated, "weights": weights}


def _same(a: dict, b: dict) -> None:
    assert a["final"] == b["final"]
    assert a["evaluated"] == b["evaluated"]
    assert a["weights"].keys() == b["weights"].keys()
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), k


@pytest.fixture(scope="module")
def reference(lut_file, data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "ref"
    summary = run_pipeline(_plan(lut_file), data, out)
    return out, summary


def test_stage_schedule_keeps_total_epochs():
    paper = PRESETS["paper"].train
    assert stage_schedule(paper, 4) == [Stage(120, 0.5), Stage(80, 0.1), Stage(40, 0.1)]
    assert stage_schedule(paper, 2) == [Stage(240, 0.5)]
    assert stage_schedule(paper, 3) == [Stage(120, 0.5), Stage(120, 0.1)]
    five = stage_schedule(paper, 5)
    assert len(five) == 4 and sum(s.epochs for s in five) == 240
    assert PRESETS["paper"].ces.pop_size == 64 and PRESETS["paper"].ces.generations == 40


@pytest.mark.slow
def test_pad_nas_run_directory(reference, lut_file):
    out, summary = reference
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "PAD-NAS" and cfg["stages"] == 4
    # two prunes (stages 2, 3), three searches (stages 2, 3, 4), three spaces (stages 1-3)
    assert sorted(p.parent.name for p in out.glob("stage-*/distribution.json")) == [
        "stage-2",
        "stage-3",
    ]
    assert sorted(p.parent.name for p in out.glob("stage-*/search.json")) == [
        "stage-2",
        "stage-3",
        "stage-4",
    ]
    spaces = [json.loads((out / f"stage-{k}/space.json").read_text()) for k in (1, 2, 3)]
    sizes = [int(s["size"]) for s in spaces]
    assert sizes[0] >= sizes[1] >= sizes[2] and sizes[0] > sizes[2]
    for a, b in itertools.pairwise(spaces):
        for ops_a, ops_b in zip(a["layer_ops"], b["layer_ops"], strict=True):
            assert ops_b and set(ops_b) <= set(ops_a)
    # every evaluated arch: in its stage's space, inside the window, ranked
    plan = _plan(lut_file)
    lo, hi = plan.settings.window.lo, plan.settings.window.hi
    rows = [json.loads(line) for line in (out / "evaluated.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in rows} == {2, 3, 4}
    for r in rows:
        space_k = get_space("basic").with_layer_ops(spaces[r["stage"] - 2]["layer_ops"])
        space_k.validate(r["arch"])
        assert lo <= r["latency_ms"] <= hi and r["rank"] >= 1
    final = json.loads((out / "final.json").read_text())
    last = json.loads((out / "stage-4/search.json").read_text())["records"]
    # the front and the models' rise are in the score the search ranked by
    by = json.loads((out / "config.json").read_text())["preset"]["rank_by"]
    front = {(r["latency_ms"], r[by]) for r in last if r["rank"] == 1}
    got = [(m["latency_ms"], m[f"one_shot_{by}"]) for m in final["models"]]
    assert set(got) <= front and len(got) == min(3, len(front))  # spread along the front
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(got))
    last_space = get_space("basic").with_layer_ops(spaces[2]["layer_ops"])
    for m in final["models"]:
        last_space.validate(m["arch"])
        assert lo <= m["latency_ms"] <= hi
        assert m["latency_source"] == "mock" and m["macs"] > 0 and m["params"] > 0
    for name in ("pareto.png", "op_heatmap.png", "space_size.png", "summary.txt"):
        assert (out / name).stat().st_size > 0
    assert "PAD-NAS" in (out / "summary.txt").read_text()
    assert summary["stages"][1]["pruned_ops"] > 0


def test_helper_processes_change_nothing_but_the_time(reference, lut_file, data, tmp_path):
    """The same search with its one-shot evaluations shared with two helper processes, killed
    after a CES generation of stage 3 and resumed: the same evaluations, final models and
    weights; the helpers end with the run, killed or not; the summary says how the scores were
    measured."""
    ref_out, ref_summary = reference
    out = tmp_path / "spread"

    def on_gen(k, gen):
        if (k, gen) == (3, 1):
            raise Kill

    with pytest.raises(Kill):
        run_pipeline(
            _plan(lut_file), data, out, hooks=Hooks(on_generation=on_gen), eval_processes=3
        )
    assert multiprocessing.active_children() == []
    summary = run_pipeline(_plan(lut_file), data, out, resume=True, eval_processes=3)
    assert multiprocessing.active_children() == []
    _same(_result(ref_out), _result(out))
    assert [s.get("eval_processes") for s in summary["stages"]] == [None, 3, 3, 3]
    assert [s.get("eval_processes") for s in ref_summary["stages"]] == [None, 1, 1, 1]
    assert "; one-shot evaluation in 3 processes" in (out / "summary.txt").read_text()
    assert "one-shot evaluation in" not in (ref_out / "summary.txt").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stages, name, prunes", [(2, "I-Supernet", 0), (3, "P-Supernet", 1)])
def test_stage_variants(lut_file, data, tmp_path, stages, name, prunes):
    plan = _plan(lut_file, stages=stages)
    summary = run_pipeline(plan, data, tmp_path / "run")
    assert summary["method"] == name
    assert len(list((tmp_path / "run").glob("stage-*/distribution.json"))) == prunes
    assert len(list((tmp_path / "run").glob("stage-*/search.json"))) == stages - 1
    assert len(list((tmp_path / "run").glob("stage-*/space.json"))) == stages - 1
    # same total training epochs as the 4-stage run
    assert sum(s.epochs for s in plan.settings.schedule) == 4


class Kill(Exception):
    pass


@pytest.mark.slow
def test_kill_anywhere_and_resume_is_identical(reference, lut_file, data, tmp_path):
    ref_out, _ = reference
    out = tmp_path / "killed"
    plan = _plan(lut_file)
    kills = [
        ("train", 1, 4),  # mid-epoch 2 of the initial training
        ("ces", 2, 1),  # after the first CES generation of stage 2
        ("train", 2, 2),  # finetuning the pruned supernet
        ("ces", 4, 1),  # the final search
    ]
    for kind, stage, at in kills:

        def on_step(k, step, loss, kind=kind, stage=stage, at=at):
            if kind == "train" and k == stage and step == at:
                raise Kill

        def on_gen(k, gen, kind=kind, stage=stage, at=at):
            if kind == "ces" and k == stage and gen == at:
                raise Kill

        with pytest.raises(Kill):
            run_pipeline(plan, data, out, resume=out.exists(), hooks=Hooks(on_step, on_gen))
        assert not (out / "final.json").exists()
    run_pipeline(plan, data, out, resume=True)
    _same(_result(out), _result(ref_out))


@pytest.mark.slow
def test_resume_refuses_another_config(reference, lut_file, data):
    out, _ = reference
    plan = _plan(lut_file, seed=7)
    with pytest.raises(RunDirError, match=r"another configuration.*seed") as err:
        RunDir.open(out, plan.settings.to_config(), resume=True)
    assert exit_code(err.value) == 2
    with pytest.raises(RunDirError, match="not empty"):
        RunDir.open(out, _plan(lut_file).settings.to_config(), resume=False)


def test_window_nobody_meets_fails_before_training(lut_file):
    with pytest.raises(WindowError, match=r"reaches \d+\.\d+\.\.\d+\.\d+ ms") as err:
        plan_search(str(lut_file), window="500:600")
    assert exit_code(err.value) == 2
    with pytest.raises(WindowError, match="reaches"):
        plan_search(str(lut_file), window="18.0:18.01")


def test_lut_for_another_space_or_resolution(lut_file):
    with pytest.raises(LutError, match="large"):
        plan_search(str(lut_file), family="large")
    with pytest.raises(LutError, match="160"):
        plan_search(str(lut_file), resolution=160)


def test_default_window_rules(lut_file, tmp_path):
    plan = plan_search(str(lut_file))
    assert "percentile" in plan.settings.window_rule
    assert any("mock" in w for w in plan.warnings)
    pixel = tmp_path / "pixel3.json"
    mock_lut("basic", device="Pixel 3").save(pixel)
    plan = plan_search(str(pixel))
    assert (plan.settings.window.lo, plan.settings.window.hi) == (60.0, 70.0)
    assert "Pixel 3" in plan.settings.window_rule


def _front_result(points, window=(60, 70)):
    """A search result whose ranks come from the CES's own non-dominated sorting."""
    from padnas.search.ces import Evaluated, SearchResult, ranked
    from padnas.search.window import LatencyWindow

    recs = [Evaluated(a, (0,), acc, ms, 1) for a, acc, ms in points]
    return SearchResult("ces", get_space("basic"), LatencyWindow(*window), ranked(recs))


def test_select_final_takes_front_members_spread_by_latency():
    res = _front_result(
        [
            ("a", 0.5, 60.5),
            ("b", 0.7, 61.0),  # on the front, but the picks lie nearer the equal latency steps
            ("f", 0.6, 63.0),  # dominated by b: never returned
            ("c", 0.8, 65.0),
            ("d", 0.9, 69.9),
            ("e", 0.85, 70.0),  # dominated by d
        ]
    )
    assert [r.arch for r in res.front()] == ["a", "b", "c", "d"]
    # fastest, the member nearest the middle latency (65.2 ms), most accurate
    assert [r.arch for r in select_final(res, 3)] == ["a", "c", "d"]
    assert [r.arch for r in select_final(res, 2)] == ["a", "d"]
    assert [r.arch for r in select_final(res, 5)] == ["a", "b", "c", "d"]
    assert final_notes(res, select_final(res, 5), 5) == [
        "the Pareto front holds 4 distinct architecture(s), fewer than the 5 models asked for"
    ]
    assert final_notes(res, select_final(res, 3), 3) == []


def test_select_final_front_in_part_of_the_window():
    """The seed-0 main job's shape: a 40-100 ms window whose front lies at 60-74 ms. Fixed
    window thirds returned one model here; spreading along the front returns three."""
    pts = [
        (f"x{i}", acc, ms)
        for i, (acc, ms) in enumerate(
            [
                (0.701, 60.1),
                (0.711, 61.5),
                (0.725, 61.9),
                (0.728, 64.0),
                (0.736, 66.1),
                (0.737, 68.8),
                (0.743, 71.6),
                (0.745, 73.9),
                (0.70, 90.0),
            ]
        )
    ]
    res = _front_result(pts, window=(40, 100))
    picks = select_final(res, 3)
    assert [(r.latency_ms, r.accuracy) for r in picks] == [
        (60.1, 0.701),
        (66.1, 0.736),
        (73.9, 0.745),
    ]
    assert final_notes(res, picks, 3) == [
        "the Pareto front spans 60.10-73.90 ms of the 40.00-100.00 ms window: no faster "
        "architecture was found, and the slower ones were no more accurate"
    ]


def test_select_final_counts_equal_points_once():
    res = _front_result([("b", 0.8, 65.0), ("a", 0.8, 65.0), ("c", 0.9, 69.0)])
    assert [r.arch for r in select_final(res, 3)] == ["a", "c"]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(
    points=st.lists(st.tuples(st.integers(0, 40), st.integers(600, 700)), min_size=1, max_size=30),
    n=st.integers(1, 6),
)
def test_select_final_properties(points, n):
    """Whatever the evaluated set: only front members, strictly faster-to-more-accurate, the
    fastest and the most accurate among them, and min(n, distinct front points) of them."""
    res = _front_result([(f"x{i}", acc / 1000, 60 + ms / 4) for i, (ms, acc) in enumerate(points)])
    picks = select_final(res, n)
    front = {(r.latency_ms, r.accuracy) for r in res.front()}
    got = [(r.latency_ms, r.accuracy) for r in picks]
    assert set(got) <= front and len(set(got)) == len(got) == min(n, len(front))
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(got))
    assert got[0] == min(front)
    if n > 1:
        assert got[-1] == max(front, key=lambda p: (p[1], -p[0]))
