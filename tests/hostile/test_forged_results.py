"""Forged results: values read back from a run directory or the stand-alone cache are checked
like values typed by a user. Accuracies outside [0, 1], latencies that are not positive, arch
strings outside the space, stage files without their space signature or with records of the
wrong type are refused with one line naming the file (exit 2), before anything is written;
none of them reaches final.json, ``show`` or ``export``.

The run is made once per module through the real CLI (digits, two stages, the quick preset
shrunk as in search_support.py); each test forges a fresh copy of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from search_support import TINY_PRESET, invoke, search_args

from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.core.errors import exit_code
from padnas.experiments.standalone import Job, StandaloneCache
from padnas.search.ces import StoredRecordError


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _forge_line(path: Path, index: int, key: str, value) -> None:
    """Set ``key`` of the record on line ``index`` (from 0) of a JSON-lines file."""
    lines = path.read_text().splitlines()
    lines[index] = json.dumps({**json.loads(lines[index]), key: value})
    path.write_text("\n".join(lines) + "\n")


def _set(key, value):
    """A change that sets ``key`` of the first record (``key`` None: replaces the record)."""

    def change(data):
        if key is None:
            data["records"][0] = value
        else:
            data["records"][0][key] = value

    return change


# ---- a stage's search result, read back when --resume rebuilds final.json -------------------
@pytest.mark.parametrize(
    "change, words",
    [
        (_set("accuracy", 7.5), ["accuracy of", "must be a number in [0, 1], got 7.5"]),
        (_set("accuracy", -1), ["must be a number in [0, 1], got -1"]),
        (_set("latency_ms", -3), ["latency_ms of", "must be a positive number of ms, got -3"]),
        (_set("latency_ms", "fast"), ["must be a positive number of ms, got 'fast'"]),
        (_set("arch", "K9E9-garbage"), ["arch 'K9E9-garbage'"]),
        (_set("genome", [0]), ["does not encode it"]),
        (_set("rank", 40), ["the ranks do not match the objectives"]),
        (_set(None, 3), ["record 1: a record is not an object"]),
        (lambda d: d.pop("space_signature"), ["has no space_signature"]),
        (lambda d: d.update(records={"a": 1}), ["has no method, notes or records list"]),
        (lambda d: d.update(space_signature="0" * 16), ["belongs to another search space"]),
    ],
)
def test_forged_stage_result_is_refused_on_resume(
    lut_file, run_copy, change, words, expect_error, frozen
):
    # without final.json, --resume rebuilds the result from stage-2/search.json
    (run_copy / "final.json").unlink()
    _edit_json(run_copy / "stage-2" / "search.json", change)
    before = frozen(run_copy)
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    expect_error(
        res, 2, "stage-2/search.json", *words, "start a new run", alone=False, unchanged=before
    )


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("accuracy", 7.5, ["got 7.5"]),
        ("latency_ms", 0, ["must be a positive number of ms, got 0"]),
        ("arch", "garbage", ["arch 'garbage'"]),
    ],
)
def test_forged_ces_log_is_refused_on_resume(
    lut_file, run_copy, key, value, words, expect_error, frozen
):
    # the CES log is the memo a resumed search takes accuracies from without measuring them
    (run_copy / "final.json").unlink()
    _forge_line(run_copy / "stage-2" / "ces.jsonl", 1, key, value)
    before = frozen(run_copy)
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    expect_error(res, 2, "stage-2/ces.jsonl, line 2", *words, alone=False, unchanged=before)


# ---- final.json and evaluated.jsonl, read by show and export ---------------------------------
@pytest.mark.parametrize(
    "key, value, words",
    [
        ("one_shot_accuracy", 7.5, ["model 'A': one_shot_accuracy", "got 7.5"]),
        ("latency_ms", -3, ["model 'A': latency_ms", "got -3"]),
        ("arch", "K3E3", ["model 'A'", "1 layers"]),
    ],
)
def test_forged_final_is_refused_by_show_and_export(
    run_copy, tmp_path, key, value, words, expect_error, frozen
):
    _edit_json(run_copy / "final.json", lambda d: d["models"][0].update({key: value}))
    before = frozen(run_copy, tmp_path / "a.onnx")
    expect_error(invoke(show, [run_copy]), 2, "final.json", *words, unchanged=before)
    res = invoke(export, [f"{run_copy}:A", "--format", "onnx", "-o", tmp_path / "a.onnx"])
    expect_error(res, 2, "final.json", *words, unchanged=before)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("accuracy", 7.5, ["got 7.5"]),
        ("accuracy", -1, ["got -1"]),
        ("arch", "garbage", ["arch 'garbage'"]),
        ("stage", 9, ["no stage in 2..2"]),
    ],
)
def test_forged_evaluated_log_is_refused_by_show(run_copy, key, value, words, expect_error, frozen):
    _forge_line(run_copy / "evaluated.jsonl", 0, key, value)
    before = frozen(run_copy)
    res = invoke(show, [run_copy])
    expect_error(res, 2, "evaluated.jsonl, line 1", *words, "--resume", unchanged=before)


def test_forged_final_is_rebuilt_on_resume(lut_file, finished, run_copy):
    # a forged value in a result file is damage --resume repairs from the (checked) stage files
    _edit_json(run_copy / "final.json", lambda d: d["models"][0].update(one_shot_accuracy=7.5))
    _forge_line(run_copy / "evaluated.jsonl", 0, "accuracy", 7.5)
    res = invoke(search, [*search_args(lut_file, run_copy), "--resume"])
    assert res.exit_code == 0, res.output
    assert "final.json: model 'A': one_shot_accuracy" in res.stderr
    for name in ("final.json", "evaluated.jsonl", "summary.json"):
        assert (run_copy / name).read_text() == (finished / name).read_text(), name
    assert invoke(show, [run_copy]).exit_code == 0


# ---- the stand-alone training cache ----------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("test_accuracy", 7.5), ("val_accuracy", -0.5), ("test_accuracy", "high"), ("seconds", -1)],
)
def test_forged_standalone_cache_entry_is_refused(tmp_path, field, value, frozen):
    cache = StandaloneCache(tmp_path)
    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    job = Job("basic", arch, "digits", TINY_PRESET, seed=0)
    good = {"test_accuracy": 0.5, "val_accuracy": 0.5, "seconds": 1.0}
    cache.put(job, good)
    assert cache.get(job) == {"job": job.identity(), **good}
    cache.put(job, {**good, field: value})
    before = frozen(tmp_path)
    with pytest.raises(StoredRecordError) as err:
        cache.get(job)
    text = str(err.value)
    assert exit_code(err.value) == 2 and "\n" not in text
    assert str(cache.path(job)) in text and field in text and "delete it" in text
    assert before.changed() == []
