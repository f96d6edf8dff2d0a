"""PyTorch building blocks, in one vocabulary (``in_chs``, ``out_chs``, ``exp_ratio``,
``kernel_size``, ``stride``).

These are the very modules the supernet trains and the latency exporter converts to TFLite, so a
latency entry always describes the computation that was trained. Blocks are kept dumb: they know
their shape and nothing about search; :func:`build_op` decodes an op name into a block.

Beyond the paper's IBConv (MobileNetV2 inverted bottleneck with ReLU6), :class:`IBConv` also takes
the options that MnasNet, FBNet and MobileNetV3 blocks need (squeeze-excite, grouped 1x1 convs with
a channel shuffle, h-swish), so those published networks can be exported and measured whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from padnas.nn.dwconv import depthwise_conv2d, use_fast_backward
from padnas.space import DEFAULT_ACT, IDENTITY, parse_op, se_channels

ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "h_swish": nn.Hardswish,
    "swish": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "hsigmoid": nn.Hardsigmoid,
    "h_sigmoid": nn.Hardsigmoid,
}


def make_act(name: str | None) -> nn.Module:
    if name is None:
        return nn.Identity()
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class SameConv2d(nn.Conv2d):
    """A ``same``-padded conv (odd kernel, padding ``k // 2``) made cheap on small CPU maps.

    Why: at proxy resolution (32x32) the late layers run on 2x2 and 1x1 maps, where a 7x7 kernel
    with padding 3 touches data only through its central (2H-1)x(2W-1) taps; the rest multiply
    zeros. The weight is sliced to the reachable taps (radius ``min(pad, size - 1)``, padding
    shrunk to match): same outputs, and the dropped taps' gradients are exactly zero either way.
    Depthwise convs then take :func:`padnas.nn.dwconv.depthwise_conv2d`, whose backward avoids
    PyTorch's slow CPU path (a kernel cropped to 1x1 becomes a per-channel scale). Measured on
    the quick preset's basic supernet: a training epoch took 11-12 s before, 4.3-6 s after. At
    deployment sizes nothing is cropped, and traced exports (ONNX) always run the plain conv.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        same = tuple(k // 2 for k in self.kernel_size)
        odd = all(k % 2 for k in self.kernel_size)
        if (
            not odd
            or self.padding != same
            or self.dilation != (1, 1)
            or self.padding_mode != "zeros"
        ):
            raise ValueError("SameConv2d needs an odd kernel, zero padding k // 2 and no dilation")

    def reach(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(weight, padding) for input ``x``: the kernel cropped to the taps that touch data."""
        (ph, pw), (h, w) = self.padding, x.shape[-2:]
        rh, rw = min(ph, h - 1), min(pw, w - 1)
        weight = self.weight
        if (rh, rw) != (ph, pw):
            weight = weight[..., ph - rh : ph + rh + 1, pw - rw : pw + rw + 1]
        return weight, (rh, rw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return super().forward(x)  # exports keep the plain conv, whatever the input size
        weight, (rh, rw) = self.reach(x)
        h, w = x.shape[-2:]
        depthwise = self.bias is None and self.groups == self.in_channels == self.out_channels
        if depthwise and (rh, rw) == (0, 0):
            # a 1x1 depthwise kernel is a per-channel scale; as a conv its backward is slow
            sh, sw = self.stride
            return x[..., ::sh, ::sw] * weight.reshape(1, -1, 1, 1)
        if (
            depthwise
            and torch.is_grad_enabled()
            and x.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")  # the function's backward is fp32-only
            and use_fast_backward(weight.shape[-1], h, w)
        ):
            return depthwise_conv2d(x, weight, self.stride, (rh, rw))
        if weight is self.weight:
            return super().forward(x)
        return F.conv2d(x, weight, self.bias, self.stride, (rh, rw), self.dilation, self.groups)


class ConvBNAct(nn.Sequential):
    """Conv (``same`` padding) + BatchNorm + activation; ``act=None`` makes it linear."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu6",
    ) -> None:
        super().__init__(
            SameConv2d(
                in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_chs),
            make_act(act),
        )

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode output with the BN folded into the conv (its running statistics become a
        scale of the conv weight and a bias), the activation applied in place: the same values
        as ``self(x)`` in eval mode to float rounding, in one conv instead of conv + BN. On the
        quick preset's supernet one-shot evaluation's forward pass ran about 2x faster
        (``benchmarks/oneshot_speed.py``). Running statistics only: refused in train mode."""
        conv, bn, act = self
        if bn.training:
            raise RuntimeError("ConvBNAct.infer folds running BN statistics: call it in eval mode")
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight, padding = conv.reach(x)
        y = F.conv2d(
            x,
            weight * scale.reshape(-1, 1, 1, 1),
            bn.bias - bn.running_mean * scale,
            conv.stride,
            padding,
            conv.dilation,
            conv.groups,
        )
        if isinstance(act, nn.ReLU6):
            return F.hardtanh(y, 0.0, 6.0, inplace=True)  # y is this call's own tensor
        return act(y)

    @property
    def conv(self) -> nn.Conv2d:
        return self[0]

    @property
    def bn(self) -> nn.BatchNorm2d:
        return self[1]


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle (FBNet's grouped blocks), written with reshape/transpose so it
    exports to plain ONNX ops."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Global pool -> FC (1x1 conv with bias) -> act -> FC -> gate -> channel-wise multiply."""

    def __init__(self, chs: int, se_chs: int, act: str = "relu", gate: str = "sigmoid") -> None:
        super().__init__()
        self.reduce = nn.Conv2d(chs, se_chs, 1, bias=True)
        self.act = make_act(act)
        self.expand = nn.Conv2d(se_chs, chs, 1, bias=True)
        self.gate = make_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


class IBConv(nn.Module):
    """MobileNetV2 inverted bottleneck: [1x1 expand] -> kxk depthwise (stride) -> [SE] -> 1x1
    linear projection, BN after each conv, residual when stride 1 and ``in_chs == out_chs``
    (``residual=False`` drops it where the shapes would allow it: a proxy layer whose deployed
    form has none).

    The expand conv is absent when ``exp_ratio == 1`` (unless ``expand`` forces it), as in the
    paper's first searchable block.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        exp_ratio: float = 6,
        stride: int = 1,
        *,
        act: str = "relu6",
        hidden_chs: int | None = None,
        expand: bool | None = None,
        groups: int = 1,
        shuffle: bool = False,
        se_chs: int | None = None,
        se_act: str = "relu",
        se_gate: str = "sigmoid",
        residual: bool | None = None,
    ) -> None:
        super().__init__()
        hidden = hidden_chs if hidden_chs is not None else round(in_chs * exp_ratio)
        expand = exp_ratio != 1 if expand is None else expand
        if not expand and hidden != in_chs:
            raise ValueError(f"a block without expand conv needs hidden == in_chs ({in_chs})")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride
        self.kernel_size, self.exp_ratio = kernel_size, exp_ratio
        layers: list[nn.Module] = []
        self._expand_at: int | None = None
        if expand:
            self._expand_at = len(layers)
            layers.append(ConvBNAct(in_chs, hidden, 1, groups=groups, act=act))
            if shuffle and groups > 1:
                layers.append(ChannelShuffle(groups))
        self._depthwise_at = len(layers)
        layers.append(ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act))
        if se_chs:
            layers.append(SqueezeExcite(hidden, se_chs, se_act, se_gate))
        layers.append(ConvBNAct(hidden, out_chs, 1, groups=groups, act=None))
        # one Sequential, so parameter names (checkpoints, ONNX) stay body.<i>.*; the roles below
        # name its parts for code that needs one of them
        self.body = nn.Sequential(*layers)
        can_add = stride == 1 and in_chs == out_chs
        if residual and not can_add:
            raise ValueError(
                f"a residual add needs stride 1 and in_chs == out_chs "
                f"(got stride {stride}, {in_chs}->{out_chs})"
            )
        self.residual = can_add if residual is None else residual

    @property
    def expand_conv(self) -> ConvBNAct | None:
        """The 1x1 expansion (None when the block has none)."""
        return None if self._expand_at is None else self.body[self._expand_at]

    @property
    def depthwise(self) -> ConvBNAct:
        return self.body[self._depthwise_at]

    @property
    def project(self) -> ConvBNAct:
        """The linear 1x1 projection (its BN is the residual branch's last layer)."""
        return self.body[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode output with every conv's BN folded (:meth:`ConvBNAct.infer`)."""
        y = x
        for layer in self.body:
            y = layer.infer(y) if isinstance(layer, ConvBNAct) else layer(y)
        return x + y if self.residual else y


class Identity(nn.Identity):
    """The skip op: output is the input (only offered where shapes already match)."""

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Stem(ConvBNAct):
    """3x3 conv from the RGB image, stride 2 as deployed (a proxy may drop it); ReLU6, h-swish
    in the v3 space."""

    def __init__(
        self, out_chs: int, in_chs: int = 3, stride: int = 2, act: str = DEFAULT_ACT
    ) -> None:
        super().__init__(in_chs, out_chs, 3, stride, act=act)


class Head(nn.Module):
    """1x1 conv to ``feat_chs`` (1280), global average pool, linear classifier."""

    def __init__(
        self, in_chs: int, feat_chs: int, num_classes: int, act: str = DEFAULT_ACT
    ) -> None:
        super().__init__()
        self.conv = ConvBNAct(in_chs, feat_chs, 1, act=act)
        self.classifier = nn.Linear(feat_chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3))
        return self.classifier(x)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode output with the conv's BN folded (:meth:`ConvBNAct.infer`)."""
        return self.classifier(self.conv.infer(x).mean((2, 3)))


def build_op(
    name: str,
    in_chs: int,
    out_chs: int,
    stride: int,
    act: str = DEFAULT_ACT,
    residual: bool | None = None,
) -> nn.Module:
    """The block for an op name of the catalogue (``K5E3``, ``K5E6SE``, ``ID``) with the layer's
    activation; an ``SE`` op gets MobileNetV3's squeeze-excite (quarter width, ReLU, h-sigmoid).
    ``residual`` decides the skip connection (None: wherever the shapes allow one); a proxy
    network passes the deployed layer's (:attr:`padnas.space.LayerSpec.residual`)."""
    parsed = parse_op(name)
    if parsed is None:
        if name == IDENTITY and (stride != 1 or in_chs != out_chs):
            raise ValueError(
                f"{IDENTITY} cannot change shape ({in_chs}->{out_chs}, stride {stride})"
            )
        return Identity()
    hidden = in_chs * parsed.exp_ratio
    return IBConv(
        in_chs,
        out_chs,
        parsed.kernel,
        parsed.exp_ratio,
        stride,
        act=act,
        se_chs=se_channels(hidden) if parsed.se else None,
        se_act="relu",
        se_gate="hsigmoid",
        residual=residual,
    )
