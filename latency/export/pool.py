"""Export worker processes: convert many blocks or networks in parallel, results as they finish.

Each worker is a ``spawn``-ed process that quiets TensorFlow, pins itself to the given cores,
uses one torch thread and imports onnx2tf once, then converts job after job; a profile therefore
pays the TensorFlow import once per worker, not once per block. Results stream back in completion
order so measurement can start on the first block while the rest convert. A failed conversion is
a result with an ``error``, never an exception, so one bad block does not stop a long profile.

Every kind of file (an op variant, a whole architecture, a network unit, a described network) is
an :class:`ExportJob`: a key, where its checked file is cached, and the module-level function that
converts it. :func:`run_exports` is the one place that checks the cache and starts the pool, and
:func:`_run_job` is the one function a worker runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from latency.cache import is_checked
from latency.errors import ExportError, verbose_enabled
from latency.export.convert import (
    DEFAULT_PRECISION,
    arch_label,
    arch_path,
    cached_path,
    calibration_workdir,
    export_arch,
    export_dir,
    export_variant,
    quiet_tf,
)
from latency.variants import Variant
from padnas.core.errors import UsageError
from padnas.core.progress import progress_bar
from padnas.space import SearchSpace


@dataclass(frozen=True)
class ExportResult:
    key: str
    path: Path | None
    seconds: float  # conversion time in the worker (0 when cached)
    cached: bool
    error: str | None = None
    #: the error was the input's fault (a usage error in the worker: exit 2, not 1)
    bad_input: bool = False


@dataclass(frozen=True)
class ExportJob:
    """One file to produce. ``convert(arg, cache_dir=...) -> Path`` must be a module-level
    function (workers are spawned, so it travels by name); ``path`` is where the checked file
    lands, so a cached one is reused without starting a worker (``None``: always convert)."""

    key: str
    convert: Callable
    arg: object
    path: Path | None = None


#: in an export worker process: the cache folder it converts into (set by the pool initialiser)
_worker_cache: Path | None = None


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
    global _worker_cache
    _worker_cache = Path(cache_dir)
    _die_with_parent()
    quiet_tf()
    if not verbose_enabled():
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


def _run_job(job: ExportJob) -> ExportResult:
    """The one worker entry point: convert, time, and report a failure as a result."""
    t0 = time.perf_counter()
    try:
        path = job.convert(job.arg, cache_dir=_worker_cache)
        return ExportResult(job.key, path, time.perf_counter() - t0, False)
    except UsageError as exc:  # the input's fault: said as it is, no type name
        return ExportResult(job.key, None, 0.0, False, str(exc), bad_input=True)
    except Exception as exc:
        return ExportResult(job.key, None, 0.0, False, f"{type(exc).__name__}: {exc}")


def _pool(jobs: list[ExportJob], workers: int, cpus, cache: Path) -> Iterator[ExportResult]:
    """Run ``jobs`` in spawned workers; yield results as they complete."""
    calibration_workdir(cache)
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(jobs))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(str(cache), cpus),
    )
    finished = False
    try:
        pending = {pool.submit(_run_job, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    yield fut.result()
                except Exception as exc:  # a worker died (BrokenProcessPool)
                    raise ExportError(f"an export worker died: {exc}") from exc
        finished = True
    finally:
        # Every job done: wait for the idle workers to exit, or the executor's thread may still
        # be closing its wake-up pipe when the interpreter's exit hook writes to it (CPython
        # 3.11 prints "OSError: Bad file descriptor" on a busy machine). Interrupted or failed:
        # do not wait for conversions still running.
        pool.shutdown(wait=finished, cancel_futures=True)


def run_exports(
    jobs: Iterable[ExportJob],
    *,
    workers: int = 2,
    cpus: list[int] | None = None,
    cache_dir: str | Path | None = None,
) -> Iterator[ExportResult]:
    """Yield an :class:`ExportResult` per job: cached ones at once, the rest as workers finish
    them (in completion order). Failures are reported, never cached or raised, so one bad block
    does not stop a profile; the pool only starts when something needs converting."""
    cache = export_dir(cache_dir)
    todo = []
    for job in jobs:
        if job.path is not None and is_checked(job.path):
            yield ExportResult(job.key, job.path, 0.0, True)
        else:
            todo.append(job)
    if todo:
        yield from _pool(todo, workers, cpus, cache)


def variant_jobs(
    variants: Iterable[Variant], cache: Path, precision: str = DEFAULT_PRECISION
) -> list[ExportJob]:
    convert = (
        export_variant
        if precision == DEFAULT_PRECISION
        else functools.partial(export_variant, precision=precision)
    )
    return [ExportJob(v.key, convert, v, cached_path(v, cache, precision)) for v in variants]


def iter_export(
    variants: Iterable[Variant],
    *,
    cache_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
    **pool,
) -> Iterator[ExportResult]:
    """:func:`run_exports` over op variants (cached by variant key and precision); ``pool``:
    ``workers``, ``cpus``."""
    cache = export_dir(cache_dir)
    return run_exports(variant_jobs(variants, cache, precision), cache_dir=cache, **pool)


def _export_arch_job(job: tuple, cache_dir: Path | None = None) -> Path:
    family, arch, resolution, width_mult, num_classes, precision = job
    return export_arch(
        SearchSpace.from_family(family),
        arch,
        resolution,
        width_mult=width_mult,
        num_classes=num_classes,
        cache_dir=cache_dir,
        precision=precision,
    )


def _export_arch_to(job: tuple, cache_dir: Path | None = None) -> Path:
    family, arch, resolution, output, fmt = job
    space = SearchSpace.from_family(family)
    return export_arch(space, arch, resolution, Path(output), fmt, cache_dir=cache_dir)


def export_arch_file(space, arch, resolution: int, output: Path, fmt: str = "tflite") -> Path:
    """:func:`export_arch` to ``output`` in one worker process, so TensorFlow's start-up logs
    (which ignore ``TF_CPP_MIN_LOG_LEVEL``) stay out of the terminal; a failed conversion raises
    :class:`ExportError` with the worker's message."""
    job = ExportJob(
        str(output), _export_arch_to, (space.family, str(arch), resolution, str(output), fmt)
    )
    (res,) = run_exports([job], workers=1)
    if res.error:
        raise ExportError(f"cannot export {arch}: {res.error}")
    return res.path


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
    precision: str = DEFAULT_PRECISION,
) -> Iterator[ExportResult]:
    """Like :func:`iter_export` for whole networks (random weights, cached by arch and
    precision); the result's ``key`` is the cache label of the arch."""
    cache = export_dir(cache_dir)
    jobs = []
    for arch in archs:
        net = (space.family, str(space.validate(arch)), resolution, width_mult, num_classes)
        path = arch_path(*net, cache_dir=cache, precision=precision)
        jobs.append(ExportJob(arch_label(*net), _export_arch_job, (*net, precision), path))
    return run_exports(jobs, workers=workers, cpus=cpus, cache_dir=cache)


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
