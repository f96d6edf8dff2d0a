"""Multiply-accumulates and parameter counts of architectures at their deployment size.

MACs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and the
classifier; FLOPs / 2 = MACs, the convention behind MobileNetV2's "300M"), BN, activations, adds
and pooling are not counted. Parameters are all trainable tensors, BN affine terms included.

Both counts are additive over the stem, the 22 searchable layers and the head, and a layer's cost
depends only on its op and its input shape, so each (op, shape) is measured once on its own block
and an architecture's total is a sum of table entries: thousands of architectures (a search's
report) cost a few dictionary lookups each. The table is checked against a whole-network count in
the tests.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from padnas.nn.ops import Head, Stem, build_op
from padnas.nn.supernet import layer_shapes
from padnas.space import DEPLOY_CLASSES, DEPLOY_RESOLUTION, Arch, Proxy, SearchSpace


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass of ``module`` on a zero tensor of ``input_shape``."""
    was_training = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.zeros(input_shape))
    module.train(was_training)
    return counter.get_total_flops() // 2


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.lru_cache(maxsize=4096)
def _block_cost(
    op: str, in_chs: int, out_chs: int, stride: int, size: int, act: str
) -> tuple[int, int]:
    block = build_op(op, in_chs, out_chs, stride, act)
    return count_macs(block, (1, in_chs, size, size)), count_params(block)


@functools.lru_cache(maxsize=64)
def _ends_cost(
    stem_chs: int, stem_stride: int, head_in: int, head_chs: int, classes: int, res: int, final: int
):
    # MACs and parameters do not depend on the activation, so the ends are built with the default
    stem = Stem(stem_chs, stride=stem_stride)
    head = Head(head_in, head_chs, classes)
    return (
        count_macs(stem, (1, 3, res, res)) + count_macs(head, (1, head_in, final, final)),
        count_params(stem) + count_params(head),
    )


def macs_params(
    space: SearchSpace,
    arch: Arch | str,
    resolution: int = DEPLOY_RESOLUTION,
    num_classes: int = DEPLOY_CLASSES,
    width_mult: float = 1.0,
) -> tuple[int, int]:
    """(MACs, parameters) of ``arch`` at ``resolution`` with a ``num_classes`` classifier."""
    arch = space.validate(arch)
    proxy = Proxy(resolution, width_mult)
    stem_chs, stem_stride, layers, head_chs = layer_shapes(space, proxy)
    size = resolution // stem_stride
    macs = params = 0
    for op, (in_chs, out_chs, stride), spec in zip(arch.ops, layers, space.layers, strict=True):
        m, p = _block_cost(op, in_chs, out_chs, stride, size, spec.act)
        macs, params = macs + m, params + p
        size = -(-size // stride)
    m, p = _ends_cost(stem_chs, stem_stride, layers[-1][1], head_chs, num_classes, resolution, size)
    return macs + m, params + p
