"""Regression fallback: fills holes, predicts unmeasured resolutions, refits deterministically,
and refuses to fit on too few measurements. Calibration fit and error statistics."""

from __future__ import annotations

import numpy as np
import pytest

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.regression import LatencyRegressor, feature_matrix, fit_lut, kfold_mape, mape
from latency.lut.table import Lut, LutError
from latency.profiling.validation import error_stats, fit_calibration
from latency.variants import space_variants
from padnas.space import get_space


def _mock_lut(resolution: int = 224, keep=None) -> Lut:
    space = get_space("large")
    mock = MockBackend(load_profile("mock"))
    entries = {}
    for i, v in enumerate(space_variants(space, resolution)):
        if keep is None or keep(i):
            e = mock.measure_variant(v).to_dict()
            entries[v.key] = {k: e[k] for k in ("ms", "p10", "p90", "n", "source")}
    return Lut({"name": "mock"}, "large", space.family_signature, resolution, entries)


def test_fills_holes_from_half_the_variants():
    full = _mock_lut()
    half = _mock_lut(keep=lambda i: i % 2 == 0)
    reg = fit_lut(half)
    holes = [k for k in full.entries if k not in half.entries]
    pred = reg.predict_keys(holes)
    truth = np.array([full.ms(k) for k in holes])
    assert mape(truth, pred) < 10
    assert reg.n_train == len(half.entries) and reg.sources == ("mock",)
    assert 0 < reg.kfold_mape < 10
    # no model file: refitting from the same LUT gives the same predictions
    np.testing.assert_array_equal(fit_lut(half).predict_keys(holes), pred)


def test_predicts_a_resolution_never_measured():
    reg = fit_lut(_mock_lut(224))
    other = _mock_lut(160)
    keys = sorted(other.entries)
    truth = np.array([other.ms(k) for k in keys])
    assert mape(truth, reg.predict_keys(keys)) < 15


def test_too_few_measurements():
    few = _mock_lut(keep=lambda i: i < 5)
    with pytest.raises(LutError, match=r"only 5 measured entries.*at least 12"):
        fit_lut(few)
    assert fit_lut(few, min_measured=4).n_train == 5


def test_estimator_checks_its_input():
    vs = space_variants(get_space("basic"))
    X = feature_matrix(vs)
    with pytest.raises(ValueError, match="columns"):
        LatencyRegressor().fit(X[:, :5], np.ones(len(X)))
    with pytest.raises(ValueError, match="positive"):
        LatencyRegressor().fit(X, -np.ones(len(X)))
    with pytest.raises(ValueError, match="subsample"):
        LatencyRegressor(subsample=0).fit(X, np.ones(len(X)))
    y = np.array([v.features()["macs"] * 1e-6 + 0.05 for v in vs])
    assert kfold_mape(vs, y) < 5  # a purely linear cost is learnt almost exactly


def test_calibration_and_error_stats():
    rng = np.random.default_rng(0)
    raw = rng.uniform(8, 30, 20)
    meas = 1.12 * raw + 0.8
    cal = fit_calibration(raw, meas)
    assert cal["scale"] == pytest.approx(1.12) and cal["offset_ms"] == pytest.approx(0.8)
    st = error_stats([95.0, 104.0, 120.0, 100.0], [100.0, 100.0, 100.0, 100.0])
    assert st.mape == pytest.approx(7.25) and st.max_err == pytest.approx(20)
    assert st.within5 == 0.75 and st.within10 == 0.75 and st.bias == pytest.approx(4.75)
    with pytest.raises(LutError):
        fit_calibration([10.0], [11.0])
