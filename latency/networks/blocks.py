"""Torch modules of the layer kinds that are not blocks of our search space.

ResNet's basic block and ShuffleNetV2's unit, written from their papers' definitions with the
same conv + BatchNorm + activation pieces (:class:`padnas.nn.ops.ConvBNAct`, ``SAME`` padding)
as every other layer, so a unit of either kind exports to ONNX and TFLite like an inverted
bottleneck and computes what the layer list says. Strided pooling windows need no module of
their own: :func:`pool_window` returns PyTorch's, padded ``kernel // 2``.
"""

from __future__ import annotations

import torch
from torch import nn

from padnas.nn.ops import ConvBNAct, make_act


def pool_window(kind: str, kernel: int, stride: int, count_pad: bool = False) -> nn.Module:
    """A ``kernel``x``kernel`` max or average pool padded ``kernel // 2`` (the ``SAME`` output
    size ``ceil(H / stride)`` for an odd kernel); ``count_pad``: padded zeros count in an
    average, as PyTorch's ``AvgPool2d`` does by default."""
    if kind == "maxpool":
        return nn.MaxPool2d(kernel, stride, kernel // 2)
    return nn.AvgPool2d(kernel, stride, kernel // 2, count_include_pad=count_pad)


class BasicBlock(nn.Module):
    """ResNet's basic block: kxk conv (stride) + BN + act -> kxk conv + BN, plus the shortcut
    (the input, or a 1x1 conv with the block's stride + BN when ``projection``), then act."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: str | None = "relu",
        projection: bool = False,
    ) -> None:
        super().__init__()
        if not projection and (stride != 1 or in_chs != out_chs):
            raise ValueError("an identity shortcut needs stride 1 and in_chs == out_chs")
        self.conv1 = ConvBNAct(in_chs, out_chs, kernel_size, stride, act=act)
        self.conv2 = ConvBNAct(out_chs, out_chs, kernel_size, act=None)
        self.shortcut = ConvBNAct(in_chs, out_chs, 1, stride, act=None) if projection else None
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.conv1(x)) + skip)


class ShuffleV2Unit(nn.Module):
    """ShuffleNetV2's unit: two branches of ``out_chs / 2`` channels each, concatenated and
    shuffled in two groups.

    Stride 1 splits the input in halves: the first passes unchanged, the second goes through
    1x1 conv + act -> kxk depthwise conv (linear) -> 1x1 conv + act. A strided unit feeds the
    whole input to both branches: kxk depthwise (stride, linear) -> 1x1 conv + act, and the
    1x1 -> depthwise (stride) -> 1x1 branch above. BN follows every conv.

    Written for the converter, as channel gathers: each half is gathered from the input, and
    the shuffle of the concatenation is one gather (output channel ``2i + j`` is channel ``i``
    of branch ``j``). The usual ways to write them do not convert to a file LiteRT runs with its
    built-in kernels: onnx2tf fails on ``x.chunk(2, 1)`` (sizes computed at run time) and on
    channel slices of the input, turns a ``Split`` into the TensorFlow op ``SplitV`` (a Flex
    op), and leaves a unit ending in Reshape -> Transpose -> Reshape with its output in the
    wrong layout. The gathers compute the same function with built-in ops, so the unit can be
    timed.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        if out_chs % 2 or (stride == 1 and in_chs != out_chs):
            raise ValueError(
                "a ShuffleNetV2 unit needs an even out_chs, and in_chs == out_chs at stride 1"
            )
        half = out_chs // 2
        self.stride = stride
        self.branch1 = None
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvBNAct(in_chs, in_chs, kernel_size, stride, groups=in_chs, act=None),
                ConvBNAct(in_chs, half, 1, act=act),
            )
        first = in_chs if stride > 1 else half
        self.branch2 = nn.Sequential(
            ConvBNAct(first, half, 1, act=act),
            ConvBNAct(half, half, kernel_size, stride, groups=half, act=None),
            ConvBNAct(half, half, 1, act=act),
        )
        order = torch.arange(out_chs).reshape(2, half).t().reshape(-1)
        self.register_buffer("first", torch.arange(half), persistent=False)
        self.register_buffer("second", torch.arange(half, out_chs), persistent=False)
        self.register_buffer("order", order, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            kept = torch.index_select(x, 1, self.first)
            x = torch.index_select(x, 1, self.second)
        else:
            kept = self.branch1(x)
        return torch.index_select(torch.cat((kept, self.branch2(x)), dim=1), 1, self.order)
