"""The searches CES is compared against (paper Fig. 7, Table 7), under CES's own rules.

Both take the same latency window, the same evaluator and a budget counted in supernet
evaluations, and admit candidates through the same :class:`~padnas.search.window.Gate`
(feasible and never evaluated before), so a comparison measures the search strategy and nothing
else.

- :func:`spos_evolution` follows SPOS (Guo et al.): a population of 50, the 10 most accurate
  architectures so far as parents, 25 mutants (each gene redrawn with probability 0.1) and 25
  uniform crossovers per generation, candidates violating the constraint rejected before
  evaluation, random fill when breeding falls short. It selects on the one-shot score alone
  (``rank_by``: accuracy, or the log-likelihood as the quick preset's CES ranks); every evaluated
  architecture is kept and ranked by non-domination afterwards for the multi-objective comparison.
- :func:`random_search` draws uniform feasible architectures.

Both take the scoring functions as :func:`~padnas.search.ces.run_ces` does: ``accuracy`` always,
``log_likelihood`` where ``rank_by="log_likelihood"`` (both recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from padnas.core.errors import UsageError
from padnas.search.ces import AccuracyFn, Evaluated, SearchResult, check_scoring, ranked
from padnas.search.window import Gate, LatencyFn, LatencyWindow, WindowError, sample_admissible
from padnas.space import SearchSpace


@dataclass(frozen=True)
class SPOSConfig:
    population: int = 50
    top_k: int = 10
    mutations: int = 25
    crossovers: int = 25
    mutation_prob: float = 0.1
    # breeding attempts per wanted child before falling back to random feasible architectures
    tries_per_child: int = 20


@dataclass(frozen=True)
class _Scores:
    """What a baseline scores architectures with, and which score it selects on."""

    accuracy: AccuracyFn
    log_likelihood: AccuracyFn | None
    rank_by: str

    def evaluate(
        self, space: SearchSpace, gate: Gate, latency: LatencyFn, X: np.ndarray, generation: int
    ) -> list[Evaluated]:
        archs = [space.decode(x) for x in X]
        acc = np.asarray(self.accuracy(archs), dtype=float).reshape(-1)
        ll = [None] * len(archs)
        if self.log_likelihood is not None:
            ll = [float(v) for v in np.asarray(self.log_likelihood(archs), dtype=float)]
        lat = np.asarray(latency(X), dtype=float).reshape(-1)
        gate.mark(X)
        return [
            Evaluated(str(a), tuple(x.tolist()), float(p), float(t), generation, 0, v)
            for a, x, p, t, v in zip(archs, X, acc, lat, ll, strict=True)
        ]


def _scores(accuracy: AccuracyFn, log_likelihood: AccuracyFn | None, rank_by: str) -> _Scores:
    check_scoring(rank_by, log_likelihood)
    return _Scores(accuracy, log_likelihood, rank_by)


def _check_budget(budget: int) -> None:
    if budget < 1:
        raise UsageError(f"search budget must be >= 1 evaluation, got {budget}")


def random_search(
    space: SearchSpace,
    latency: LatencyFn,
    accuracy: AccuracyFn,
    window: LatencyWindow,
    budget: int,
    *,
    seed: int,
    batch: int = 64,
    log_likelihood: AccuracyFn | None = None,
    rank_by: str = "accuracy",
) -> SearchResult:
    """``budget`` distinct uniform random architectures inside the window, evaluated in batches."""
    _check_budget(budget)
    scores = _scores(accuracy, log_likelihood, rank_by)
    rng = np.random.default_rng(seed)
    gate = Gate(latency, window)
    records: list[Evaluated] = []
    notes: list[str] = []
    generation = 0
    while len(records) < budget:
        generation += 1
        want = min(batch, budget - len(records))
        X, _ = sample_admissible(gate, lambda k: space.sample_genomes(rng, k), want)
        records += scores.evaluate(space, gate, latency, X, generation)
        if len(X) < want:
            notes.append(f"space exhausted inside the window after {len(records)} evaluations")
            break
    return SearchResult("random", space, window, ranked(records, rank_by), notes, rank_by)


def spos_evolution(
    space: SearchSpace,
    latency: LatencyFn,
    accuracy: AccuracyFn,
    window: LatencyWindow,
    budget: int,
    config: SPOSConfig | None = None,
    *,
    seed: int,
    log_likelihood: AccuracyFn | None = None,
    rank_by: str = "accuracy",
) -> SearchResult:
    """SPOS's evolutionary search with constraint-by-rejection, stopped after ``budget`` evals."""
    _check_budget(budget)
    scores = _scores(accuracy, log_likelihood, rank_by)
    cfg = config or SPOSConfig()
    rng = np.random.default_rng(seed)
    gate = Gate(latency, window)
    highs = np.array(space.num_ops, dtype=np.int64)
    records: list[Evaluated] = []
    notes: list[str] = []

    def random_fill(n: int) -> np.ndarray:
        X, _ = sample_admissible(gate, lambda k: space.sample_genomes(rng, k), n)
        return X

    def breed(n: int, make_child, pending: set) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for _ in range(n * cfg.tries_per_child):
            if len(out) == n:
                break
            child = make_child()
            key = tuple(child.tolist())
            if key in pending or not gate.admit(child[None, :])[0]:
                continue
            pending.add(key)
            out.append(child)
        return out

    candidates = random_fill(min(cfg.population, budget))
    generation = 0
    while True:
        generation += 1
        candidates = candidates[: budget - len(records)]
        records += scores.evaluate(space, gate, latency, candidates, generation)
        if len(records) >= budget:
            break
        top = sorted(records, key=lambda r: -r.score(rank_by))[: cfg.top_k]
        parents = np.array([r.genome for r in top], dtype=np.int64)

        pending: set = set()
        children = breed(
            cfg.mutations, partial(_mutant, parents, rng, highs, cfg.mutation_prob), pending
        )
        children += breed(cfg.crossovers, partial(_crossover, parents, rng), pending)
        short = cfg.population - len(children)
        if short > 0:
            # the fill must avoid this generation's children as well as the evaluated history
            gate.mark(np.array(children, dtype=np.int64).reshape(-1, space.num_layers))
            try:
                children += list(random_fill(short))
            except WindowError:
                if not children:
                    notes.append(f"space exhausted inside the window after {len(records)} evals")
                    break
            finally:
                for c in children:
                    gate.seen.discard(tuple(c.tolist()))
        candidates = np.stack(children)
    return SearchResult("spos", space, window, ranked(records, rank_by), notes, rank_by)


def _mutant(parents: np.ndarray, rng: np.random.Generator, highs: np.ndarray, prob: float):
    """A random parent with each gene redrawn uniformly with probability ``prob`` (SPOS)."""
    child = parents[rng.integers(len(parents))].copy()
    flip = rng.random(len(highs)) < prob
    child[flip] = (rng.random(int(flip.sum())) * highs[flip]).astype(np.int64)
    return child


def _crossover(parents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform crossover of two random parents (SPOS)."""
    a, b = parents[rng.integers(len(parents), size=2)]
    return np.where(rng.random(len(a)) < 0.5, a, b)
