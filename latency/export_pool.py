"""Export worker processes: convert many blocks or networks in parallel, results as they finish.

Each worker is a ``spawn``-ed process that quiets TensorFlow, pins itself to the given cores,
uses one torch thread and imports onnx2tf once, then converts job after job; a profile therefore
pays the TensorFlow import once per worker, not once per block. Results stream back in completion
order so measurement can start on the first block while the rest convert. A failed conversion is
a result with an ``error``, never an exception, so one bad block does not stop a long profile.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from padnas.progress import progress_bar

from . import export
from .export import (
    ExportError,
    _arch_label,
    _export_variant_now,
    _quiet_tf,
    _workdir,
    arch_path,
    cached_path,
    export_arch,
    export_dir,
    is_cached,
)
from .variants import Variant


@dataclass(frozen=True)
class ExportResult:
    key: str
    path: Path | None
    seconds: float  # conversion time in the worker (0 when cached)
    cached: bool
    error: str | None = None


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies, so a killed ``profile`` leaves no converter
    running (an orphaned worker would otherwise wait on its job queue forever)."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _worker_init(cache_dir: str, cpus: list[int] | None) -> None:
    """Runs once per worker: quiet TF, pin, one torch thread, import the converter once."""
    export._WORKER_CACHE = Path(cache_dir)
    _die_with_parent()
    _quiet_tf()
    if os.environ.get("PADNAS_VERBOSE") != "1":
        # TF/absl C++ logs ignore TF_CPP_MIN_LOG_LEVEL before logging is initialised; errors
        # travel back in ExportResult.error, so the worker's stderr can go
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    import torch

    torch.set_num_threads(1)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        import onnx2tf  # noqa: F401  (the slow import, paid once per worker)


def _worker_export(key: str) -> ExportResult:
    cache = export._WORKER_CACHE
    assert cache is not None
    try:
        path, secs = _export_variant_now(Variant.from_key(key), cache)
        return ExportResult(key, path, secs, False)
    except Exception as exc:
        return ExportResult(key, None, 0.0, False, f"{type(exc).__name__}: {exc}")


def _worker_export_arch(job: tuple) -> ExportResult:
    from padnas.space import SearchSpace

    cache = export._WORKER_CACHE
    assert cache is not None
    family, arch, resolution, width_mult, num_classes = job
    key = _arch_label(*job)
    t0 = time.perf_counter()
    try:
        path = export_arch(
            SearchSpace.from_family(family), arch, resolution, width_mult=width_mult,
            num_classes=num_classes, cache_dir=cache,
        )  # fmt: skip
        return ExportResult(key, path, time.perf_counter() - t0, False)
    except Exception as exc:
        return ExportResult(key, None, 0.0, False, f"{type(exc).__name__}: {exc}")


def _pool_results(func, jobs: list, workers: int, cpus, cache: Path) -> Iterator[ExportResult]:
    """Run ``func`` over ``jobs`` in spawned workers; yield results as they complete."""
    _workdir(cache)
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(jobs))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(str(cache), cpus),
    )
    try:
        pending = {pool.submit(func, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    yield fut.result()
                except Exception as exc:  # a worker died (BrokenProcessPool)
                    raise ExportError(f"an export worker died: {exc}") from exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def iter_export(
    variants: Iterable[Variant],
    *,
    workers: int = 2,
    cpus: list[int] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[ExportResult]:
    """Yield an :class:`ExportResult` per variant: cached ones at once, the rest as workers
    finish them (in completion order). Failures are reported, never cached or raised, so one
    bad block does not stop a profile; the pool only starts when something needs converting."""
    cache = export_dir(cache_dir)
    todo = []
    for v in variants:
        if is_cached(v, cache):
            yield ExportResult(v.key, cached_path(v, cache), 0.0, True)
        else:
            todo.append(v.key)
    if todo:
        yield from _pool_results(_worker_export, todo, workers, cpus, cache)


def iter_export_archs(
    space,
    archs: Iterable,
    resolution: int = 224,
    *,
    width_mult: float = 1.0,
    num_classes: int = 1000,
    workers: int = 2,
    cpus: list[int] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[ExportResult]:
    """Like :func:`iter_export` for whole networks (random weights, cached by arch); the
    result's ``key`` is the cache label of the arch."""
    cache = export_dir(cache_dir)
    todo = []
    for arch in archs:
        arch = space.validate(arch)
        job = (space.family, str(arch), resolution, width_mult, num_classes)
        path = arch_path(*job, cache_dir=cache)
        if path.is_file() and path.with_suffix(".json").is_file():
            yield ExportResult(_arch_label(*job), path, 0.0, True)
        else:
            todo.append(job)
    if todo:
        yield from _pool_results(_worker_export_arch, todo, workers, cpus, cache)


def export_variants(
    variants: Iterable[Variant],
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Export many variants in parallel; raises ExportError listing any that failed."""
    variants = list(variants)
    out, failed = {}, []
    results = iter_export(variants, workers=workers, cache_dir=cache_dir)
    if progress:
        results = progress_bar(results, total=len(variants), desc="export", unit="block")
    for r in results:
        if r.error:
            failed.append(f"{r.key}: {r.error}")
        else:
            out[r.key] = r.path
    if failed:
        raise ExportError(f"{len(failed)} variant(s) failed to export; first: {failed[0]}")
    return out
