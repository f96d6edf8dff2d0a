"""The noise ceiling of a one-shot ranking: how far two supernets that differ only by their seed
agree on the same architectures, and which accuracy steps that noise swallows.

A one-shot accuracy is one draw of a noisy process: another seed (initialisation, sampled paths,
data order) trains another supernet that ranks the same architectures differently. The ceiling
is measured as the rest of a search is, from values it already has: the architectures a stage
evaluated (up to :attr:`CeilingConfig.archs` of them, spread evenly along their latency order so
the whole window is covered) are evaluated once more on a second supernet trained exactly like
the first but with :func:`twin_seed`, under the same BatchNorm recalibration draw. From the two
accuracy lists:

- Kendall's tau-b (scipy) between them: how far any ranking by one-shot accuracy can be trusted.
  A ranking against stand-alone accuracy (the paper's Table 8) cannot be expected to be better
  than this; a tau of 0.2 says the order of two architectures is right barely more often than
  a coin would put it;
- the standard deviation of the per-architecture differences ``acc - twin_acc``: with each
  supernet's error independent and of the same size ``sigma``, that std is ``sqrt(2) sigma``.
  So one model's one-shot accuracy carries ``sigma = std / sqrt(2)`` of seed noise
  (:attr:`NoiseCeiling.accuracy_noise`) and a difference between two models on one supernet
  ``sqrt(2) sigma = std`` (:attr:`NoiseCeiling.step_noise`). The mean difference (one supernet
  scoring every architecture higher) does not change a ranking and is reported apart.

A search that ranks by the mean log-likelihood of the true class (``rank_by``) has both scores
measured on both supernets; its tau and steps are judged in log-likelihood (nats), the same way,
and the accuracy's figures are reported beside them.

A step between two final models is *within the noise* when ``|step| < 2 * step_noise`` (two
standard deviations of a difference: a step that size arises from seed noise alone about one
time in twenty).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from padnas.search.ces import (
    StoredRecordError,
    check_accuracy,
    check_latency,
    check_log_likelihood,
)
from padnas.space import SearchSpace

#: mixed with the run's seed to derive the second supernet's (numpy's SeedSequence)
TWIN_SALT = 0x7E1C
#: a step is within the noise below this many standard deviations of a difference
WITHIN_NOISE_SDS = 2.0
CEILING_FORMAT = 1


def twin_seed(seed: int) -> int:
    """The second supernet's seed: a 32-bit number derived from the run's ``seed`` (numpy's
    ``SeedSequence([seed, TWIN_SALT])``), so it never equals a stage seed of this run
    (``seed + 1000 k``) or, but by chance, another run's seed, and is recorded in config.json."""
    return int(np.random.SeedSequence([seed, TWIN_SALT]).generate_state(1)[0])


@dataclass(frozen=True)
class CeilingConfig:
    """How the ceiling is measured: on at most ``archs`` architectures of the first search's
    evaluated set, spread along the latency window (:func:`spread_by_latency`)."""

    archs: int = 40

    def __post_init__(self) -> None:
        if self.archs < 3:
            raise ValueError(f"a noise ceiling needs at least 3 architectures, got {self.archs}")

    def to_dict(self) -> dict:
        return {"archs": self.archs}


def spread_by_latency(latencies: Sequence[float], names: Sequence[str], n: int) -> list[int]:
    """Indices of at most ``n`` items at evenly spaced positions of the latency order (ties
    broken by name), fastest first: all of them when there are no more than ``n``."""
    order = sorted(range(len(latencies)), key=lambda i: (latencies[i], names[i]))
    if len(order) <= n:
        return order
    at = np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))
    return [order[i] for i in at]


@dataclass(frozen=True)
class Step:
    """The one-shot step between two final models in the score the search ranked by, against
    the ceiling: in percentage points of accuracy, or in nats of mean log-likelihood."""

    lower: str  # label of the faster model
    upper: str
    change: float  # score(upper) - score(lower), in ``unit``
    band: float  # WITHIN_NOISE_SDS standard deviations of a difference, in ``unit``
    unit: str = "points"

    @property
    def within_noise(self) -> bool:
        return abs(self.change) < self.band

    def to_json(self) -> dict:
        return {
            "from": self.lower,
            "to": self.upper,
            self.unit: round(self.change, 4),
            f"band_{self.unit}": round(self.band, 4),
            "within_noise": self.within_noise,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Step:
        unit = "nats" if "nats" in data else "points"
        return cls(data["from"], data["to"], data[unit], data[f"band_{unit}"], unit)

    def sentence(self) -> str:
        digits, score = (1, "one-shot accuracy") if self.unit == "points" else (3, "log-likelihood")
        verb = "rises" if self.change > 0 else "falls" if self.change < 0 else "stays level"
        size = f" {abs(self.change):.{digits}f} {self.unit}" if self.change else ""
        head = f"{self.lower} → {self.upper} {verb}{size}"
        if self.within_noise:
            return (
                f"{head}, within the ranking noise (±{self.band:.{digits}f}): these models are "
                f"not distinguishable by {score}"
            )
        return f"{head}, beyond the ranking noise (±{self.band:.{digits}f})"


def _agreement(a: Sequence[float], b: Sequence[float]) -> dict:
    """Kendall's tau-b (scipy) of two score lists over the same architectures, with the std
    (ddof 1) and mean of their differences."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        tau = p = None  # one supernet scores every architecture the same: no ranking
    else:
        res = kendalltau(a, b)
        tau, p = float(res.statistic), float(res.pvalue)
    return {"tau": tau, "p_value": p, "std": float(diff.std(ddof=1)), "mean": float(diff.mean())}


@dataclass(frozen=True)
class NoiseCeiling:
    """Two supernets' one-shot scores on the same architectures, and what they say.

    ``seeds`` are (the first supernet's, the second's); ``recal_seed`` drew the BatchNorm
    recalibration images both were evaluated with; ``latency_ms`` is kept for the record.
    ``rank_by`` names the score the search ranked by: :attr:`tau` and the steps are judged in
    it; the accuracy figures are kept either way, the log-likelihood ones when measured."""

    archs: tuple[str, ...]
    latency_ms: tuple[float, ...]
    accuracy: tuple[float, ...]
    twin_accuracy: tuple[float, ...]
    seeds: tuple[int, int]
    recal_seed: int
    stage: int = 1
    log_likelihood: tuple[float, ...] | None = None
    twin_log_likelihood: tuple[float, ...] | None = None
    rank_by: str = "accuracy"

    def __post_init__(self) -> None:
        n = len(self.archs)
        if not len(self.latency_ms) == len(self.accuracy) == len(self.twin_accuracy) == n:
            raise ValueError("a noise ceiling needs one latency and two accuracies per arch")
        if n < 2:
            raise ValueError(f"a noise ceiling needs at least 2 architectures, got {n}")
        ll = (self.log_likelihood, self.twin_log_likelihood)
        if (ll[0] is None) != (ll[1] is None) or (ll[0] is not None and len(ll[0]) != n):
            raise ValueError("a noise ceiling needs two log-likelihoods per arch, or none")
        if self.rank_by == "log_likelihood" and ll[0] is None:
            raise ValueError("a ceiling of a search ranked by log-likelihood needs them")

    @cached_property
    def _stats(self) -> dict:
        return _agreement(self.accuracy, self.twin_accuracy)

    @cached_property
    def _ll_stats(self) -> dict | None:
        if self.log_likelihood is None:
            return None
        return _agreement(self.log_likelihood, self.twin_log_likelihood)

    @property
    def _ranked_stats(self) -> dict:
        return self._ll_stats if self.rank_by == "log_likelihood" else self._stats

    # ---- the figures -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.archs)

    @property
    def tau(self) -> float | None:
        """Kendall's tau-b between the two supernets' scores in ``rank_by`` (None: one scores
        all alike)."""
        return self._ranked_stats["tau"]

    @property
    def p_value(self) -> float | None:
        return self._ranked_stats["p_value"]

    @property
    def accuracy_tau(self) -> float | None:
        """Kendall's tau-b between the two supernets' accuracies, whatever the search ranked by."""
        return self._stats["tau"]

    @property
    def difference_std(self) -> float:
        """Std (ddof 1) of ``accuracy - twin_accuracy`` over the architectures (0..1 scale)."""
        return self._stats["std"]

    @property
    def accuracy_noise(self) -> float:
        """Seed noise of one model's one-shot accuracy: ``difference_std / sqrt(2)``."""
        return self.difference_std / math.sqrt(2)

    @property
    def step_noise(self) -> float:
        """Seed noise of a difference between two models on one supernet: ``difference_std``."""
        return self.difference_std

    @property
    def mean_difference(self) -> float:
        return self._stats["mean"]

    @property
    def ll_step_noise(self) -> float | None:
        """Seed noise of a difference of two models' mean log-likelihoods (nats), as
        :attr:`step_noise` is of accuracies; None when not measured."""
        return None if self._ll_stats is None else self._ll_stats["std"]

    def steps(self, models: Sequence[Mapping]) -> list[Step]:
        """The steps between consecutive final models (A → B, B → C, ...) and, with three or
        more, from the first to the last (A → C), in the score the search ranked by; ``models``
        carry ``label`` and ``one_shot_accuracy`` (``one_shot_log_likelihood``), fastest first."""
        pairs = list(itertools.pairwise(models))
        if len(models) > 2:
            pairs.append((models[0], models[-1]))
        if self.rank_by == "log_likelihood":
            key, scale, unit, noise = "one_shot_log_likelihood", 1.0, "nats", self.ll_step_noise
        else:
            key, scale, unit, noise = "one_shot_accuracy", 100.0, "points", self.step_noise
        band = scale * WITHIN_NOISE_SDS * noise
        return [
            Step(lo["label"], hi["label"], scale * (hi[key] - lo[key]), band, unit)
            for lo, hi in pairs
        ]

    def summary(self, models: Sequence[Mapping] = ()) -> dict:
        """The ``noise_ceiling`` block of ``summary.json`` (accuracies on the 0..1 scale,
        log-likelihoods in nats); ``tau`` is the one of the score the search ranked by."""
        out = {
            "stage": self.stage,
            "archs": self.n,
            "seeds": list(self.seeds),
            "recal_seed": self.recal_seed,
            "rank_by": self.rank_by,
            "tau": self.tau,
            "p_value": self.p_value,
            "accuracy_tau": self.accuracy_tau,
            "acc_difference_std": self.difference_std,
            "acc_difference_mean": self.mean_difference,
            "accuracy_noise": self.accuracy_noise,
            "step_noise": self.step_noise,
            "within_noise_sds": WITHIN_NOISE_SDS,
            "steps": [s.to_json() for s in self.steps(models)],
        }
        if self._ll_stats is not None:
            ll = self._ll_stats
            out.update(
                log_likelihood_tau=ll["tau"],
                ll_difference_std=ll["std"],
                ll_difference_mean=ll["mean"],
                log_likelihood_noise=ll["std"] / math.sqrt(2),
                ll_step_noise=ll["std"],
            )
        return out

    # ---- the stored file ---------------------------------------------------------------------
    def to_json(self) -> dict:
        records = []
        for i, (a, lat, x, y) in enumerate(
            zip(self.archs, self.latency_ms, self.accuracy, self.twin_accuracy, strict=True)
        ):
            row = {"arch": a, "latency_ms": lat, "accuracy": x, "twin_accuracy": y}
            if self.log_likelihood is not None:
                row["log_likelihood"] = self.log_likelihood[i]
                row["twin_log_likelihood"] = self.twin_log_likelihood[i]
            records.append(row)
        return {
            "format": CEILING_FORMAT,
            "stage": self.stage,
            "seeds": list(self.seeds),
            "recal_seed": self.recal_seed,
            "rank_by": self.rank_by,
            "records": records,
        }

    @classmethod
    def from_json(
        cls,
        data: object,
        space: SearchSpace,
        seeds: tuple[int, int],
        recal_seed: int,
        *,
        where: str,
        fix: str,
        rank_by: str = "accuracy",
    ) -> NoiseCeiling:
        """A stored ceiling, checked like input: this run's seeds and ``rank_by`` (a file from
        before it ranked by accuracy), archs of ``space`` (the space the two supernets were
        trained in), accuracies in [0, 1], log-likelihoods (on every record or none) <= 0,
        latencies positive, at least two records and no arch twice. A fault raises
        :class:`StoredRecordError`."""
        if not isinstance(data, Mapping) or data.get("format") != CEILING_FORMAT:
            raise StoredRecordError(f"{where} is not a noise ceiling (format 1); {fix}")
        got = (data.get("seeds"), data.get("recal_seed"))
        if got != (list(seeds), recal_seed):
            raise StoredRecordError(
                f"{where} was measured with seeds {got[0]} (recalibration {got[1]}), not this "
                f"run's {list(seeds)} ({recal_seed}); {fix}"
            )
        if data.get("rank_by", "accuracy") != rank_by:
            raise StoredRecordError(
                f"{where} was not measured for a search ranked by {rank_by}; {fix}"
            )
        records = data.get("records")
        if not isinstance(records, list) or len(records) < 2:
            raise StoredRecordError(f"{where} holds fewer than 2 records; {fix}")
        rows, lls = [], []
        for i, r in enumerate(records, 1):
            at = f"{where}, record {i}"
            if not isinstance(r, Mapping) or not isinstance(r.get("arch"), str):
                raise StoredRecordError(f"{at}: no arch string; {fix}")
            try:
                arch = str(space.validate(r["arch"]))
            except ValueError as exc:
                raise StoredRecordError(f"{at}: {exc}; {fix}") from None
            rows.append(
                (
                    arch,
                    check_latency(r.get("latency_ms"), f"{at}: latency_ms", fix),
                    check_accuracy(r.get("accuracy"), f"{at}: accuracy", fix),
                    check_accuracy(r.get("twin_accuracy"), f"{at}: twin_accuracy", fix),
                )
            )
            if "log_likelihood" in r or "twin_log_likelihood" in r:
                lls.append(
                    tuple(
                        check_log_likelihood(r.get(k), f"{at}: {k}", fix)
                        for k in ("log_likelihood", "twin_log_likelihood")
                    )
                )
        if len({r[0] for r in rows}) != len(rows):
            raise StoredRecordError(f"{where} lists an architecture twice; {fix}")
        if (lls and len(lls) != len(rows)) or (rank_by == "log_likelihood" and not lls):
            raise StoredRecordError(f"{where}: a record has no log-likelihoods; {fix}")
        stage = data.get("stage")
        if not isinstance(stage, int) or isinstance(stage, bool) or stage < 1:
            raise StoredRecordError(f"{where}: stage must be a stage number >= 1; {fix}")
        archs, lat, acc, twin = zip(*rows, strict=True)
        ll, twin_ll = zip(*lls, strict=True) if lls else (None, None)
        return cls(archs, lat, acc, twin, tuple(seeds), recal_seed, stage, ll, twin_ll, rank_by)


def measure_ceiling(
    archs: Sequence[str],
    latency_ms: Sequence[float],
    accuracy: Sequence[float],
    twin_accuracy: Sequence[float],
    *,
    seeds: tuple[int, int],
    recal_seed: int,
    stage: int = 1,
    log_likelihood: Sequence[float] | None = None,
    twin_log_likelihood: Sequence[float] | None = None,
    rank_by: str = "accuracy",
) -> NoiseCeiling:
    """The ceiling of two score lists over the same architectures (see the module doc)."""

    def floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
        return None if values is None else tuple(float(x) for x in values)

    return NoiseCeiling(
        tuple(str(a) for a in archs),
        floats(latency_ms),
        floats(accuracy),
        floats(twin_accuracy),
        (int(seeds[0]), int(seeds[1])),
        int(recal_seed),
        stage,
        floats(log_likelihood),
        floats(twin_log_likelihood),
        rank_by,
    )


def describe(block: Mapping, *, archs: bool = True) -> str:
    """One line for a ``noise_ceiling`` block: tau and its p-value in the score the search ranked
    by (over how many architectures, with ``archs``; the accuracy's tau beside it when that was
    not accuracy) and the seed noise of a score and of a difference."""
    tau = block.get("tau")
    by_ll = block.get("rank_by") == "log_likelihood"
    head = (
        "Kendall tau undefined (one supernet scores every architecture alike)"
        if tau is None
        else f"Kendall tau {tau:+.2f} (p {block['p_value']:.2g})"
    )
    if by_ll:
        acc_tau = block.get("accuracy_tau")
        acc = "undefined" if acc_tau is None else f"{acc_tau:+.2f}"
        head += f" by log-likelihood (by accuracy {acc})"
    if archs:
        head += f" over {block['archs']} archs"
    per_model, step = 100 * block["accuracy_noise"], 100 * block["step_noise"]
    noise = (
        f"one-shot accuracy ±{per_model:.1f} points per model from the seed alone, "
        f"±{step:.1f} for a difference of two"
    )
    if by_ll:
        noise = (
            f"log-likelihood ±{block['log_likelihood_noise']:.3f} nats per model from the seed "
            f"alone, ±{block['ll_step_noise']:.3f} for a difference of two; {noise}"
        )
    return f"{head}; {noise}"
