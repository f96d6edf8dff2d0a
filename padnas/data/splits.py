"""The vocabulary every data source shares: a split, a bundle of three splits, and the seeded
per-class carving that makes validation and test splits (see :mod:`padnas.data.datasets` for the
rules)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from padnas.core.errors import UsageError

TEST_SPLIT_SEED = 0
#: the seed that draws a held-out split (:meth:`DataBundle.holdout`): the same for every run
HOLDOUT_SEED = 0x401D


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
    #: ``per_class -> Split`` over the images no run of this proxy size trains or validates on
    #: (see :meth:`holdout`); None where the set has none
    spare: Callable[[int], Split] | None = field(default=None, compare=False, repr=False)
    #: how many spare images each class has
    spare_per_class: int = 0

    def holdout(self, images: int) -> Split:
        """A class-balanced split of ``images`` images that no run of this proxy size trains or
        validates on, whatever its seed: the training images left outside the capped pool
        (``train_per_class`` + validation per class), drawn with :data:`HOLDOUT_SEED`.

        Why: one-shot accuracy on the 1,000-image validation split ranks architectures mostly by
        which images were drawn (docs/reproduction.md, "How many images"); two supernets of
        different seeds also carve different validation splits. A held-out split scores them on
        the same, larger set."""
        if self.spare is None or self.spare_per_class < 1:
            raise DataError(
                f"data {self.spec} keeps no held-out images: only in-memory sets capped by a "
                "preset's train_per_class (fashion, mnist5k, digits) have them; score on the "
                "validation split (padnas evaluate --split val, padnas search --eval-images 0)"
            )
        if not self.can_hold_out(images):
            raise DataError(
                f"held-out images must be a multiple of the {self.num_classes} classes between "
                f"{self.num_classes} and {self.num_classes * self.spare_per_class} for "
                f"{self.spec} at this proxy size, not {images}"
            )
        return self.spare(images // self.num_classes)

    def can_hold_out(self, images: int) -> bool:
        """Whether :meth:`holdout` can give ``images`` images (a multiple of the classes)."""
        per_class, extra = divmod(images, self.num_classes)
        return self.spare is not None and not extra and 1 <= per_class <= self.spare_per_class

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
