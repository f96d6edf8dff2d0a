"""The conditions a measurement was taken in, and the check that the host is quiet enough to
measure on.

A latency is only comparable with another taken on the same machine, with the same runtime and
converter, the same threads and core, at the same clock. :func:`fingerprint` records all of that
that can be read (CPU model, kernel, LiteRT, TensorFlow and onnx2tf versions, threads, affinity,
governor and frequency where the kernel exposes them, load average); :func:`identity` hashes the
part that must match for two measurements to be mixed without a correction. :func:`other_load`
measures how many cores other processes (not this one or its children, e.g. export workers)
keep busy, and :func:`check_quiet` refuses to time the host while that is above a limit: a table
measured beside other jobs comes out 1.5-2.5x slow on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from latency.errors import LatencyRuntimeError

#: fields that must be equal for two measurements to be mixed (the rest is recorded only)
IDENTITY_FIELDS = (
    "device",
    "cpu_model",
    "kernel",
    "litert",
    "tensorflow",
    "onnx2tf",
    "threads",
    "kernels",
    "clock",
)
#: cores other processes may keep busy while the host measures [default]
BUSY_CORES = 0.3


class ConditionsError(LatencyRuntimeError):
    """The measuring conditions do not allow a trustworthy measurement (a busy host, a reference
    op whose time drifted, measurements from another machine): exit 1, nothing is stored."""


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def fingerprint(backend) -> dict:
    """What this measurement batch depends on besides the model, as far as it can be read.

    A host backend reports its own CPU, threads, kernels and clock (``describe()``); the host's
    kernel, runtime and converter versions, the measuring core's governor and frequency, and the
    load average are read here. A phone's own facts come from its backend's ``describe()``.
    """
    desc = backend.describe()
    cpu = getattr(backend, "cpu", None)
    freq_dir = f"/sys/devices/system/cpu/cpu{cpu if cpu is not None else 0}/cpufreq"
    khz = _read(f"{freq_dir}/scaling_cur_freq")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    facts = {
        "device": desc.get("name", backend.name),
        "cpu_model": desc.get("cpu_model") or desc.get("model"),
        "kernel": platform.release() if backend.runs_on_host else desc.get("kernel"),
        "litert": _version("ai-edge-litert"),
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
        "onnx2tf": _version("onnx2tf"),
        "threads": desc.get("threads"),
        "kernels": desc.get("kernels"),
        "clock": desc.get("clock"),
        "affinity": cpu,
        "governor": _read(f"{freq_dir}/scaling_governor") if backend.runs_on_host else None,
        "freq_mhz": round(int(khz) / 1000) if khz and khz.isdigit() else None,
        "loadavg_1m": round(load[0], 2) if load else None,
    }
    for key in ("serial", "governor", "freq_mhz", "cpu_mask"):
        if desc.get(key) is not None and facts.get(key) is None:
            facts[key] = desc[key]
    return facts


def identity(facts: dict) -> str:
    """A short hash of the fields that must match for measurements to be mixed."""
    core = {k: facts.get(k) for k in IDENTITY_FIELDS}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]


def other_load(interval_s: float = 0.5) -> float:
    """Cores kept busy by processes other than this one and its children, over ``interval_s``."""
    import psutil

    me = psutil.Process()
    mine = {me.pid, *(c.pid for c in me.children(recursive=True))}
    procs = []
    for p in psutil.process_iter():
        if p.pid in mine:
            continue
        try:
            p.cpu_percent(None)  # first call starts the interval
            procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    time.sleep(interval_s)
    busy = 0.0
    for p in procs:
        try:
            busy += p.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return busy / 100.0


def check_quiet(limit_cores: float = BUSY_CORES, interval_s: float = 0.5) -> float:
    """Refuse to measure on the host while other processes keep more than ``limit_cores`` cores
    busy; returns the load found."""
    load = other_load(interval_s)
    if load > limit_cores:
        raise ConditionsError(
            f"the machine is busy: other processes keep {load:.2f} cores busy (limit "
            f"{limit_cores:g}); host timings taken now would be too slow, so nothing was "
            "measured: stop the other jobs and run the same command again"
        )
    return load
