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

from padnas.search.ces import StoredRecordError, check_accuracy, check_latency
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
    """The one-shot accuracy step between two final models, against the ceiling."""

    lower: str  # label of the faster model
    upper: str
    points: float  # accuracy(upper) - accuracy(lower), in percentage points
    band: float  # WITHIN_NOISE_SDS standard deviations of a difference, in points

    @property
    def within_noise(self) -> bool:
        return abs(self.points) < self.band

    def to_json(self) -> dict:
        return {
            "from": self.lower,
            "to": self.upper,
            "points": round(self.points, 4),
            "band_points": round(self.band, 4),
            "within_noise": self.within_noise,
        }

    def sentence(self) -> str:
        verb = "rises" if self.points > 0 else "falls" if self.points < 0 else "stays level"
        size = f" {abs(self.points):.1f} points" if self.points else ""
        head = f"{self.lower} → {self.upper} {verb}{size}"
        if self.within_noise:
            return (
                f"{head}, within the ranking noise (±{self.band:.1f}): these models are not "
                "distinguishable by one-shot accuracy"
            )
        return f"{head}, beyond the ranking noise (±{self.band:.1f})"


@dataclass(frozen=True)
class NoiseCeiling:
    """Two supernets' one-shot accuracies on the same architectures, and what they say.

    ``seeds`` are (the first supernet's, the second's); ``recal_seed`` drew the BatchNorm
    recalibration images both were evaluated with; ``latency_ms`` is kept for the record."""

    archs: tuple[str, ...]
    latency_ms: tuple[float, ...]
    accuracy: tuple[float, ...]
    twin_accuracy: tuple[float, ...]
    seeds: tuple[int, int]
    recal_seed: int
    stage: int = 1

    def __post_init__(self) -> None:
        n = len(self.archs)
        if not len(self.latency_ms) == len(self.accuracy) == len(self.twin_accuracy) == n:
            raise ValueError("a noise ceiling needs one latency and two accuracies per arch")
        if n < 2:
            raise ValueError(f"a noise ceiling needs at least 2 architectures, got {n}")

    @cached_property
    def _stats(self) -> dict:
        from scipy.stats import kendalltau

        a, b = np.asarray(self.accuracy), np.asarray(self.twin_accuracy)
        diff = a - b
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            tau = p = None  # one supernet scores every architecture the same: no ranking
        else:
            res = kendalltau(a, b)
            tau, p = float(res.statistic), float(res.pvalue)
        sd = float(diff.std(ddof=1))
        return {"tau": tau, "p_value": p, "difference_std": sd, "mean_difference": diff.mean()}

    # ---- the figures -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.archs)

    @property
    def tau(self) -> float | None:
        """Kendall's tau-b between the two supernets' accuracies (None: one scores all alike)."""
        return self._stats["tau"]

    @property
    def p_value(self) -> float | None:
        return self._stats["p_value"]

    @property
    def difference_std(self) -> float:
        """Std (ddof 1) of ``accuracy - twin_accuracy`` over the architectures (0..1 scale)."""
        return self._stats["difference_std"]

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
        return float(self._stats["mean_difference"])

    def steps(self, models: Sequence[Mapping]) -> list[Step]:
        """The steps between consecutive final models (A → B, B → C, ...) and, with three or
        more, from the first to the last (A → C); ``models`` carry ``label`` and
        ``one_shot_accuracy``, fastest first."""
        pairs = list(itertools.pairwise(models))
        if len(models) > 2:
            pairs.append((models[0], models[-1]))
        band = 100 * WITHIN_NOISE_SDS * self.step_noise
        return [
            Step(
                lo["label"],
                hi["label"],
                100 * (hi["one_shot_accuracy"] - lo["one_shot_accuracy"]),
                band,
            )
            for lo, hi in pairs
        ]

    def summary(self, models: Sequence[Mapping] = ()) -> dict:
        """The ``noise_ceiling`` block of ``summary.json`` (accuracies on the 0..1 scale)."""
        return {
            "stage": self.stage,
            "archs": self.n,
            "seeds": list(self.seeds),
            "recal_seed": self.recal_seed,
            "tau": self.tau,
            "p_value": self.p_value,
            "acc_difference_std": self.difference_std,
            "acc_difference_mean": self.mean_difference,
            "accuracy_noise": self.accuracy_noise,
            "step_noise": self.step_noise,
            "within_noise_sds": WITHIN_NOISE_SDS,
            "steps": [s.to_json() for s in self.steps(models)],
        }

    # ---- the stored file ---------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": CEILING_FORMAT,
            "stage": self.stage,
            "seeds": list(self.seeds),
            "recal_seed": self.recal_seed,
            "records": [
                {"arch": a, "latency_ms": lat, "accuracy": x, "twin_accuracy": y}
                for a, lat, x, y in zip(
                    self.archs, self.latency_ms, self.accuracy, self.twin_accuracy, strict=True
                )
            ],
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
    ) -> NoiseCeiling:
        """A stored ceiling, checked like input: this run's seeds, archs of ``space`` (the space
        the two supernets were trained in), accuracies in [0, 1], latencies positive, at least
        two records and no arch twice. A fault raises :class:`StoredRecordError`."""
        if not isinstance(data, Mapping) or data.get("format") != CEILING_FORMAT:
            raise StoredRecordError(f"{where} is not a noise ceiling (format 1); {fix}")
        got = (data.get("seeds"), data.get("recal_seed"))
        if got != (list(seeds), recal_seed):
            raise StoredRecordError(
                f"{where} was measured with seeds {got[0]} (recalibration {got[1]}), not this "
                f"run's {list(seeds)} ({recal_seed}); {fix}"
            )
        records = data.get("records")
        if not isinstance(records, list) or len(records) < 2:
            raise StoredRecordError(f"{where} holds fewer than 2 records; {fix}")
        rows = []
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
        if len({r[0] for r in rows}) != len(rows):
            raise StoredRecordError(f"{where} lists an architecture twice; {fix}")
        stage = data.get("stage")
        if not isinstance(stage, int) or isinstance(stage, bool) or stage < 1:
            raise StoredRecordError(f"{where}: stage must be a stage number >= 1; {fix}")
        archs, lat, acc, twin = zip(*rows, strict=True)
        return cls(archs, lat, acc, twin, tuple(seeds), recal_seed, stage=stage)


def measure_ceiling(
    archs: Sequence[str],
    latency_ms: Sequence[float],
    accuracy: Sequence[float],
    twin_accuracy: Sequence[float],
    *,
    seeds: tuple[int, int],
    recal_seed: int,
    stage: int = 1,
) -> NoiseCeiling:
    """The ceiling of two accuracy lists over the same architectures (see the module doc)."""
    return NoiseCeiling(
        tuple(str(a) for a in archs),
        tuple(float(x) for x in latency_ms),
        tuple(float(x) for x in accuracy),
        tuple(float(x) for x in twin_accuracy),
        (int(seeds[0]), int(seeds[1])),
        int(recal_seed),
        stage,
    )


def describe(block: Mapping, *, archs: bool = True) -> str:
    """One line for a ``noise_ceiling`` block: tau and its p-value (over how many architectures,
    with ``archs``) and the seed noise of an accuracy and of a difference, in points."""
    tau = block.get("tau")
    head = (
        "Kendall tau undefined (one supernet scores every architecture alike)"
        if tau is None
        else f"Kendall tau {tau:+.2f} (p {block['p_value']:.2g})"
    )
    if archs:
        head += f" over {block['archs']} archs"
    per_model, step = 100 * block["accuracy_noise"], 100 * block["step_noise"]
    return (
        f"{head}; one-shot accuracy ±{per_model:.1f} points per model from the seed alone, "
        f"±{step:.1f} for a difference of two"
    )
