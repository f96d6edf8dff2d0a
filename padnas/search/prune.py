"""Operation pruning (paper Section 3.2): per-layer op distributions from the best fronts.

The probability p^{i,j} of op i in layer j is estimated by counting how often the architectures
near the Pareto front use it. The one-shot accuracies behind the front are noisy (weight
coupling), so not only rank 1 counts: every architecture of non-domination rank < 10 does.
Ops with p <= P_th are removed; a layer always keeps at least its most frequent op(s), so the
pruned space is never empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from padnas.core.errors import UsageError
from padnas.space import CATALOGUES, Arch, SearchSpace

#: the paper counts architectures whose non-domination rank is smaller than 10
MAX_RANK = 10
#: the paper's probability threshold P_th (1%)
DEFAULT_P_TH = 0.01


@dataclass(frozen=True)
class OpDistribution:
    """Normalised op frequencies per layer over the ops of ``space`` (zeros included)."""

    space: SearchSpace
    probs: tuple[tuple[float, ...], ...]  # probs[j][i] for op space.layer_ops[j][i]
    count: int  # architectures the frequencies were counted over

    @classmethod
    def estimate(cls, space: SearchSpace, archs: Sequence[Arch]) -> OpDistribution:
        if not archs:
            raise ValueError("cannot estimate an op distribution from zero architectures")
        genomes = np.stack([space.encode(a) for a in archs])
        probs = []
        for j, n_ops in enumerate(space.num_ops):
            counts = np.bincount(genomes[:, j], minlength=n_ops).astype(float)
            probs.append(tuple((counts / counts.sum()).tolist()))
        return cls(space, tuple(probs), len(archs))

    def layer(self, j: int) -> dict[str, float]:
        return dict(zip(self.space.layer_ops[j], self.probs[j], strict=True))

    def matrix(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """(num_layers, catalogue size) probabilities over the family's whole op catalogue; ops a
        layer no longer has are NaN (so a heatmap tells 'pruned before' from 'never chosen')."""
        catalogue = CATALOGUES[self.space.family]
        first = tuple(op for op in _first_layer_ops(self.space) if op not in catalogue)
        columns = (*first, *catalogue)
        out = np.full((self.space.num_layers, len(columns)), np.nan)
        for j, ops in enumerate(self.space.layer_ops):
            for op, p in zip(ops, self.probs[j], strict=True):
                out[j, columns.index(op)] = p
        return out, columns

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "space_signature": self.space.signature,
            "layers": [self.layer(j) for j in range(self.space.num_layers)],
        }

    @classmethod
    def from_json(cls, space: SearchSpace, data: dict) -> OpDistribution:
        probs = []
        for j, layer in enumerate(data["layers"]):
            probs.append(tuple(float(layer[op]) for op in space.layer_ops[j]))
        return cls(space, tuple(probs), int(data["count"]))


def _first_layer_ops(space: SearchSpace) -> tuple[str, ...]:
    return SearchSpace.from_family(space.family).layer_ops[0]


@dataclass(frozen=True)
class PruneResult:
    space: SearchSpace
    removed: tuple[tuple[str, ...], ...]  # per layer, the ops removed
    kept_by_rule: tuple[int, ...]  # layers where every op was <= P_th and the best were kept


def check_p_th(p_th: float) -> None:
    """Refuse a threshold outside [0, 1) (1 would remove every op of every layer)."""
    if not 0 <= p_th < 1:
        raise UsageError(f"must be in [0, 1), got {p_th}", param="p_th")


def prune(distribution: OpDistribution, p_th: float = DEFAULT_P_TH) -> PruneResult:
    """Remove ops with p <= ``p_th``; a layer whose ops would all go keeps its most frequent."""
    check_p_th(p_th)
    space = distribution.space
    keep, removed, rescued = [], [], []
    for j, ops in enumerate(space.layer_ops):
        p = np.asarray(distribution.probs[j])
        mask = p > p_th
        if not mask.any():
            mask = p == p.max()
            rescued.append(j)
        keep.append([op for op, m in zip(ops, mask, strict=True) if m])
        removed.append(tuple(op for op, m in zip(ops, mask, strict=True) if not m))
    return PruneResult(space.with_layer_ops(keep), tuple(removed), tuple(rescued))
