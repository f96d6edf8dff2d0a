"""Network descriptions: MobileNet-style networks written as a JSON layer list.

The format is the one of ``latency/data/pixel3_published.json`` (documented in
``docs/network-format.md``): a network is an input size and an ordered list of layers of six types
(``conv``, ``dwconv``, ``ibconv``, ``identity``, ``pool``, ``fc``). It lets the latency tools handle
networks that are not architectures of our search space (MobileNetV1/V2, MnasNet, FBNet,
MobileNetV3...) with the same machinery: every layer becomes a module of :mod:`padnas.ops`, so a
whole network or any of its layers can be exported to TFLite and timed, and a LUT lookup can price
it layer by layer.

Loading validates everything up front (field names, types, channel chaining, legal strides) and
names the network, the layer and the field that is wrong, because a typo in a hand-written layer
list otherwise surfaces as a shape error deep inside an exporter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from torch import nn

from padnas.clitools import UsageError
from padnas.ops import ACTIVATIONS, ConvBNAct, IBConv, Identity, make_act

LAYER_TYPES = ("conv", "dwconv", "ibconv", "identity", "pool", "fc")

# Fields each layer type may carry ("type", "cin", "cout" are common to all).
_COMMON = {"type", "cin", "cout", "name", "comment"}
_FIELDS = {
    "conv": {"kernel", "stride", "groups", "act", "bias"},
    "dwconv": {"kernel", "stride", "groups", "act"},
    "ibconv": {
        "kernel",
        "stride",
        "expansion",
        "expand_conv",
        "hidden",
        "groups",
        "channel_shuffle",
        "se",
        "se_ratio",
        "se_base",
        "se_hidden",
        "se_act",
        "se_gate",
        "act",
        "residual",
    },
    "identity": {"stride"},
    "pool": set(),
    "fc": {"act", "bias"},
}
# Spellings of activations seen in published definitions, mapped to padnas.ops names.
_ACT_ALIASES = {
    "h-swish": "hswish",
    "hard_swish": "hswish",
    "hardswish": "hswish",
    "h-sigmoid": "hsigmoid",
    "hard_sigmoid": "hsigmoid",
    "hardsigmoid": "hsigmoid",
    "silu": "swish",
    "none": None,
    "linear": None,
}
_NET_FIELDS = {"layers", "input", "in_chs", "num_classes"}


class NetDescError(UsageError):
    """A network description that does not follow the format; the message says where and why."""


@dataclass(frozen=True)
class Layer:
    """One validated layer with its input/output spatial size resolved (``SAME`` padding).

    ``hidden`` and ``se_hidden`` are resolved to exact channel counts (0 = no SE); ``residual``
    to whether the add really happens.
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
        """The layer as a :mod:`padnas.ops` module (the computation the format describes)."""
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

    def describe(self) -> str:
        """Short human form, e.g. ``ibconv k5 e3 32->40 s2 @56x56``."""
        h, w = self.in_hw
        extra = ""
        if self.type in ("conv", "dwconv", "ibconv"):
            extra = f" k{self.kernel} s{self.stride}"
        if self.type == "ibconv":
            extra += f" e{self.expansion:g}"
        return f"{self.type}{extra} {self.cin}->{self.cout} @{h}x{w}"


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

    def with_input(self, resolution: int) -> Network:
        """The same layer list at another square input resolution."""
        return _resolve(
            self.name, self._raw_layers(), (resolution, resolution), self.in_chs, self.meta
        )

    def _raw_layers(self) -> list[dict]:
        return [to_layer_dict(layer) for layer in self.layers]

    def to_dict(self) -> dict:
        """The JSON form (round-trips through :func:`network_from_dict`)."""
        out = {k: v for k, v in self.meta.items() if k not in _NET_FIELDS}
        h, w = self.input_hw
        out["input"] = h if h == w else [h, w]
        if self.in_chs != 3:
            out["in_chs"] = self.in_chs
        out["num_classes"] = self.num_classes
        out["layers"] = self._raw_layers()
        return out


def to_layer_dict(layer: Layer) -> dict:
    """The explicit JSON form of one layer (every field its type uses)."""
    d: dict = {"type": layer.type, "cin": layer.cin, "cout": layer.cout}
    t = layer.type
    if t in ("conv", "dwconv", "ibconv"):
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
    return d


# ---- loading and validation -----------------------------------------------------------------


def load_networks(source: str | Path | Mapping) -> dict[str, Network]:
    """All networks of a file or parsed JSON: either one network (an object with ``layers``) or
    ``{"networks": {name: network, ...}}``. Raises :class:`NetDescError` on any format error."""
    if isinstance(source, Mapping):
        data, default_name = source, "network"
    else:
        path = Path(source)
        if not path.is_file():
            raise NetDescError(f"network file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise NetDescError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        default_name = path.stem
    if not isinstance(data, Mapping):
        raise NetDescError("a network file must hold a JSON object")
    if "layers" in data:
        name = str(data.get("name", default_name))
        return {name: network_from_dict(name, data)}
    nets = data.get("networks")
    if not isinstance(nets, Mapping) or not nets:
        raise NetDescError(
            "no network found: expected an object with 'layers' (one network) or "
            "'networks': {name: {...}} (see docs/network-format.md)"
        )
    return {str(name): network_from_dict(str(name), net) for name, net in nets.items()}


def select_networks(nets: Mapping[str, Network], names: tuple[str, ...] | list[str] = ()) -> list:
    """The named networks (all when ``names`` is empty); an unknown name lists the known ones."""
    if not names:
        return list(nets.values())
    missing = [n for n in names if n not in nets]
    if missing:
        raise NetDescError(
            f"no network named {', '.join(missing)}; the file holds: {', '.join(nets)}"
        )
    return [nets[n] for n in names]


def network_from_dict(name: str, data: Mapping) -> Network:
    """Validate one network's JSON object and resolve every layer's shapes."""
    if not isinstance(data, Mapping):
        raise NetDescError(f"{name}: a network must be a JSON object")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise NetDescError(f"{name}: 'layers' must be a non-empty list of layer objects")
    size = data.get("input", 224)
    if isinstance(size, int) and not isinstance(size, bool):
        hw = (size, size)
    elif (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
    ):
        hw = (size[0], size[1])
    else:
        raise NetDescError(f"{name}: 'input' must be an integer or [height, width], got {size!r}")
    if min(hw) < 1:
        raise NetDescError(f"{name}: 'input' must be positive, got {size!r}")
    in_chs = _int(name, "network", data, "in_chs", 3)
    net = _resolve(name, layers, hw, in_chs, dict(data))
    classes = data.get("num_classes")
    if classes is not None and classes != net.num_classes:
        raise NetDescError(
            f"{name}: num_classes is {classes} but the last layer outputs {net.num_classes}"
        )
    return net


def _resolve(name, layers, hw, in_chs, meta) -> Network:
    out: list[Layer] = []
    cur_chs, cur_hw, pooled = in_chs, hw, False
    for i, raw in enumerate(layers):
        layer = _layer(name, i, raw, cur_hw)
        where = f"{name} layer {i} ({layer.type})"
        if layer.cin != cur_chs:
            raise NetDescError(
                f"{where}: cin is {layer.cin} but the previous layer outputs {cur_chs} channels"
            )
        if pooled and layer.type != "fc":
            raise NetDescError(f"{where}: after 'pool' only 'fc' layers may follow")
        if layer.type == "fc" and not pooled:
            raise NetDescError(f"{where}: 'fc' needs pooled features: put a 'pool' layer before it")
        pooled = pooled or layer.type == "pool"
        out.append(layer)
        cur_chs, cur_hw = layer.cout, layer.out_hw
    return Network(name, hw, in_chs, tuple(out), meta)


def _int(net, where, raw, key, default=None, minimum=1):
    value = raw.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        shown = "missing" if key not in raw else repr(value)
        raise NetDescError(f"{net} {where}: '{key}' must be an integer, got {shown}")
    if value < minimum:
        raise NetDescError(f"{net} {where}: '{key}' must be >= {minimum}, got {value}")
    return value


def _bool(net, where, raw, key, default):
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise NetDescError(f"{net} {where}: '{key}' must be true or false, got {value!r}")
    return value


def _act(net, where, raw, key, default):
    value = raw.get(key, default)
    if value is not None and not isinstance(value, str):
        raise NetDescError(f"{net} {where}: '{key}' must be a string or null, got {value!r}")
    if isinstance(value, str):
        low = value.lower()
        value = _ACT_ALIASES.get(low, low)
    if value is not None and value not in ACTIVATIONS:
        raise NetDescError(
            f"{net} {where}: unknown activation {raw.get(key)!r} for '{key}'; use one of "
            f"{', '.join(sorted(ACTIVATIONS))} or null"
        )
    return value


def _layer(net: str, i: int, raw, in_hw: tuple[int, int]) -> Layer:
    if not isinstance(raw, Mapping):
        raise NetDescError(f"{net} layer {i}: a layer must be a JSON object, got {raw!r}")
    t = raw.get("type")
    if t not in LAYER_TYPES:
        raise NetDescError(
            f"{net} layer {i}: unknown type {t!r}; use one of {', '.join(LAYER_TYPES)}"
        )
    where = f"layer {i} ({t})"
    unknown = set(raw) - _COMMON - _FIELDS[t]
    if unknown:
        raise NetDescError(
            f"{net} {where}: unknown field(s) {', '.join(sorted(unknown))}; a {t} layer takes "
            f"{', '.join(sorted((_COMMON | _FIELDS[t]) - {'name', 'comment'}))}"
        )
    cin, cout = _int(net, where, raw, "cin"), _int(net, where, raw, "cout")
    kernel = _int(net, where, raw, "kernel") if "kernel" in _FIELDS[t] else 1
    stride = _int(net, where, raw, "stride", 1) if "stride" in _FIELDS[t] else 1
    if kernel % 2 == 0:
        raise NetDescError(f"{net} {where}: 'kernel' must be odd for SAME padding, got {kernel}")
    base = Layer(t, cin, cout, in_hw, kernel=kernel, stride=stride)
    if t == "conv":
        groups = _int(net, where, raw, "groups", 1)
        _check_groups(net, where, groups, cin, cout)
        act = _act(net, where, raw, "act", "relu6")
        return replace(base, groups=groups, act=act, bias=_bool(net, where, raw, "bias", False))
    if t == "dwconv":
        if cout != cin:
            raise NetDescError(
                f"{net} {where}: a dwconv keeps its channels (cin {cin}, cout {cout})"
            )
        groups = raw.get("groups", cin)
        if groups != cin:
            raise NetDescError(f"{net} {where}: a dwconv has groups == cin ({cin}), got {groups!r}")
        return replace(base, groups=cin, act=_act(net, where, raw, "act", "relu6"))
    if t == "identity":
        if cout != cin or stride != 1:
            raise NetDescError(
                f"{net} {where}: identity needs cin == cout and stride 1 "
                f"(got {cin}->{cout}, stride {stride})"
            )
        return base
    if t == "pool":
        if cout != cin:
            raise NetDescError(f"{net} {where}: pool keeps its channels (cin {cin}, cout {cout})")
        return base
    if t == "fc":
        return replace(
            base,
            act=_act(net, where, raw, "act", None),
            bias=_bool(net, where, raw, "bias", True),
        )
    return _ibconv(net, where, raw, base)


def _check_groups(net, where, groups, cin, cout):
    if cin % groups or cout % groups:
        raise NetDescError(f"{net} {where}: groups {groups} must divide cin {cin} and cout {cout}")


def _ibconv(net: str, where: str, raw: Mapping, base: Layer) -> Layer:
    cin, cout, stride = base.cin, base.cout, base.stride
    exp = raw.get("expansion", 1 if "hidden" in raw else None)
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= 0:
        raise NetDescError(f"{net} {where}: 'expansion' must be a positive number, got {exp!r}")
    expand = _bool(net, where, raw, "expand_conv", exp != 1)
    hidden = _int(net, where, raw, "hidden", round(cin * exp))
    if not expand and hidden != cin:
        raise NetDescError(
            f"{net} {where}: without an expand conv the hidden width is cin ({cin}); got "
            f"{hidden} (set expand_conv true, or expansion 1)"
        )
    groups = _int(net, where, raw, "groups", 1)
    _check_groups(net, where, groups, hidden, cout)
    if expand:
        _check_groups(net, where, groups, cin, hidden)
    shuffle = _bool(net, where, raw, "channel_shuffle", False)
    if shuffle and groups == 1:
        raise NetDescError(f"{net} {where}: channel_shuffle needs groups > 1")
    if shuffle and not expand:
        raise NetDescError(f"{net} {where}: channel_shuffle follows the expand conv; it has none")
    se_hidden = 0
    se_keys = {"se_ratio", "se_base", "se_hidden", "se_act", "se_gate"} & set(raw)
    if _bool(net, where, raw, "se", False):
        if "se_hidden" in raw:
            se_hidden = _int(net, where, raw, "se_hidden")
        else:
            ratio = raw.get("se_ratio")
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                raise NetDescError(
                    f"{net} {where}: an SE block needs 'se_hidden' or 'se_ratio' in (0, 1], "
                    f"got se_ratio {ratio!r}"
                )
            se_base = raw.get("se_base", "cin")
            if se_base not in ("cin", "hidden"):
                raise NetDescError(
                    f"{net} {where}: 'se_base' must be 'cin' or 'hidden', got {se_base!r}"
                )
            se_hidden = max(1, int((cin if se_base == "cin" else hidden) * ratio))
    elif se_keys:
        raise NetDescError(
            f"{net} {where}: {', '.join(sorted(se_keys))} given but 'se' is not true"
        )
    can_add = stride == 1 and cin == cout
    residual = _bool(net, where, raw, "residual", can_add)
    if residual and not can_add:
        raise NetDescError(
            f"{net} {where}: a residual add needs stride 1 and cin == cout "
            f"(got stride {stride}, {cin}->{cout}); set residual false"
        )
    return replace(
        base,
        act=_act(net, where, raw, "act", "relu6"),
        expansion=float(exp),
        expand_conv=expand,
        hidden=hidden,
        groups=groups,
        channel_shuffle=shuffle,
        se_hidden=se_hidden,
        se_act=_act(net, where, raw, "se_act", "relu") or "relu",
        se_gate=_act(net, where, raw, "se_gate", "sigmoid") or "sigmoid",
        residual=residual,
    )
