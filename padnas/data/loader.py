"""Feeding batches to the GPU fast enough: worker processes that live for the whole run.

A GPU step on ImageNet-sized batches takes tens of milliseconds (an H200 trains the supernet at
~4,900 img/s under bf16), while decoding and augmenting one JPEG with Pillow takes a few
milliseconds of one CPU core, so the image-folder pipeline must decode in parallel and ahead of
the training loop. :class:`BatchFeeder` wraps one :class:`torch.utils.data.DataLoader` per split
for the whole run:

- ``num_workers`` processes decode batches (the standard ImageNet transforms of
  :class:`padnas.data.datasets.FolderSplit`: random-resized crop and flip for training, resize
  to R/0.875 and centre crop for evaluation, at the preset's resolution);
- workers are *persistent*: started once, not once per epoch or once per evaluated architecture;
- each worker keeps ``prefetch_factor`` batches in flight;
- batches land in pinned (page-locked) memory when the consumer is a GPU, so that
  ``.to(device, non_blocking=True)`` overlaps the copy with compute.

The batches themselves stay the caller's: training passes the exact index lists of its seeded
data order (each rank its slice), so what a step sees is unchanged by how it was loaded. Each
batch carries its epoch to the worker that decodes it, because a persistent worker holds its own
copy of the split and would otherwise keep augmenting with the epoch it was started in.

In-memory splits (the embedded digit sets) need none of this and are fetched directly.
``benchmarks/loader_throughput.py`` prints the images/s a machine's cores sustain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from padnas.data.datasets import Split
from padnas.data.refusal import fetch_or_refusal, raise_refusals


class EpochBatch(list):
    """A list of sample indices that also names the epoch it belongs to (for augmentation)."""

    def __init__(self, indices: Sequence[int], epoch: int) -> None:
        super().__init__(int(i) for i in indices)
        self.epoch = epoch

    def __reduce__(self):  # pickled to the worker processes with its epoch
        return (EpochBatch, (list(self), self.epoch))


class _EpochSplit(Dataset):
    """The split as a worker sees it: each batch sets the augmentation epoch, then is fetched."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, batch: EpochBatch):
        # a bad image is sent back as a value, so that it ends the run as one line
        self.split.set_epoch(batch.epoch)
        return fetch_or_refusal(lambda: self.split.fetch(batch))

    def __getitem__(self, index: int):  # pragma: no cover - batches only, via __getitems__
        raise TypeError("BatchFeeder fetches whole batches")


class _Schedule:
    """A batch sampler whose batches are replaced before each pass over it."""

    def __init__(self) -> None:
        self.batches: list[EpochBatch] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _as_is(batch):
    return batch


class BatchFeeder:
    """``feeder(batches, epoch)`` yields ``(images, labels)`` per index list, in order.

    With ``num_workers > 0`` (and a split read from files) the batches are decoded by persistent
    worker processes, prefetched and, with ``pin_memory``, placed in pinned memory. Call
    :meth:`close` (or use it as a context manager) to stop the workers.
    """

    def __init__(
        self,
        split: Split,
        num_workers: int = 0,
        *,
        pin_memory: bool = False,
        prefetch_factor: int = 4,
    ) -> None:
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.split, self.num_workers = split, num_workers
        self._schedule = _Schedule()
        self._loader: DataLoader | None = None
        if not split.in_memory and num_workers > 0:
            self._loader = DataLoader(
                _EpochSplit(split),
                batch_sampler=self._schedule,
                collate_fn=_as_is,
                num_workers=num_workers,
                pin_memory=pin_memory,
                persistent_workers=True,
                prefetch_factor=prefetch_factor,
            )

    def __call__(
        self, batches: Sequence[Sequence[int]], epoch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._loader is None:
            self.split.set_epoch(epoch)
            for b in batches:
                yield self.split.fetch(b)
            return
        self._schedule.batches = [EpochBatch(b, epoch) for b in batches]
        yield from raise_refusals(self._loader)

    def close(self) -> None:
        """Stop the worker processes (also done when the feeder is garbage-collected)."""
        # The DataLoader's iterator owns the workers and shuts them down when it is freed.
        self._loader = None

    def __enter__(self) -> BatchFeeder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
