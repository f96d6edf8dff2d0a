"""Latency units of a described network: the pieces a LUT prices, with their keys.

A network's latency is predicted as a sum over units. A unit is one layer of the layer list, except
that the two patterns every network of our space has are recognised and priced like the space does:

* a ``conv`` k3 s2 ReLU6 from the 3-channel image is the space's **stem**;
* a trailing ``conv`` 1x1 ReLU6 -> ``pool`` -> ``fc`` (linear, with bias) is the space's **head**.

A unit that computes exactly what an op variant of our space computes (stem, an IBConv with ReLU6,
no SE, ungrouped, hidden = cin x expansion, the default residual, head) carries that variant's key,
so a LUT entry measured for the space prices it too: ProxylessNAS-mobile written as a layer list
and as an architecture of the basic space get the same keys, hence the same latency. Any other unit
gets a key of its own (``conv-...``, ``dwconv-...``, ``pool-...``, ``fc-...``, ``maxpool-...``,
``avgpool-...``, ``basicblock-...``, ``shufflev2-...``, or an ``ibconv-...`` key with option tags)
that names every fact that changes its computation. Identity layers cost nothing and form no unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from torch import nn

from latency.networks.checks import network_from_dict
from latency.networks.description import Layer, Network
from latency.variants import ACTS, FEATURE_NAMES, Variant
from padnas.space import (
    HEAD_CHANNELS,
    STEM_STRIDE,
    Arch,
    SearchSpace,
    SpaceError,
    parse_op,
    se_channels,
)


@dataclass(frozen=True)
class Unit:
    """One priced piece of a network: one layer, or the stem/head pattern (several layers)."""

    kind: str  # stem | head | a layer type (identity excepted)
    layers: tuple[Layer, ...]
    variant: Variant | None  # the space variant it equals, if any

    @cached_property
    def key(self) -> str:
        return self.variant.key if self.variant is not None else _own_key(self.layers[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].input_shape

    def build_module(self) -> nn.Module:
        """The unit as a :mod:`padnas.nn.ops` module in eval mode (what gets exported and timed)."""
        if self.variant is not None:
            return self.variant.build_module()
        return self.layers[0].build_module().eval()

    def features(self) -> dict[str, float]:
        """Cost features in :data:`latency.variants.FEATURE_NAMES` (for the regression fallback).

        Space variants give their own; other layers are mapped onto the same vocabulary (MACs by
        conv type, activation elements, params), which is what the fallback's linear part uses.
        """
        if self.variant is not None:
            return self.variant.features()
        layer = self.layers[0]
        (hi, wi), (ho, wo) = layer.in_hw, layer.out_hw
        f = dict.fromkeys(FEATURE_NAMES, 0.0)
        f.update(
            kernel=layer.kernel,
            exp_ratio=layer.expansion if layer.type == "ibconv" else 1,
            stride=layer.stride,
            in_chs=layer.cin,
            out_chs=layer.cout,
            hidden_chs=layer.hidden or layer.cout,
            in_hw=hi,
            out_hw=ho,
            act_in=hi * wi * layer.cin,
            act_out=ho * wo * layer.cout,
            params=layer.params,
        )
        t, macs = layer.type, layer.macs
        if t == "conv":
            f["macs_pw" if layer.kernel == 1 else "macs_full"] = macs
        elif t == "dwconv":
            f["macs_dw"] = macs
        elif t == "fc":
            f["macs_fc"] = macs
        elif t in ("maxpool", "avgpool"):
            # a pooling window reads kernel^2 inputs per output, as a depthwise conv does: the
            # regression sees that work as depthwise work (Layer.macs leaves pooling uncounted)
            f["macs_dw"] = layer.kernel**2 * layer.cin * ho * wo
        elif t == "basicblock":
            shortcut = layer.cin * layer.cout * ho * wo if layer.projection else 0
            f.update(
                macs_full=macs - shortcut,
                macs_pw=shortcut,
                act_hidden=ho * wo * layer.cout * (2 if layer.projection else 1),
                residual=1,
            )
        elif t == "shufflev2":
            half = layer.cout // 2
            dw = layer.kernel**2 * ho * wo * (half if layer.stride == 1 else half + layer.cin)
            # branch tensors between convs: after the first 1x1 (input size) and after each
            # depthwise conv (output size)
            first = hi * wi * half
            after_dw = ho * wo * (half if layer.stride == 1 else half + layer.cin)
            f.update(
                hidden_chs=half,
                macs_dw=dw,
                macs_pw=macs - dw,
                act_hidden=first + after_dw,
            )
        elif t == "ibconv":
            dw = layer.kernel**2 * layer.hidden * ho * wo
            se = 2 * layer.hidden * layer.se_hidden
            f.update(
                is_ibconv=1,
                macs_dw=dw,
                macs_fc=se,
                macs_pw=macs - dw - se,
                act_hidden=(hi * wi * layer.hidden if layer.expand_conv else 0)
                + ho * wo * layer.hidden,
                residual=int(layer.residual),
            )
        f["macs"] = f["macs_full"] + f["macs_pw"] + f["macs_dw"] + f["macs_fc"]
        return {k: float(v) for k, v in f.items()}


def network_units(net: Network) -> list[Unit]:
    """The units of a network in order (identity layers left out: they cost nothing)."""
    layers = net.layers
    head_at = len(layers) - 3 if _is_head(layers[-3:]) else None
    units: list[Unit] = []
    i = 0
    while i < len(layers):
        if i == head_at:
            conv, _pool, fc = layers[i:]
            (h, w), c = conv.in_hw, conv.cin
            v = Variant(
                "head",
                h,
                w,
                c,
                1,
                1,
                fc.cout,
                feat_chs=conv.cout,
                num_classes=fc.cout,
                act=conv.act,
            )
            units.append(Unit("head", layers[i:], v))
            break
        layer = layers[i]
        if layer.type != "identity":
            units.append(
                Unit(layer.type if not _is_stem(layer) else "stem", (layer,), _space_variant(layer))
            )
        i += 1
    return units


def _is_stem(layer: Layer) -> bool:
    return (
        layer.type == "conv"
        and layer.cin == 3
        and layer.kernel == 3
        and layer.stride == 2
        and layer.groups == 1
        and layer.act in ACTS
        and not layer.bias
    )


def _is_head(tail: tuple[Layer, ...]) -> bool:
    if len(tail) != 3:
        return False
    conv, pool, fc = tail
    return (
        conv.type == "conv"
        and conv.kernel == 1
        and conv.stride == 1
        and conv.groups == 1
        and conv.act in ACTS
        and not conv.bias
        and pool.type == "pool"
        and fc.type == "fc"
        and fc.act is None
        and fc.bias
    )


def _space_variant(layer: Layer) -> Variant | None:
    """The space variant computing exactly this layer, or None."""
    (hi, wi), (ho, wo) = layer.in_hw, layer.out_hw
    if _is_stem(layer):
        return Variant("stem", hi, wi, 3, ho, wo, layer.cout, kernel=3, stride=2, act=layer.act)
    if layer.type != "ibconv":
        return None
    e = layer.expansion
    space_se = (  # MobileNetV3's SE as the v3 space has it
        layer.se_hidden == se_channels(layer.hidden)
        and layer.se_act == "relu"
        and layer.se_gate in ("hsigmoid", "h_sigmoid")
    )
    standard = (
        float(e).is_integer()
        and layer.hidden == layer.cin * int(e)
        and layer.expand_conv == (e != 1)
        and layer.groups == 1
        and (not layer.se_hidden or space_se)
        and layer.act in ACTS
        and layer.residual == (layer.stride == 1 and layer.cin == layer.cout)
    )
    if not standard:
        return None
    return Variant(
        "ibconv",
        hi,
        wi,
        layer.cin,
        ho,
        wo,
        layer.cout,
        layer.kernel,
        int(e),
        layer.stride,
        se=bool(layer.se_hidden),
        act=layer.act,
    )


def _act_tag(act: str | None) -> str:
    return act or "linear"


def _own_key(layer: Layer) -> str:
    """A key naming every fact of a layer that changes its computation (not a space variant)."""
    (hi, wi), (ho, wo) = layer.in_hw, layer.out_hw
    i, o = f"i{hi}x{wi}x{layer.cin}", f"o{ho}x{wo}x{layer.cout}"
    t = layer.type
    if t == "conv":
        bias = "-bias" if layer.bias else ""
        return (
            f"conv-k{layer.kernel}-s{layer.stride}-g{layer.groups}-{i}-{o}-"
            f"{_act_tag(layer.act)}{bias}"
        )
    if t == "dwconv":
        return f"dwconv-k{layer.kernel}-s{layer.stride}-{i}-{o}-{_act_tag(layer.act)}"
    if t == "pool":
        return f"pool-{i}"
    if t in ("maxpool", "avgpool"):
        pad = "-countpad" if layer.count_pad else ""
        return f"{t}-k{layer.kernel}-s{layer.stride}-{i}-{o}{pad}"
    if t == "basicblock":
        shortcut = "proj" if layer.projection else "id"
        return (
            f"basicblock-k{layer.kernel}-s{layer.stride}-{i}-{o}-{shortcut}-{_act_tag(layer.act)}"
        )
    if t == "shufflev2":
        return f"shufflev2-k{layer.kernel}-s{layer.stride}-{i}-{o}-{_act_tag(layer.act)}"
    if t == "fc":
        return f"fc-i{layer.cin}-o{layer.cout}-{_act_tag(layer.act)}" + (
            "" if layer.bias else "-nobias"
        )
    # an ibconv outside the space's variants: the base key plus a tag per deviation
    tags = [f"h{layer.hidden}"]
    if layer.expand_conv != (layer.expansion != 1):
        tags.append("expand" if layer.expand_conv else "noexpand")
    if layer.groups != 1:
        tags.append(f"g{layer.groups}" + ("shuffle" if layer.channel_shuffle else ""))
    if layer.se_hidden:
        tags.append(f"se{layer.se_hidden}.{layer.se_act}.{layer.se_gate}")
    tags.append(_act_tag(layer.act))
    if layer.residual != (layer.stride == 1 and layer.cin == layer.cout):
        tags.append("res" if layer.residual else "nores")
    return f"ibconv-k{layer.kernel}-e{layer.expansion:g}-s{layer.stride}-{i}-{o}-" + "-".join(tags)


# ---- architectures of our space as layer lists -----------------------------------------------


def arch_layers(space: SearchSpace, arch, resolution: int = 224, num_classes: int = 1000) -> dict:
    """An architecture of ``space`` written in the layer-list format (width 1.0).

    The inverse direction of :func:`as_arch`; useful to export, measure or edit an architecture
    with the same tools as any described network.
    """

    arch = space.validate(arch)
    layers = [
        dict(
            type="conv",
            cin=3,
            cout=space.stem_chs,
            kernel=3,
            stride=STEM_STRIDE,
            groups=1,
            act=space.stem_act,
        )
    ]
    for spec, op in zip(space.layers, arch.ops, strict=True):
        parsed = parse_op(op)
        if parsed is None:
            layers.append(dict(type="identity", cin=spec.in_chs, cout=spec.out_chs, stride=1))
            continue
        k, e, se = parsed
        layer = dict(
            type="ibconv",
            cin=spec.in_chs,
            cout=spec.out_chs,
            kernel=k,
            stride=spec.stride,
            expansion=e,
            expand_conv=e != 1,
            groups=1,
            se=se,
            act=spec.act,
            residual=spec.stride == 1 and spec.in_chs == spec.out_chs,
        )
        if se:
            layer.update(se_hidden=se_channels(spec.in_chs * e), se_act="relu", se_gate="hsigmoid")
        layers.append(layer)
    last = space.layers[-1].out_chs
    layers += [
        dict(
            type="conv",
            cin=last,
            cout=HEAD_CHANNELS,
            kernel=1,
            stride=1,
            groups=1,
            act=space.head_act,
        ),
        dict(type="pool", cin=HEAD_CHANNELS, cout=HEAD_CHANNELS),
        dict(type="fc", cin=HEAD_CHANNELS, cout=num_classes, act=None, bias=True),
    ]
    return {
        "source": f"padnas {space.family} space, architecture {arch}",
        "input": resolution,
        "num_classes": num_classes,
        "layers": layers,
    }


def as_arch(net: Network, space: SearchSpace):
    """The architecture of ``space`` this network is, or None: the layer list must be the
    space's stem, one identity or standard IBConv per searchable layer, and the space's head,
    with every shape as the space has it (checked by comparing unit keys)."""

    if len(net.layers) != space.num_layers + 4 or net.input_hw[0] != net.input_hw[1]:
        return None
    ops = []
    for layer in net.layers[1:-3]:
        if layer.type == "identity":
            ops.append("ID")
        elif layer.type == "ibconv" and _space_variant(layer) is not None:
            se = "SE" if layer.se_hidden else ""
            ops.append(f"K{layer.kernel}E{int(layer.expansion)}{se}")
        else:
            return None
    try:
        arch = space.validate(Arch(tuple(ops)))
    except SpaceError:
        return None
    ref = network_from_dict("ref", arch_layers(space, arch, net.input_hw[0], net.num_classes))
    same = [u.key for u in network_units(ref)] == [u.key for u in network_units(net)]
    return arch if same else None
