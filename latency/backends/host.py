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

Timing runs in a child process (spawned once per backend, reused for every model), pinned to the
measuring core, so the rest of this process (export workers, progress bars) is unaffected, and a
model that never finishes -- a WHILE loop whose condition stays true -- cannot hang the command:
a measurement that takes longer than its budget (every attempt's ``max_s`` and warm-up, twice, plus
``timeout_margin_s``; the phone's ``2 * max_secs + timeout_margin_s`` in spirit) kills the child
and fails with :class:`HostTimeout`, nothing stored. A model that crashes LiteRT kills only the
child, and is refused as a model file.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import signal
import time
import weakref
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
    "timeout_margin_s": 60.0,
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


class HostTimeout(BackendError):
    """A model whose timing did not end within the backend's budget (exit 1; a profile reports
    the block and goes on): its child process was killed and nothing was stored."""


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
        self._timer: _Timer | None = None

    @property
    def timeout_s(self) -> float:
        """The most one measurement may take: every attempt's warm-up and timed loop, twice
        (a slow model needs ``min_runs`` past ``max_s``), plus ``timeout_margin_s`` for the
        child's start and the model's load."""
        o = self.opts
        per_attempt = 2 * (float(o["max_s"]) + float(o["warmup_s"]))
        return (int(o["retries"]) + 1) * per_attempt + float(o["timeout_margin_s"])

    def _measure(self, path: Path) -> LatencyStats:
        if self._timer is None:
            self._timer = _Timer(self.opts, self.cpu)
            self._stop = weakref.finalize(self, self._timer.stop)
        try:
            return self._timer.measure(path, self.timeout_s)
        finally:
            if not self._timer.alive:  # killed or crashed: the next model starts anew
                self.close()

    def close(self) -> None:
        if self._timer is not None:
            self._stop()
            self._timer = None

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


# ---- the timing child -------------------------------------------------------------------------


class _Timer:
    """The child process that times models for one :class:`HostBackend`: a fresh interpreter
    (never a fork of a process holding torch and TensorFlow threads, never a re-run of the
    caller's main module), one JSON line per model each way over its stdin and stdout."""

    def __init__(self, opts: dict, cpu: int | None) -> None:
        import json
        import subprocess
        import sys

        root = str(Path(__file__).resolve().parents[2])  # the folder holding `latency`
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        code = "from latency.backends.host import _serve; _serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps({"opts": opts, "cpu": cpu})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def measure(self, path: Path, timeout_s: float) -> LatencyStats:
        import json
        import select

        try:
            self.proc.stdin.write(json.dumps(str(path)) + "\n")
            self.proc.stdin.flush()
        except OSError:  # the child died before the model was sent
            pass
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            self.stop()
            raise HostTimeout(
                f"timing {path.name} on the host did not end within {timeout_s:g} s (does the "
                "model loop forever, e.g. a WHILE whose condition stays true?); it was stopped "
                "and nothing was stored"
            )
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(5)
            why = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise ModelFileError(
                f"LiteRT crashed on {path.name} ({why}): it is not a valid TFLite model; "
                "re-export it (padnas export, padnas-latency measure MODEL.onnx)"
            )
        reply = json.loads(line)
        if "ok" in reply:
            return LatencyStats(**reply["ok"])
        if "model" in reply:
            raise ModelFileError(reply["model"])
        raise BackendError(f"timing {path.name} on the host failed: {reply['error']}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def _serve() -> None:
    """The child's loop (``argv[1]``: the options and core as JSON): a model path in, one line
    out -- ``{"ok": stats}``, ``{"model": message}`` (a file LiteRT cannot load) or
    ``{"error": message}``; ends when the parent closes its stdin."""
    import json
    import sys

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    setup = json.loads(sys.argv[1])
    opts, cpu = setup["opts"], setup["cpu"]
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    # the replies get their own copy of stdout; anything a library prints goes to stderr
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            reply = {"ok": _measure_file(Path(json.loads(line)), opts, cpu).to_dict()}
        except ModelFileError as exc:
            reply = {"model": str(exc)}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def _die_with_parent() -> None:
    """Linux: SIGKILL when the parent dies, so a killed command leaves no child spinning in a
    model that never returns."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _measure_file(path: Path, opts: dict, cpu: int | None) -> LatencyStats:
    """The calmest of up to ``retries + 1`` timings (see the module docstring)."""
    best: LatencyStats | None = None
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for attempt in range(int(opts["retries"]) + 1):  # noqa: B007
            stats = _time_once(path, opts)
            if best is None or stats.dispersion < best.dispersion:
                best = stats
            if best.dispersion <= opts["max_dispersion"]:
                break
    finally:
        if gc_was:
            gc.enable()
    assert best is not None
    extra = {**best.extra, "cpu": cpu, "attempts": attempt + 1}
    return LatencyStats(best.ms, best.p10, best.p90, best.n, best.source, extra)


def _time_once(path: Path, o: dict) -> LatencyStats:
    """One timing: warm-up, then timed ``invoke()`` calls until the median is stable."""
    from ai_edge_litert.interpreter import Interpreter

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
    for d in interp.get_input_details():  # float, or int8 / uint8 for a quantised model
        dtype = np.dtype(d["dtype"])
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, d["shape"], endpoint=True, dtype=dtype)
        else:
            value = rng.random(d["shape"]).astype(dtype)
        interp.set_tensor(d["index"], value)
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
    return LatencyStats(med, p10, p90, len(arr), HostBackend.source, extra)
