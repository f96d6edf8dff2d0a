"""Shared pieces of the hostile-input suites: a valid arch, network and device profile to damage,
and the hypothesis strategies that damage them (few, derandomized examples: quick and
reproducible in CI)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from repo_support import PIXEL3, REPO

__all__ = [
    "ARCH",
    "BOUNDED",
    "HOSTILE",
    "JSON_VALUES",
    "NET",
    "PIXEL3",
    "REPO",
    "set_somewhere",
    "text_mutations",
]

ARCH = (
    "K5E1-K3E6-K3E3-K3E3-K7E6-K7E6-K7E3-K7E6-K5E6-K7E6-K7E6"
    "-K3E3-ID-K3E3-K7E6-K3E6-ID-K5E6-K5E3-K5E3-K3E3-K3E3"
)
NET = {
    "name": "tiny",
    "input": 32,
    "layers": [
        {"type": "conv", "cin": 3, "cout": 8, "kernel": 3, "stride": 2},
        {"type": "ibconv", "cin": 8, "cout": 8, "kernel": 3, "expansion": 3},
        {"type": "pool", "cin": 8, "cout": 8},
        {"type": "fc", "cin": 8, "cout": 10},
    ],
}


# few examples, no per-example deadline (the machine is shared), the same examples on every run
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# characters a hostile user (or a damaged file) brings: the grammar's own, JSON punctuation,
# digits and signs, whitespace, path separators, non-ASCII and control characters
HOSTILE = st.sampled_from(list("KE0123456789ID-:,{}[]\"'. eE+-/\\\n\t\x00\xff\u00e9\u2028NaInfity"))


@st.composite
def text_mutations(draw, text: str, max_edits: int = 3) -> str:
    """``text`` with a few characters deleted, replaced or inserted at drawn places."""
    for _ in range(draw(st.integers(1, max_edits))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "replace", "insert", "truncate"]))
        if op == "truncate":
            text = text[:i]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            cut = i + 1 if op == "replace" else i
            text = text[:i] + draw(st.text(HOSTILE, min_size=1, max_size=4)) + text[cut:]
    return text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(HOSTILE, max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def set_somewhere(draw, data):
    """Replace one drawn value inside ``data`` (nested dicts and lists) by an arbitrary one."""
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(JSON_VALUES)
        return
