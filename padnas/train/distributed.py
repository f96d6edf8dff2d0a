"""Process-group plumbing for multi-GPU / multi-node training under ``torchrun``.

Training needs only to know its rank and world size: every rank derives the same sampled path and
data order from seeds (see :mod:`padnas.train.loop`), so the only communication is DDP's gradient
all-reduce plus a buffer broadcast at epoch ends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from padnas.core.errors import AcceleratorError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment (gloo on CPU, nccl
    on GPUs); a plain single process gets the trivial context."""
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist_context()


def dist_context() -> DistContext:
    if not dist.is_initialized():
        return DistContext()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistContext(dist.get_rank(), dist.get_world_size(), local)


def resolve_device(
    device: str | torch.device | None, ctx: DistContext | None = None
) -> torch.device:
    """``auto``/None: this rank's GPU when there is one, else the CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", (ctx or dist_context()).local_rank)
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise AcceleratorError(
            f"{device!r} is not a torch device: use auto, cpu, cuda or cuda:N", param="device"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AcceleratorError(
                f"{device}: this machine has no CUDA GPU; use cpu", param="device"
            )
        if dev.index is not None and dev.index >= count:
            raise AcceleratorError(
                f"{device}: this machine has {count} GPU(s), cuda:0..cuda:{count - 1}",
                param="device",
            )
    elif dev.type not in ("cpu", "mps"):
        raise AcceleratorError(f"{device}: use auto, cpu, cuda or cuda:N", param="device")
    return dev


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (BN statistics), e.g. before a checkpoint."""
    if ctx.world_size > 1:
        for buf in module.buffers():
            dist.broadcast(buf, 0)


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64)
    if ctx.world_size > 1:
        dist.all_reduce(t)
    return t.tolist()
