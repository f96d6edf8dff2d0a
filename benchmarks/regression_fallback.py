"""The regression fallback on real host measurements: k-fold MAPE, half/half, extrapolation.

Uses the host store of the space (profiling it first if incomplete: resumable and cached), then

* k-fold MAPE (5 folds, 3 shuffles) of the fallback and, side by side, of its linear cost model
  alone;
* fit on a random half of the variants, error on the other half (5 random halves);
* extrapolation: measure --other-n random variants at --other-resolution (never in the fit),
  predict them from the model fitted on every entry at the profiled resolution.

    python benchmarks/regression_fallback.py
    python benchmarks/regression_fallback.py --space basic --other-resolution 192

Target (issue 3): k-fold MAPE <= 10%.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from padnas.space import SPACE_NAMES, get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="large", choices=SPACE_NAMES)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--other-resolution", type=int, default=160)
    ap.add_argument("--other-n", type=int, default=24, help="0 skips the extrapolation check")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from padnas.core.cli import quiet_tensorflow

    quiet_tensorflow()
    from latency.devices import load_profile, make_backend
    from latency.lut.regression import LatencyRegressor, feature_matrix, kfold_mape, mape
    from latency.profiling.profile import profile_space
    from latency.profiling.store import MeasurementStore
    from latency.variants import space_variants

    space = get_space(a.space)
    prof = load_profile("host")
    store = MeasurementStore(prof["name"])
    backend = make_backend(prof)
    print(profile_space(space, backend, store, resolution=a.resolution).summary())
    variants = space_variants(space, a.resolution)
    recs = store.records()
    y = np.array([recs[v.key]["ms"] for v in variants])
    X = feature_matrix(variants)

    kf = [kfold_mape(variants, y, k=5, seed=s) for s in range(3)]
    kf_lin = [
        kfold_mape(variants, y, k=5, seed=s, estimator=LatencyRegressor(correction=False))
        for s in range(3)
    ]
    rng = np.random.default_rng(a.seed)
    halves = []
    for _ in range(5):
        idx = rng.permutation(len(y))
        fit, test = idx[: len(y) // 2], idx[len(y) // 2 :]
        est = LatencyRegressor().fit(X[fit], y[fit])
        halves.append(mape(y[test], est.predict(X[test])))

    figures = {
        "entries": len(y),
        "kfold_mape_pct": float(np.median(kf)),
        "kfold_mape_pct_worst_shuffle": float(np.max(kf)),
        "kfold_mape_linear_only_pct": float(np.median(kf_lin)),
        "linear_over_full_ratio": float(np.median(kf_lin) / np.median(kf)),
        "half_half_mape_pct": float(np.median(halves)),
        "half_half_mape_pct_worst": float(np.max(halves)),
    }
    if a.other_n > 0:
        others = space_variants(space, a.other_resolution)
        pick = [others[i] for i in rng.choice(len(others), a.other_n, replace=False)]
        from latency.export import iter_export

        meas = {}
        for res in iter_export(pick, workers=1):
            if res.error:
                raise SystemExit(f"export failed: {res.key}: {res.error}")
            if res.key in recs:
                meas[res.key] = recs[res.key]["ms"]
            else:
                stats = backend.measure(res.path)
                store.add(res.key, stats)
                meas[res.key] = stats.ms
        full = LatencyRegressor().fit(X, y)
        y_other = np.array([meas[v.key] for v in pick])
        pred = full.predict(feature_matrix(pick))
        figures[f"extrapolation_r{a.other_resolution}_n"] = len(pick)
        figures[f"extrapolation_r{a.other_resolution}_mape_pct"] = mape(y_other, pred)
        lin = LatencyRegressor(correction=False).fit(X, y).predict(feature_matrix(pick))
        figures[f"extrapolation_r{a.other_resolution}_linear_only_mape_pct"] = mape(y_other, lin)
    backend.close()
    print(f"load average {os.getloadavg()[0]:.2f}")
    for k, v in figures.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
