"""The host CPU as a device: LiteRT interpreter, XNNPACK, one thread, pinned to one core.

A measurement is warm-up, then timed ``invoke()`` calls until the median is stable: at least
``min_runs`` runs and ``min_s`` seconds, then until the 95% confidence interval of the median
(order statistics, no normality assumed) is within ``target_ci`` of it, or ``max_s`` runs out.
A result whose spread ``(p90 - p10) / median`` exceeds ``max_dispersion`` (another process
stole the core) is measured again, up to ``retries`` times, and the calmest run is kept.

The clock is the measuring thread's CPU time (``clock: cpu``, the default) or wall time
(``clock: wall``). With one interpreter thread every instruction of ``invoke()`` runs on the calling
thread, so on an idle core the two agree; on a shared machine (CI, a laptop, two cores and other
jobs) CPU time leaves out the slices the scheduler gave to other processes, which otherwise inflate
single runs by whole milliseconds. Both medians are kept in ``extra``.

Pinning is per thread (``sched_setaffinity`` on the calling thread), set for the measurement and
restored afterwards, so the rest of the process (export workers, progress bars) is unaffected.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from latency.backends.base import Backend, BackendError, LatencyStats
from latency.errors import ModelFileError
from latency.export.convert import package_version

DEFAULTS = {
    "threads": 1,
    "warmup_s": 0.05,
    "warmup_runs": 3,
    "min_runs": 20,
    "min_s": 0.25,
    "max_s": 3.0,
    "target_ci": 0.005,
    "max_dispersion": 0.15,
    "retries": 2,
    "clock": "cpu",
    "kernels": "xnnpack",
}
CLOCKS = ("cpu", "wall")
#: LiteRT op resolvers: XNNPACK (its default), or TFLite's built-in kernels without delegates,
#: whose relative costs match older phone runtimes better (the Pixel 3 estimate uses them)
KERNELS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES"}


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def pinned(cpu: int | None):
    """Pin the calling thread to ``cpu`` for the block (no-op when None)."""
    if cpu is None:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def median_ci(sorted_ms: np.ndarray) -> float:
    """Half-width of the ~95% CI of the median, relative to it (order-statistic ranks)."""
    n = len(sorted_ms)
    med = float(np.median(sorted_ms))
    if n < 6 or med <= 0:
        return math.inf
    half = 0.98 * math.sqrt(n)
    lo = sorted_ms[max(0, int(n / 2 - half))]
    hi = sorted_ms[min(n - 1, math.ceil(n / 2 + half))]
    return float(hi - lo) / (2 * med)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ log lines on fd 2 (kept with PADNAS_VERBOSE=1); errors still raise."""
    if os.environ.get("PADNAS_VERBOSE") == "1":
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class HostBackend(Backend):
    """Times ``.tflite`` files on this machine's CPU (source ``measured``)."""

    source = "measured"
    #: it times on this machine's CPU, so nothing else should run while it measures
    runs_on_host = True

    def __init__(self, profile: dict | None = None, cpu: int | None = None, **opts) -> None:
        profile = profile or {"name": "host", "transport": "host"}
        self.profile = profile
        self.name = profile.get("name", "host")
        #: passes a profile makes over all blocks (see profiler.profile_space)
        self.passes = int(profile.get("passes", 1))
        unknown = set(opts) - set(DEFAULTS)
        if unknown:
            raise BackendError(f"host backend: unknown options {sorted(unknown)}")
        self.opts = {**DEFAULTS, **profile.get("measure", {}), **opts}
        if self.opts["clock"] not in CLOCKS:
            raise BackendError(f"host backend: clock {self.opts['clock']!r} is not one of {CLOCKS}")
        if self.opts["kernels"] not in KERNELS:
            raise BackendError(
                f"host backend: kernels {self.opts['kernels']!r} is not one of {sorted(KERNELS)}"
            )
        cpus = allowed_cpus()
        want = profile.get("cpu", -1) if cpu is None else cpu
        if want is None:
            self.cpu = None
        elif want == -1:
            self.cpu = cpus[-1]  # the last core: export workers get the others
        elif want in cpus:
            self.cpu = int(want)
        else:
            raise BackendError(f"cpu {want} is not available to this process (allowed: {cpus})")

    def _run(self, path: Path) -> LatencyStats:
        from ai_edge_litert.interpreter import Interpreter

        o = self.opts
        try:
            from ai_edge_litert.interpreter import OpResolverType

            with _quiet_stderr():  # LiteRT prints "INFO: Created ... XNNPACK delegate" on fd 2
                interp = Interpreter(
                    model_path=str(path),
                    num_threads=int(o["threads"]),
                    experimental_op_resolver_type=getattr(OpResolverType, KERNELS[o["kernels"]]),
                )
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"LiteRT cannot load {path.name} ({first}): it is not a valid TFLite model; "
                "re-export it (padnas export, padnas-latency measure MODEL.onnx)"
            ) from None
        rng = np.random.default_rng(0)
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], rng.random(d["shape"], dtype=np.float32))
        invoke = interp.invoke
        t_end = time.perf_counter() + o["warmup_s"]
        k = 0
        while k < o["warmup_runs"] or time.perf_counter() < t_end:
            invoke()
            k += 1
        wall, cpu = [], []
        wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
        use_cpu = o["clock"] == "cpu"
        start = time.perf_counter()
        while True:
            for _ in range(10):
                w0, c0 = wall_clock(), cpu_clock()
                invoke()
                c1, w1 = cpu_clock(), wall_clock()
                wall.append(w1 - w0)
                cpu.append(c1 - c0)
            elapsed = time.perf_counter() - start
            if len(wall) >= o["min_runs"] and elapsed >= o["min_s"]:
                arr = np.sort(np.asarray(cpu if use_cpu else wall, dtype=np.float64)) / 1e6
                if median_ci(arr) <= o["target_ci"] or elapsed >= o["max_s"]:
                    break
        med = float(np.median(arr))
        p10, p90 = (float(x) for x in np.percentile(arr, [10, 90]))
        extra = {
            "clock": o["clock"],
            "ci": round(median_ci(arr), 5),
            "wall_ms": round(float(np.median(wall)) / 1e6, 6),
            "cpu_ms": round(float(np.median(cpu)) / 1e6, 6),
        }
        return LatencyStats(med, p10, p90, len(arr), self.source, extra)

    def _measure(self, path: Path) -> LatencyStats:
        best: LatencyStats | None = None
        gc_was = gc.isenabled()
        gc.disable()
        try:
            with pinned(self.cpu):
                for attempt in range(int(self.opts["retries"]) + 1):  # noqa: B007
                    stats = self._run(path)
                    if best is None or stats.dispersion < best.dispersion:
                        best = stats
                    if best.dispersion <= self.opts["max_dispersion"]:
                        break
        finally:
            if gc_was:
                gc.enable()
        assert best is not None
        extra = {**best.extra, "cpu": self.cpu, "attempts": attempt + 1}
        return LatencyStats(best.ms, best.p10, best.p90, best.n, best.source, extra)

    def describe(self) -> dict:

        return {
            "name": self.name,
            "transport": "host",
            "description": self.profile.get("description", ""),
            "cpu_model": _cpu_model(),
            "cpu": self.cpu,
            "threads": int(self.opts["threads"]),
            "delegate": "XNNPACK (LiteRT default)"
            if self.opts["kernels"] == "xnnpack"
            else "none (TFLite built-in kernels)",
            "kernels": self.opts["kernels"],
            "clock": self.opts["clock"],
            "runtime": f"ai-edge-litert {package_version('ai-edge-litert')}",
            "platform": platform.platform(),
        }
