"""The PAD-NAS search space: Table 1's macro structure and Table 2's op catalogues.

A :class:`SearchSpace` is the macro structure (stem, seven stages of searchable blocks, head) plus,
per searchable layer, the tuple of ops that layer may take. Pruning never mutates a space; it
returns a new one, so every stage of a progressive search keeps its own space and signature.

An :class:`Arch` is one op name per searchable layer. It has a readable string form
(``K3E1-K5E3-ID-...``) used on the command line, in JSON and as a cache key, and an integer genome
form (the index of each op in its layer's op tuple) used by the evolutionary search.

Proxy resolution and width multiplier belong to :class:`Proxy`, not to the space: they change how a
network is *trained* on a CPU, never which op a layer may take, so an architecture found on the
proxy maps one-to-one onto its full-size deployment form (width 1.0, 224x224).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from .errors import UsageError

IDENTITY = "ID"
SE_SUFFIX = "SE"
_OP_RE = re.compile(r"^K(?P<k>[357])E(?P<e>[1-6])(?P<se>SE)?$")

# Table 1: (output channels, repeats, stride of the first block) for the seven SBS stages.
# The first three stages differ between the basic (32-16-32) and large (16-16-24) spaces.
_STAGES_TAIL = ((40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
# Activations: the paper's spaces use ReLU6 throughout (MobileNetV2); ``acts`` gives one per stage
# where a space differs, ``stem_act``/``head_act`` the activation of the fixed ends.
MACROS = {
    "basic": {"stem": 32, "stages": ((16, 1, 1), (32, 4, 2), *_STAGES_TAIL)},
    "large": {"stem": 16, "stages": ((16, 1, 1), (24, 4, 2), *_STAGES_TAIL)},
    # PAD-NAS-V3 (paper Table 4). The paper gives no layer table for it; this is our definition,
    # built on MobileNetV3-Large's macro structure:
    # * stem: 3x3 stride-2 conv to 16 channels with h-swish, as MobileNetV3-Large;
    # * stages: MobileNetV3-Large's output widths 16-24-40-80-112-160 with its strides 1-2-2-2-1-2
    #   (the 7x7 output of the last stage is the same as in the other spaces);
    # * repeats: 1 for the first stage (MobileNetV3-Large's single 16-channel block, the same
    #   kernel-only choice as the paper's first layer), 4 for every later stage as in Table 1, so
    #   the depth (21 searchable layers) is near the basic space's 22 and a searched network can be
    #   as deep as MobileNetV3-Large (15 blocks) or deeper;
    # * activations: ReLU in the first three stages (112..28 px) and h-swish from the 80-channel
    #   stage on, exactly where MobileNetV3-Large switches (h-swish costs most at high resolution);
    # * head: the other spaces' head (1x1 conv to 1280, global pool, classifier) with h-swish,
    #   so the three spaces differ only in what is searched, not in the fixed ends.
    # Per searchable layer: kernel 3/5/7 x expansion 3/6 x squeeze-excite on/off (12 ops), plus
    # identity where the basic space allows it (not in the first layer of a stage); the first
    # layer takes kernel 3/5/7 at expansion 1 with SE on/off (6 ops). SE is MobileNetV3's: squeeze
    # to a quarter of the hidden width (rounded to 8), ReLU, hard-sigmoid gate.
    "v3": {
        "stem": 16,
        "stages": ((16, 1, 1), (24, 4, 2), (40, 4, 2), (80, 4, 2), (112, 4, 1), (160, 4, 2)),
        "acts": ("relu", "relu", "relu", "hswish", "hswish", "hswish"),
        "stem_act": "hswish",
        "head_act": "hswish",
    },
}
# The one list of space names: every ``--space`` option (CLI and benchmarks) offers exactly these.
SPACE_NAMES: tuple[str, ...] = tuple(MACROS)
DEFAULT_ACT = "relu6"
STEM_STRIDE = 2
HEAD_CHANNELS = 1280
DEPLOY_RESOLUTION = 224
DEPLOY_CLASSES = 1000

# Table 2: the basic space has E in {3, 6}; the large space is its fine-grained version, E in 1..6.
CATALOGUES = {
    "basic": (*(f"K{k}E{e}" for k in (3, 5, 7) for e in (3, 6)), IDENTITY),
    "large": (*(f"K{k}E{e}" for k in (3, 5, 7) for e in range(1, 7)), IDENTITY),
    "v3": (
        *(f"K{k}E{e}{se}" for k in (3, 5, 7) for e in (3, 6) for se in ("", SE_SUFFIX)),
        IDENTITY,
    ),
}
FIRST_LAYER_OPS = {
    "basic": ("K3E1", "K5E1", "K7E1"),
    "large": ("K3E1", "K5E1", "K7E1"),
    "v3": tuple(f"K{k}E1{se}" for k in (3, 5, 7) for se in ("", SE_SUFFIX)),
}


class SpaceError(UsageError):
    """A space, op or architecture that does not fit; the message names the valid choices."""


class OpSpec(NamedTuple):
    """The hyper-parameters an op name encodes: depthwise kernel, expansion, squeeze-excite."""

    kernel: int
    exp_ratio: int
    se: bool = False


def parse_op(name: str) -> OpSpec | None:
    """``'K5E3'`` -> ``OpSpec(5, 3, False)``, ``'K5E3SE'`` -> ``OpSpec(5, 3, True)``; ``'ID'`` ->
    ``None``; anything else raises SpaceError."""
    if name == IDENTITY:
        return None
    m = _OP_RE.match(name)
    if not m:
        raise SpaceError(
            f"unknown op {name!r}: expected {IDENTITY} or K<kernel>E<expansion>[SE] "
            "with kernel in 3,5,7, expansion in 1..6 and SE for squeeze-excite (e.g. K5E3, K5E6SE)"
        )
    return OpSpec(int(m["k"]), int(m["e"]), bool(m["se"]))


def se_channels(hidden_chs: int) -> int:
    """Squeeze width of MobileNetV3's SE: a quarter of the hidden channels, rounded to 8."""
    return make_divisible(hidden_chs / 4)


@dataclass(frozen=True)
class LayerSpec:
    """Shape facts of one searchable layer at width 1.0 (deployment form)."""

    index: int
    stage: int
    in_chs: int
    out_chs: int
    stride: int
    first_in_stage: bool
    act: str = DEFAULT_ACT


@dataclass(frozen=True)
class Arch:
    """One op name per searchable layer; immutable, hashable, and its own readable key."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))

    def __str__(self) -> str:
        return "-".join(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    @classmethod
    def parse(cls, text: str) -> Arch:
        ops = tuple(p.strip().upper() for p in text.strip().split("-"))
        for op in ops:
            parse_op(op)
        return cls(ops)


@dataclass(frozen=True)
class Proxy:
    """How networks are trained on a budget: input resolution and width multiplier.

    The op choices never depend on it; channel counts are scaled and rounded to multiples of 8 as
    MobileNetV2 does, so every layer keeps at least 8 channels.
    """

    resolution: int = DEPLOY_RESOLUTION
    width_mult: float = 1.0

    def __post_init__(self) -> None:
        if self.resolution < 32 or self.resolution % 32:
            raise SpaceError(
                f"resolution {self.resolution} is not supported: use a multiple of 32 "
                "(the network downsamples by 32), e.g. 32, 64 or 224"
            )
        if not 0.05 <= self.width_mult <= 4:
            raise SpaceError(f"width multiplier {self.width_mult} out of range: use 0.05..4")

    def channels(self, chs: int) -> int:
        return make_divisible(chs * self.width_mult)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping more than 10% (MobileNetV2)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class SearchSpace:
    """Macro structure plus the layer-wise op sets of one (possibly pruned) search space."""

    family: str
    layer_ops: tuple[tuple[str, ...], ...]
    layers: tuple[LayerSpec, ...] = field(repr=False)
    stem_chs: int = field(repr=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_family(cls, family: str) -> SearchSpace:
        """The full (unpruned) basic, large or v3 space."""
        if family not in MACROS:
            raise SpaceError(f"unknown space {family!r}: choose one of {', '.join(SPACE_NAMES)}")
        layers = _layer_specs(family)
        catalogue = CATALOGUES[family]
        layer_ops = []
        for spec in layers:
            if spec.index == 0:
                layer_ops.append(FIRST_LAYER_OPS[family])
            elif spec.first_in_stage:
                layer_ops.append(tuple(op for op in catalogue if op != IDENTITY))
            else:
                layer_ops.append(catalogue)
        return cls(family, tuple(layer_ops), layers, MACROS[family]["stem"])

    def with_layer_ops(self, layer_ops: Sequence[Iterable[str]]) -> SearchSpace:
        """A new space of the same family with the given per-layer op sets (a pruned space).

        Each set must be a non-empty subset of this space's set for that layer; ops keep this
        space's order so genomes stay comparable across stages.
        """
        if len(layer_ops) != len(self.layer_ops):
            raise SpaceError(
                f"expected op sets for {len(self.layer_ops)} layers, got {len(layer_ops)}"
            )
        new = []
        for j, (ops, allowed) in enumerate(zip(layer_ops, self.layer_ops, strict=True)):
            ops = set(ops)
            extra = ops - set(allowed)
            if extra:
                raise SpaceError(
                    f"layer {j}: ops {sorted(extra)} are not in this space; "
                    f"allowed: {', '.join(allowed)}"
                )
            if not ops:
                raise SpaceError(f"layer {j}: a layer must keep at least one op")
            new.append(tuple(op for op in allowed if op in ops))
        return SearchSpace(self.family, tuple(new), self.layers, self.stem_chs)

    # ---- facts --------------------------------------------------------------------------------
    @property
    def stem_act(self) -> str:
        return MACROS[self.family].get("stem_act", DEFAULT_ACT)

    @property
    def head_act(self) -> str:
        return MACROS[self.family].get("head_act", DEFAULT_ACT)

    @property
    def num_layers(self) -> int:
        return len(self.layer_ops)

    @cached_property
    def size(self) -> int:
        """Number of distinct architectures (exact integer)."""
        n = 1
        for ops in self.layer_ops:
            n *= len(ops)
        return n

    @cached_property
    def signature(self) -> str:
        """A stable 16-hex-digit hash of the family's macro structure and the layer-wise op sets."""
        facts = {
            "family": self.family,
            "stem": self.stem_chs,
            "layers": [[s.in_chs, s.out_chs, s.stride] for s in self.layers],
            "ops": [list(ops) for ops in self.layer_ops],
        }
        if "acts" in MACROS[self.family]:  # ReLU6-only spaces keep their historical signature
            facts["acts"] = [self.stem_act, *(s.act for s in self.layers), self.head_act]
        payload = json.dumps(
            facts,
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @cached_property
    def family_signature(self) -> str:
        """Signature of the unpruned space this one descends from (what a LUT is built for)."""
        return SearchSpace.from_family(self.family).signature

    @property
    def num_ops(self) -> tuple[int, ...]:
        return tuple(len(ops) for ops in self.layer_ops)

    # ---- architectures ------------------------------------------------------------------------
    def validate(self, arch: Arch | str) -> Arch:
        """Return ``arch`` as an :class:`Arch` if it lies in this space, else raise SpaceError."""
        if isinstance(arch, str):
            arch = Arch.parse(arch)
        if len(arch) != self.num_layers:
            raise SpaceError(
                f"architecture has {len(arch)} layers, the {self.family} space has "
                f"{self.num_layers} (one op per layer, joined by '-')"
            )
        for j, (op, allowed) in enumerate(zip(arch.ops, self.layer_ops, strict=True)):
            if op not in allowed:
                raise SpaceError(f"layer {j} does not allow {op}; allowed: {', '.join(allowed)}")
        return arch

    def encode(self, arch: Arch | str) -> np.ndarray:
        """Integer genome: the index of each layer's op in that layer's op tuple."""
        arch = self.validate(arch)
        return np.array(
            [ops.index(op) for op, ops in zip(arch.ops, self.layer_ops, strict=True)],
            dtype=np.int64,
        )

    def decode(self, genome: Sequence[int] | np.ndarray) -> Arch:
        genome = np.asarray(genome)
        if genome.shape != (self.num_layers,):
            raise SpaceError(f"genome must have {self.num_layers} genes, got shape {genome.shape}")
        ops = []
        for j, (g, allowed) in enumerate(zip(genome.tolist(), self.layer_ops, strict=True)):
            if not 0 <= int(g) < len(allowed):
                raise SpaceError(f"layer {j}: gene {g} out of range 0..{len(allowed) - 1}")
            ops.append(allowed[int(g)])
        return Arch(tuple(ops))

    def sample(self, rng: np.random.Generator) -> Arch:
        """Uniform over each layer's op set, independently per layer (SPOS uniform sampling)."""
        return self.decode(self.sample_genomes(rng, 1)[0])

    def sample_genomes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform random genomes, shape ``(n, num_layers)``."""
        highs = np.array(self.num_ops, dtype=np.int64)
        return (rng.random((n, self.num_layers)) * highs).astype(np.int64)

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "signature": self.signature,
            "size": str(self.size),
            "layer_ops": [list(ops) for ops in self.layer_ops],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SearchSpace:
        try:
            base = cls.from_family(data["family"])
            space = base.with_layer_ops(data["layer_ops"])
        except KeyError as exc:
            raise SpaceError(f"space JSON lacks the field {exc.args[0]!r}") from None
        sig = data.get("signature")
        if sig is not None and sig != space.signature:
            raise SpaceError(
                f"space signature mismatch: file says {sig}, its op sets give {space.signature}"
            )
        return space


def _layer_specs(family: str) -> tuple[LayerSpec, ...]:
    macro = MACROS[family]
    in_chs = macro["stem"]
    specs = []
    acts = macro.get("acts", (DEFAULT_ACT,) * len(macro["stages"]))
    for stage, (out_chs, repeats, stride) in enumerate(macro["stages"]):
        for r in range(repeats):
            specs.append(
                LayerSpec(
                    len(specs), stage, in_chs, out_chs, stride if r == 0 else 1, r == 0, acts[stage]
                )
            )
            in_chs = out_chs
    return tuple(specs)


def get_space(name: str) -> SearchSpace:
    """The full space named ``basic``, ``large`` or ``v3`` (the CLI's ``--space``)."""
    return SearchSpace.from_family(name)
