"""Single-path one-shot supernet (SPOS) and the stand-alone network of one architecture.

The supernet holds every candidate op of every layer (``blocks[j][op]``) and runs one path per
forward pass. A :class:`ChildNet` holds only the chosen op per layer under the same parameter
names minus the op key, so a child's weights are an exact slice of the supernet's
(:meth:`Supernet.extract`), and a pruned supernet is an exact slice of its parent
(:meth:`Supernet.pruned`): weights are inherited, never re-initialised.
"""

from __future__ import annotations

import torch
from torch import nn

from padnas.nn.ops import Head, Stem, build_op
from padnas.space import DEPLOY_CLASSES, HEAD_CHANNELS, Arch, Proxy, SearchSpace


def layer_shapes(
    space: SearchSpace, proxy: Proxy
) -> tuple[int, int, list[tuple[int, int, int]], int]:
    """(stem channels, stem stride, per-layer (in, out, stride), head width) of the proxy network.

    Residual connections are not a matter of these widths or strides: every block takes its
    deployed layer's (``space.layers[j].residual``), so a proxy network has the deployed
    topology, also where a dropped stride leaves a transition layer at stride 1."""
    stem_stride, strides = proxy.strides([s.stride for s in space.layers])
    layers = [
        (proxy.channels(s.in_chs), proxy.channels(s.out_chs), stride)
        for s, stride in zip(space.layers, strides, strict=True)
    ]
    # MobileNetV2 keeps the 1280-wide head for width multipliers below 1 and scales it above.
    head_chs = HEAD_CHANNELS if proxy.width_mult <= 1 else proxy.channels(HEAD_CHANNELS)
    return proxy.channels(space.stem_chs), stem_stride, layers, head_chs


class _Net(nn.Module):
    """Shared init for the supernet and a child: stem and head are common to every path."""

    def __init__(self, space: SearchSpace, proxy: Proxy, num_classes: int) -> None:
        super().__init__()
        self.space, self.proxy, self.num_classes = space, proxy, num_classes
        stem_chs, stem_stride, self._layer_shapes, head_chs = layer_shapes(space, proxy)
        self.stem = Stem(stem_chs, stride=stem_stride, act=space.stem_act)
        self.head = Head(self._layer_shapes[-1][1], head_chs, num_classes, act=space.head_act)


class Supernet(_Net):
    """Every candidate op per layer; ``forward(x, arch)`` runs the single path ``arch``."""

    def __init__(
        self,
        space: SearchSpace,
        proxy: Proxy | None = None,
        num_classes: int = DEPLOY_CLASSES,
    ) -> None:
        super().__init__(space, proxy or Proxy(), num_classes)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({op: build_op(op, i, o, s, spec.act, spec.residual) for op in ops})
            for ops, (i, o, s), spec in zip(
                space.layer_ops, self._layer_shapes, space.layers, strict=True
            )
        )

    def forward(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        x = self.stem(x)
        for block, op in zip(self.blocks, arch.ops, strict=True):
            x = block[op](x)
        return self.head(x)

    def infer(self, x: torch.Tensor, arch: Arch) -> torch.Tensor:
        """``forward(x, arch)`` for a path in eval mode, each BN folded into its conv
        (:meth:`padnas.nn.ops.ConvBNAct.infer`): the same logits to float rounding, faster.
        One-shot evaluation scores architectures with it; training and export use ``forward``."""
        x = self.stem.infer(x)
        for block, op in zip(self.blocks, arch.ops, strict=True):
            x = block[op].infer(x)
        return self.head.infer(x)

    def path_modules(self, arch: Arch) -> list[nn.Module]:
        """The modules one path uses, in order (for BN recalibration and counting)."""
        return [self.stem, *(b[op] for b, op in zip(self.blocks, arch.ops, strict=True)), self.head]

    def extract(self, arch: Arch | str) -> ChildNet:
        """A stand-alone network of ``arch`` holding copies of this supernet's weights: the stem,
        each layer's chosen op and the head hand their own parameters and buffers over."""
        arch = self.space.validate(arch)
        child = ChildNet(self.space, arch, self.proxy, self.num_classes)
        for mine, theirs in zip(self.path_modules(arch), child.path_modules(), strict=True):
            theirs.load_state_dict(mine.state_dict())
        return child

    def pruned(self, space: SearchSpace) -> Supernet:
        """The supernet of a pruned space, with the surviving ops' weights inherited exactly."""
        if space.family != self.space.family:
            raise ValueError(f"cannot prune a {self.space.family} supernet into {space.family}")
        for j, (new, old) in enumerate(zip(space.layer_ops, self.space.layer_ops, strict=True)):
            missing = set(new) - set(old)
            if missing:
                raise ValueError(f"layer {j}: ops {sorted(missing)} are not in the parent supernet")
        child = Supernet(space, self.proxy, self.num_classes)
        own = self.state_dict()
        child.load_state_dict({k: own[k].clone() for k in child.state_dict()})
        child.train(self.training)
        return child


class ChildNet(_Net):
    """The stand-alone network of one architecture (op modules only for the chosen ops)."""

    def __init__(
        self,
        space: SearchSpace,
        arch: Arch | str,
        proxy: Proxy | None = None,
        num_classes: int = DEPLOY_CLASSES,
    ) -> None:
        super().__init__(space, proxy or Proxy(), num_classes)
        self.arch = space.validate(arch)
        self.blocks = nn.ModuleList(
            build_op(op, i, o, s, spec.act, spec.residual)
            for op, (i, o, s), spec in zip(
                self.arch.ops, self._layer_shapes, space.layers, strict=True
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def path_modules(self) -> list[nn.Module]:
        """The modules of the network, in order (the roles of :meth:`Supernet.path_modules`)."""
        return [self.stem, *self.blocks, self.head]
