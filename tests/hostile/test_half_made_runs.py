"""Damaged and half-made run directories: something other than a file in the place of a run
file is refused before anything is written; a lost ``evaluated.jsonl`` is damage that ``show``
names and ``--resume`` rebuilds; a training pointed into a search run's folder is refused, so
it cannot replace that run's checkpoints.

The run is made once per module through the real CLI (digits, two stages, the quick preset
shrunk as in search_support.py); each test damages a fresh copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_support import ARCH
from search_support import invoke, search_args

from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.cli.training import supernet, train


def _folder_in_place_of(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "keep").write_text("not the run's")


# ---- a folder where a run file belongs -------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["final.json", "summary.txt", "summary.json", "evaluated.jsonl", "pareto.png"]
)
def test_resume_refuses_a_folder_in_place_of_a_result_file(
    lut_file, run_copy, name, expect_error, frozen
):
    # --resume would rewrite the file: it must fail before state.json (or anything) changes
    _folder_in_place_of(run_copy / name)
    before = frozen(run_copy)
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    words = [f"{name} is not a file", "move what is there"]
    expect_error(res, 2, *words, alone=False, unchanged=before)


@pytest.mark.parametrize("name", ["state.json", "config.json"])
def test_a_folder_in_place_of_the_bookkeeping_is_refused(
    lut_file, run_copy, name, expect_error, frozen
):
    # a state.json that is a folder once read as "nothing done yet" (show: CES in progress)
    _folder_in_place_of(run_copy / name)
    before = frozen(run_copy)
    words = [f"{name} is not a file", "start a new run"]
    expect_error(invoke(show, [run_copy]), 2, *words, unchanged=before)
    expect_error(invoke(show, [run_copy, "--json"]), 2, *words, unchanged=before)
    expect_error(invoke(export, [f"{run_copy}:A"]), 2, *words, unchanged=before)
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    expect_error(res, 2, *words, alone=False, unchanged=before)


# ---- a lost evaluated.jsonl ------------------------------------------------------------------
def test_lost_evaluated_log_is_named_and_rebuilt(lut_file, finished, run_copy, expect_error):
    (run_copy / "evaluated.jsonl").unlink()
    expect_error(invoke(show, [run_copy]), 2, "evaluated.jsonl is missing", "--resume")
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    assert res.exit_code == 0, res.output
    assert "evaluated.jsonl is missing from a finished run: rebuilding" in res.stderr
    for name in ("evaluated.jsonl", "final.json", "summary.json", "state.json"):
        assert (run_copy / name).read_text() == (finished / name).read_text(), name
    assert invoke(show, [run_copy]).exit_code == 0


# ---- training into a search run's folder -----------------------------------------------------
@pytest.mark.parametrize("inside", ["", "stage-1/ckpt", "stage-2/new"])
def test_training_into_a_search_run_is_refused(finished, inside, expect_error, frozen):
    out = finished / inside if inside else finished
    before = frozen(finished)
    words = ["--out", "the folder belongs to the search run in", "choose a folder outside it"]
    res = invoke(train, ["--arch", ARCH, "--data", "digits", "--out", out])
    expect_error(res, 2, *words, unchanged=before)
    res = invoke(supernet, ["train", "--data", "digits", "--out", out])
    expect_error(res, 2, *words, unchanged=before)
