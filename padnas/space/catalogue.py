"""Op names and Table 2's op catalogues: what each searchable layer may take.

An op name encodes its depthwise kernel, expansion ratio and squeeze-excite (``K5E3``,
``K5E6SE``); ``ID`` is the identity that skips a layer.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from padnas.core.errors import UsageError

IDENTITY = "ID"
SE_SUFFIX = "SE"
_OP_RE = re.compile(r"^K(?P<k>[357])E(?P<e>[1-6])(?P<se>SE)?$")


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
