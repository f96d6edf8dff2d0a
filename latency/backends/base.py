"""The one interface every device backend implements: ``measure(tflite_path) -> LatencyStats``."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path

from latency.errors import BackendError

__all__ = ["Backend", "BackendError", "LatencyStats"]


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
    """A device that can time a ``.tflite`` model. Subclasses implement :meth:`_measure`.

    Every capability a caller may use is declared here with a default, so a caller asks the
    backend (``backend.needs_files``, ``backend.cpu``) instead of probing for attributes:

    * ``needs_files`` — False for a backend that prices op variants, units and whole networks
      from their description (the mock); it then implements :meth:`measure_variant`,
      :meth:`measure_variants` and :meth:`measure_arch`, and callers skip exporting.
    * ``runs_on_host`` — the device is this machine, so conversion must not run beside timing.
    * ``cpu`` — the host core the backend times on (export workers stay off it), or None.
    * ``passes`` — how many passes a profile makes over the blocks it measures.
    * ``serial`` — which of several phones of one model this is (None: the only one).
    """

    #: device name used for store files and LUT headers (``host``, ``mock``, ``pixel3``...)
    name: str = "device"
    needs_files: bool = True
    runs_on_host: bool = False
    cpu: int | None = None
    passes: int = 1
    serial: str | None = None

    @property
    def label(self) -> str:
        """The phone's serial when it has one, else the device name (for messages)."""
        return self.serial or self.name

    def measure(self, tflite_path: str | Path) -> LatencyStats:
        path = Path(tflite_path)
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        return self._measure(path)

    @abc.abstractmethod
    def _measure(self, path: Path) -> LatencyStats: ...

    def measure_variant(self, variant, precision: str = "fp32") -> LatencyStats:
        """Latency of one op variant (or network unit) without its file; ``needs_files=False``."""
        raise NotImplementedError(f"{type(self).__name__} measures files only")

    def measure_variants(self, variants, label: str) -> LatencyStats:
        """Latency of a whole network from its blocks, without a file; ``needs_files=False``."""
        raise NotImplementedError(f"{type(self).__name__} measures files only")

    def measure_arch(
        self,
        space,
        arch,
        resolution: int = 224,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        precision: str = "fp32",
    ) -> LatencyStats:
        """Latency of a whole architecture without a file; ``needs_files=False``."""
        raise NotImplementedError(f"{type(self).__name__} measures files only")

    def describe(self) -> dict:
        """Facts about the device for the LUT header (model, cores, threads, tool versions)."""
        return {"name": self.name}

    def close(self) -> None:
        """Release the device (connections, pushed files)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
