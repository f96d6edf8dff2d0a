"""Op variants: the unique (op, input shape, output shape, stride) blocks a space can produce.

A latency LUT is indexed by variant, not by (layer, op): two layers with the same shapes and op
run the same computation, so they share one measurement. Keys are readable and complete, so a key
alone rebuilds its block (:meth:`Variant.from_key`) and its regression features; a LUT therefore
never needs the space to refit its fallback model.

Key forms (H x W x C, NHWC order as the device sees them)::

    stem-k3-s2-i224x224x3-o112x112x16
    ibconv-k5-e6-s1-i28x28x40-o28x28x40
    head-i7x7x320-f1280-c1000

Blocks of the v3 space add what else changes their computation: ``-se`` for squeeze-excite and
the activation when it is not ReLU6 (``stem-k3-s2-i224x224x3-o112x112x16-hswish``,
``ibconv-k5-e6-s1-i14x14x80-o14x14x80-se-hswish``, ``head-i7x7x160-f1280-c1000-hswish``), so the
ReLU6-only spaces keep their keys and a key still rebuilds its block.

Identity costs zero and has no variant (in this space it never changes shape). This module does
not import torch: the search side and a warm ``profile`` re-run only need keys and shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property

from latency.errors import LatencyUsageError
from padnas.space import (
    DEFAULT_ACT,
    DEPLOY_CLASSES,
    DEPLOY_RESOLUTION,
    HEAD_CHANNELS,
    STEM_STRIDE,
    Arch,
    Proxy,
    SearchSpace,
    SpaceError,
    parse_op,
    se_channels,
)

KINDS = ("stem", "ibconv", "head")
#: the precisions a variant is exported and timed at: a float file, or a full-integer one
#: (:mod:`latency.export.quantize`); a LUT holds one precision, a profile may ship both
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
_SHAPE = r"(\d+)x(\d+)x(\d+)"
ACTS = ("relu6", "relu", "hswish")
_ACT = r"(?:-(relu|hswish))?"
_KEY_RES = {
    "stem": re.compile(rf"^stem-k(\d+)-s(\d+)-i{_SHAPE}-o{_SHAPE}{_ACT}$"),
    "ibconv": re.compile(rf"^ibconv-k(\d+)-e(\d+)-s(\d+)-i{_SHAPE}-o{_SHAPE}(-se)?{_ACT}$"),
    "head": re.compile(rf"^head-i{_SHAPE}-f(\d+)-c(\d+){_ACT}$"),
}


#: the largest spatial size and channel count a key may hold (far above any mobile network)
MAX_SIDE, MAX_CHANNELS, MAX_CLASSES = 4096, 8192, 100_000


class VariantError(LatencyUsageError):
    """A key that is not a variant key; the message shows the expected forms."""


@dataclass(frozen=True)
class Variant:
    """One measurable block: its kind, shapes and op hyper-parameters (width 1.0 or a proxy)."""

    kind: str
    in_h: int
    in_w: int
    in_chs: int
    out_h: int
    out_w: int
    out_chs: int
    kernel: int = 1
    exp_ratio: int = 1
    stride: int = 1
    feat_chs: int = 0  # head: width of the 1x1 conv before pooling
    num_classes: int = 0  # head: classifier outputs
    se: bool = False  # ibconv: MobileNetV3 squeeze-excite after the depthwise conv
    act: str = DEFAULT_ACT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VariantError(f"unknown variant kind {self.kind!r}; expected one of {KINDS}")
        if self.act not in ACTS:
            raise VariantError(f"unknown activation {self.act!r}; expected one of {ACTS}")

    @property
    def _tail(self) -> str:
        se = "-se" if self.se else ""
        return se + ("" if self.act == DEFAULT_ACT else f"-{self.act}")

    # ---- identity ---------------------------------------------------------------------------
    @cached_property
    def key(self) -> str:
        i = f"i{self.in_h}x{self.in_w}x{self.in_chs}"
        o = f"o{self.out_h}x{self.out_w}x{self.out_chs}"
        if self.kind == "stem":
            return f"stem-k{self.kernel}-s{self.stride}-{i}-{o}{self._tail}"
        if self.kind == "ibconv":
            return f"ibconv-k{self.kernel}-e{self.exp_ratio}-s{self.stride}-{i}-{o}{self._tail}"
        return f"head-{i}-f{self.feat_chs}-c{self.num_classes}{self._tail}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def from_key(cls, key: str) -> Variant:
        """Inverse of :attr:`key`; raises VariantError naming the expected forms."""
        kind = key.split("-", 1)[0]
        rx = _KEY_RES.get(kind)
        m = rx.match(key) if rx else None
        if not m:
            raise VariantError(
                f"not a variant key: {key!r}; expected e.g. stem-k3-s2-i224x224x3-o112x112x16, "
                "ibconv-k5-e6-s1-i28x28x40-o28x28x40 or head-i7x7x320-f1280-c1000, optionally "
                "followed by -se (ibconv) and -relu or -hswish"
            )
        *numbers, act = m.groups()
        act = act or DEFAULT_ACT
        se = kind == "ibconv" and numbers.pop() is not None
        g = [int(x) for x in numbers]
        if kind == "stem":
            k, s, ih, iw, ic, oh, ow, oc = g
            v = cls("stem", ih, iw, ic, oh, ow, oc, kernel=k, stride=s, act=act)
        elif kind == "ibconv":
            k, e, s, ih, iw, ic, oh, ow, oc = g
            v = cls(
                "ibconv", ih, iw, ic, oh, ow, oc, kernel=k, exp_ratio=e, stride=s, se=se, act=act
            )
        else:
            ih, iw, ic, f, c = g
            v = cls("head", ih, iw, ic, 1, 1, c, feat_chs=f, num_classes=c, act=act)
        v.check_grammar()
        return v

    def check_grammar(self) -> None:
        """Raise VariantError unless a space could produce this block: a Table 2 op (kernel
        3/5/7, expansion 1..6), the stem's kernel and stride, stride 1 or 2 with the output size
        it implies, and sizes within physical bounds. A LUT read from a file is checked key by
        key, so an entry no space can ever use (``ibconv-k9-e9-...``) is refused, not priced."""
        key = self.key
        if self.kind == "ibconv":
            try:
                parse_op(f"K{self.kernel}E{self.exp_ratio}")
            except SpaceError as exc:
                raise VariantError(f"{key}: no space has this op ({exc})") from None
        if self.kind == "stem" and (self.kernel != 3 or self.stride != STEM_STRIDE):
            raise VariantError(f"{key}: the stem is a 3x3 conv of stride {STEM_STRIDE}")
        if self.stride not in (1, 2):
            raise VariantError(f"{key}: stride must be 1 or 2, got {self.stride}")
        sides = (self.in_h, self.in_w, self.out_h, self.out_w)
        chans = (self.in_chs, self.feat_chs if self.kind == "head" else self.out_chs)
        if not all(1 <= x <= MAX_SIDE for x in sides):
            raise VariantError(f"{key}: spatial sizes must be 1..{MAX_SIDE}")
        if not all(1 <= x <= MAX_CHANNELS for x in chans):
            raise VariantError(f"{key}: channel counts must be 1..{MAX_CHANNELS}")
        if self.kind == "head":
            if not 1 <= self.num_classes <= MAX_CLASSES:
                raise VariantError(f"{key}: classes must be 1..{MAX_CLASSES}")
            return
        want = (-(-self.in_h // self.stride), -(-self.in_w // self.stride))
        if (self.out_h, self.out_w) != want:
            raise VariantError(
                f"{key}: stride {self.stride} makes {self.in_h}x{self.in_w} into "
                f"{want[0]}x{want[1]}, not {self.out_h}x{self.out_w}"
            )

    # ---- the block --------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """NCHW shape of the block's input, as PyTorch takes it."""
        return (1, self.in_chs, self.in_h, self.in_w)

    @property
    def hidden_chs(self) -> int:
        return self.in_chs * self.exp_ratio if self.kind == "ibconv" else self.out_chs

    def build_module(self):
        """The very :mod:`padnas.nn.ops` module the supernet trains, in eval mode."""
        from padnas.nn import ops

        if self.kind == "stem":
            module = ops.Stem(self.out_chs, in_chs=self.in_chs, stride=self.stride, act=self.act)
        elif self.kind == "ibconv":
            op = f"K{self.kernel}E{self.exp_ratio}" + ("SE" if self.se else "")
            module = ops.build_op(op, self.in_chs, self.out_chs, self.stride, self.act)
        else:
            module = ops.Head(self.in_chs, self.feat_chs, self.num_classes, act=self.act)
        return module.eval()

    # ---- regression features ----------------------------------------------------------------
    def features(self) -> dict[str, float]:
        """Cost facts of the block: MACs and params split by conv type, activation sizes, shapes.

        Element counts, not bytes: every tensor is float32, so bytes are a constant factor.
        """
        hw_in = self.in_h * self.in_w
        hw_out = self.out_h * self.out_w
        f = dict.fromkeys(FEATURE_NAMES, 0.0)
        f.update(
            kernel=self.kernel,
            exp_ratio=self.exp_ratio,
            stride=self.stride,
            in_chs=self.in_chs,
            out_chs=self.out_chs,
            in_hw=self.in_h,
            out_hw=self.out_h,
            act_in=hw_in * self.in_chs,
            act_out=hw_out * self.out_chs,
        )
        if self.kind == "stem":
            k2 = self.kernel**2
            f.update(
                is_stem=1,
                macs_full=hw_out * self.in_chs * self.out_chs * k2,
                params=self.in_chs * self.out_chs * k2 + 2 * self.out_chs,
                hidden_chs=self.out_chs,
            )
        elif self.kind == "ibconv":
            hid = self.hidden_chs
            expand = self.exp_ratio != 1
            pw = hw_out * hid * self.out_chs + (hw_in * self.in_chs * hid if expand else 0)
            se_chs = se_channels(hid) if self.se else 0
            f.update(
                is_ibconv=1,
                hidden_chs=hid,
                macs_pw=pw,
                macs_dw=hw_out * hid * self.kernel**2,
                macs_fc=2 * hid * se_chs,  # the SE's two FCs, as network units count them
                act_hidden=(hw_in * hid if expand else 0) + hw_out * hid,
                params=(self.in_chs * hid if expand else 0)
                + hid * self.kernel**2
                + hid * self.out_chs
                + 2 * (hid * (2 if expand else 1) + self.out_chs)
                + (2 * hid * se_chs + hid + se_chs if self.se else 0),
                residual=int(self.stride == 1 and self.in_chs == self.out_chs),
            )
        else:
            f.update(
                is_head=1,
                hidden_chs=self.feat_chs,
                macs_pw=hw_in * self.in_chs * self.feat_chs,
                macs_fc=self.feat_chs * self.num_classes,
                act_hidden=hw_in * self.feat_chs,
                params=self.in_chs * self.feat_chs
                + 2 * self.feat_chs
                + (self.feat_chs + 1) * self.num_classes,
            )
        f["macs"] = f["macs_full"] + f["macs_pw"] + f["macs_dw"] + f["macs_fc"]
        return {k: float(v) for k, v in f.items()}


FEATURE_NAMES = (
    "is_stem",
    "is_ibconv",
    "is_head",
    "kernel",
    "exp_ratio",
    "stride",
    "in_chs",
    "out_chs",
    "hidden_chs",
    "in_hw",
    "out_hw",
    "macs",
    "macs_full",
    "macs_pw",
    "macs_dw",
    "macs_fc",
    "params",
    "act_in",
    "act_hidden",
    "act_out",
    "residual",
)


@dataclass(frozen=True)
class LayerVariants:
    """The variants of a space laid out by position: stem, per-layer {op: variant | None}, head."""

    stem: Variant
    layers: tuple[dict[str, Variant | None], ...]
    head: Variant

    def all(self) -> list[Variant]:
        """Unique variants, sorted by key."""
        found = {self.stem.key: self.stem, self.head.key: self.head}
        for ops in self.layers:
            for v in ops.values():
                if v is not None:
                    found[v.key] = v
        return [found[k] for k in sorted(found)]


def layer_variants(
    space: SearchSpace,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
) -> LayerVariants:
    """Every layer's variants at a resolution and width (channels as :class:`Proxy` rounds them).

    Mirrors the geometry of :class:`padnas.nn.supernet.ChildNet` (same channel rounding, same head
    width rule) without importing torch.
    """
    proxy = Proxy(resolution, width_mult)
    size = resolution // STEM_STRIDE
    stem_chs = proxy.channels(space.stem_chs)
    stem = Variant(
        "stem", resolution, resolution, 3, size, size, stem_chs, 3, stride=2, act=space.stem_act
    )
    layers = []
    last = stem_chs
    for spec, ops in zip(space.layers, space.layer_ops, strict=True):
        in_chs, out_chs = proxy.channels(spec.in_chs), proxy.channels(spec.out_chs)
        out_size = -(-size // spec.stride)
        row: dict[str, Variant | None] = {}
        for op in ops:
            parsed = parse_op(op)
            if parsed is None:
                row[op] = None
                continue
            row[op] = Variant(
                "ibconv",
                size,
                size,
                in_chs,
                out_size,
                out_size,
                out_chs,
                parsed.kernel,
                parsed.exp_ratio,
                spec.stride,
                se=parsed.se,
                act=spec.act,
            )
        layers.append(row)
        size, last = out_size, out_chs
    head_chs = HEAD_CHANNELS if width_mult <= 1 else proxy.channels(HEAD_CHANNELS)
    head = Variant(
        "head",
        size,
        size,
        last,
        1,
        1,
        num_classes,
        feat_chs=head_chs,
        num_classes=num_classes,
        act=space.head_act,
    )
    return LayerVariants(stem, tuple(layers), head)


def space_variants(
    space: SearchSpace,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
) -> list[Variant]:
    """The unique variants of a space (stem and head included), sorted by key."""
    return layer_variants(space, resolution, width_mult, num_classes).all()


def arch_variants(
    space: SearchSpace,
    arch: Arch | str,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
) -> list[Variant]:
    """The variants one architecture runs, in order: stem, each non-identity layer, head."""
    arch = space.validate(arch)
    lv = layer_variants(space, resolution, width_mult, num_classes)
    body = [row[op] for row, op in zip(lv.layers, arch.ops, strict=True)]
    return [lv.stem, *(v for v in body if v is not None), lv.head]


def arch_keys(
    space: SearchSpace,
    arch: Arch | str,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
) -> list[str]:
    """Keys of :func:`arch_variants` (stem, one per non-identity layer, head)."""
    return [v.key for v in arch_variants(space, arch, resolution, width_mult, num_classes)]


#: activations TFLite fuses into a conv as the same clipping step
_CLIPPING = ("-relu6", "-relu")


def shape_key(key: str) -> str:
    """``key`` without a ReLU or ReLU6 suffix: the basic and large spaces use ReLU6 (no suffix in
    their keys) and v3 plain ReLU in its early stages; TFLite fuses either into the conv at the
    same cost, so such entries time the same shape."""
    for suffix in _CLIPPING:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def clipping_twin(key: str) -> str | None:
    """The key of the same computation under the other clipping activation (ReLU <-> ReLU6),
    which TFLite fuses into the conv at the same cost (see :func:`shape_key`); None when the key
    has another activation (h-swish, linear) or none to swap.

    Space variants name ReLU6 by no suffix and ReLU by ``-relu``; network units name every
    activation (``-relu6``, ``-relu``, ``-linear``...)."""
    try:
        v = Variant.from_key(key)
    except VariantError:
        for suffix, other in (("-relu6", "-relu"), ("-relu", "-relu6")):
            if key.endswith(suffix):
                return key[: -len(suffix)] + other
        return None
    if v.act not in ("relu", "relu6"):
        return None
    return replace(v, act="relu" if v.act == "relu6" else "relu6").key
