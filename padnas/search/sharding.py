"""A search across DDP ranks: one-shot evaluations shared out, one run directory written.

Under ``torchrun`` every rank runs the same deterministic pipeline (:mod:`padnas.run.pipeline`): the
same seeds give the same paths, data order and CES proposals, and DDP keeps the supernet weights
identical on every rank. Training already splits each batch across ranks; this module splits the
other expensive step, one-shot evaluation. Each CES generation's architectures are dealt out
round-robin (rank ``r`` takes ``archs[r::world]``), each rank measures its share on its own copy of
the supernet, and the accuracies are gathered back into the original order. An architecture's
one-shot accuracy depends only on the weights, the fixed recalibration images and the validation
set, never on which rank measured it or what else that rank measured, so the gathered result is
exactly the single-process one (tested with two gloo processes) and search time falls with the
number of GPUs.

Only rank 0 writes the run directory (:mod:`padnas.run.ranks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch.distributed as dist

from padnas.train.distributed import DistContext, dist_context


def shard(items: Sequence, ctx: DistContext) -> list:
    """This rank's share of ``items``: every ``world_size``-th one, starting at its rank."""
    return list(items[ctx.rank :: ctx.world_size])


def sharded(
    accuracy: Callable[[list], np.ndarray], ctx: DistContext | None = None
) -> Callable[[Sequence], np.ndarray]:
    """``accuracy`` evaluated across the ranks of ``ctx``; the same function in one process.

    Every rank must call the returned function with the same architectures in the same order
    (as CES does on every rank); each evaluates its share and all receive every result.
    """
    ctx = ctx or dist_context()
    if ctx.world_size == 1:
        return accuracy

    def across_ranks(archs: Sequence) -> np.ndarray:
        archs = list(archs)
        mine = np.asarray(accuracy(shard(archs, ctx)), dtype=np.float64).reshape(-1)
        parts: list = [None] * ctx.world_size
        dist.all_gather_object(parts, mine.tolist())
        out = np.empty(len(archs), dtype=np.float64)
        for rank, values in enumerate(parts):
            out[rank :: ctx.world_size] = values
        return out

    return across_ranks
