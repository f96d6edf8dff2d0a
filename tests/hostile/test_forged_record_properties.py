"""Property-based forged records: one field of one record a finished run reads back --
an ``evaluated.jsonl`` line, a record of ``stage-2/search.json`` or ``stage-2/ces.jsonl``, a
model of ``final.json``, or the stage file's own fields -- set to a drawn value of any type
(accuracies outside [0, 1], negative, zero or huge latencies, garbage and mutated arch strings,
wrong genomes, ranks and stages, lists, objects, null, NaN) or dropped, or the whole record
replaced. Reading the run back (:class:`padnas.run.rundir.LoadedRun`: ``final``, ``evaluated``,
``check_stages``, as ``show``, ``export`` and ``--resume`` do) either refuses with the project's
usage error or returns records that are all valid: no forged value gets through, and nothing but
a usage error is ever raised. ``padnas show`` on the forged run answers or refuses in one line.

The run is made once per module through the real CLI (hostile/conftest.py); each example forges
a copy of its record files (no checkpoints: nothing here reads them)."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hostile_support import ARCH, HOSTILE, text_mutations
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from search_support import invoke

from padnas.cli.runs import show
from padnas.core.errors import UsageError
from padnas.run.rundir import LoadedRun
from padnas.space import SearchSpace

#: values a forger writes: out-of-range numbers, wrong types, strings that look like archs
FORGED = st.one_of(
    st.sampled_from(
        [7.5, -1, -3.0, 0, 0.0, -0.0, 1.0000001, 1e308, 2**63, True, False, None, "", "fast"]
    ),
    st.sampled_from([[], {}, [0], {"accuracy": 0.5}, "K9E9-garbage", "ID", ARCH, "NaN"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.text(HOSTILE, max_size=30),
    text_mutations(ARCH),
    st.lists(st.integers(-2, 9), max_size=25),
)
RECORD_KEYS = ["arch", "genome", "accuracy", "latency_ms", "generation", "rank"]
MODEL_KEYS = ["label", "arch", "one_shot_accuracy", "latency_ms"]
TARGETS = {  # file -> the fields of one record that may be forged (None: the whole record)
    "evaluated.jsonl": [*RECORD_KEYS, "stage", None],
    "stage-2/ces.jsonl": [*RECORD_KEYS, None],
    "stage-2/search.json": [*RECORD_KEYS, None, "@space_signature", "@records", "@method"],
    "final.json": [*MODEL_KEYS, None, "@models", "@space"],
}
DROP = object()


def _forge(draw, run: Path) -> str:
    """One drawn forgery of one record file of ``run``; returns what it did."""
    name = draw(st.sampled_from(sorted(TARGETS)), label="file")
    key = draw(st.sampled_from(TARGETS[name]), label="field")
    value = draw(st.one_of(FORGED, st.just(DROP)), label="value")
    path = run / name
    if name.endswith(".jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        i = draw(st.integers(0, len(rows) - 1), label="line")
        _set(rows, i, key, value)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        data = json.loads(path.read_text())
        if key is not None and key.startswith("@"):  # a field of the file itself
            _set_field(data, key[1:], value)
        else:
            rows = data["records" if "records" in data else "models"]
            _set(rows, draw(st.integers(0, len(rows) - 1), label="record"), key, value)
        path.write_text(json.dumps(data))  # NaN and Infinity come out as their literals
    return f"{name}: {key} = {'dropped' if value is DROP else repr(value)[:60]}"


def _set(rows: list, i: int, key, value) -> None:
    if key is None:
        rows[i] = None if value is DROP else value
    else:
        _set_field(rows[i], key, value)


def _set_field(data: dict, key: str, value) -> None:
    if value is DROP:
        data.pop(key, None)
    else:
        data[key] = value


# ---- what a record that got through must be ------------------------------------------------
def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _valid(record: dict, space: SearchSpace, accuracy: str) -> None:
    """A record read back as valid holds no forged value (checked independently here)."""
    assert isinstance(record, dict), record
    acc, ms = record.get(accuracy), record.get("latency_ms")
    assert _number(acc) and 0.0 <= acc <= 1.0, record
    assert _number(ms) and ms > 0, record
    assert isinstance(record.get("arch"), str), record
    space.validate(record["arch"])  # raises for an arch outside the space


def _space(run: Path, rel: str) -> SearchSpace:
    return SearchSpace.from_dict(json.loads((run / rel).read_text()))


def _read_back(run: Path) -> None:
    """Each reader refuses with a usage error or returns only valid records."""
    loaded = LoadedRun(run)
    stage_space = _space(run, "stage-1/space.json")  # what stage 2 searched
    for reader in ("final", "evaluated", "check_stages"):
        try:
            got = getattr(loaded, reader)()
        except UsageError as exc:
            note(f"{reader}: refused: {exc}")
            assert "\n" not in str(exc)
            continue
        if reader == "final":
            final_space = SearchSpace.from_dict(got["space"])
            for m in got["models"]:
                _valid(m, final_space, "one_shot_accuracy")
        elif reader == "evaluated":
            for row in got:
                _valid(row, stage_space, "accuracy")
        else:
            rows = json.loads((run / "stage-2/search.json").read_text())["records"]
            log = (run / "stage-2/ces.jsonl").read_text().splitlines()
            for row in [*rows, *(json.loads(line) for line in log if line.strip())]:
                _valid(row, stage_space, "accuracy")


BOUNDED = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _records_only(src, names):
    return [n for n in names if n == "ckpt" or n.endswith((".pt", ".png"))]


def _check(data, finished, expect_error, frozen) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(finished, run, ignore=_records_only)
        note(_forge(data.draw, run))
        _read_back(run)
        before = frozen(run)
        r = invoke(show, [run])
        assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
        if r.exit_code != 0:
            expect_error(r, 2, unchanged=before)


@BOUNDED
@given(data=st.data())
def test_forged_records_are_refused_or_valid(data, finished, expect_error, frozen):
    _check(data, finished, expect_error, frozen)


@pytest.mark.slow
@settings(BOUNDED, max_examples=400)
@given(data=st.data())
def test_many_forged_records_are_refused_or_valid(data, finished, expect_error, frozen):
    _check(data, finished, expect_error, frozen)
