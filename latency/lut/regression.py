"""Regression fallback: predict a block's latency from its cost features.

Used where no measurement exists: holes in a LUT (a profile that was cut short, a variant that
failed to convert) and offline questions — another resolution or width than the one profiled.

The estimator has two parts, because the second half of the job is extrapolation:

1. a non-negative linear cost model over MACs by conv type, activation elements and a per-block
   overhead (``LinearRegression(positive=True)`` after ``MaxAbsScaler``, weighted by ``1/y²`` so
   it minimises *relative* error); being linear in physical cost, it extrapolates to larger or
   smaller shapes sensibly;
2. a gradient-boosted correction of ``log(y / linear)`` over scale-free shape facts (kernel,
   expansion, stride, log channels, log spatial size): it captures what the cost model misses —
   e.g. small channel counts that vectorise badly — and, being a tree ensemble, saturates outside
   the training range instead of running away.

Nothing is pickled: :func:`fit_lut` refits from a LUT's own measured entries each time it is
needed (a fraction of a second for a few hundred entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from latency.lut.table import OBSERVED, Lut, LutError
from latency.variants import FEATURE_NAMES, Variant

#: fewest measured entries the fallback is fitted on
MIN_MEASURED = 12

LINEAR_FEATURES = (
    "macs_pw",
    "macs_dw",
    "macs_full",
    "macs_fc",
    "act_in",
    "act_hidden",
    "act_out",
    "params",
)
_IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def feature_matrix(variants: Sequence[Variant]) -> np.ndarray:
    """``(n, len(FEATURE_NAMES))`` float array of :meth:`Variant.features`."""
    return np.array([[v.features()[n] for n in FEATURE_NAMES] for v in variants], dtype=float)


def _linear_part(X: np.ndarray) -> np.ndarray:
    # depthwise convs get one coefficient per kernel size: runtimes use a different kernel
    # (and efficiency) for 3x3, 5x5 and larger windows
    cols = [X[:, _IDX[n]] for n in LINEAR_FEATURES if n != "macs_dw"]
    dw, k = X[:, _IDX["macs_dw"]], X[:, _IDX["kernel"]]
    per_k = [dw * (k == 3), dw * (k == 5), dw * (k >= 7)]
    return np.column_stack([np.ones(len(X)), *cols, *per_k])


def _shape_part(X: np.ndarray) -> np.ndarray:
    def lg(name):
        return np.log2(np.maximum(X[:, _IDX[name]], 1.0))

    return np.column_stack(
        [
            X[:, _IDX["is_stem"]],
            X[:, _IDX["is_head"]],
            X[:, _IDX["kernel"]],
            X[:, _IDX["exp_ratio"]],
            X[:, _IDX["stride"]],
            X[:, _IDX["residual"]],
            lg("in_chs"),
            lg("out_chs"),
            lg("hidden_chs"),
            lg("in_hw"),
            lg("macs"),
        ]
    )


class LatencyRegressor(RegressorMixin, BaseEstimator):
    """Positive linear cost model x boosted log-correction (see the module docstring).

    ``X`` is a :func:`feature_matrix`; ``y`` latencies in ms (> 0).
    """

    def __init__(
        self,
        correction: bool = True,
        n_estimators: int = 150,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        random_state: int = 0,
    ) -> None:
        self.correction = correction
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
            raise ValueError(
                f"X must be a feature_matrix with {len(FEATURE_NAMES)} columns, got {X.shape}"
            )
        if len(X) != len(y) or len(y) < 2:
            raise ValueError(f"need at least 2 rows with one y each, got X {X.shape}, y {y.shape}")
        if not np.all(np.isfinite(y)) or (y <= 0).any():
            raise ValueError("y must be finite positive latencies (ms)")
        if not 0 < self.subsample <= 1:
            raise ValueError(f"subsample must be in (0, 1], got {self.subsample}")
        self.linear_ = make_pipeline(MaxAbsScaler(), LinearRegression(positive=True))
        self.linear_.fit(_linear_part(X), y, linearregression__sample_weight=1 / y**2)
        self.gbr_ = None
        if self.correction and len(y) >= 8:
            base = self._base(X)
            self.gbr_ = GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                learning_rate=self.learning_rate,
                subsample=self.subsample,
                random_state=self.random_state,
            )
            self.gbr_.fit(_shape_part(X), np.log(y / base))
        return self

    def _base(self, X: np.ndarray) -> np.ndarray:
        # a block never costs nothing: floor at 1 us so the log-correction stays defined
        return np.maximum(self.linear_.predict(_linear_part(X)), 1e-3)

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        base = self._base(X)
        if self.gbr_ is None:
            return base
        return base * np.exp(self.gbr_.predict(_shape_part(X)))


def mape(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return float(np.mean(np.abs(y_pred - y_true) / y_true) * 100)


def kfold_mape(variants: Sequence[Variant], y, k: int = 5, seed: int = 0, estimator=None) -> float:
    """Mean absolute percentage error of out-of-fold predictions (k-fold, shuffled, seeded)."""
    X, y = feature_matrix(variants), np.asarray(y, float)
    est = estimator if estimator is not None else LatencyRegressor()
    pred = np.empty_like(y)
    for train, test in KFold(min(k, len(y)), shuffle=True, random_state=seed).split(X):
        pred[test] = clone(est).fit(X[train], y[train]).predict(X[test])
    return mape(y, pred)


@dataclass
class FittedRegression:
    """A regressor fitted on one LUT's entries, with its cross-validated error."""

    estimator: LatencyRegressor
    n_train: int
    kfold_mape: float
    sources: tuple[str, ...]
    lut_label: str

    def predict_variants(self, variants: Sequence[Variant]) -> np.ndarray:
        if not variants:
            return np.zeros(0)
        return self.estimator.predict(feature_matrix(variants))

    def predict_keys(self, keys: Sequence[str]) -> np.ndarray:
        return self.predict_variants([Variant.from_key(k) for k in keys])

    def summary(self) -> dict:
        return {
            "estimator": "LatencyRegressor(positive linear cost model x GBR log-correction)",
            "params": self.estimator.get_params(),
            "n_train": self.n_train,
            "kfold_mape_pct": round(self.kfold_mape, 2),
            "fitted_on_sources": list(self.sources),
        }


def fill_holes(
    lut: Lut, items: Sequence, regression: FittedRegression | None = None, *, min_measured=None
) -> tuple[dict[str, float], FittedRegression | None]:
    """The regression estimate (ms) of every item (op variant or network unit: anything with a
    ``key`` and :meth:`features`) the LUT lacks, and the fitted fallback (fitted on the LUT's own
    entries unless ``regression`` is given; LutError when they are too few). The one place a
    hole in a table is filled, for a LUT being built, a latency model and a network prediction.
    """
    missing = list({x.key: x for x in items if x.key not in lut.entries}.values())
    if not missing:
        return {}, regression
    if regression is None:
        regression = fit_lut(lut, min_measured=min_measured)
    predicted = regression.predict_variants(missing)
    return {x.key: float(ms) for x, ms in zip(missing, predicted, strict=True)}, regression


def fit_lut(lut: Lut, *, min_measured: int | None = None, k: int = 5) -> FittedRegression:
    """Fit the fallback on the LUT's device observations (``measured``/``mock`` entries; a LUT
    of estimates only is fitted on its estimates). Raises LutError when there are too few."""
    need = MIN_MEASURED if min_measured is None else min_measured
    train = lut.observed() or {
        key: e for key, e in lut.entries.items() if e["source"] != "regression"
    }
    if len(train) < max(need, 2):
        raise LutError(
            f"only {len(train)} measured entries in the {lut.label} LUT of "
            f"{lut.device_name}; the regression fallback needs at least {need}: measure more "
            "with padnas-latency profile (it resumes)"
        )
    keys = sorted(train)
    variants = [Variant.from_key(key) for key in keys]
    y = np.array([train[key]["ms"] for key in keys], dtype=float)
    if (y <= 0).any():
        bad = keys[int(np.argmin(y))]
        raise LutError(f"entry {bad!r} has latency {y.min()} ms; cannot fit on non-positive values")
    est = LatencyRegressor().fit(feature_matrix(variants), y)
    cv = kfold_mape(variants, y, k=k)
    sources = tuple(sorted({train[key]["source"] for key in keys}))
    return FittedRegression(est, len(keys), cv, sources, lut.label)


__all__ = [
    "MIN_MEASURED",
    "OBSERVED",
    "FittedRegression",
    "LatencyRegressor",
    "feature_matrix",
    "fill_holes",
    "fit_lut",
    "kfold_mape",
    "mape",
]
