"""Profile a space on several phones of the same model at once: one worker thread per phone.

The host converts blocks (export worker processes on every host core, since the phones do the
timing) and puts each ready ``.tflite`` on a shared queue; each phone's worker takes the next
block, times it and appends the result to the device's one store. Phones of one model share a
profile and a store, so N phones finish a space about N times sooner.

Each phone times its blocks in guarded batches (:mod:`latency.profiling.guard`): a batch is
bracketed by the reference op timed on that phone, measured again when the phone's speed drifted
beyond the tolerance, and stored with that phone's conditions and reference time. A phone takes
up to a batch of ready blocks at a time, waiting briefly for more while the host still converts.

A phone that is lost for good (its backend raises an error marked ``fatal``, e.g. the adb
backend's DeviceLost after its retries) or whose speed keeps drifting (the guard's
:class:`~latency.profiling.conditions.ConditionsError`) hands its blocks back to the queue and
leaves; the others carry on. When no phone is left the profile stops with that error: every
measurement taken so far is already in the store, and the same command resumes.
"""

from __future__ import annotations

import queue
import threading
import time

from latency.backends.base import Backend
from latency.errors import BackendError
from latency.export.pool import iter_export
from latency.profiling.conditions import ConditionsError
from latency.profiling.guard import Guard, GuardSettings, reference_file
from latency.profiling.loop import MeasureLoop, export_cpus, measure_bar, pending_keys
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore
from latency.variants import space_variants
from padnas.space import DEPLOY_CLASSES, DEPLOY_RESOLUTION, SearchSpace

#: how long a phone waits for more ready blocks before it times a batch that is not full
BATCH_WAIT_S = 30.0


def profile_fleet(
    space: SearchSpace,
    backends: list[Backend],
    store: MeasurementStore,
    *,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
    force: bool = False,
    limit: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    cache_dir=None,
    warn=None,
    guard: bool = True,
) -> ProfileReport:
    """Measure the variants of ``space`` missing from ``store`` on every backend in parallel.

    ``limit`` caps how many are measured in this run (the rest wait for the next run).
    Per-block failures are reported in :attr:`ProfileReport.failed`; a fatal backend error
    ends that backend's worker, and raises once no backend is left. ``guard``: time in guarded
    batches, one guard per phone (see the module doc).
    """
    if not backends:
        raise ValueError("profile_fleet needs at least one backend")
    t0 = time.perf_counter()
    variants = space_variants(space, resolution, width_mult, num_classes)
    todo_keys = set(pending_keys(store, [v.key for v in variants], force, limit))
    todo = [v for v in variants if v.key in todo_keys]
    stored = sum(1 for v in variants if v.key in store)
    report = ProfileReport(backends[0].name, len(variants), reused=0 if force else stored)
    if not todo:
        report.wall_s = time.perf_counter() - t0
        return report

    jobs: queue.Queue = queue.Queue()
    lock = threading.Lock()
    done = threading.Condition(lock)  # signalled when a block is finished or a phone leaves
    pending = [0]  # blocks queued and not finished (a block handed back stays pending)
    stop = threading.Event()
    fatal: list[Exception] = []
    alive = [len(backends)]
    exported = threading.Event()  # the host has converted every block
    bar = measure_bar(len(todo), f"profile {report.device} x{len(backends)}", progress)
    loop = MeasureLoop(backends[0], store, report, bar, lock=done)
    guards: dict[int, Guard | None] = dict.fromkeys(map(id, backends))
    if guard:
        reference = reference_file(cache_dir)  # exported once, before the phones share it
        for b in backends:
            settings = GuardSettings.from_profile(getattr(b, "profile", None))
            guards[id(b)] = Guard(b, reference, settings, note=bar.write)
    size = max(g.settings.batch_size if g else 1 for g in guards.values())

    def leave(exc: Exception) -> None:
        with done:
            fatal.append(exc)
            alive[0] -= 1
            done.notify_all()

    def work(backend: Backend) -> None:
        try:
            _work(backend)
        except Exception as exc:  # e.g. the store's disk is full: this worker cannot go on
            leave(exc)

    def next_batch() -> list | None:
        """Up to ``size`` ready blocks (None: stop); waits a little for more while the host
        still converts, so the reference op brackets many blocks, not one."""
        first = jobs.get()
        if first is None:
            return None
        batch, waited = [first], 0.0
        while len(batch) < size and waited < BATCH_WAIT_S:
            if exported.is_set() and jobs.empty():
                break
            try:
                item = jobs.get(timeout=0.5)
            except queue.Empty:
                waited += 0.5
                continue
            if item is None:
                jobs.put(None)  # this worker's stop signal, seen after this batch
                break
            batch.append(item)
        return batch

    def _work(backend: Backend) -> None:
        meta = {"serial": backend.label} if len(backends) > 1 else {}
        while not stop.is_set():
            batch = next_batch()
            if batch is None:
                return
            pairs = [(item.key, item.path) for item in batch]
            try:
                loop.run_batch(pairs, backend, guard=guards[id(backend)], meta=meta)
            except (BackendError, ConditionsError) as exc:  # fatal, or its speed keeps drifting
                for item in batch:
                    jobs.put(item)  # another phone may take them
                leave(exc)
                if warn and alive[0]:
                    warn(f"{backend.label} left the profile ({exc}); {alive[0]} phone(s) carry on")
                return
            with done:
                pending[0] -= len(batch)
                done.notify_all()

    threads = [threading.Thread(target=work, args=(b,), daemon=True) for b in backends]
    for t in threads:
        t.start()
    if workers is None:
        workers = len(export_cpus(backends[0], overlap=False))  # phones time; every core converts
    results = iter_export(todo, workers=workers, cache_dir=cache_dir, precision=store.precision)
    try:
        for res in results:
            if alive[0] == 0:
                break
            if res.error:
                loop.fail(res.key, res.error)
                continue
            report.count_export(res)
            with done:
                pending[0] += 1
            jobs.put(res)
        exported.set()
        with done:  # every block finished, or no phone left to finish it
            while pending[0] > 0 and alive[0] > 0:
                done.wait(0.5)
        for _ in threads:
            jobs.put(None)
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        stop.set()
        results.close()
        bar.close()
    report.wall_s = time.perf_counter() - t0
    if alive[0] == 0:
        raise fatal[-1]
    return report
