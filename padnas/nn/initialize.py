"""Weight initialisation of supernets and stand-alone networks, from an explicit seed.

Default: MobileNetV2's scheme (Kaiming-normal convs with fan-out as torch counts it, classifier
N(0, 0.01), BN weight 1 / bias 0), drawn from a ``torch.Generator`` so that building a model never
reads the global RNG.

Two options make single-path training work at CPU scale (``quick`` preset), where a supernet sees
a few thousand steps instead of SPOS's 150k:

- ``zero_residual``: the last BN of every residual block starts with weight 0, so each residual
  block (and hence every op of a non-first layer, Identity included) is the identity at step 0
  (Goyal et al., "Accurate, large minibatch SGD").
- ``entangle``: the IBConv ops of one supernet layer start as nested slices of that layer's largest
  op (the first hidden channels, the centre of the kernel), as in OFA's weight sharing. The ops
  stay separate parameters (training is still single-path), they just start out computing nearly
  the same function.

Why: with independently initialised ops, every sampled path at step 0 is a different random
network; at resolution 32 with BN after every conv, the large effective learning rate of freshly
initialised scale-invariant weights then drives the ops apart faster than the shared stem and head
can follow, and a basic-space supernet stayed at chance accuracy for hundreds of steps at any
learning rate we tried. With both options it learns at once. The ``paper`` preset keeps plain
independent initialisation, as SPOS trains at ImageNet scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from padnas.nn.ops import IBConv


def init_weights(
    model: nn.Module, seed: int, *, entangle: bool = False, zero_residual: bool = False
) -> nn.Module:
    """Initialise ``model`` in place (see the module docstring) and return it."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.01)
                m.bias.zero_()
        if entangle and hasattr(model, "blocks"):
            for block in model.blocks:
                if isinstance(block, nn.ModuleDict):
                    _entangle(block)
        if zero_residual:
            for m in model.modules():
                if isinstance(m, IBConv) and m.residual:
                    m.project.bn.weight.zero_()
    return model


def _entangle(block: nn.ModuleDict) -> None:
    ops = [m for m in block.values() if isinstance(m, IBConv)]
    if len(ops) < 2:
        return
    base = max(ops, key=lambda m: (m.exp_ratio, m.kernel_size))
    b_exp, b_dw, b_proj = _convs_of(base)
    for op in ops:
        if op is base:
            continue
        exp, dw, proj = _convs_of(op)
        hidden = dw.out_channels
        if exp is not None and b_exp is not None:
            exp.weight.copy_(b_exp.weight[:hidden])
        k, big = dw.kernel_size[0], b_dw.kernel_size[0]
        o = (big - k) // 2
        dw.weight.copy_(b_dw.weight[:hidden, :, o : o + k, o : o + k])
        proj.weight.copy_(b_proj.weight[:, :hidden])


def _convs_of(op: IBConv) -> tuple[nn.Conv2d | None, nn.Conv2d, nn.Conv2d]:
    """(expand conv or None, depthwise conv, projection conv) of an IBConv; a squeeze-excite's
    convs are not among them (SE weights are each op's own)."""
    expand = op.expand_conv
    return (None if expand is None else expand.conv), op.depthwise.conv, op.project.conv


def grow_op(src: IBConv, dst: IBConv) -> bool:
    """Make ``dst`` compute exactly what ``src`` computes, where it can (Net2Net's function-
    preserving widening): the depthwise kernel zero-padded to ``dst``'s size, each hidden channel
    repeated ``dst.hidden / src.hidden`` times with the projection's weights divided among the
    copies, BN statistics and affine parameters copied alike. Returns False, changing nothing,
    when ``dst`` cannot hold ``src`` (a smaller kernel or hidden width, another expand/SE
    structure, another output)."""
    s_exp, s_dw, s_proj = src.expand_conv, src.depthwise, src.project
    d_exp, d_dw, d_proj = dst.expand_conv, dst.depthwise, dst.project
    hs, hd = s_dw.conv.out_channels, d_dw.conv.out_channels
    ks, kd = s_dw.conv.kernel_size[0], d_dw.conv.kernel_size[0]
    same_shape = (
        (s_exp is None) == (d_exp is None)
        and len(src.body) == len(dst.body)  # no SE in one only
        and s_proj.conv.out_channels == d_proj.conv.out_channels
        and s_dw.conv.stride == d_dw.conv.stride
    )
    if not same_shape or hd % hs or kd < ks or (s_exp is None and hd != hs):
        return False
    r, o = hd // hs, (kd - ks) // 2
    with torch.no_grad():
        if s_exp is not None:
            d_exp.conv.weight.copy_(s_exp.conv.weight.repeat(r, 1, 1, 1))
            _copy_bn(s_exp.bn, d_exp.bn, r)
        d_dw.conv.weight.zero_()
        d_dw.conv.weight[:, :, o : o + ks, o : o + ks] = s_dw.conv.weight.repeat(r, 1, 1, 1)
        _copy_bn(s_dw.bn, d_dw.bn, r)
        d_proj.conv.weight.copy_(s_proj.conv.weight.repeat(1, r, 1, 1) / r)
        _copy_bn(s_proj.bn, d_proj.bn, 1)
    return True


def _copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, r: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name).repeat(r))
