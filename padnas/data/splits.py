"""The vocabulary every data source shares: a split, a bundle of three splits, and the seeded
per-class carving that makes validation and test splits (see :mod:`padnas.data.datasets` for the
rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from padnas.core.errors import UsageError

TEST_SPLIT_SEED = 0


class DataError(UsageError):
    """An unknown data spec or a missing/malformed image folder (bad input: exit code 2)."""


class Split(Dataset):
    """One split: ``fetch(indices) -> (images float32 [N,3,R,R], labels int64 [N])``.

    ``__getitems__`` lets a DataLoader fetch a whole batch in one call, so folder splits can be
    decoded in worker processes while in-memory splits skip the DataLoader altogether.
    """

    labels: np.ndarray
    in_memory: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def fetch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.fetch([index])
        return x[0], y[0]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fetch(indices)

    def set_epoch(self, epoch: int) -> None:
        """Seeds per-epoch augmentation (folder training split); a no-op elsewhere."""


@dataclass(frozen=True)
class DataBundle:
    """The three splits of one dataset at one resolution."""

    spec: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    resolution: int
    classes: tuple[str, ...]
    seed: int = 0  # the validation split's seed: evaluate with the split the net was trained on

    def describe(self) -> str:
        return (
            f"{self.spec}: {self.num_classes} classes at {self.resolution}x{self.resolution}, "
            f"train {len(self.train)}, val {len(self.val)}, test {len(self.test)}"
        )


def per_class_split(
    labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Take ``per_class`` random members of each class out of ``pool``: (taken, kept), sorted."""
    rng = np.random.default_rng(seed)
    taken, kept = [], []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        members = members[rng.permutation(len(members))]
        taken.append(members[:per_class])
        kept.append(members[per_class:])
    return np.sort(np.concatenate(taken)), np.sort(np.concatenate(kept))
