"""What a run's numbers depend on besides its settings, and the mode that takes it out of play.

On one machine padnas runs are bit-identical; on another CPU they are not, because three libraries
pick their kernels by the instruction set they find, and each kernel rounds differently. Measured
on the development machine (Xeon with AVX-512 and AMX; one quick-preset supernet epoch on
Fashion-MNIST, weights hashed): capping any one of them at AVX2 changes the weights,

- ATen's vectorised kernels (``ATEN_CPU_CAPABILITY``: what :func:`torch.backends.cpu.
  get_cpu_capability` reports),
- oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``),
- MKL's matrix products (``MKL_ENABLE_INSTRUCTIONS``),

and the thread count changes float reductions. The deterministic mode (``--deterministic``) pins
each to its portable path: ATen's ``default`` kernels, oneDNN at SSE4.1 (every x86-64 CPU of the
last 15 years has it), MKL's conditional numerical reproducibility (``MKL_CBWR=COMPATIBLE``: the
same results on any CPU MKL runs on; without it, ``MKL_ENABLE_INSTRUCTIONS=AVX2`` alone still
changed the weights with the other two pinned), one thread, and
:func:`torch.use_deterministic_algorithms`. Disabling oneDNN instead of capping it also gives
portable convolutions but made an epoch 7.5x slower (64.5 s vs 8.6 s). The cost of the mode:
``benchmarks/deterministic_cost.py``, docs/reproduction.md.

These variables are read when the libraries load or first run, so they must be in the process's
environment before torch is imported: the ``padnas`` entry point re-executes itself with them
(:func:`pinned_environment`) and the command then checks that they took
(:func:`enter_deterministic_mode`).

This module imports torch only inside functions, so the entry point can use it before torch loads.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping

from padnas.core.errors import RuntimeFailure, UsageError

#: the environment of the deterministic mode: every CPU kernel on its portable path, one thread
PINNED_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
#: the variables that change which kernels run or how many threads share the work (recorded)
RECORDED_ENV = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
#: what the commands say when the environment is not the pinned one
HOW = "run it as `padnas ...` or `python -m padnas.cli ...`, which set it before torch loads"


def pinned_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with :data:`PINNED_ENV` laid over it (a cap a user set is replaced too: the
    mode's point is that the result does not depend on the machine or on such settings)."""
    return {**environ, **PINNED_ENV}


def is_pinned(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``environ`` (default: this process's) holds :data:`PINNED_ENV`."""
    environ = os.environ if environ is None else environ
    return all(environ.get(k) == v for k, v in PINNED_ENV.items())


def enter_deterministic_mode() -> None:
    """Make this process's torch deterministic: one thread, deterministic algorithms. Refuses
    (UsageError) when the environment is not pinned, and (RuntimeFailure) when torch loaded its
    kernels before it was: the mode never runs half-way."""
    if not is_pinned():
        wrong = ", ".join(f"{k}={v}" for k, v in PINNED_ENV.items() if os.environ.get(k) != v)
        raise UsageError(
            f"--deterministic needs the CPU environment pinned before torch loads ({wrong}): {HOW}"
        )
    import torch

    found = torch.backends.cpu.get_cpu_capability()
    if found != "DEFAULT":
        raise RuntimeFailure(
            f"--deterministic: torch runs {found} kernels although ATEN_CPU_CAPABILITY=default "
            f"(torch chose them before the variable was set): {HOW}"
        )
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def deterministic_mode() -> bool:
    """Whether this process runs in the deterministic mode (pinned and entered)."""
    import torch

    return is_pinned() and torch.are_deterministic_algorithms_enabled()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; what Python's platform module knows
    elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _library_versions(config: str) -> dict[str, str | None]:
    """oneDNN and MKL versions from ``torch.__config__.show()`` (torch has no other API)."""
    onednn = re.search(r"(?:MKL-DNN|oneDNN)[^\n]*?v(\d+(?:\.\d+)+)", config)
    mkl = re.search(r"Math Kernel Library Version (\d+(?:\.\d+)*)", config)
    return {
        "onednn": onednn.group(1) if onednn else None,
        "mkl": mkl.group(1) if mkl else None,
    }


def platform_record() -> dict:
    """What this process computes with (recorded in a run's ``config.json``): the CPU and the
    kernels torch picked for it, torch and its oneDNN and MKL, threads, the variables that
    steer them (null when unset) and whether the deterministic mode is on."""
    import torch

    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        **_library_versions(torch.__config__.show()),
        "mkldnn_enabled": bool(torch.backends.mkldnn.enabled)
        and torch.backends.mkldnn.is_available(),
        "threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in RECORDED_ENV},
        "deterministic": deterministic_mode(),
    }


#: the fields of :func:`platform_record` whose change can change a run's numbers
NUMERIC_FIELDS = ("cpu_capability", "torch", "onednn", "mkl", "mkldnn_enabled", "threads", "env")


def platform_change(saved: Mapping | None, now: Mapping) -> list[str]:
    """The numeric fields (:data:`NUMERIC_FIELDS`, and the CPU) that differ between a run's
    recorded platform and this one, as ``field: old -> new``; empty when nothing is recorded."""
    if not isinstance(saved, Mapping):
        return []
    return [
        f"{k}: {saved.get(k)} -> {now.get(k)}"
        for k in ("cpu", *NUMERIC_FIELDS)
        if saved.get(k) != now.get(k)
    ]
