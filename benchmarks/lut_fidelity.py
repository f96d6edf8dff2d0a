"""How well the host LUT predicts whole networks, raw and calibrated.

Profiles the space on the host if the store is incomplete (resumable, cached), builds the LUT,
then measures N random architectures end to end (each exported whole, checked, timed on the same
pinned core) and compares with the LUT sums. The calibration is fitted on --fit-frac of them and
all figures marked held-out are on the rest.

    python benchmarks/lut_fidelity.py                 # large@224, 60 archs, calibrate on 30
    PADNAS_CACHE=/tmp/c python benchmarks/lut_fidelity.py --n 40 --fit-frac 0.25

Target (issue 3): calibrated LUT within ±5% for >= 95% of >= 30 held-out architectures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from padnas.space import SPACE_NAMES, get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="large", choices=SPACE_NAMES)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--fit-frac", type=float, default=0.5)
    ap.add_argument("--report", default=None, help="write per-architecture results (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="passes over all networks")
    a = ap.parse_args()

    from padnas.core.cli import quiet_tensorflow

    quiet_tensorflow()
    from latency.devices import load_profile, make_backend
    from latency.profiling.profile import build_lut, profile_space
    from latency.profiling.store import MeasurementStore
    from latency.profiling.validation import validate_lut

    space = get_space(a.space)
    prof = load_profile("host")
    store = MeasurementStore(prof["name"])
    t0 = time.perf_counter()
    with make_backend(prof) as backend:
        rep = profile_space(
            space, backend, store, resolution=a.resolution, progress=sys.stderr.isatty()
        )
        print(rep.summary())
        lut = build_lut(space, store, backend.describe(), resolution=a.resolution)
        res = validate_lut(
            lut,
            space,
            backend,
            n=a.n,
            fit_frac=a.fit_frac,
            seed=a.seed,
            rounds=a.rounds,
            progress=sys.stderr.isatty(),
        )
    c = res.calibration
    if a.report:
        from padnas.core import atomic_write_json

        atomic_write_json(
            a.report,
            {
                **res.summary(),
                "calibration": c,
                "fit_idx": res.fit_idx.tolist(),
                "archs": res.records,
            },
        )
    print(f"{'arch':<100} {'lut_ms':>8} {'meas_ms':>8} {'cal_err%':>8}")
    cal = c["scale"] * res.raw_ms + c["offset_ms"]
    for i in res.test_idx:
        err = (cal[i] - res.measured_ms[i]) / res.measured_ms[i] * 100
        print(f"{res.archs[i]:<100} {res.raw_ms[i]:8.3f} {res.measured_ms[i]:8.3f} {err:+8.2f}")
    print(f"raw, all {a.n}:          {res.raw_all.line()}")
    print(f"raw, held-out:        {res.raw_test.line()}")
    print(f"calibrated, held-out: {res.calibrated_test.line()}")
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f}")
    figures = {
        "archs_measured": a.n,
        "archs_held_out": len(res.test_idx),
        "calibration_scale": c["scale"],
        "calibration_offset_ms": c["offset_ms"],
        "measured_ms_median": float(np.median(res.measured_ms)),
        "raw_mape_pct": res.raw_test.mape,
        "raw_max_err_pct": res.raw_test.max_err,
        "raw_bias_pct": res.raw_test.bias,
        "raw_within5_share": res.raw_test.within5,
        "raw_within10_share": res.raw_test.within10,
        "raw_kendall_tau": res.raw_test.kendall_tau,
        "calibrated_mape_pct": res.calibrated_test.mape,
        "calibrated_max_err_pct": res.calibrated_test.max_err,
        "calibrated_within5_share": res.calibrated_test.within5,
        "calibrated_within10_share": res.calibrated_test.within10,
        "calibrated_kendall_tau": res.calibrated_test.kendall_tau,
    }
    for k, v in figures.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
