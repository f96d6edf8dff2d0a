"""The measurement store: append-only, latest record wins, a torn last line skipped with a note
(and cut off by the next append), any other damaged line refused naming the file and line, and an
interrupted profile resumes without re-measuring or losing anything."""

from __future__ import annotations

import json
import re

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

    def measure_variant(self, variant, precision="fp32"):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().measure_variant(variant, precision)


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
    notes = []
    back = MeasurementStore("dev", tmp_path, note=notes.append).records()
    assert set(back) == {"k1", "k2"} and back["k1"]["ms"] == 2.0
    assert len(notes) == 1 and f"{store.path}:4: skipped a half-written last line" in notes[0]

    lines = store.path.read_text().splitlines()
    lines.insert(1, "garbage")
    store.path.write_text("\n".join(lines) + "\n" + json.dumps({"key": "k4", "ms": 1}) + "\n")
    with pytest.raises(StoreError, match=r"dev.jsonl:2: corrupt record: not valid JSON .*delete"):
        MeasurementStore("dev", tmp_path).records()
    with pytest.raises(StoreError):
        MeasurementStore("../evil", tmp_path)


def _stats(ms: float) -> LatencyStats:
    return LatencyStats(ms, ms * 0.9, ms * 1.1, 10, "measured")


def test_append_after_a_torn_line_cuts_it_off(tmp_path):
    store = MeasurementStore("dev", tmp_path, note=lambda m: None)
    store.add("k1", _stats(1.0))
    with open(store.path, "a") as fh:
        fh.write('{"key": "k2", "ms"')  # killed mid-record
    resumed = MeasurementStore("dev", tmp_path, note=lambda m: None)
    resumed.add("k2", _stats(2.0))  # the resumed job measures k2 again
    assert store.path.read_text().count("\n") == 2  # the fragment is gone, not in the middle
    notes = []
    back = MeasurementStore("dev", tmp_path, note=notes.append).records()
    assert {k: r["ms"] for k, r in back.items()} == {"k1": 1.0, "k2": 2.0} and notes == []


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    store = MeasurementStore("dev", tmp_path)
    store.add("k1", _stats(1.0))
    store.path.write_text(store.path.read_text().rstrip("\n"))
    MeasurementStore("dev", tmp_path).add("k2", _stats(2.0))
    assert set(MeasurementStore("dev", tmp_path).records()) == {"k1", "k2"}


GOOD = {"key": "k9", "ms": 1.5, "p10": 1.4, "p90": 1.6, "n": 10, "source": "measured"}


@pytest.mark.parametrize(
    "line, words",
    [
        ("[1, 2]", "a record must be a JSON object"),
        (json.dumps({**GOOD, "key": 7}), "'key' must be a non-empty string"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "key"}), "'key' must be"),
        (json.dumps({**GOOD, "ms": -1}), "ms=-1 is not a finite non-negative number"),
        (json.dumps({**GOOD, "ms": "fast"}), "ms='fast'"),
        (json.dumps({**GOOD, "p90": None}), "p90=None"),
        (json.dumps({**GOOD, "n": 2.5}), "n=2.5 must be a non-negative integer"),
        (json.dumps({**GOOD, "source": "guess"}), "source 'guess' is not one of"),
        ('{"key": "k9", "ms": NaN}', "NaN is not a JSON number"),
        ('{"key": "k9", "key": "k8"}', "key 'key' appears twice"),
    ],
)
@pytest.mark.parametrize("last", [True, False], ids=["last-line", "middle"])
def test_a_damaged_line_is_refused_naming_file_and_line(tmp_path, line, words, last):
    """Damage other than a torn write -- a terminated line with the wrong shape or values --
    is refused, never skipped, wherever it is (also as the last line)."""
    store = MeasurementStore("dev", tmp_path)
    for k in ("k1", "k2"):
        store.add(k, _stats(1.0))
    lines = store.path.read_text().splitlines()
    lines.insert(len(lines) if last else 1, line)
    store.path.write_text("\n".join(lines) + "\n")
    before = store.path.read_bytes()
    where = f"dev.jsonl:{3 if last else 2}: "
    with pytest.raises(StoreError, match=re.escape(where)) as err:
        MeasurementStore("dev", tmp_path).records()
    assert words in str(err.value) and "delete the line" in str(err.value)
    assert store.path.read_bytes() == before


def test_profile_resumes_after_a_torn_line_with_a_note(latency_cli, padnas_cache):
    """The whole story through the CLI: a profile killed mid-record resumes, says so on stderr,
    re-measures only the torn variant and leaves a store that reads cleanly."""
    r = latency_cli("profile", "--device", "mock", "--space", "basic", "-q", "--limit", "5")
    assert r.exit_code == 0, r.output
    store = padnas_cache / "measurements" / "mock.jsonl"
    lines = store.read_text().splitlines()
    store.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    r = latency_cli("profile", "--device", "mock", "--space", "basic", "-q")
    assert r.exit_code == 0, r.output
    assert "note: " in r.stderr and "mock.jsonl:5: skipped a half-written last line" in r.stderr
    assert "71 variants, 4 already stored, 67 measured" in r.stdout, r.stdout
    assert len(MeasurementStore("mock", padnas_cache / "measurements").records()) == 71
    assert store.read_text().count("\n") == 71 and store.read_text().endswith("\n")
