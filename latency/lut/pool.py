"""One table per device and resolution for networks: the families of a profile, pooled.

An entry's key names its full shape (``ibconv-k3-e1-s1-i112x112x16-o112x112x16``), so a unit costs
the same whatever space it was profiled for, and a device's LUTs at one resolution are one pool
of measurements. A network (a NET.json or an ONNX graph) is priced from the pool, so its price
never depends on which family happens to share most of its keys, and the regression fallback is
fitted on every entry of the pool. An ARCH string keeps its own family's table.

Pooling is only sound when the families agree: :func:`agreements` compares every pair of LUTs on
their shared keys, and :func:`pool_luts` refuses families that differ on a shared key by more than
the tolerance (3 %), naming the key, and LUTs of different devices or calibrations, instead of
mixing them silently. ``padnas-latency validate PROFILE`` prints the same comparison.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from latency.errors import LatencyRuntimeError
from latency.lut.table import OBSERVED, Lut, LutError
from latency.variants import DEFAULT_PRECISION, clipping_twin, shape_key

#: largest relative difference two families may show on one shared key
AGREEMENT_TOLERANCE = 0.03


class LutDisagreement(LatencyRuntimeError):
    """A device's tables disagree on shared shapes (``validate PROFILE`` fails: exit 1)."""


@dataclass(frozen=True)
class Agreement:
    """How two LUTs of one device compare on the shapes they share."""

    first: str
    second: str
    shared: int
    median_ratio: float | None  # second / first, over the shared keys
    worst_key: str | None
    worst_ratio: float | None

    def holds(self, tolerance: float = AGREEMENT_TOLERANCE) -> bool:
        return self.worst_ratio is None or abs(self.worst_ratio - 1.0) <= tolerance

    def line(self, tolerance: float = AGREEMENT_TOLERANCE) -> str:
        verdict = "agree" if self.holds(tolerance) else "DISAGREE"
        if not self.shared:
            return f"{self.first} vs {self.second}: no shared shapes"
        return (
            f"{self.first} vs {self.second}: {self.shared} shared shapes, {verdict} "
            f"(median ratio {self.median_ratio:.3f}, worst {self.worst_ratio:.3f} at "
            f"{self.worst_key})"
        )

    def to_dict(self, tolerance: float = AGREEMENT_TOLERANCE) -> dict:
        return {
            "luts": [self.first, self.second],
            "shared": self.shared,
            "median_ratio": self.median_ratio,
            "worst_key": self.worst_key,
            "worst_ratio": self.worst_ratio,
            "agree": self.holds(tolerance),
        }


def agreement(a: Lut, b: Lut) -> Agreement:
    """``b``'s entries over ``a``'s on the shapes both hold (see :func:`shape_key`)."""
    a_ms = {shape_key(k): a.ms(k) for k in a.entries}
    b_ms = {shape_key(k): b.ms(k) for k in b.entries}
    shared = sorted(set(a_ms) & set(b_ms))
    if not shared:
        return Agreement(a.label, b.label, 0, None, None, None)
    ratios = {k: b_ms[k] / a_ms[k] for k in shared if a_ms[k] > 0}
    worst = max(ratios, key=lambda k: abs(ratios[k] - 1.0))
    return Agreement(
        a.label, b.label, len(shared), statistics.median(ratios.values()), worst, ratios[worst]
    )


def agreements(luts: Sequence[Lut]) -> list[Agreement]:
    """Every pair of LUTs of one device at one resolution and width, compared."""
    out = []
    for a, b in combinations(luts, 2):
        if (a.resolution, a.width_mult, a.precision) == (b.resolution, b.width_mult, b.precision):
            out.append(agreement(a, b))
    return out


def pool_luts(luts: Sequence[Lut], tolerance: float = AGREEMENT_TOLERANCE) -> Lut:
    """One LUT holding every entry of ``luts`` (one device, one calibration, agreeing families).

    A key several families hold takes an observed entry (measured, mock) before a predicted one,
    then the first family's in name order; ``provenance["entry_families"]`` says which families
    held each key. A shape held under ReLU only also prices it under ReLU6 and the other way
    round (TFLite fuses both into the conv at one cost: :func:`latency.variants.clipping_twin`);
    its families then read ``basic (as <key>)``."""
    if not luts:
        raise LutError("no LUTs to pool")
    luts = sorted(luts, key=lambda lut: lut.label)
    precisions = {lut.precision for lut in luts}
    if len(precisions) > 1:
        raise LutError(
            f"cannot pool LUTs of different precisions ({', '.join(sorted(precisions))})"
        )
    devices = {lut.device_name for lut in luts}
    if len(devices) > 1:
        raise LutError(f"cannot pool LUTs of different devices ({', '.join(sorted(devices))})")
    calibrations = {_calibration_key(lut) for lut in luts}
    if len(calibrations) > 1:
        raise LutError(
            f"cannot pool {', '.join(lut.label for lut in luts)}: their calibrations differ; "
            "calibrate them together (padnas-latency validate --lut ... -o ...)"
        )
    for agree in agreements(luts):
        if not agree.holds(tolerance):
            raise LutError(
                f"the {agree.first} and {agree.second} tables of {luts[0].device_name} disagree "
                f"on {agree.worst_key} ({agree.worst_ratio:.2f}x, tolerance {tolerance:.0%}): "
                "they were measured under different conditions; re-measure the odd one out "
                "(padnas-latency validate PROFILE compares them all)"
            )
    entries: dict[str, dict] = {}
    families: dict[str, list[str]] = {}
    for lut in luts:
        for key, entry in lut.entries.items():
            families.setdefault(key, []).append(lut.family)
            held = entries.get(key)
            if held is None or (held["source"] not in OBSERVED and entry["source"] in OBSERVED):
                entries[key] = entry
    for key in list(entries):
        twin = clipping_twin(key)
        if twin is not None and twin not in entries:
            entries[twin] = entries[key]
            families[twin] = [f"{family} (as {key})" for family in families[key]]
    names = "+".join(lut.family for lut in luts)
    first = luts[0]
    return Lut(
        device=first.device,
        family=names,
        space_signature="pool-" + hashlib.sha256(names.encode()).hexdigest()[:8],
        resolution=first.resolution,
        entries=entries,
        width_mult=first.width_mult,
        num_classes=first.num_classes,
        precision=first.precision,
        calibration=dict(first.calibration) if first.calibration else None,
        provenance={
            "pooled": [lut.label for lut in luts],
            "entry_families": families,
            # one calibration, hence one transfer fit: its fitted range bounds the pool too
            **{k: v for k, v in first.provenance.items() if k in ("transfer", "warning")},
        },
    )


def _calibration_key(lut: Lut) -> tuple | None:
    c = lut.calibration
    return None if not c else (round(c["scale"], 9), round(c["offset_ms"], 9))


def network_pool(
    luts: Sequence[Lut], resolution: int | None, precision: str = DEFAULT_PRECISION
) -> Lut:
    """The pool a network of input ``resolution`` is priced from: the LUTs of ``precision`` at
    that resolution (width 1), or, when the file has none, every LUT of width 1 (the regression
    fallback prices the shapes they lack)."""
    luts = [lut for lut in luts if lut.precision == precision]
    if not luts:
        raise LutError(f"the file holds no {precision} LUT to price the network with")
    full = [lut for lut in luts if lut.width_mult == 1.0] or list(luts)
    at_res = [lut for lut in full if lut.resolution == resolution]
    return pool_luts(at_res or _one_resolution(full))


def _one_resolution(luts: Sequence[Lut]) -> list[Lut]:
    """The LUTs of the largest resolution the file holds (one calibration per resolution)."""
    top = max(lut.resolution for lut in luts)
    return [lut for lut in luts if lut.resolution == top]
