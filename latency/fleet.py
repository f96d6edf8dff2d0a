"""Profile a space on several phones of the same model at once: one worker thread per phone.

The host converts blocks (export worker processes on every host core, since the phones do the
timing) and puts each ready ``.tflite`` on a shared queue; each phone's worker takes the next
block, times it and appends the result to the device's one store. Phones of one model share a
profile and a store, so N phones finish a space about N times sooner.

A phone that is lost for good (its backend raises an error marked ``fatal``, e.g. the adb
backend's DeviceLost after its retries) hands its block back to the queue and leaves; the others
carry on. When no phone is left the profile stops with that error: every measurement taken so
far is already in the store, and the same command resumes.
"""

from __future__ import annotations

import queue
import threading
import time

from padnas.space import DEPLOY_CLASSES, DEPLOY_RESOLUTION, SearchSpace

from .backends.base import Backend, BackendError
from .profiler import ProfileReport, _bar
from .store import MeasurementStore
from .variants import space_variants


def select_todo(store: MeasurementStore, keys: list[str], force: bool, limit: int | None):
    """Keys to measure now: the missing ones (all with ``force``), at most ``limit``."""
    todo = store.missing(keys, force)
    if limit is not None:
        todo = todo[: max(limit, 0)]
    return todo


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
) -> ProfileReport:
    """Measure the variants of ``space`` missing from ``store`` on every backend in parallel.

    ``limit`` caps how many are measured in this run (the rest wait for the next run).
    Per-block failures are reported in :attr:`ProfileReport.failed`; a fatal backend error
    ends that backend's worker, and raises once no backend is left.
    """
    from .backends.host import allowed_cpus
    from .export import iter_export, tools_hash

    if not backends:
        raise ValueError("profile_fleet needs at least one backend")
    t0 = time.perf_counter()
    variants = space_variants(space, resolution, width_mult, num_classes)
    todo_keys = set(select_todo(store, [v.key for v in variants], force, limit))
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
    tools = tools_hash()
    bar = _bar(len(todo), f"profile {report.device} x{len(backends)}", progress)

    def work(backend: Backend) -> None:
        try:
            _work(backend)
        except Exception as exc:  # e.g. the store's disk is full: this worker cannot go on
            with done:
                fatal.append(exc)
                alive[0] -= 1
                done.notify_all()

    def _work(backend: Backend) -> None:
        label = getattr(backend, "serial", backend.name)
        while not stop.is_set():
            item = jobs.get()
            if item is None:
                return
            ts = time.perf_counter()
            try:
                stats = backend.measure(item.path)
            except BackendError as exc:
                if getattr(exc, "fatal", False):
                    jobs.put(item)  # another phone may take it
                    with done:
                        fatal.append(exc)
                        alive[0] -= 1
                        done.notify_all()
                    if warn and alive[0]:
                        warn(f"{label} left the profile ({exc}); {alive[0]} phone(s) carry on")
                    return
                with done:
                    report.failed.append((item.key, str(exc)))
                    bar.update(1)
                    pending[0] -= 1
                    done.notify_all()
                continue
            with done:
                pending[0] -= 1
                done.notify_all()
                report.measure_s += time.perf_counter() - ts
                meta = {"tools": tools}
                if len(backends) > 1:
                    meta["serial"] = label
                store.add(item.key, stats, **meta)
                report.measured += 1
                bar.set_postfix_str(f"{item.key[:28]} {stats.ms:.3f} ms", refresh=False)
                bar.update(1)

    threads = [threading.Thread(target=work, args=(b,), daemon=True) for b in backends]
    for t in threads:
        t.start()
    if workers is None:
        workers = len(allowed_cpus())  # the phones time; every host core can convert
    results = iter_export(todo, workers=workers, cache_dir=cache_dir)
    try:
        for res in results:
            if alive[0] == 0:
                break
            if res.error:
                with lock:
                    report.failed.append((res.key, res.error))
                    bar.update(1)
                continue
            report.count_export(res)
            with done:
                pending[0] += 1
            jobs.put(res)
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
