"""Validation of layer-list network descriptions (behind :mod:`latency.networks.description`).

Every field of every layer is checked against its type's table before any module is built, and
an error names the network, the layer index and type, and the field, because a typo in a
hand-written layer list otherwise surfaces as a shape error deep inside an exporter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from latency.networks.description import LAYER_TYPES, Layer, NetDescError, Network
from padnas.core import read_input_json
from padnas.nn.ops import ACTIVATIONS

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
    "maxpool": {"kernel", "stride"},
    "avgpool": {"kernel", "stride", "count_pad"},
    "basicblock": {"kernel", "stride", "act", "projection"},
    "shufflev2": {"kernel", "stride", "act"},
}
# Spellings of activations seen in published definitions, mapped to padnas.nn.ops names.
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


def resolve_network(
    name: str, layers: list, hw: tuple[int, int], in_chs: int, meta: dict
) -> Network:
    """Validate every layer in order and resolve its input size; raise NetDescError naming the
    network, layer and field of the first problem."""
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


#: physical bounds of a described network: far above any mobile network, far below what would
#: price a 10^9-channel layer for hours (an absurd size is a typo, not a network)
MAX_CHANNELS, MAX_KERNEL, MAX_STRIDE, MAX_INPUT, MAX_EXPANSION = 65_536, 15, 8, 4096, 64
_MAXIMA = {
    "cin": MAX_CHANNELS,
    "cout": MAX_CHANNELS,
    "hidden": MAX_CHANNELS,
    "groups": MAX_CHANNELS,
    "se_hidden": MAX_CHANNELS,
    "kernel": MAX_KERNEL,
    "stride": MAX_STRIDE,
}


def _int(net, where, raw, key, default=None, minimum=1):
    value = raw.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        shown = "missing" if key not in raw else repr(value)
        raise NetDescError(f"{net} {where}: '{key}' must be an integer, got {shown}")
    if value < minimum:
        raise NetDescError(f"{net} {where}: '{key}' must be >= {minimum}, got {value}")
    maximum = _MAXIMA.get(key)
    if maximum is not None and value > maximum:
        raise NetDescError(f"{net} {where}: '{key}' must be <= {maximum}, got {value}")
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
    if t in ("maxpool", "avgpool"):
        if cout != cin:
            raise NetDescError(f"{net} {where}: a pool keeps its channels (cin {cin}, cout {cout})")
        return replace(base, count_pad=_bool(net, where, raw, "count_pad", False))
    if t == "basicblock":
        return _basicblock(net, where, raw, base)
    if t == "shufflev2":
        return _shufflev2(net, where, raw, base)
    return _ibconv(net, where, raw, base)


def _basicblock(net: str, where: str, raw: Mapping, base: Layer) -> Layer:
    cin, cout, stride = base.cin, base.cout, base.stride
    same_shape = stride == 1 and cin == cout
    projection = _bool(net, where, raw, "projection", not same_shape)
    if not projection and not same_shape:
        raise NetDescError(
            f"{net} {where}: an identity shortcut needs stride 1 and cin == cout "
            f"(got stride {stride}, {cin}->{cout}); set projection true"
        )
    return replace(base, act=_act(net, where, raw, "act", "relu"), projection=projection)


def _shufflev2(net: str, where: str, raw: Mapping, base: Layer) -> Layer:
    cin, cout, stride = base.cin, base.cout, base.stride
    if cout % 2:
        raise NetDescError(
            f"{net} {where}: a ShuffleNetV2 unit concatenates two halves; cout must be even, "
            f"got {cout}"
        )
    if stride == 1 and cin != cout:
        raise NetDescError(
            f"{net} {where}: a stride-1 unit splits its input in halves and keeps its width "
            f"(cin {cin}, cout {cout}); use stride 2 to change the width"
        )
    return replace(base, act=_act(net, where, raw, "act", "relu"))


def _check_groups(net, where, groups, cin, cout):
    if cin % groups or cout % groups:
        raise NetDescError(f"{net} {where}: groups {groups} must divide cin {cin} and cout {cout}")


def _ibconv(net: str, where: str, raw: Mapping, base: Layer) -> Layer:
    cin, cout, stride = base.cin, base.cout, base.stride
    exp = raw.get("expansion", 1 if "hidden" in raw else None)
    if (
        isinstance(exp, bool)
        or not isinstance(exp, int | float)
        or not math.isfinite(exp)
        or not 0 < exp <= MAX_EXPANSION
    ):
        raise NetDescError(
            f"{net} {where}: 'expansion' must be a finite number in (0, {MAX_EXPANSION}], "
            f"got {exp!r}"
        )
    hidden = _int(net, where, raw, "hidden", round(cin * exp))
    expand = _bool(net, where, raw, "expand_conv", hidden != cin)
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
        # the expansion a block computes, however it was written (``hidden`` or ``expansion``):
        # the same block must get the same key
        expansion=hidden / cin,
        expand_conv=expand,
        hidden=hidden,
        groups=groups,
        channel_shuffle=shuffle,
        se_hidden=se_hidden,
        se_act=_act(net, where, raw, "se_act", "relu") or "relu",
        se_gate=_act(net, where, raw, "se_gate", "sigmoid") or "sigmoid",
        residual=residual,
    )


# ---- loading and validation -----------------------------------------------------------------


def load_networks(source: str | Path | Mapping) -> dict[str, Network]:
    """All networks of a file or parsed JSON: either one network (an object with ``layers``) or
    ``{"networks": {name: network, ...}}``. Raises :class:`NetDescError` on any format error."""
    if isinstance(source, Mapping):
        data, default_name = source, "network"
    else:
        path = Path(source)
        data = read_input_json(path, "network file", NetDescError, fix="see docs/network-format.md")
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
    if min(hw) < 1 or max(hw) > MAX_INPUT:
        raise NetDescError(f"{name}: 'input' must be 1..{MAX_INPUT}, got {size!r}")
    in_chs = data.get("in_chs", 3)
    if isinstance(in_chs, bool) or not isinstance(in_chs, int) or not 1 <= in_chs <= MAX_CHANNELS:
        raise NetDescError(f"{name}: 'in_chs' must be an integer 1..{MAX_CHANNELS}, got {in_chs!r}")
    net = resolve_network(name, layers, hw, in_chs, dict(data))
    classes = data.get("num_classes")
    if classes is not None and classes != net.num_classes:
        raise NetDescError(
            f"{name}: num_classes is {classes} but the last layer outputs {net.num_classes}"
        )
    return net
