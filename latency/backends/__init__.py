"""Which devices can time a ``.tflite``, and through which one interface?

:class:`Backend` declares every capability with a default; ``host`` (LiteRT on this machine),
``mock`` (deterministic, for CI) and ``adb/`` (a phone) implement it. Concrete backends are made
from a device profile by :func:`latency.devices.make_backend`.
"""

from latency.backends.base import Backend, BackendError, LatencyStats

__all__ = ["Backend", "BackendError", "LatencyStats"]
