"""Cold and warm LUT build on the host: `padnas-latency profile` + `export-lut`, timed.

Runs the real CLI in a fresh cache (export, numerical check and measurement of every variant of
the space), reports the export / measurement split, then re-runs the same command with
everything cached and times the whole process (interpreter start-up included), and finally
times a re-measurement of every block from cached .tflite files (what --force costs).

    python benchmarks/lut_build.py                  # large space at 224 on the host
    python benchmarks/lut_build.py --space basic --keep /tmp/padnas-cache
    python benchmarks/lut_build.py --space basic --precision int8   # full-integer variants

Targets (issue 3): cold build <= 600 s, warm re-run <= 15 s. The machine's load average is
printed too: timings taken while other jobs run are not final.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from padnas.space import SPACE_NAMES

CLI = [sys.executable, "-m", "latency.cli"]


def run(args: list[str], env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(CLI + args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="large", choices=SPACE_NAMES)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--device", default="host")
    ap.add_argument("--keep", type=Path, default=None, help="use/keep this cache folder")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    a = ap.parse_args()

    tmp = None
    if a.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="padnas-lutbuild-")
        cache = Path(tmp.name)
    else:
        cache = a.keep
        if cache.exists() and any(cache.iterdir()):
            sys.exit(f"{cache} is not empty: a cold build needs an empty cache folder")
    env = {**os.environ, "PADNAS_CACHE": str(cache)}
    base = ["--device", a.device, "--space", a.space, "--resolution", str(a.resolution)]
    base += ["--precision", a.precision]
    report = cache / "cold-report.json"
    lut = cache / "lut.json"
    load0 = os.getloadavg()[0]

    cold_wall, out = run(["profile", *base, "-q", "--report", str(report)], env)
    print(out.strip())
    rep = json.loads(report.read_text())
    lut_wall, out = run(["export-lut", *base, "-o", str(lut)], env)
    print(out.strip())
    load1 = os.getloadavg()[0]

    warm_wall, out = run(["profile", *base, "-q"], env)
    print(out.strip())
    warm_lut_wall, _ = run(["export-lut", *base, "-o", str(lut)], env)

    # measurement only: every .tflite cached, the store cleared (what --force costs)
    suffix = "" if a.precision == "fp32" else f".{a.precision}"
    store = cache / "measurements" / f"{a.device}{suffix}.jsonl"
    store.rename(store.with_suffix(".cold"))
    remeasure_wall, _ = run(["profile", *base, "-q"], env)

    print(f"precision: {a.precision}")
    # a widened tolerance is a measurement condition: say it beside the times
    print(f"guard_overrides: {os.environ.get('PADNAS_GUARD') or 'none (the profile defaults)'}")
    print(f"variants: {rep['total']}")
    print(f"load_avg_1min_before: {load0:.2f}")
    print(f"load_avg_1min_after_cold: {load1:.2f}")
    print(f"cold_build_s: {cold_wall:.1f}")
    print(f"cold_export_lut_s: {lut_wall:.1f}")
    print(f"cold_export_worker_s: {rep['export_s']:.1f}")
    print(f"cold_export_per_block_s: {rep['export_s'] / max(1, rep['exported']):.2f}")
    print(f"cold_measure_s: {rep['measure_s']:.1f}")
    print(f"cold_measure_per_block_s: {rep['measure_s'] / max(1, rep['measured']):.2f}")
    if rep.get("export_wall_s"):  # converted first on every core, then timed
        print(f"cold_export_phase_wall_s: {rep['export_wall_s']:.1f}")
    else:  # conversion overlapped with timing (--overlap)
        both = (rep["export_s"] + rep["measure_s"]) / rep["wall_s"] if rep["wall_s"] else 0
        print(f"cold_overlap_ratio: {both:.2f}")
    print(f"remeasure_all_cached_tflite_s: {remeasure_wall:.1f}")
    print(f"warm_rerun_s: {warm_wall:.2f}")
    print(f"warm_export_lut_s: {warm_lut_wall:.2f}")
    print(f"cold_vs_600s_target: {cold_wall / 600:.2f}")
    print(f"warm_vs_15s_target: {warm_wall / 15:.3f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
