"""Constrained Evolutionary Search (CES, paper Section 3.2): NSGA-II inside a latency window.

An architecture is an integer genome, one gene per searchable layer, bounded by the number of ops
that layer still has (a pruned layer with one op is a fixed gene that polynomial mutation skips).
The two objectives are latency (from the LUT) and minus the one-shot score the search ranks by
(:data:`RANK_BY`): the supernet's top-1 accuracy, or the mean log-likelihood of the true class from
the same forward pass. On the images a CPU search can afford, the accuracy ranking is mostly which
images were drawn, while the log-likelihood grades every image and two seeds' supernets agree
more on it (docs/reproduction.md, "Ranking by log-likelihood"). Both are recorded either way.

The latency window Lat_min <= latency <= Lat_max is not a penalty: candidates outside it are
discarded while the initial population is sampled and while offspring are bred, so the supernet
only ever evaluates feasible architectures. pymoo's ``Repair`` cannot drop rows, hence the
:class:`_WindowMating` infill step that keeps breeding until enough admissible offspring exist.
Admissible also means *never evaluated before in this run*: every generation spends its whole
evaluation budget on new architectures, and pymoo's duplicate elimination (which only sees the
population) gets the rest of the history from the gate.

Everything evaluated is kept, and non-domination ranks are computed over all of it with pymoo's
sorting (rank 1 = Pareto front), which is what the op distribution of :mod:`padnas.search.prune`
needs.

Resuming: a run is a deterministic function of (space, window, latency model, seed, and the
scores the evaluator returns). Given the scores already measured (``known``), a resumed
run replays the evolution without touching the supernet until it reaches architectures it has not
evaluated yet, so it ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2, binary_tournament
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.evaluator import Evaluator
from pymoo.core.mating import Mating
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.problems.static import StaticProblem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from padnas.core.errors import UsageError
from padnas.core.progress import progress_bar
from padnas.search.window import Gate, LatencyFn, LatencyWindow, sample_admissible
from padnas.space import Arch, SearchSpace

#: architectures -> one-shot accuracy in [0, 1] (or mean log-likelihood, <= 0), shape (n,)
AccuracyFn = Callable[[Sequence[Arch]], np.ndarray]
#: what a search can rank by: the one-shot top-1 accuracy, or the mean log-likelihood of the
#: true class (both measured in one pass by padnas.search.oneshot.OneShotEvaluator)
RANK_BY = ("accuracy", "log_likelihood")
#: called after every generation with (generation, records of that generation, arch strings
#: whose accuracy was measured now rather than taken from ``known``)
GenerationHook = Callable[[int, list["Evaluated"], set[str]], None]


@dataclass(frozen=True)
class CESConfig:
    """NSGA-II settings. The paper uses population 64 for 40 generations, two-point crossover and
    polynomial mutation; ``generations`` counts the initial population as generation 1 (pymoo)."""

    pop_size: int = 64
    generations: int = 40
    crossover_prob: float = 0.9
    # PM's distribution index: a low value makes wide jumps likely, which a gene with 3..19 integer
    # levels needs to move at all after rounding (pymoo's integer examples use eta=3).
    mutation_eta: float = 3.0
    # per-gene mutation probability (None = pymoo's 1/num_layers). 0.1 is SPOS's per-gene rate:
    # with pymoo's 1/22, rounding undoes most polynomial steps and 60% of the children leave
    # mutation unchanged, and at 640 evaluations CES's fronts fell behind SPOS's (the search_quality
    # benchmark: HV 7.91 vs 8.14; 8.13 with 0.1)
    mutation_prob: float | None = 0.1
    # breeding rounds before a generation gives up on filling its offspring (window too tight or
    # pruned space nearly exhausted); the generation then evaluates what it has
    max_mating_rounds: int = 1000
    sample_batch: int = 4096
    max_sample_draws: int = 1_000_000

    def __post_init__(self) -> None:
        if self.pop_size < 2:
            raise UsageError(f"CES population must be >= 2, got {self.pop_size}")
        if self.generations < 1:
            raise UsageError(f"CES generations must be >= 1, got {self.generations}")

    @property
    def budget(self) -> int:
        """Supernet evaluations of a run that never runs short of admissible offspring."""
        return self.pop_size * self.generations

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def check_rank_by(rank_by: str) -> str:
    """``rank_by`` if it names a score of :data:`RANK_BY`, else :class:`UsageError`."""
    if rank_by not in RANK_BY:
        raise UsageError(f"rank_by must be one of {', '.join(RANK_BY)}, not {rank_by!r}")
    return rank_by


def check_scoring(rank_by: str, log_likelihood: AccuracyFn | None) -> None:
    """What a search needs to rank by ``rank_by``: a known score (:func:`check_rank_by`) and,
    for the log-likelihood, a function that measures it (else ValueError)."""
    check_rank_by(rank_by)
    if rank_by == "log_likelihood" and log_likelihood is None:
        raise ValueError("ranking by log_likelihood needs a log_likelihood function")


@dataclass(frozen=True)
class Evaluated:
    """One evaluated architecture with its objectives; ``rank`` 0 means not ranked yet.
    ``log_likelihood`` (mean over the evaluation images, <= 0) is None for records of a search
    that measured accuracy alone."""

    arch: str
    genome: tuple[int, ...]
    accuracy: float
    latency_ms: float
    generation: int
    rank: int = 0
    log_likelihood: float | None = None

    def score(self, rank_by: str) -> float:
        """The value a search ranking by ``rank_by`` maximises."""
        value = self.accuracy if rank_by == "accuracy" else self.log_likelihood
        if value is None:
            raise ValueError(f"{self.arch} has no {rank_by} to rank by")
        return value

    def to_json(self) -> dict:
        out = {
            "arch": self.arch,
            "genome": list(self.genome),
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            "generation": self.generation,
            "rank": self.rank,
        }
        if self.log_likelihood is not None:
            out["log_likelihood"] = self.log_likelihood
        return out

    @classmethod
    def from_json(cls, data: object, space: SearchSpace, *, where: str, fix: str) -> Evaluated:
        """One stored record, checked like input from a user: a record of ``space`` (its arch
        string lies in the space and its genome encodes it), accuracy in [0, 1], log-likelihood
        (when present) finite and <= 0, latency finite and positive, generation >= 1, rank >= 0.
        ``where`` names the file (and line) in the error, ``fix`` says what to do; any fault
        raises :class:`StoredRecordError`."""
        if not isinstance(data, Mapping):
            raise StoredRecordError(f"{where}: a record is not an object; {fix}")
        arch = data.get("arch")
        if not isinstance(arch, str):
            raise StoredRecordError(f"{where}: a record has no arch string; {fix}")
        try:
            parsed = space.validate(arch)
        except UsageError as exc:
            raise StoredRecordError(f"{where}: arch {arch[:60]!r}: {exc}; {fix}") from None
        genome = data.get("genome")
        if (
            not isinstance(genome, list)
            or not all(_is_int(g) for g in genome)
            or genome != space.encode(parsed).tolist()
        ):
            raise StoredRecordError(f"{where}: the genome of {arch} does not encode it; {fix}")
        accuracy = check_accuracy(data.get("accuracy"), f"{where}: accuracy of {arch}", fix)
        loglik = data.get("log_likelihood")
        if loglik is not None:
            loglik = check_log_likelihood(loglik, f"{where}: log_likelihood of {arch}", fix)
        latency = check_latency(data.get("latency_ms"), f"{where}: latency_ms of {arch}", fix)
        generation, rank = data.get("generation"), data.get("rank", 0)
        if not _is_int(generation) or generation < 1 or not _is_int(rank) or rank < 0:
            raise StoredRecordError(
                f"{where}: generation (>= 1) or rank (>= 0) of {arch} is not valid; {fix}"
            )
        return cls(str(parsed), tuple(genome), accuracy, latency, generation, rank, loglik)


class StoredRecordError(UsageError):
    """A stored result (a run-directory or cache file) holding a value no search produces: a
    forged or damaged file, refused like bad input (exit code 2)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_accuracy(value: object, what: str, fix: str) -> float:
    """A stored accuracy: a number in [0, 1], else :class:`StoredRecordError` naming ``what``."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise StoredRecordError(f"{what} must be a number in [0, 1], got {_short(value)}; {fix}")
    return float(value)


def check_log_likelihood(value: object, what: str, fix: str) -> float:
    """A stored mean log-likelihood: a finite number <= 0, else :class:`StoredRecordError`."""
    if not _is_number(value) or value > 0:
        raise StoredRecordError(f"{what} must be a finite number <= 0, got {_short(value)}; {fix}")
    return float(value)


def check_latency(value: object, what: str, fix: str) -> float:
    """A stored latency in ms: finite and positive, else :class:`StoredRecordError`."""
    if not _is_number(value) or not value > 0:
        raise StoredRecordError(
            f"{what} must be a positive number of ms, got {_short(value)}; {fix}"
        )
    return float(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


@dataclass
class SearchResult:
    """Every architecture a search evaluated, ranked by non-domination over all of them in
    (latency, ``rank_by``)."""

    method: str
    space: SearchSpace
    window: LatencyWindow
    records: list[Evaluated]
    notes: list[str] = field(default_factory=list)
    rank_by: str = "accuracy"

    @property
    def evaluations(self) -> int:
        return len(self.records)

    def objectives(self) -> np.ndarray:
        """(n, 2) minimisation objectives: -score (``rank_by``), latency."""
        return objectives(self.records, self.rank_by)

    def best(self) -> Evaluated:
        """The highest-scoring record; ties (a finite evaluation set) go to the faster one."""
        return max(self.records, key=lambda r: (r.score(self.rank_by), -r.latency_ms))

    def front(self) -> list[Evaluated]:
        return [r for r in self.records if r.rank == 1]

    def to_json(self, stage: int) -> dict:
        """The stored form (``stage-K/search.json``): a resumed run reloads it unchanged."""
        return {
            "stage": stage,
            "method": self.method,
            "rank_by": self.rank_by,
            "space_signature": self.space.signature,
            "window_ms": self.window.to_list(),
            "notes": self.notes,
            "records": [r.to_json() for r in self.records],
        }

    @classmethod
    def from_json(
        cls, data: object, space: SearchSpace, window: LatencyWindow, *, where: str, fix: str
    ) -> SearchResult:
        """A stored ``stage-K/search.json``, checked by :func:`stored_search`."""
        method, notes, records, rank_by = stored_search(data, space, where=where, fix=fix)
        return cls(method, space, window, records, notes, rank_by)

    def archs(self, max_rank: int | None = None) -> list[Arch]:
        """Architectures of rank < ``max_rank`` (all when None)."""
        return [Arch.parse(r.arch) for r in self.records if max_rank is None or r.rank < max_rank]


def stored_search(
    data: object, space: SearchSpace, *, where: str, fix: str
) -> tuple[str, list[str], list[Evaluated], str]:
    """(method, notes, records, rank_by) of a stored ``stage-K/search.json``, checked: it
    belongs to ``space`` (its signature), every record passes :meth:`Evaluated.from_json`, no
    arch appears twice, every record has the score it was ranked by (a file from before
    ``rank_by`` ranked by accuracy) and the ranks are the ones the objectives give. A fault raises
    :class:`StoredRecordError` naming ``where``, with ``fix``."""
    if not isinstance(data, Mapping):
        raise StoredRecordError(f"{where} does not hold an object; {fix}")
    signature = data.get("space_signature")
    if not isinstance(signature, str):
        raise StoredRecordError(f"{where} has no space_signature; {fix}")
    if signature != space.signature:
        raise StoredRecordError(f"{where} belongs to another search space; {fix}")
    method, notes, rows = data.get("method"), data.get("notes"), data.get("records")
    if (
        not isinstance(method, str)
        or not isinstance(notes, list)
        or not all(isinstance(n, str) for n in notes)
        or not isinstance(rows, list)
    ):
        raise StoredRecordError(f"{where} has no method, notes or records list; {fix}")
    records = [
        Evaluated.from_json(r, space, where=f"{where}, record {i + 1}", fix=fix)
        for i, r in enumerate(rows)
    ]
    if len({r.arch for r in records}) != len(records):
        raise StoredRecordError(f"{where} lists an architecture twice; {fix}")
    rank_by = data.get("rank_by", "accuracy")
    if rank_by not in RANK_BY:
        raise StoredRecordError(f"{where}: rank_by must be one of {', '.join(RANK_BY)}; {fix}")
    if any(r.log_likelihood is None for r in records) and rank_by == "log_likelihood":
        raise StoredRecordError(f"{where} ranks by log_likelihood but a record has none; {fix}")
    # the ranks decide the pruning and the final choice: they must be the ones the stored
    # objectives give, not ones written by hand
    if [r.rank for r in ranked(records, rank_by)] != [r.rank for r in records]:
        raise StoredRecordError(f"{where}: the ranks do not match the objectives; {fix}")
    return method, list(notes), records, rank_by


def objectives(records: Sequence[Evaluated], rank_by: str = "accuracy") -> np.ndarray:
    """(n, 2) minimisation objectives of ``records``: -score (``rank_by``), latency."""
    rows = [[-r.score(rank_by), r.latency_ms] for r in records]
    return np.array(rows, dtype=float).reshape(-1, 2)


def nondominated_ranks(F: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row of minimised objectives F; 1 is the Pareto front."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(F, return_rank=True)
    return np.asarray(rank, dtype=int) + 1


def ranked(records: Sequence[Evaluated], rank_by: str = "accuracy") -> list[Evaluated]:
    """The records with ranks recomputed over all of them, in (latency, ``rank_by``)."""
    ranks = nondominated_ranks(objectives(records, rank_by))
    return [dataclasses.replace(r, rank=int(k)) for r, k in zip(records, ranks, strict=True)]


class _GenomeProblem(Problem):
    """Integer genome per layer; objectives are supplied by ask-and-tell, never computed here."""

    def __init__(self, space: SearchSpace) -> None:
        xu = np.array(space.num_ops, dtype=int) - 1
        super().__init__(n_var=space.num_layers, n_obj=2, xl=np.zeros_like(xu), xu=xu, vtype=int)

    def _evaluate(self, X, out, *args, **kwargs):  # pragma: no cover - ask-and-tell only
        raise RuntimeError("CES evaluates architectures in batches through ask-and-tell")


class _WindowSampling(Sampling):
    """IntegerRandomSampling, rejecting genomes outside the window until a population is full."""

    def __init__(self, gate: Gate, config: CESConfig) -> None:
        super().__init__()
        self.gate, self.config = gate, config
        self._uniform = IntegerRandomSampling()

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        X, _ = sample_admissible(
            self.gate,
            lambda k: self._uniform._do(problem, k, random_state=random_state),
            n_samples,
            batch=self.config.sample_batch,
            max_draws=self.config.max_sample_draws,
        )
        return X


class _WindowMating(Mating):
    """NSGA-II's mating, with offspring outside the window (or already evaluated) discarded.

    pymoo's infill loop calls ``_do`` until it has enough offspring, so discarding here makes it
    breed again rather than hand violators to the evaluator.
    """

    def __init__(self, gate: Gate, config: CESConfig) -> None:
        super().__init__(
            TournamentSelection(func_comp=binary_tournament),
            TwoPointCrossover(prob=config.crossover_prob),
            PM(
                prob=1.0,
                prob_var=config.mutation_prob,
                eta=config.mutation_eta,
                vtype=float,
                repair=RoundingRepair(),
            ),
            eliminate_duplicates=DefaultDuplicateElimination(),
            n_max_iterations=config.max_mating_rounds,
        )
        self.gate = gate

    def _do(self, problem, pop, n_offsprings, parents=None, random_state=None, **kwargs):
        off = super()._do(
            problem, pop, n_offsprings, parents=parents, random_state=random_state, **kwargs
        )
        if len(off) == 0:
            return off
        return off[self.gate.admit(np.asarray(off.get("X"), dtype=np.int64))]


def run_ces(
    space: SearchSpace,
    latency: LatencyFn,
    accuracy: AccuracyFn,
    window: LatencyWindow,
    config: CESConfig | None = None,
    *,
    seed: int,
    log_likelihood: AccuracyFn | None = None,
    rank_by: str = "accuracy",
    known: Mapping[str, float | tuple[float, float | None]] | None = None,
    on_generation: GenerationHook | None = None,
    progress: bool = False,
) -> SearchResult:
    """Run CES on ``space`` and return every evaluated architecture, ranked.

    ``latency`` maps genomes of ``space`` to ms; ``accuracy`` maps architectures to one-shot
    accuracy and ``log_likelihood`` (optional) to their mean log-likelihood, both called once per
    generation with only the architectures not in ``known`` (arch string -> accuracy, or
    (accuracy, log-likelihood)). ``rank_by`` names the score the search maximises
    (:data:`RANK_BY`); ranking by the log-likelihood needs ``log_likelihood``.
    """
    check_scoring(rank_by, log_likelihood)
    config = config or CESConfig()
    problem = _GenomeProblem(space)
    gate = Gate(latency, window)
    algorithm = NSGA2(
        pop_size=config.pop_size,
        sampling=_WindowSampling(gate, config),
        mating=_WindowMating(gate, config),
        eliminate_duplicates=True,
        seed=seed,
    )
    algorithm.setup(problem, termination=("n_gen", config.generations))
    memo = {k: _known_scores(v) for k, v in (known or {}).items()}
    records: list[Evaluated] = []
    notes: list[str] = []
    bar = _progress(progress, config.generations)
    try:
        while algorithm.has_next():
            pop = algorithm.ask()
            if pop is None or len(pop) == 0:
                notes.append(
                    f"stopped after generation {int(algorithm.n_gen) - 1}: no admissible offspring "
                    "left (space nearly exhausted inside the window)"
                )
                break
            generation = int(algorithm.n_gen)
            X = np.asarray(pop.get("X"), dtype=np.int64)
            if len(pop) < config.pop_size:
                notes.append(f"generation {generation}: only {len(pop)} admissible candidates")
            archs = [space.decode(x) for x in X]
            keys = [str(a) for a in archs]
            fresh = [a for a, k in zip(archs, keys, strict=True) if k not in memo]
            if fresh:
                acc = _values(accuracy, fresh, "accuracy")
                ll = [None] * len(fresh)
                if log_likelihood is not None:
                    ll = _values(log_likelihood, fresh, "log_likelihood")
                memo.update({str(a): (x, y) for a, x, y in zip(fresh, acc, ll, strict=True)})
            lat = np.asarray(latency(X), dtype=float).reshape(-1)
            batch = [
                Evaluated(k, tuple(x.tolist()), memo[k][0], float(t), generation, 0, memo[k][1])
                for k, x, t in zip(keys, X, lat, strict=True)
            ]
            score = np.array([r.score(rank_by) for r in batch], dtype=float)
            Evaluator().eval(StaticProblem(problem, F=np.column_stack([-score, lat])), pop)
            algorithm.tell(infills=pop)
            gate.mark(X)
            records.extend(batch)
            if on_generation is not None:
                on_generation(generation, batch, {str(a) for a in fresh})
            bar.update(1)
    finally:
        bar.close()
    return SearchResult("ces", space, window, ranked(records, rank_by), notes, rank_by)


def _known_scores(value: float | tuple[float, float | None]) -> tuple[float, float | None]:
    """A ``known`` entry as (accuracy, log-likelihood or None)."""
    if isinstance(value, tuple):
        acc, ll = value
        return float(acc), None if ll is None else float(ll)
    return float(value), None


def _values(fn: AccuracyFn, archs: list[Arch], what: str) -> list[float]:
    values = np.asarray(fn(archs), dtype=float).reshape(-1)
    if len(values) != len(archs):
        raise RuntimeError(f"{what}() returned {len(values)} values for {len(archs)} archs")
    return [float(v) for v in values]


def _progress(enabled: bool, total: int):
    return progress_bar(
        total=total, desc="CES generations", unit="gen", disable=not enabled, leave=False
    )
