"""Device transfer: map latencies measured on the host to another device with a tiny linear model.

Without the phone, the only Pixel 3 observations we have are four whole-network latencies
(MobileNetV1, MobileNetV2 1.0 and 1.4, ProxylessNAS-mobile; the paper's Table 3). What we can
measure is every layer of those networks on the host. The transfer model says how a network's
per-unit host latencies ``h_1..h_n`` become its device latency::

    device_ms = scale · Σ h_i  +  per_unit_ms · n  +  offset_ms

with any subset of the three terms (``scale``, ``per_unit``, ``offset``). It is linear in the units,
so it also prices one unit (``scale · h + per_unit_ms``) — that is how LUT entries are estimated —
and the per-network ``offset_ms`` becomes the LUT's calibration offset.

Why so few parameters: four targets cannot support more than two or three, and the fit must be
judged on networks it did not see. We fit nonnegative least squares on *relative* residuals
(``scipy.optimize.nnls`` on rows divided by the target, so a 61 ms and a 105 ms network count
alike; a negative cost has no physical meaning) and report the leave-one-out error: fit on three
networks, predict the fourth. With four points the LOO error is the only honest evidence, and it
says nothing about networks unlike these four.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from latency.errors import LatencyUsageError

TERMS = ("scale", "per_unit", "offset")
#: the shipped form: one scale for every unit plus one constant per network (see docs)
DEFAULT_TERMS = ("scale", "offset")
#: what the benchmark compares (each has at most two parameters)
CANDIDATE_FORMS = (("scale",), ("scale", "per_unit"), ("scale", "offset"))


class TransferError(LatencyUsageError):
    """Too few or unusable networks to fit a transfer model (exit 2)."""


@dataclass(frozen=True)
class NetworkSample:
    """One network: its device latency (the target) and the host latency of each of its units."""

    name: str
    target_ms: float
    unit_ms: tuple[float, ...]

    @property
    def host_ms(self) -> float:
        return float(sum(self.unit_ms))

    @property
    def n_units(self) -> int:
        return len(self.unit_ms)


def parse_terms(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"scale,offset"`` -> ``("scale", "offset")`` in canonical order; unknown terms raise."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    parts = [p.strip() for p in parts if p.strip()]
    bad = [p for p in parts if p not in TERMS]
    if bad or not parts:
        raise TransferError(
            f"unknown transfer term(s) {', '.join(bad) or '(none given)'}; "
            f"choose from {', '.join(TERMS)} (e.g. scale,offset)"
        )
    return tuple(t for t in TERMS if t in parts)


def _row(sample: NetworkSample, terms: Sequence[str]) -> list[float]:
    values = {"scale": sample.host_ms, "per_unit": float(sample.n_units), "offset": 1.0}
    return [values[t] for t in terms]


@dataclass(frozen=True)
class TransferModel:
    """Fitted coefficients; missing terms are zero."""

    terms: tuple[str, ...]
    coef: dict[str, float]
    fitted_on: tuple[str, ...] = ()

    @property
    def scale(self) -> float:
        return self.coef.get("scale", 0.0)

    @property
    def per_unit_ms(self) -> float:
        return self.coef.get("per_unit", 0.0)

    @property
    def offset_ms(self) -> float:
        return self.coef.get("offset", 0.0)

    def unit_ms(self, host_ms):
        """Device estimate of one unit (works on numpy arrays)."""
        return self.scale * np.asarray(host_ms, dtype=float) + self.per_unit_ms

    def network_ms(self, unit_host_ms: Sequence[float]) -> float:
        return float(np.sum(self.unit_ms(list(unit_host_ms)))) + self.offset_ms

    def predict(self, sample: NetworkSample) -> float:
        return self.network_ms(sample.unit_ms)

    def formula(self) -> str:
        parts = []
        if "scale" in self.terms:
            parts.append(f"{self.scale:.4g} · Σ host_ms")
        if "per_unit" in self.terms:
            parts.append(f"{self.per_unit_ms:.4g} ms · units")
        if "offset" in self.terms:
            parts.append(f"{self.offset_ms:.4g} ms")
        return "device_ms = " + " + ".join(parts)

    @classmethod
    def from_dict(cls, data: dict) -> TransferModel:
        """The model written by :meth:`to_dict` (e.g. a shipped LUT's ``provenance.transfer``)."""
        try:
            terms = parse_terms(data["terms"])
            coef = {
                "scale": float(data["scale"]),
                "per_unit": float(data["per_unit_ms"]),
                "offset": float(data["offset_ms"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise TransferError(
                f"not a transfer model (needs terms, scale, per_unit_ms, offset_ms): {exc}"
            ) from None
        return cls(terms, coef, tuple(data.get("fitted_on", ())))

    def to_dict(self) -> dict:
        return {
            "terms": list(self.terms),
            "scale": self.scale,
            "per_unit_ms": self.per_unit_ms,
            "offset_ms": self.offset_ms,
            "fitted_on": list(self.fitted_on),
            "formula": self.formula(),
        }


def nnls_relative(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Nonnegative coefficients minimising the *relative* residuals ``(rows @ c - y) / y``: a
    61 ms and a 105 ms network count alike, and no cost comes out negative."""
    coef, _ = nnls(rows / targets[:, None], np.ones(len(targets)))
    return coef


def fit_transfer(
    samples: Sequence[NetworkSample], terms: Sequence[str] = DEFAULT_TERMS
) -> TransferModel:
    """Nonnegative least squares of relative errors over ``samples``."""
    terms = parse_terms(terms)
    if len(samples) < len(terms):
        raise TransferError(
            f"{len(samples)} network(s) cannot determine {len(terms)} transfer parameters "
            f"({', '.join(terms)}); give more networks or fewer terms"
        )
    for s in samples:
        if not s.target_ms > 0 or not s.unit_ms or not s.host_ms > 0:
            raise TransferError(
                f"network {s.name}: needs a positive target and measured units "
                f"(target {s.target_ms}, {s.n_units} units, host {s.host_ms} ms)"
            )
    y = np.array([s.target_ms for s in samples])
    coef = nnls_relative(np.array([_row(s, terms) for s in samples]), y)
    return TransferModel(
        terms, dict(zip(terms, map(float, coef), strict=True)), tuple(s.name for s in samples)
    )


@dataclass(frozen=True)
class Prediction:
    name: str
    target_ms: float
    predicted_ms: float

    @property
    def rel_err(self) -> float:
        return (self.predicted_ms - self.target_ms) / self.target_ms


@dataclass
class TransferFit:
    """The model fitted on all samples, its in-sample residuals and its leave-one-out error."""

    model: TransferModel
    fitted: list[Prediction]
    loo: list[Prediction] = field(default_factory=list)

    @property
    def loo_mape(self) -> float:
        """Mean |relative error| (percent) of the leave-one-out predictions; NaN without LOO."""
        if not self.loo:
            return float("nan")
        return float(np.mean([abs(p.rel_err) for p in self.loo]) * 100)

    @property
    def fit_mape(self) -> float:
        return float(np.mean([abs(p.rel_err) for p in self.fitted]) * 100)

    def to_dict(self) -> dict:
        def rows(preds):
            return {
                p.name: {
                    "target_ms": p.target_ms,
                    "predicted_ms": round(p.predicted_ms, 3),
                    "error_pct": round(p.rel_err * 100, 2),
                }
                for p in preds
            }

        return {
            **self.model.to_dict(),
            "fit_mape_pct": round(self.fit_mape, 3),
            "loo_mape_pct": None if not self.loo else round(self.loo_mape, 3),
            "fit": rows(self.fitted),
            "leave_one_out": rows(self.loo),
        }


def evaluate_transfer(
    samples: Sequence[NetworkSample], terms: Sequence[str] = DEFAULT_TERMS
) -> TransferFit:
    """Fit on all samples, and leave-one-out when each held-in set can determine the terms."""
    terms = parse_terms(terms)
    model = fit_transfer(samples, terms)
    fitted = [Prediction(s.name, s.target_ms, model.predict(s)) for s in samples]
    loo = []
    if len(samples) - 1 >= len(terms):
        for i, held in enumerate(samples):
            rest = [s for j, s in enumerate(samples) if j != i]
            m = fit_transfer(rest, terms)
            loo.append(Prediction(held.name, held.target_ms, m.predict(held)))
    return TransferFit(model, fitted, loo)
