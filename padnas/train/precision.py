"""Numeric precision of training and evaluation: ``fp32``, ``bf16``, ``fp16`` or ``auto``.

Mixed precision is PyTorch's autocast: convolutions and matmuls run in the low-precision dtype
while weights, optimizer state and BatchNorm running statistics stay float32. ``fp16`` has a
narrow exponent range, so its loss is scaled (a :class:`torch.amp.GradScaler`) to keep small
gradients from flushing to zero; ``bf16`` has float32's range and needs no scaler.

Which precisions a device accepts, and why:

- CUDA: ``fp32``; ``fp16`` on any GPU; ``bf16`` where the GPU supports it (Ampere and newer).
  ``auto`` is ``bf16`` there and ``fp32`` on older GPUs. On an H200 a basic-space supernet step at
  224x224 ran 2.1x faster under bf16 than in fp32 (README, "Time per stage").
- CPU: ``fp32``; ``bf16`` is allowed because it computes the right thing (measured on the quick
  preset: loss within 1e-3 of fp32, gradient cosine similarity 0.99, training loss falls) but on a
  CPU without native bf16 instructions (no AVX512-BF16/AMX) a quick-preset step ran 6.6-8.9x
  *slower*, so ``auto`` stays ``fp32`` on CPUs. ``fp16`` is refused on CPUs: it buys nothing
  there and its narrow range needs the loss scaling that is meant for GPUs.

The resolved name (never ``auto``) is what a run records in its config, so a resumed or
reproduced run uses the same arithmetic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from padnas.core.errors import UsageError

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(UsageError):
    """A precision the chosen device cannot run (bad input: exit code 2)."""


@dataclass(frozen=True)
class Precision:
    """A resolved precision on one device type: autocast context and (for fp16) a grad scaler."""

    name: str  # fp32, bf16 or fp16: never auto
    device_type: str  # "cuda", "cpu", ...

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, ``None`` for plain fp32."""
        return _DTYPES[self.name]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context forward passes (and the loss) run under."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler that is active for fp16 only (a transparent no-op otherwise)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def _device_type(device: str | torch.device | None) -> str:
    if device is None or str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def resolve_precision(name: str, device: str | torch.device | None = None) -> Precision:
    """The :class:`Precision` ``name`` means on ``device``; raise :class:`PrecisionError` if the
    device cannot run it (the message says which precisions it can)."""
    name = str(name).lower()
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}")
    kind = _device_type(device)
    if kind == "cuda":
        bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if name == "auto":
            name = "bf16" if bf16_ok else "fp32"
        if name == "bf16" and not bf16_ok:
            raise PrecisionError(
                "bf16 needs a GPU with bfloat16 support (Ampere or newer); "
                "use fp16 or fp32 on this GPU",
                param="precision",
            )
        return Precision(name, kind)
    if kind == "cpu":
        if name == "auto":
            name = "fp32"
        if name == "fp16":
            raise PrecisionError(
                "fp16 runs on CUDA GPUs only; on the CPU use fp32 or bf16", param="precision"
            )
        return Precision(name, kind)
    if name in ("auto", "fp32"):
        return Precision("fp32", kind)
    raise PrecisionError(f"{name} is not supported on {kind}; use fp32", param="precision")


def precision_of(name: str | None, device: str | torch.device | None) -> Precision:
    """A recorded precision name (``None`` = fp32, for configs written before it existed)."""
    return resolve_precision(name or "fp32", device)
