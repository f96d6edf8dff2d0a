"""A deterministic stand-in device for CI: latencies computed from a block's real cost features.

Nothing is timed, so every number it returns is labelled ``source: mock``. Latency is a linear
cost model over the variant's MACs (pointwise, depthwise, full conv, classifier) and activation
elements, with coefficients from the profile's ``"mock"`` section, times a small per-key jitter
derived from a hash (so a regression fitted on it has real, reproducible residuals). A whole
network costs ``net_scale · sum(blocks) + net_offset_ms`` with its own hash jitter, so calibration
and validation have a non-trivial gap to close, as on a real device.

Because it needs no ``.tflite``, the mock profiles a whole space in well under a second; it can
still time an exported file through the sidecar JSON the exporter writes next to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from latency.backends.base import Backend, BackendError, LatencyStats
from latency.variants import Variant, arch_variants, shape_key
from padnas.core import read_json
from padnas.space import SearchSpace

DEFAULTS = {
    "overhead_ms": 0.024,
    "ms_per_mmac_pw": 0.096,
    "ms_per_mmac_dw": 0.28,
    "ms_per_mmac_full": 0.24,
    "ms_per_mmac_fc": 0.16,
    "ms_per_melem": 1.2,
    "jitter": 0.04,
    "spread": 0.03,
    "net_scale": 1.08,
    "net_offset_ms": 0.4,
    "net_jitter": 0.01,
}


def _unit(text: str) -> float:
    """A deterministic number in [-1, 1) from a string."""
    h = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return h / 2**63 - 1.0


class MockBackend(Backend):
    """Deterministic latencies from the profile's coefficients (``profile["mock"]``)."""

    needs_files = False

    source = "mock"

    def __init__(self, profile: dict) -> None:
        self.profile = profile
        self.name = profile.get("name", "mock")
        unknown = set(profile.get("mock", {})) - set(DEFAULTS)
        if unknown:
            raise BackendError(f"mock profile: unknown coefficients {sorted(unknown)}")
        self.coef = {**DEFAULTS, **profile.get("mock", {})}

    def _stats(self, ms: float) -> LatencyStats:
        s = self.coef["spread"]
        return LatencyStats(ms, ms * (1 - s), ms * (1 + s), 0, self.source)

    def variant_ms(self, variant: Variant) -> float:
        f, c = variant.features(), self.coef
        mm = 1e-6
        ms = (
            c["overhead_ms"]
            + c["ms_per_mmac_pw"] * f["macs_pw"] * mm
            + c["ms_per_mmac_dw"] * f["macs_dw"] * mm
            + c["ms_per_mmac_full"] * f["macs_full"] * mm
            + c["ms_per_mmac_fc"] * f["macs_fc"] * mm
            + c["ms_per_melem"] * (f["act_in"] + f["act_hidden"] + f["act_out"]) * mm
        )
        # one jitter per shape: a ReLU and a ReLU6 block of one shape cost the same, as on a phone
        return ms * (1 + c["jitter"] * _unit(shape_key(variant.key)))

    def measure_variant(self, variant: Variant) -> LatencyStats:
        """Latency of one block without exporting it."""
        return self._stats(self.variant_ms(variant))

    def measure_variants(self, variants: Sequence[Variant], label: str) -> LatencyStats:
        """Latency of a whole network given the blocks it runs (``label`` seeds its jitter)."""
        c = self.coef
        total = sum(self.variant_ms(v) for v in variants)
        ms = (c["net_scale"] * total + c["net_offset_ms"]) * (1 + c["net_jitter"] * _unit(label))
        return self._stats(ms)

    def measure_arch(
        self, space, arch, resolution: int = 224, width_mult: float = 1.0, num_classes: int = 1000
    ) -> LatencyStats:
        """Latency of a whole network of ``arch`` without exporting it."""

        arch = space.validate(arch)
        vs = arch_variants(space, arch, resolution, width_mult, num_classes)
        return self.measure_variants(vs, f"{space.family}:{resolution}:{width_mult}:{arch}")

    def _measure(self, path: Path) -> LatencyStats:
        """Time an exported file through its sidecar (``<name>.json`` written by the exporter)."""
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise BackendError(
                f"the mock device times only models exported by padnas (no {sidecar.name} "
                f"beside {path.name}); export with padnas-latency or use a real device"
            )
        meta = read_json(sidecar, expect=dict)
        if "variant" in meta:
            return self.measure_variant(Variant.from_key(meta["variant"]))
        if "arch" in meta:
            space = SearchSpace.from_family(meta["family"])
            return self.measure_arch(
                space,
                meta["arch"],
                meta["resolution"],
                meta.get("width_mult", 1.0),
                meta.get("num_classes", 1000),
            )
        raise BackendError(f"{sidecar}: names neither a variant nor an arch")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "transport": "mock",
            "description": self.profile.get("description", ""),
            "mock": self.coef,
        }
