"""Activations of path prefixes that one-shot evaluation has already run, kept within a budget.

Everything one-shot evaluation computes up to a layer depends only on the ops before it: in the
recalibration pass each BN normalises by its batch's statistics, so a layer's outputs (and the
statistics it is recalibrated to) are a function of the path's prefix; in the eval pass the
prefix's recalibrated statistics are fixed too. Architectures a search compares share long
prefixes (offspring of the same parents; in the quick preset's main job about 45 % of the eval
pass's work lies in a prefix an earlier architecture of the same search already ran), so an
evaluator that keeps each prefix's outputs can start a new architecture where its longest
evaluated prefix ends and compute exactly what it would otherwise have recomputed.

Entries are the outputs after a path module (the stem, then each layer), keyed by whether the
path was recalibrated and the ops up to it; the least recently used go first once their tensors
pass ``budget_bytes`` (0 keeps nothing).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PrefixOutputs:
    """The outputs after one path module: per recalibration batch (``None`` when the path keeps
    the training statistics) and per evaluation batch, in the order the evaluator feeds them."""

    recal: list[torch.Tensor] | None
    scored: list[torch.Tensor]

    @property
    def nbytes(self) -> int:
        tensors = [*(self.recal or ()), *self.scored]
        return sum(t.numel() * t.element_size() for t in tensors)


class PrefixCache:
    """Least-recently-used :class:`PrefixOutputs` by (recalibrated, ops of the prefix)."""

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be 0 or more, not {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.clear()

    def clear(self) -> None:
        self._entries: OrderedDict[tuple[bool, tuple[str, ...]], PrefixOutputs] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, recalibrated: bool, ops: tuple[str, ...]) -> tuple[int, PrefixOutputs | None]:
        """(number of ops covered, outputs) of the longest kept prefix of ``ops``, the stem alone
        being the prefix of no ops; (-1, None) when not even the stem's outputs are kept.

        Every kept prefix of ``ops`` counts as used, the shorter ones too: an architecture that
        branches off earlier starts from them."""
        found, entry = -1, None
        for depth in range(len(ops) + 1):
            key = (recalibrated, ops[:depth])
            if key in self._entries:
                self._entries.move_to_end(key)
                found, entry = depth, self._entries[key]
        return found, entry

    def put(self, recalibrated: bool, ops: tuple[str, ...], outputs: PrefixOutputs) -> None:
        """Keep ``outputs`` as those after the prefix ``ops``; evict the least recently used
        entries beyond the budget (an entry larger than the whole budget is not kept)."""
        key = (recalibrated, ops)
        if key in self._entries:
            self.nbytes -= self._entries.pop(key).nbytes
        size = outputs.nbytes
        if size > self.budget_bytes:
            return
        self._entries[key] = outputs
        self.nbytes += size
        while self.nbytes > self.budget_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.nbytes -= dropped.nbytes
