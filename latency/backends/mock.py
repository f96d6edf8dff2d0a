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
from latency.errors import ModelFileError
from latency.variants import DEFAULT_PRECISION, PRECISIONS, Variant, arch_variants, shape_key
from padnas.core import read_json
from padnas.core.errors import UsageError
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
    "int8_scale": 0.6,
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

    def _precision(self, precision: str) -> float:
        """The factor an int8 file runs at against the float one (``int8_scale``)."""
        if precision not in PRECISIONS:
            raise BackendError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        return 1.0 if precision == DEFAULT_PRECISION else self.coef["int8_scale"]

    def measure_variant(self, variant: Variant, precision: str = DEFAULT_PRECISION) -> LatencyStats:
        """Latency of one block without exporting it."""
        return self._stats(self.variant_ms(variant) * self._precision(precision))

    def measure_variants(
        self, variants: Sequence[Variant], label: str, precision: str = DEFAULT_PRECISION
    ) -> LatencyStats:
        """Latency of a whole network given the blocks it runs (``label`` seeds its jitter)."""
        c = self.coef
        total = sum(self.variant_ms(v) for v in variants) * self._precision(precision)
        ms = (c["net_scale"] * total + c["net_offset_ms"]) * (1 + c["net_jitter"] * _unit(label))
        return self._stats(ms)

    def measure_arch(
        self,
        space,
        arch,
        resolution: int = 224,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        precision: str = DEFAULT_PRECISION,
    ) -> LatencyStats:
        """Latency of a whole network of ``arch`` without exporting it."""

        arch = space.validate(arch)
        vs = arch_variants(space, arch, resolution, width_mult, num_classes)
        label = f"{space.family}:{resolution}:{width_mult}:{arch}"
        return self.measure_variants(vs, label, precision)

    def _measure(self, path: Path) -> LatencyStats:
        """Time an exported file through its sidecar (``<name>.json`` written by the exporter)."""
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise BackendError(
                f"the mock device times only models exported by padnas (no {sidecar.name} "
                f"beside {path.name}); export with padnas-latency or use a real device"
            )
        meta = read_sidecar(sidecar)
        if "variant" in meta:
            return self.measure_variant(meta["variant"], meta["precision"])
        return self.measure_arch(
            meta["space"],
            meta["arch"],
            meta["resolution"],
            meta["width_mult"],
            meta["num_classes"],
            meta["precision"],
        )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "transport": "mock",
            "description": self.profile.get("description", ""),
            "mock": self.coef,
        }


#: the largest input the mock prices from a sidecar: padnas exports multiples of 32, and past
#: 1024 x 1024 a "latency" would only be the cost model extrapolated into nonsense
MAX_SIDECAR_RESOLUTION = 1024
_REEXPORT = "re-export the model with padnas (padnas export / padnas-latency export)"


def read_sidecar(sidecar: Path) -> dict:
    """The checked sidecar of an exported model: ``{"variant": Variant}`` or ``{"space",
    "arch", "resolution", "width_mult", "num_classes"}``, every value of the right type and in
    range; anything else is a :class:`ModelFileError` naming the sidecar (exit 2)."""
    meta = read_json(sidecar, expect=dict)

    def refuse(what: str) -> ModelFileError:
        return ModelFileError(f"{sidecar}: {what}; {_REEXPORT}")

    if "unit" in meta or "network" in meta:  # padnas's own files, priced from descriptions
        what = "a network unit" if "unit" in meta else "a described network"
        raise ModelFileError(
            f"{sidecar}: the mock prices {what} from its layer list, not from its file: "
            "measure the NET.json or MODEL.onnx it came from with --device mock"
        )
    precision = meta.get("precision", DEFAULT_PRECISION)
    if precision not in PRECISIONS:
        raise refuse(f"'precision' must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if "variant" in meta:
        if not isinstance(meta["variant"], str):
            raise refuse(f"'variant' must be a block key, not {meta['variant']!r}")
        try:
            return {"variant": Variant.from_key(meta["variant"]), "precision": precision}
        except UsageError as exc:
            raise refuse(str(exc)) from None
    if "arch" not in meta:
        raise refuse("names neither a variant nor an arch")
    missing = [k for k in ("family", "resolution") if k not in meta]
    if missing:
        raise refuse(f"an arch's sidecar needs {' and '.join(map(repr, missing))}")
    res = meta["resolution"]
    if isinstance(res, bool) or not isinstance(res, int):
        raise refuse(f"'resolution' must be an integer, not {res!r}")
    if not 32 <= res <= MAX_SIDECAR_RESOLUTION or res % 32:
        raise refuse(
            f"'resolution' {res} is not supported: use a multiple of 32 from 32 to "
            f"{MAX_SIDECAR_RESOLUTION}"
        )
    width = meta.get("width_mult", 1.0)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0.05 <= width <= 4:
        raise refuse(f"'width_mult' must be a number from 0.05 to 4, not {width!r}")
    classes = meta.get("num_classes", 1000)
    if isinstance(classes, bool) or not isinstance(classes, int) or not 1 <= classes <= 100_000:
        raise refuse(f"'num_classes' must be an integer from 1 to 100000, not {classes!r}")
    if not isinstance(meta["family"], str) or not isinstance(meta["arch"], str):
        raise refuse("'family' and 'arch' must be strings")
    try:
        space = SearchSpace.from_family(meta["family"])
        arch = space.validate(meta["arch"])
    except UsageError as exc:
        raise refuse(str(exc)) from None
    return {
        "space": space,
        "arch": arch,
        "resolution": res,
        "width_mult": float(width),
        "num_classes": classes,
        "precision": precision,
    }
