"""Which architectures may be evaluated: the latency window (Eq. 2) and the gate that applies it.

CES and the baselines draw and breed genomes; every candidate passes the same :class:`Gate`
(inside the window, not evaluated before) before it costs a one-shot evaluation, and a window
that no architecture meets fails with :class:`WindowError` before any training starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from padnas.core.errors import UsageError

#: genomes (n, num_layers) of the searched space -> latency in ms, shape (n,)
LatencyFn = Callable[[np.ndarray], np.ndarray]


class WindowError(UsageError):
    """A latency window that is malformed or that no (or too few) architectures meet."""


@dataclass(frozen=True)
class LatencyWindow:
    """Lat_min <= latency <= Lat_max, in milliseconds (both ends inclusive, as Eq. 2)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise WindowError(f"latency window {self} must have finite ends")
        if self.lo < 0 or self.hi <= self.lo:
            raise WindowError(
                f"latency window {self} is empty or negative: "
                "give MIN:MAX in ms with 0 <= MIN < MAX"
            )

    @classmethod
    def parse(cls, text: str) -> LatencyWindow:
        """``'60:70'`` -> LatencyWindow(60, 70)."""
        parts = text.split(":")
        try:
            lo, hi = (float(p) for p in parts)
        except ValueError:
            raise WindowError(
                f"latency window {text!r} is not MIN:MAX in milliseconds (e.g. 60:70)"
            ) from None
        return cls(lo, hi)

    def contains(self, ms: np.ndarray) -> np.ndarray:
        ms = np.asarray(ms, dtype=float)
        return (ms >= self.lo) & (ms <= self.hi)

    def __str__(self) -> str:
        return f"{self.lo:g}:{self.hi:g} ms"

    def to_list(self) -> list[float]:
        return [self.lo, self.hi]


class Gate:
    """Decides which candidate genomes may be evaluated: inside the window, not seen before.

    Shared by CES and the baselines so all methods obey one rule. ``seen`` grows only when an
    architecture is actually evaluated (pymoo may breed and then truncate offspring).
    """

    def __init__(self, latency: LatencyFn, window: LatencyWindow) -> None:
        self.latency, self.window = latency, window
        self.seen: set[tuple[int, ...]] = set()

    def admit(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask over rows of X: feasible, unseen, and first of its kind in X."""
        X = np.asarray(X, dtype=np.int64).reshape(len(X), -1)
        if len(X) == 0:
            return np.zeros(0, dtype=bool)
        ok = self.window.contains(self.latency(X))
        batch: set[tuple[int, ...]] = set()
        for i in np.flatnonzero(ok):
            key = tuple(X[i].tolist())
            if key in self.seen or key in batch:
                ok[i] = False
            else:
                batch.add(key)
        return ok

    def mark(self, X: np.ndarray) -> None:
        for row in np.asarray(X, dtype=np.int64):
            self.seen.add(tuple(row.tolist()))


def sample_admissible(
    gate: Gate,
    draw: Callable[[int], np.ndarray],
    n: int,
    *,
    batch: int = 4096,
    max_draws: int = 1_000_000,
) -> tuple[np.ndarray, int]:
    """Rejection-sample up to ``n`` admissible genomes from ``draw(batch)``; returns (X, draws).

    Raises WindowError when not one admissible genome turns up in ``max_draws`` draws.
    """
    found: list[np.ndarray] = []
    keys: set[tuple[int, ...]] = set()
    drawn = 0
    while len(found) < n and drawn < max_draws:
        X = np.asarray(draw(batch), dtype=np.int64)
        drawn += len(X)
        for i in np.flatnonzero(gate.admit(X)):
            key = tuple(X[i].tolist())
            if key not in keys:
                keys.add(key)
                found.append(X[i])
                if len(found) == n:
                    break
    if not found:
        raise WindowError(
            f"{gate.window}: not one of {drawn} random architectures has a latency inside it; "
            "widen the window or move it toward the space's typical latencies",
            param="window",
        )
    return np.stack(found), drawn
