"""The PAD-NAS search space: Table 1's macro structure with, per layer, Table 2's allowed ops.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from padnas.space.arch import Arch
from padnas.space.catalogue import CATALOGUES, FIRST_LAYER_OPS, IDENTITY, SpaceError, parse_op
from padnas.space.macro import DEFAULT_ACT, MACROS, SPACE_NAMES, LayerSpec, layer_specs


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
        layers = layer_specs(family)
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

    @property
    def transition_layers(self) -> tuple[int, ...]:
        """Layers without a residual connection in the deployed network (the stage transitions):
        their op decides the whole representation the next layer sees."""
        return tuple(j for j, spec in enumerate(self.layers) if not spec.residual)

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

    def fair_genomes(self, rng: np.random.Generator) -> np.ndarray:
        """FairNAS's strict fairness: ``m`` genomes (``m`` = the most ops of any layer) in which
        every op of every layer appears at least once — each layer's ops in a random order, a
        layer with fewer ops filling its remaining slots with uniform draws. Shape ``(m, L)``."""
        m = max(self.num_ops)
        cols = []
        for n in self.num_ops:
            order = rng.permutation(n)
            cols.append(np.concatenate([order, rng.integers(0, n, m - n)]))
        return np.stack(cols, axis=1).astype(np.int64)

    def sandwich_genomes(self, rng: np.random.Generator, n_random: int) -> np.ndarray:
        """The sandwich rule (BigNAS): the largest path (each layer's op of the highest expansion,
        then kernel, then SE), the smallest (identity where a layer allows it, else the lowest
        expansion, then kernel) and ``n_random`` uniform paths. Shape ``(2 + n_random, L)``."""

        def size(op: str) -> tuple[int, int, bool]:
            spec = parse_op(op)
            return (0, 0, False) if spec is None else (spec.exp_ratio, spec.kernel, spec.se)

        ends = [
            [max(range(len(ops)), key=lambda i, ops=ops: size(ops[i])) for ops in self.layer_ops],
            [min(range(len(ops)), key=lambda i, ops=ops: size(ops[i])) for ops in self.layer_ops],
        ]
        return np.concatenate([np.array(ends, dtype=np.int64), self.sample_genomes(rng, n_random)])

    def transition_genomes(self, rng: np.random.Generator, n_extra: int) -> np.ndarray:
        """One uniform path and ``n_extra`` more that differ from it only in the transition
        layers, drawn anew: a step over them gives each transition layer ``1 + n_extra`` op
        draws for one draw of the rest. Shape ``(1 + n_extra, L)``."""
        genomes = np.repeat(self.sample_genomes(rng, 1), 1 + n_extra, axis=0)
        redraw = self.sample_genomes(rng, n_extra)
        cols = list(self.transition_layers)
        genomes[1:, cols] = redraw[:, cols]
        return genomes

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


def get_space(name: str) -> SearchSpace:
    """The full space named ``basic``, ``large`` or ``v3`` (the CLI's ``--space``)."""
    return SearchSpace.from_family(name)
