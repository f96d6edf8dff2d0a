"""The final models of a search: Pareto-front members spread along the front by latency (the
paper's models A, B, C, ...), and the notes a user should read beside them."""

from __future__ import annotations

import numpy as np

from padnas.search.ces import Evaluated, SearchResult


def select_final(result: SearchResult, n: int) -> list[Evaluated]:
    """Up to ``n`` Pareto-front architectures spread along the front, fastest first (the paper's
    models A, B, C, ...).

    The paper presents its models "according to their latency" and samples its Table 8 models "at
    approximately equal distances on the Pareto frontier"; this does the same in latency: the
    fastest and the most accurate front members, and between them the members nearest to equally
    spaced latencies. Only front members are returned: anything else is slower and no more
    accurate than one of them. So the score the search ranked by (``result.rank_by``: accuracy
    or log-likelihood) rises strictly from A to the last model, and fewer
    than ``n`` come back only when the front holds fewer distinct points, whatever part of the
    window the front covers.
    """
    distinct: dict[tuple[float, float], Evaluated] = {}
    for r in sorted(result.front(), key=lambda r: (r.latency_ms, r.arch)):
        distinct.setdefault((r.latency_ms, r.score(result.rank_by)), r)
    front = list(distinct.values())
    if len(front) <= n:
        return front
    lat = np.array([r.latency_ms for r in front])
    chosen: set[int] = set()
    for target in np.linspace(lat[0], lat[-1], n):
        free = [i for i in range(len(front)) if i not in chosen]
        chosen.add(min(free, key=lambda i: (abs(lat[i] - target), i)))
    return [front[i] for i in sorted(chosen)]


def final_notes(result: SearchResult, picks: list[Evaluated], n: int) -> list[str]:
    """What a user should know about the returned models: fewer than asked, or a front that
    covers under half of the window (nothing faster was found; nothing slower was better)."""
    notes = []
    if len(picks) < n:
        notes.append(
            f"the Pareto front holds {len(picks)} distinct architecture(s), "
            f"fewer than the {n} models asked for"
        )
    if picks:
        lo, hi = picks[0].latency_ms, picks[-1].latency_ms
        w = result.window
        if hi - lo < 0.5 * (w.hi - w.lo):
            notes.append(
                f"the Pareto front spans {lo:.2f}-{hi:.2f} ms of the {w.lo:.2f}-{w.hi:.2f} ms "
                "window: no faster architecture was found, and the slower ones were no more "
                "accurate"
            )
    return notes
