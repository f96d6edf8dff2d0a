"""An architecture: one op name per searchable layer, and its readable string form."""

from __future__ import annotations

from dataclasses import dataclass

from padnas.space.catalogue import parse_op


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
