"""The one export → measure → store loop, shared by profile, fleet and network measurement.

Every measuring command does the same thing to each file: take an export result (a failed
conversion is reported and skipped), time the file on the backend (a per-file failure is
reported and skipped, a lost device stops the run), append the measurement to the store at once
(so an interrupted run resumes) and tally it. :class:`MeasureLoop` is that loop;
:func:`export_cpus` decides where conversion may run beside it, and :func:`pending_keys` is the
one "what is left to measure" test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from latency.backends.base import Backend, LatencyStats
from latency.backends.host import allowed_cpus
from latency.errors import BackendError
from latency.export.convert import tools_hash
from latency.export.pool import ExportResult
from latency.profiling.guard import Guard
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore
from padnas.core.progress import progress_bar


def pending_keys(
    store: MeasurementStore, keys: list[str], force: bool = False, limit: int | None = None
) -> list[str]:
    """Keys to measure now: the missing ones (all with ``force``), at most ``limit``."""
    todo = store.missing(keys, force)
    if limit is not None:
        todo = todo[: max(limit, 0)]
    return todo


def export_cpus(backend: Backend, overlap: bool = True) -> list[int]:
    """Cores the export workers may use: all of them, except (when conversion overlaps timing)
    the core the backend measures on."""
    cpus = allowed_cpus()
    if not overlap:
        return cpus
    return [c for c in cpus if c != backend.cpu] or cpus


def measure_bar(total: int, desc: str, enabled: bool, unit: str = "block"):
    return progress_bar(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


class MeasureLoop:
    """Time files on ``backend`` and append each result to ``store``, tallied in ``report``.

    ``lock`` (optional) guards the tallies, the store and the bar when several threads (one per
    phone) share one loop; timing itself runs outside it.
    """

    def __init__(
        self,
        backend: Backend,
        store: MeasurementStore,
        report: ProfileReport,
        bar,
        *,
        lock: threading.Lock | threading.Condition | None = None,
        meta: dict | None = None,
        guard: Guard | None = None,
    ) -> None:
        self.backend, self.store, self.report, self.bar = backend, store, report, bar
        self.guard = guard
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.meta = {"tools": tools_hash(), **(meta or {})}

    def fail(self, key: str, message: str) -> None:
        with self.lock:
            self.report.failed.append((key, message))
            self.bar.update(1)

    def measure(self, key: str, path: Path, backend: Backend | None = None):
        """Time one file; a per-file failure is reported (returns None), a lost device raises."""
        backend = backend or self.backend
        ts = time.perf_counter()
        try:
            stats = backend.measure(path)
        except BackendError as exc:
            if exc.fatal:  # the device is gone: stop, the store resumes
                raise
            self.fail(key, str(exc))
            return None
        with self.lock:
            self.report.measure_s += time.perf_counter() - ts
        return stats

    def record(self, key: str, stats: LatencyStats, **meta) -> None:
        """Append one measurement to the store (at once: an interrupted run resumes)."""
        with self.lock:
            self.store.add(key, stats, **{**self.meta, **meta})
            self.report.measured += 1
            self.bar.set_postfix_str(f"{key[:28]} {stats.ms:.3f} ms", refresh=False)
            self.bar.update(1)

    def run(self, results: Iterable[ExportResult]) -> dict[str, Path]:
        """The loop: every export result measured and stored in turn (in guarded batches when
        there is a guard); returns the path of every file measured."""
        measured: dict[str, Path] = {}
        batch: list[tuple[str, Path]] = []
        size = self.guard.settings.batch_size if self.guard else 1
        for res in results:
            if res.error:
                self.fail(res.key, res.error)
                continue
            self.report.count_export(res)
            batch.append((res.key, res.path))
            if len(batch) >= size:
                measured.update(self.run_batch(batch))
                batch = []
        if batch:
            measured.update(self.run_batch(batch))
        return measured

    def run_batch(
        self,
        batch: list[tuple[str, Path]],
        backend: Backend | None = None,
        *,
        guard: Guard | None = None,
        meta: dict | None = None,
    ) -> dict:
        """Time and store ``(key, path)`` pairs; with a guard (``guard``, else the loop's),
        between two reference timings, measured again when the reference drifted, and stored
        only once accepted. ``meta`` goes into every record (e.g. the phone's serial)."""
        guard = guard or self.guard
        meta = meta or {}
        if guard is None:
            done = {}
            for key, path in batch:
                stats = self.measure(key, path, backend)
                if stats is not None:
                    self.record(key, stats, **meta)
                    done[key] = path
            return done

        def timed() -> tuple[dict, dict]:
            ok, failed = {}, {}
            for key, path in batch:
                ts = time.perf_counter()
                try:
                    ok[key] = (path, (backend or self.backend).measure(path))
                except BackendError as exc:
                    if exc.fatal:
                        raise
                    failed[key] = str(exc)
                with self.lock:
                    self.report.measure_s += time.perf_counter() - ts
            return ok, failed

        (ok, failed), rec = guard.run(timed, backend)
        with self.lock:
            self.store.remember_conditions(rec.conditions, rec.facts)
        for key, message in failed.items():
            self.fail(key, message)
        for key, (_, stats) in ok.items():
            self.record(key, stats, **rec.meta(), **meta)
        return {key: path for key, (path, _) in ok.items()}
