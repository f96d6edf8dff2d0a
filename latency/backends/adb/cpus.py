"""Which phone cores a profile selects: ``taskset`` hex masks and sysfs CPU lists.

A mask that selects no core, or a core the phone lacks, is a profile error (exit 2) found before
anything is timed.
"""

from __future__ import annotations

from latency.errors import LatencyUsageError


class AdbProfileError(LatencyUsageError):
    """A device profile or option the adb backend cannot use (exit 2)."""


def parse_mask(mask: str) -> list[int]:
    """CPUs selected by a ``taskset`` hex mask (``80`` -> [7], ``f0`` -> [4, 5, 6, 7])."""
    text = str(mask).lower().removeprefix("0x")
    try:
        bits = int(text, 16)
    except ValueError:
        raise AdbProfileError(
            f"cpu_mask {mask!r} is not a hex CPU mask (e.g. '80' = CPU7)"
        ) from None
    if bits <= 0:
        raise AdbProfileError(f"cpu_mask {mask!r} selects no CPU")
    return [i for i in range(bits.bit_length()) if bits >> i & 1]


def parse_cpu_list(text: str) -> set[int]:
    """CPUs of a sysfs list such as ``0-3,6`` (``/sys/devices/system/cpu/possible``)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus.update(range(int(a), int(b) + 1))
        elif part.strip():
            cpus.add(int(part))
    return cpus
