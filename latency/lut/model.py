"""Vectorised latency of architectures from a LUT: one gather and one sum for many archs.

The search evaluates latency for every candidate of every generation (and the pruning step for
whole fronts), so :class:`LatencyModel` precomputes a ``[num_layers, max_ops]`` table for the
(possibly pruned) space: ``table[j, g]`` is the LUT latency of op ``g`` of layer ``j`` (0 for
identity). An ``(n, num_layers)`` genome array then costs ``table[j, genome[:, j]]`` summed over
``j``, plus the stem and head, then the LUT's calibration ``scale · raw + offset_ms``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from latency.lut.table import Lut, LutError
from latency.variants import arch_variants, layer_variants
from padnas.space import Arch, SearchSpace, SpaceError

_CHUNK = 32768


class LatencyModel:
    """Latency (ms) of architectures of one space, from one LUT (calibrated when it has one)."""

    def __init__(
        self,
        space: SearchSpace,
        table: np.ndarray,
        fixed_ms: float,
        lut: Lut,
        entries: dict[str, dict],
    ) -> None:
        self.space = space
        self.per_layer_table = table
        self.fixed_ms = float(fixed_ms)
        self.lut = lut
        #: the entries used (the LUT's, plus regression fills when asked for)
        self.entries = entries
        #: the sources of the entries this space uses (``measured``, ``regression``...)
        self.sources = self._sources()
        self.calibration = dict(lut.calibration) if lut.calibration else None
        num_ops = np.asarray(space.num_ops, dtype=np.int64)
        self._num_ops = num_ops
        self._offsets = np.arange(space.num_layers, dtype=np.int64) * table.shape[1]
        self._flat = np.ascontiguousarray(table).ravel()

    @classmethod
    def from_lut(cls, lut: Lut, space: SearchSpace, *, fill_missing: bool = False) -> LatencyModel:
        """Build for ``space`` (full or pruned) at the LUT's resolution and width.

        Raises LutError when the LUT is for another family or space version, or lacks keys the
        space needs; ``fill_missing`` fills such holes with the regression fallback instead.
        """
        lut.check_space(space)
        lv = layer_variants(space, lut.resolution, lut.width_mult, lut.num_classes)
        needed = [v for v in lv.all() if v.key not in lut.entries]
        entries = dict(lut.entries)
        if needed:
            if not fill_missing:
                raise LutError(
                    f"the LUT ({lut.label}, {lut.device_name}) lacks {len(needed)} of the "
                    f"space's variants, e.g. {needed[0].key}; re-export it with "
                    "padnas-latency export-lut (fills holes by regression)"
                )
            from latency.lut.regression import fill_holes  # scikit-learn: only for holes

            filled, _ = fill_holes(lut, needed)
            entries.update({k: {"ms": ms, "source": "regression"} for k, ms in filled.items()})
        max_ops = max(space.num_ops)
        table = np.zeros((space.num_layers, max_ops), dtype=np.float64)
        for j, row in enumerate(lv.layers):
            for g, op in enumerate(space.layer_ops[j]):
                v = row[op]
                if v is not None:
                    table[j, g] = entries[v.key]["ms"]
            table[j, len(space.layer_ops[j]) :] = np.nan  # padding: never a valid gene
        fixed = entries[lv.stem.key]["ms"] + entries[lv.head.key]["ms"]
        used = {v.key: entries[v.key] for v in lv.all()}
        return cls(space, table, fixed, lut, used)

    def _sources(self) -> set[str]:
        return {e["source"] for e in self.entries.values()}

    # ---- prediction -------------------------------------------------------------------------
    def genomes(self, archs: Iterable[Arch | str] | np.ndarray, check: bool = True) -> np.ndarray:
        """An ``(n, num_layers)`` int array from genomes, Arch values or arch strings."""
        if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu":
            g = archs.reshape(1, -1) if archs.ndim == 1 else archs
            if g.ndim != 2 or g.shape[1] != self.space.num_layers:
                raise SpaceError(
                    f"genomes must have shape (n, {self.space.num_layers}), got {archs.shape}"
                )
            if check:
                self._check(g, 0)
            return g
        if isinstance(archs, (str, Arch)):
            archs = [archs]
        rows = [self.space.encode(a) for a in archs]
        if not rows:
            return np.zeros((0, self.space.num_layers), dtype=np.int64)
        return np.stack(rows)

    def _check(self, g: np.ndarray, start: int) -> None:
        bad = (g < 0) | (g >= self._num_ops)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise SpaceError(
                f"genome {start + i}: gene {g[i, j]} of layer {j} is out of range "
                f"0..{self._num_ops[j] - 1}"
            )

    def raw(self, archs: Iterable[Arch | str] | np.ndarray) -> np.ndarray:
        """Uncalibrated LUT sums (ms), shape ``(n,)``."""
        g = self.genomes(archs, check=False)
        out = np.empty(len(g), dtype=np.float64)
        # chunks keep the index temporaries in cache: ~10x faster than one big gather
        for s in range(0, len(g), _CHUNK):
            idx = g[s : s + _CHUNK] + self._offsets
            self._check(g[s : s + _CHUNK], s)
            out[s : s + _CHUNK] = np.take(self._flat, idx).sum(axis=1)
        return out + self.fixed_ms

    def predict(self, archs: Iterable[Arch | str] | np.ndarray) -> np.ndarray:
        """Latency (ms) of each architecture: LUT sum, calibrated when the LUT has one."""
        return self.calibrate(self.raw(archs))

    def calibrate(self, raw_ms):
        return self.lut.calibrate(raw_ms)

    def reachable_range(self) -> tuple[float, float]:
        """(fastest, slowest) latency any architecture of this space can have (calibrated)."""
        lo = np.nanmin(self.per_layer_table, axis=1).sum() + self.fixed_ms
        hi = np.nanmax(self.per_layer_table, axis=1).sum() + self.fixed_ms
        return float(self.calibrate(lo)), float(self.calibrate(hi))

    def breakdown(self, arch: Arch | str) -> list[tuple[str, float]]:
        """(variant key, ms) per block of one architecture, uncalibrated (for reports)."""

        lut = self.lut
        vs = arch_variants(self.space, arch, lut.resolution, lut.width_mult, lut.num_classes)
        return [(v.key, float(self.entries[v.key]["ms"])) for v in vs]

    def describe(self) -> str:
        lo, hi = self.reachable_range()
        cal = "calibrated" if self.calibration else "raw"
        return (
            f"{self.lut.device_name} {self.lut.label} LUT ({cal}; sources: "
            f"{', '.join(sorted(self.sources))}); reachable {lo:.2f}..{hi:.2f} ms"
        )
