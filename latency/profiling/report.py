"""What a profile run did: counts, failures and the export / measurement time split."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProfileReport:
    """What a ``profile`` run did, with the export / measurement time split."""

    device: str
    total: int
    reused: int = 0
    measured: int = 0
    exported: int = 0  # converted in this run
    export_cached: int = 0  # .tflite found in the cache
    export_s: float = 0.0  # conversion seconds summed over workers
    export_wall_s: float = 0.0  # wall time of the conversion phase (when not overlapped)
    measure_s: float = 0.0  # seconds spent timing on the device
    passes: int = 1  # passes over every block measured in this run
    wall_s: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def count_export(self, res) -> None:
        """Tally one export result (an ``export_pool`` result that did not fail)."""
        if res.cached:
            self.export_cached += 1
        else:
            self.exported += 1
            self.export_s += res.seconds

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["failed"] = [list(f) for f in self.failed]
        return d

    def summary(self) -> str:
        parts = [
            f"{self.device}: {self.total} variants, {self.reused} already stored, "
            f"{self.measured} measured",
        ]
        if self.exported or self.export_cached:
            phase = f", {self.export_wall_s:.1f} s wall" if self.export_wall_s else ""
            parts.append(
                f"export {self.exported} converted ({self.export_s:.1f} s of worker time"
                f"{phase}), {self.export_cached} cached"
            )
        parts.append(f"measure {self.measure_s:.1f} s, wall {self.wall_s:.1f} s")
        if self.failed:
            parts.append(f"{len(self.failed)} FAILED (first: {self.failed[0][0]})")
        return "; ".join(parts)
