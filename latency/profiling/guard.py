"""Guarded measurement: every batch is bracketed by a fixed reference op and checked.

Before a batch of files is timed, the guard checks that the host is quiet (on the host only:
:func:`latency.profiling.conditions.check_quiet`) and times the reference op; after the batch it
times the reference op again. If the two reference times differ by more than the tolerance
(3 % by default), something changed while the batch ran (another job, a clock change, thermal
throttling), so the batch is measured again, and refused after ``retries`` more tries. Nothing of
a refused batch is stored. Every accepted batch carries its conditions (fingerprint and identity)
and its reference time, so a table built from measurements of different days can be checked or
rescaled against one reference instead of being mixed silently (:func:`reference_ratio`).

The reference op is one inverted-bottleneck block (``REFERENCE_KEY``, ~0.8 ms on a 2-core Xeon
host with XNNPACK), exported and checked like any op variant; its time is the fastest of
``reference_runs`` measurements. On that host, single timings of one block spread by 4-9 % while
the fastest of three, taken 2 s apart, differed by 0.1-2.7 % (8 pairs, idle machine), which is
what a 3 % tolerance needs.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from latency.backends.base import Backend, LatencyStats
from latency.profiling.conditions import (
    BUSY_CORES,
    ConditionsError,
    check_quiet,
    fingerprint,
    identity,
)

REFERENCE_KEY = "ibconv-k5-e6-s1-i56x56x24-o56x56x24"
#: relative change of the reference time across one batch that triggers a re-measurement
DRIFT_TOLERANCE = 0.03
#: files timed between two reference measurements
BATCH_SIZE = 16
#: the fields a guarded measurement record carries
GUARD_FIELDS = ("conditions", "reference_ms", "reference_drift")
#: environment variable holding guard settings that override the device profile's
GUARD_ENV = "PADNAS_GUARD"


def reference_file(cache_dir=None) -> Path:
    """The checked ``.tflite`` of the reference op (exported once, cached like any variant)."""
    from latency.backends.host import allowed_cpus
    from latency.export.pool import iter_export
    from latency.variants import Variant

    # in a worker process, like every export: TensorFlow's start-up chatter stays out of sight
    (res,) = iter_export(
        [Variant.from_key(REFERENCE_KEY)], cache_dir=cache_dir, workers=1, cpus=allowed_cpus()
    )
    if res.error:
        raise ConditionsError(f"cannot export the reference op {REFERENCE_KEY}: {res.error}")
    return res.path


@dataclass
class GuardSettings:
    """How strict the guard is; a device profile may set them under ``"guard"``."""

    tolerance: float = DRIFT_TOLERANCE
    busy_cores: float = BUSY_CORES
    batch_size: int = BATCH_SIZE
    retries: int = 2
    reference_runs: int = 3

    @classmethod
    def from_profile(cls, profile: dict | None) -> GuardSettings:
        """The profile's ``"guard"`` settings, then ``$PADNAS_GUARD`` (a JSON object, e.g.
        ``{"busy_cores": 2}`` on a machine whose other cores are known to be busy)."""
        given = dict((profile or {}).get("guard") or {})
        env = os.environ.get(GUARD_ENV)
        if env:
            try:
                extra = json.loads(env)
            except json.JSONDecodeError:
                extra = None
            if not isinstance(extra, dict):
                raise ConditionsError(f"${GUARD_ENV} must be a JSON object, got {env!r}")
            given.update(extra)
        unknown = set(given) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConditionsError(f"device profile 'guard': unknown settings {sorted(unknown)}")
        s = cls(**given)
        if (
            not 0 < s.tolerance < 1
            or s.batch_size < 1
            or s.retries < 0
            or s.busy_cores < 0
            or s.reference_runs < 1
        ):
            raise ConditionsError(
                "device profile 'guard': need 0 < tolerance < 1, batch_size >= 1, retries >= 0, "
                f"busy_cores >= 0 and reference_runs >= 1, got {given}"
            )
        return s


@dataclass
class BatchRecord:
    """What the guard knew about one accepted batch."""

    conditions: str
    reference_ms: float
    drift: float
    tries: int
    facts: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """The fields stored with every measurement of the batch."""
        return {
            "conditions": self.conditions,
            "reference_ms": round(self.reference_ms, 6),
            "reference_drift": round(self.drift, 5),
        }


class Guard:
    """Brackets batches of measurements on ``backend`` with the reference op (see module doc).

    ``note`` hears of a batch measured again; ``check_load`` defaults to whether the backend
    times on this machine (a phone's load is not this machine's)."""

    def __init__(
        self,
        backend: Backend,
        reference: Path,
        settings: GuardSettings | None = None,
        *,
        check_load: bool | None = None,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.backend, self.reference = backend, Path(reference)
        self.settings = settings or GuardSettings()
        self.check_load = backend.runs_on_host if check_load is None else check_load
        self.note = note or (lambda msg: None)
        self.facts = fingerprint(backend)
        self.conditions = identity(self.facts)
        self.batches: list[BatchRecord] = []

    def reference_ms(self, backend: Backend | None = None) -> float:
        """The reference op's time now: the fastest of ``reference_runs`` measurements."""
        device = backend or self.backend
        return min(device.measure(self.reference).ms for _ in range(self.settings.reference_runs))

    def run(self, measure: Callable[[], dict], backend: Backend | None = None) -> tuple:
        """``measure()`` (a batch) between two reference timings; (its result, BatchRecord).

        A batch whose reference time drifted beyond the tolerance is measured again; after
        ``retries`` more drifts, :class:`ConditionsError` says so and nothing is returned."""
        s = self.settings
        drifts = []
        for tries in range(1, s.retries + 2):
            if self.check_load:
                check_quiet(s.busy_cores)
            before = self.reference_ms(backend)
            result = measure()
            after = self.reference_ms(backend)
            drift = abs(after / before - 1.0) if before > 0 else float("inf")
            if drift <= s.tolerance:
                rec = BatchRecord(self.conditions, (before + after) / 2, drift, tries, self.facts)
                self.batches.append(rec)
                return result, rec
            drifts.append(drift)
            self.note(
                f"the reference op took {before:.4f} ms before the batch and {after:.4f} ms "
                f"after ({drift:.1%} > {s.tolerance:.0%}); measuring the batch again"
            )
        raise ConditionsError(
            f"the reference op's time drifted {', '.join(f'{d:.1%}' for d in drifts)} across "
            f"{len(drifts)} tries of one batch (tolerance {s.tolerance:.0%}): the device's speed "
            "is changing (other jobs, clock or thermal changes); nothing of the batch was "
            "stored: make the device quiet and run the same command again"
        )


def reference_ratio(records: Sequence[dict], *, tolerance: float = DRIFT_TOLERANCE) -> dict:
    """Check stored measurements before they are mixed into one table.

    Records of different ``conditions`` (another machine, runtime or converter) cannot be mixed:
    :class:`ConditionsError`. Records of one machine whose batches' reference times differ by
    more than ``tolerance`` from their median are rescaled to that median (each record's ms is
    multiplied by ``median / reference_ms``); the returned dict says what was done:
    ``{"conditions", "reference_ms", "spread", "rescaled": {key: factor}, "unguarded": [key]}``.
    Records without a reference time (measured before the guard existed) are listed as
    ``unguarded`` and left as they are.
    """
    guarded = [r for r in records if r.get("reference_ms")]
    unguarded = sorted(r["key"] for r in records if not r.get("reference_ms"))
    kinds = sorted({r.get("conditions") for r in guarded})
    if len(kinds) > 1:
        raise ConditionsError(
            f"the measurements come from {len(kinds)} different set-ups (conditions "
            f"{', '.join(map(str, kinds))}: another machine, runtime or converter); a table must "
            "come from one: re-measure the others with --force on this one"
        )
    if not guarded:
        return {
            "conditions": None,
            "reference_ms": None,
            "spread": 0.0,
            "rescaled": {},
            "unguarded": unguarded,
        }
    refs = [float(r["reference_ms"]) for r in guarded]
    median = statistics.median(refs)
    rescaled = {
        r["key"]: median / float(r["reference_ms"])
        for r in guarded
        if abs(float(r["reference_ms"]) / median - 1.0) > tolerance
    }
    return {
        "conditions": kinds[0],
        "reference_ms": median,
        "spread": (max(refs) - min(refs)) / median,
        "rescaled": rescaled,
        "unguarded": unguarded,
    }


def make_guard(backend: Backend, cache_dir=None, bar=None) -> Guard:
    """The guard for ``backend``: the reference op exported (once), the profile's settings."""
    note = bar.write if bar is not None else None
    settings = GuardSettings.from_profile(getattr(backend, "profile", None))
    return Guard(backend, reference_file(cache_dir), settings, note=note)


def measure_guarded(backend: Backend, path: Path, cache_dir=None) -> LatencyStats:
    """One file (a whole network) timed as a guarded batch of one; its stats carry the batch's
    conditions and reference time in ``extra``. A backend that times no files is not guarded."""
    if not backend.needs_files:
        return backend.measure(path)
    stats, rec = make_guard(backend, cache_dir).run(lambda: backend.measure(path))
    return replace(stats, extra={**stats.extra, **rec.meta()})
