"""The measurement store: append-only, latest record wins, torn last line ignored, and an
interrupted profile resumes without re-measuring or losing anything."""

from __future__ import annotations

import json

import pytest

from latency.backends.base import LatencyStats
from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.profiling.profile import profile_space
from latency.profiling.store import MeasurementStore, StoreError
from latency.variants import space_variants
from padnas.space import get_space


class InterruptingMock(MockBackend):
    """The mock device, but Ctrl-C arrives during the ``stop_at``-th measurement."""

    def __init__(self, stop_at: int | None) -> None:
        super().__init__(load_profile("mock"))
        self.stop_at, self.calls = stop_at, 0

    def measure_variant(self, variant):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().measure_variant(variant)


def test_interrupted_profile_resumes(tmp_path):
    space = get_space("basic")
    store = MeasurementStore("mock", tmp_path)
    with pytest.raises(KeyboardInterrupt):
        profile_space(space, InterruptingMock(31), store, progress=False)
    kept = MeasurementStore("mock", tmp_path).records()
    assert len(kept) == 30  # everything measured before the interrupt is on disk

    resumed = InterruptingMock(None)
    report = profile_space(space, resumed, MeasurementStore("mock", tmp_path), progress=False)
    assert (report.reused, report.measured, resumed.calls) == (30, 41, 41)
    final = MeasurementStore("mock", tmp_path).records()
    assert set(final) == {v.key for v in space_variants(space)}
    assert all(final[k] == kept[k] for k in kept)  # nothing re-measured

    again = InterruptingMock(None)
    report = profile_space(space, again, MeasurementStore("mock", tmp_path), progress=False)
    assert (report.measured, again.calls) == (0, 0)
    forced = InterruptingMock(None)
    profile_space(space, forced, MeasurementStore("mock", tmp_path), force=True, progress=False)
    assert forced.calls == 71
    lines = (tmp_path / "mock.jsonl").read_text().splitlines()
    assert len(lines) == 71 + 71  # history kept, latest wins


def test_latest_wins_and_torn_line(tmp_path):
    store = MeasurementStore("dev", tmp_path)
    store.add("k1", LatencyStats(1.0, 0.9, 1.1, 10, "measured"))
    store.add("k1", LatencyStats(2.0, 1.9, 2.1, 10, "measured"))
    store.add("k2", LatencyStats(3.0, 2.9, 3.1, 10, "measured"))
    with open(store.path, "a") as fh:
        fh.write('{"key": "k3", "ms": 4.')  # a writer killed mid-line
    back = MeasurementStore("dev", tmp_path).records()
    assert set(back) == {"k1", "k2"} and back["k1"]["ms"] == 2.0

    lines = store.path.read_text().splitlines()
    lines.insert(1, "garbage")
    store.path.write_text("\n".join(lines) + "\n" + json.dumps({"key": "k4", "ms": 1}) + "\n")
    with pytest.raises(StoreError, match="corrupt record"):
        MeasurementStore("dev", tmp_path).records()
    with pytest.raises(StoreError):
        MeasurementStore("../evil", tmp_path)
