"""The one interface every device backend implements: ``measure(tflite_path) -> LatencyStats``."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path


class BackendError(RuntimeError):
    """A device could not measure a model; the message says what failed and what to do."""


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one model on one device, in milliseconds.

    ``source`` says how the number was obtained: ``measured`` (timed on the device), ``mock``
    (a deterministic stand-in for CI), ``regression`` or ``estimate`` (predicted, never timed).
    ``extra`` carries backend facts worth keeping (core frequency, governor, warnings).
    """

    ms: float
    p10: float
    p90: float
    n: int
    source: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def dispersion(self) -> float:
        """(p90 - p10) / median: how much the runs disagree."""
        return (self.p90 - self.p10) / self.ms if self.ms > 0 else 0.0


class Backend(abc.ABC):
    """A device that can time a ``.tflite`` model. Subclasses implement :meth:`_measure`."""

    #: device name used for store files and LUT headers (``host``, ``mock``, ``pixel3``...)
    name: str = "device"

    def measure(self, tflite_path: str | Path) -> LatencyStats:
        path = Path(tflite_path)
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        return self._measure(path)

    @abc.abstractmethod
    def _measure(self, path: Path) -> LatencyStats: ...

    def describe(self) -> dict:
        """Facts about the device for the LUT header (model, cores, threads, tool versions)."""
        return {"name": self.name}

    def close(self) -> None:
        """Release the device (connections, pushed files)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
