"""Network descriptions: MobileNet-style networks written as a JSON layer list.

The format is the one of ``latency/data/pixel3_published.json`` (documented in
``docs/network-format.md``): a network is an input size and an ordered list of layers of ten types
(``conv``, ``dwconv``, ``ibconv``, ``identity``, ``pool``, ``fc``, the strided pooling windows
``maxpool`` and ``avgpool``, ResNet's ``basicblock`` and ShuffleNetV2's ``shufflev2`` unit). It lets
the latency tools handle networks that are not architectures of our search space (MobileNetV1/V2,
MnasNet, FBNet, MobileNetV3, EfficientNet, ShuffleNetV2, ResNet...) with the same machinery: every
layer becomes a torch module (of :mod:`padnas.nn.ops`, or :mod:`latency.networks.blocks` for the
kinds our space lacks), so a whole network or any of its layers can be exported to TFLite and timed,
and a LUT lookup can price it layer by layer.

Loading validates everything up front (field names, types, channel chaining, legal strides;
the checks live in :mod:`latency.networks.checks`) and names the network, the layer and the
field that is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from latency.errors import LatencyUsageError
from latency.networks.blocks import BasicBlock, ShuffleV2Unit, pool_window
from padnas.nn.ops import ConvBNAct, IBConv, Identity, make_act

LAYER_TYPES = (
    "conv",
    "dwconv",
    "ibconv",
    "identity",
    "pool",
    "fc",
    "maxpool",
    "avgpool",
    "basicblock",
    "shufflev2",
)
_NET_FIELDS = {"layers", "input", "in_chs", "num_classes"}


class NetDescError(LatencyUsageError):
    """A network description that does not follow the format; the message says where and why."""


@dataclass(frozen=True)
class Layer:
    """One validated layer with its input/output spatial size resolved (``SAME`` padding).

    ``hidden`` and ``se_hidden`` are resolved to exact channel counts (0 = no SE); ``residual``
    to whether the add really happens; ``projection`` to whether a basic block's shortcut is a
    1x1 conv; ``count_pad`` to whether an average pool counts its padding.
    """

    type: str
    cin: int
    cout: int
    in_hw: tuple[int, int]
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    act: str | None = None
    bias: bool = False
    expansion: float = 1.0
    expand_conv: bool = False
    hidden: int = 0
    channel_shuffle: bool = False
    se_hidden: int = 0
    se_act: str = "relu"
    se_gate: str = "sigmoid"
    residual: bool = False
    projection: bool = False
    count_pad: bool = False

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.type == "pool" or self.type == "fc":
            return (1, 1)
        return (math.ceil(self.in_hw[0] / self.stride), math.ceil(self.in_hw[1] / self.stride))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """NCHW shape the layer's module takes (batch 1); ``fc`` takes ``(1, cin)``."""
        if self.type == "fc":
            return (1, self.cin)
        return (1, self.cin, *self.in_hw)

    def build_module(self) -> nn.Module:
        """The layer as a :mod:`padnas.nn.ops` module (the computation the format describes)."""
        t = self.type
        if t == "conv":
            conv = ConvBNAct(self.cin, self.cout, self.kernel, self.stride, self.groups, self.act)
            if self.bias:
                conv[0].bias = nn.Parameter(conv[0].weight.new_zeros(self.cout))
            return conv
        if t == "dwconv":
            return ConvBNAct(self.cin, self.cout, self.kernel, self.stride, self.cin, self.act)
        if t == "ibconv":
            return IBConv(
                self.cin,
                self.cout,
                self.kernel,
                self.expansion,
                self.stride,
                act=self.act,
                hidden_chs=self.hidden,
                expand=self.expand_conv,
                groups=self.groups,
                shuffle=self.channel_shuffle,
                se_chs=self.se_hidden or None,
                se_act=self.se_act,
                se_gate=self.se_gate,
                residual=self.residual,
            )
        if t == "identity":
            return Identity()
        if t == "pool":
            return GlobalPool()
        if t in ("maxpool", "avgpool"):
            return pool_window(t, self.kernel, self.stride, self.count_pad)
        if t == "basicblock":
            return BasicBlock(
                self.cin, self.cout, self.kernel, self.stride, self.act, self.projection
            )
        if t == "shufflev2":
            return ShuffleV2Unit(self.cin, self.cout, self.kernel, self.stride, self.act)
        return nn.Sequential(nn.Linear(self.cin, self.cout, bias=self.bias), make_act(self.act))

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the convs and FCs (BN, activations, adds and pooling are not
        counted, as in the papers whose figures we compare against)."""
        ho, wo = self.out_hw
        hi, wi = self.in_hw
        t = self.type
        if t == "conv":
            return self.kernel**2 * (self.cin // self.groups) * self.cout * ho * wo
        if t == "dwconv":
            return self.kernel**2 * self.cin * ho * wo
        if t == "fc":
            return self.cin * self.cout
        k2 = self.kernel**2
        if t == "basicblock":
            shortcut = self.cin * self.cout * ho * wo if self.projection else 0
            return k2 * (self.cin + self.cout) * self.cout * ho * wo + shortcut
        if t == "shufflev2":
            half = self.cout // 2
            branch2 = (half if self.stride == 1 else self.cin) * half * hi * wi
            branch2 += (k2 * half + half * half) * ho * wo
            if self.stride == 1:
                return branch2
            return branch2 + (k2 * self.cin + self.cin * half) * ho * wo
        if t != "ibconv":
            return 0
        m = self.kernel**2 * self.hidden * ho * wo
        if self.expand_conv:
            m += self.cin * self.hidden // self.groups * hi * wi
        if self.se_hidden:
            m += 2 * self.hidden * self.se_hidden
        return m + self.hidden * self.cout // self.groups * ho * wo

    @property
    def params(self) -> int:
        """Trainable parameters of :meth:`build_module` (BN scale and shift included)."""
        return sum(p.numel() for p in self.build_module().parameters())


class GlobalPool(nn.Module):
    """Global average pooling to ``(N, C)`` (what the following ``fc`` layers take)."""

    def forward(self, x):
        return x.mean((2, 3))


@dataclass(frozen=True)
class Network:
    """A validated layer list plus the facts around it (source, published figures...)."""

    name: str
    input_hw: tuple[int, int]
    in_chs: int
    layers: tuple[Layer, ...]
    meta: Mapping = field(default_factory=dict, compare=False, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.in_chs, *self.input_hw)

    @property
    def num_classes(self) -> int:
        return self.layers[-1].cout

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.build_module().parameters())

    def build_module(self) -> nn.Sequential:
        """The whole network as one torch module (eval mode), input :attr:`input_shape`."""
        return nn.Sequential(*(layer.build_module() for layer in self.layers)).eval()

    def raw_layers(self) -> list[dict]:
        return [to_layer_dict(layer) for layer in self.layers]

    def to_dict(self) -> dict:
        """The JSON form (round-trips through :func:`network_from_dict`)."""
        out = {k: v for k, v in self.meta.items() if k not in _NET_FIELDS}
        h, w = self.input_hw
        out["input"] = h if h == w else [h, w]
        if self.in_chs != 3:
            out["in_chs"] = self.in_chs
        out["num_classes"] = self.num_classes
        out["layers"] = self.raw_layers()
        return out


def to_layer_dict(layer: Layer) -> dict:
    """The explicit JSON form of one layer (every field its type uses)."""
    d: dict = {"type": layer.type, "cin": layer.cin, "cout": layer.cout}
    t = layer.type
    if t in ("conv", "dwconv", "ibconv", "maxpool", "avgpool", "basicblock", "shufflev2"):
        d.update(kernel=layer.kernel, stride=layer.stride)
    if t == "conv":
        d.update(groups=layer.groups, act=layer.act, bias=layer.bias)
    elif t == "dwconv":
        d.update(groups=layer.cin, act=layer.act)
    elif t == "ibconv":
        exp = layer.expansion
        d.update(
            expansion=int(exp) if float(exp).is_integer() else exp,
            expand_conv=layer.expand_conv,
            hidden=layer.hidden,
            groups=layer.groups,
            channel_shuffle=layer.channel_shuffle,
            se=bool(layer.se_hidden),
        )
        if layer.se_hidden:
            d.update(se_hidden=layer.se_hidden, se_act=layer.se_act, se_gate=layer.se_gate)
        d.update(act=layer.act, residual=layer.residual)
    elif t == "identity":
        d["stride"] = 1
    elif t == "fc":
        d.update(act=layer.act, bias=layer.bias)
    elif t == "avgpool":
        d["count_pad"] = layer.count_pad
    elif t == "basicblock":
        d.update(act=layer.act, projection=layer.projection)
    elif t == "shufflev2":
        d["act"] = layer.act
    return d
