"""Guarded measurement: batches bracketed by the reference op, re-measured when it drifts and
refused (nothing stored) when it keeps drifting; stored measurements of another set-up are never
mixed into one table, and batches whose reference moved are rescaled to the common one."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latency.backends.base import Backend, LatencyStats
from latency.export.pool import ExportResult
from latency.profiling.conditions import ConditionsError, check_quiet, fingerprint, identity
from latency.profiling.guard import (
    GUARD_ENV,
    Guard,
    GuardSettings,
    reference_ratio,
)
from latency.profiling.loop import MeasureLoop, measure_bar
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore


class Scripted(Backend):
    """A device whose reference op takes the next time of ``reference_ms`` and every other file
    1 ms; it times no model, so the guard's decisions are exact."""

    name = "scripted"

    def __init__(self, reference: Path, reference_ms: list[float]) -> None:
        self.reference, self.script = reference, list(reference_ms)
        self.timed: list[str] = []

    def _measure(self, path: Path) -> LatencyStats:
        if path == self.reference:
            ms = self.script.pop(0)
            return LatencyStats(ms, ms, ms, 1, "measured")
        self.timed.append(path.name)
        return LatencyStats(1.0, 1.0, 1.0, 1, "measured")

    def describe(self) -> dict:
        return {"name": self.name, "threads": 1}


@pytest.fixture
def files(tmp_path):
    paths = []
    for name in ("ref", "a", "b", "c"):
        p = tmp_path / f"{name}.tflite"
        p.write_bytes(b"x")
        paths.append(p)
    return paths


def _loop(backend, ref, tmp_path, notes, **settings):
    store = MeasurementStore("scripted", root=tmp_path / "store")
    settings = GuardSettings(**{"reference_runs": 1, **settings})
    guard = Guard(backend, ref, settings, check_load=False, note=notes.append)
    bar = measure_bar(3, "test", False)
    return MeasureLoop(backend, store, ProfileReport("scripted", 3), bar, guard=guard), store


def _results(paths):
    return [ExportResult(p.stem, p, 0.0, True) for p in paths]


def test_a_steady_reference_accepts_the_batch_and_records_it(files, tmp_path):
    ref, *blocks = files
    dev = Scripted(ref, [2.0, 2.02])  # 1 % drift: within 3 %
    notes: list[str] = []
    loop, store = _loop(dev, ref, tmp_path, notes, batch_size=8)
    assert set(loop.run(_results(blocks))) == {"a", "b", "c"}
    assert notes == [] and dev.timed == ["a.tflite", "b.tflite", "c.tflite"]
    rec = store.get("b")
    assert rec["reference_ms"] == pytest.approx(2.01) and rec["reference_drift"] == pytest.approx(
        0.01
    )
    assert rec["conditions"] == identity(fingerprint(dev))
    assert store.conditions()[rec["conditions"]]["device"] == "scripted"


def test_a_drift_measures_the_batch_again(files, tmp_path):
    ref, *blocks = files
    dev = Scripted(ref, [2.0, 2.2, 2.2, 2.21])  # 10 % drift, then steady
    notes: list[str] = []
    loop, store = _loop(dev, ref, tmp_path, notes, batch_size=8)
    loop.run(_results(blocks))
    assert len(notes) == 1 and "10.0%" in notes[0] and "again" in notes[0]
    assert dev.timed == ["a.tflite", "b.tflite", "c.tflite"] * 2
    assert store.get("a")["reference_ms"] == pytest.approx(2.205)


def test_a_reference_that_keeps_drifting_refuses_and_stores_nothing(files, tmp_path):
    ref, *blocks = files
    dev = Scripted(ref, [2.0, 2.2, 2.0, 1.8, 2.0, 2.1])
    notes: list[str] = []
    loop, store = _loop(dev, ref, tmp_path, notes, batch_size=8, retries=2)
    with pytest.raises(ConditionsError, match=r"drifted 10\.0%, 10\.0%, 5\.0% across 3 tries"):
        loop.run(_results(blocks))
    assert len(store) == 0 and not store.path.exists()


def test_the_reference_time_is_the_fastest_of_its_runs(files, tmp_path):
    ref, *blocks = files
    dev = Scripted(ref, [2.3, 2.0, 2.1, 2.05, 2.2, 2.02])  # min 2.0 before, 2.02 after
    notes: list[str] = []
    loop, store = _loop(dev, ref, tmp_path, notes, batch_size=8, reference_runs=3)
    loop.run(_results(blocks))
    assert notes == [] and store.get("a")["reference_ms"] == pytest.approx(2.01)


def test_batches_are_bracketed_separately(files, tmp_path):
    ref, *blocks = files
    dev = Scripted(ref, [2.0, 2.0, 3.0, 3.0])  # two batches, the second on a slower clock
    loop, store = _loop(dev, ref, tmp_path, [], batch_size=2)
    loop.run(_results(blocks))
    assert store.get("a")["reference_ms"] == 2.0 and store.get("c")["reference_ms"] == 3.0
    # a table from this store brings c to the common reference (the median, 2.0)
    check = reference_ratio(list(store.records().values()))
    assert check["rescaled"] == {"c": pytest.approx(2.0 / 3.0)}
    assert check["spread"] == pytest.approx(0.5)


def test_measurements_of_another_setup_are_never_mixed():
    records = [
        {"key": "a", "ms": 1.0, "conditions": "aaaa", "reference_ms": 2.0},
        {"key": "b", "ms": 1.0, "conditions": "bbbb", "reference_ms": 2.0},
    ]
    with pytest.raises(ConditionsError, match="2 different set-ups"):
        reference_ratio(records)


def test_unguarded_records_are_named_and_left_alone():
    records = [
        {"key": "a", "ms": 1.0, "conditions": "aaaa", "reference_ms": 2.0},
        {"key": "old", "ms": 1.0},
    ]
    check = reference_ratio(records)
    assert check["unguarded"] == ["old"] and check["rescaled"] == {}


def test_guard_settings_from_profile_and_environment(monkeypatch):
    monkeypatch.delenv(GUARD_ENV, raising=False)
    assert GuardSettings.from_profile({"guard": {"tolerance": 0.05}}).tolerance == 0.05
    monkeypatch.setenv(GUARD_ENV, json.dumps({"batch_size": 4}))
    s = GuardSettings.from_profile({"guard": {"tolerance": 0.05}})
    assert (s.tolerance, s.batch_size) == (0.05, 4)
    with pytest.raises(ConditionsError, match="unknown settings"):
        GuardSettings.from_profile({"guard": {"tolerence": 0.05}})
    with pytest.raises(ConditionsError, match="0 < tolerance < 1"):
        GuardSettings.from_profile({"guard": {"tolerance": 3}})
    monkeypatch.setenv(GUARD_ENV, "[1]")
    with pytest.raises(ConditionsError, match="JSON object"):
        GuardSettings.from_profile(None)


@contextlib.contextmanager
def foreign_busy_loop():
    """A busy-loop process that is not a child of this one (its shell parent exits at once), as
    another user's job would be: the quiet check ignores this process's own children."""
    out = subprocess.run(
        [
            "sh",
            "-c",
            f"{shlex.quote(sys.executable)} -c 'while True: pass' >/dev/null 2>&1 & echo $!",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(out.stdout.strip())
    try:
        time.sleep(1.0)
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_busy_host_is_refused_while_a_busy_loop_runs():
    """A real busy-loop process on this machine: the quiet check refuses, naming the load."""
    with foreign_busy_loop(), pytest.raises(ConditionsError, match=r"machine is busy: other"):
        check_quiet(limit_cores=0.5, interval_s=1.0)


def _guarded_store(tmp_path, conditions_of, reference_of) -> MeasurementStore:
    """A store of every basic-space block at 32 px, each record with its batch's guard fields."""
    from latency.variants import space_variants
    from padnas.space import get_space

    store = MeasurementStore("guarded", root=tmp_path / "guarded")
    for i, v in enumerate(space_variants(get_space("basic"), 32)):
        stats = LatencyStats(1.0 + i / 100, 1.0, 1.1, 5, "measured")
        meta = {"conditions": conditions_of(i), "reference_ms": reference_of(i)}
        store.add(v.key, stats, **meta)
    return store


def test_a_table_brings_drifted_batches_to_the_common_reference(tmp_path):
    from latency.profiling.profile import build_lut
    from padnas.space import get_space

    store = _guarded_store(tmp_path, lambda i: "c1", lambda i: 3.0 if i < 3 else 2.0)
    keys = list(store.records())
    lut = build_lut(get_space("basic"), store, {"name": "guarded"}, resolution=32)
    assert lut.entries[keys[0]]["ms"] == pytest.approx(1.0 * 2.0 / 3.0)
    assert lut.entries[keys[5]]["ms"] == pytest.approx(1.05)  # on the common reference: as is
    prov = lut.provenance
    assert prov["conditions"] == "c1" and prov["reference_ms"] == 2.0
    assert prov["rescaled_to_reference"] == 3 and prov["reference_spread"] == pytest.approx(0.5)


def test_a_table_refuses_measurements_of_two_setups(tmp_path):
    from latency.profiling.profile import build_lut
    from padnas.space import get_space

    store = _guarded_store(tmp_path, lambda i: "c1" if i else "c2", lambda i: 2.0)
    with pytest.raises(ConditionsError, match="2 different set-ups"):
        build_lut(get_space("basic"), store, {"name": "guarded"}, resolution=32)


@pytest.mark.slow
def test_profile_on_a_busy_host_is_refused_and_stores_nothing(
    latency_cli, padnas_cache, monkeypatch
):
    """The real command on the host while a busy loop runs: exit 1, one line, an empty store."""
    monkeypatch.delenv(GUARD_ENV, raising=False)
    from click.testing import CliRunner

    from latency.cli.app import main

    args = ["profile", "--device", "host", "--space", "basic", "--resolution", "32", "--limit", "2"]
    with foreign_busy_loop():
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "error: the machine is busy: other processes keep" in result.output
    store = padnas_cache / "measurements" / "host.jsonl"
    assert not store.exists() or store.read_text() == ""
