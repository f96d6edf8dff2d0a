"""How is a phone reached over ADB and timed with ``benchmark_model``?

``transport``: adb-shell connections with timeouts and retries; ``binary``: the pushed
``benchmark_model``; ``output``: its timing lines parsed; ``discovery``: reachable phones;
``backend``: :class:`AdbBackend`, the :class:`~latency.backends.base.Backend` built on them.
"""

from latency.backends.adb.backend import AdbBackend, DeviceLost, DeviceThrottled
from latency.backends.adb.cpus import AdbProfileError
from latency.backends.adb.output import BenchmarkOutputError, parse_benchmark_output
from latency.backends.adb.transport import AdbError, AdbLink, AdbNoDevice, AdbSerialError

__all__ = [
    "AdbBackend",
    "AdbError",
    "AdbLink",
    "AdbNoDevice",
    "AdbProfileError",
    "AdbSerialError",
    "BenchmarkOutputError",
    "DeviceLost",
    "DeviceThrottled",
    "parse_benchmark_output",
]
