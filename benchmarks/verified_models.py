"""Predicted against measured latency of the models a search returns (issue 24).

Profiles the host for the space (``padnas-latency profile --device host``; only what its store
lacks is measured, and the time it took is printed), then runs ``padnas search --lut host`` at
each seed, one after the other (each search ends by measuring its final models whole on this
host with the guarded loop, which needs a quiet machine). Prints every model's predicted
(LUT-sum) and measured whole-network latency, their ratio, whether it stayed in the window, and
the ratio's spread over models and seeds.

    python benchmarks/verified_models.py                       # basic space, seeds 0 1 2
    python benchmarks/verified_models.py --seeds 0 --runs /tmp/verify

A search that finished is read back; one that was interrupted continues (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str]) -> float:
    """Run a command (its output passes through); its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return time.perf_counter() - t0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="basic")
    ap.add_argument("--device", default="host", help="a device profile without a shipped LUT")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs", default="runs/verify")
    ap.add_argument("--preset", default="quick")
    args = ap.parse_args()

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    profile_s = run(
        [str(BIN / "padnas-latency"), "profile", "--device", args.device, "--space", args.space]
    )
    print(f"profile --device {args.device} --space {args.space}: {profile_s:.0f} s (cached: less)")
    rows, per_seed = [], {}
    for seed in args.seeds:
        out = Path(args.runs) / f"{args.space}-{args.device}-seed{seed}"
        cmd = [str(BIN / "padnas"), "search", "--lut", args.device, "--space", args.space]
        cmd += ["--preset", args.preset, "--seed", str(seed), "--out", str(out), "-q"]
        if (out / "config.json").is_file():
            cmd.append("--resume")
        wall = run(cmd)
        final = json.loads((out / "final.json").read_text())
        block = final["verification"]
        if block is None or block["status"] != "measured":
            sys.exit(f"seed {seed}: models not measured: {block and block.get('reason')}")
        print(f"seed {seed}: search {wall:.0f} s, window {final['window_ms']}")
        per_seed[seed] = [m["predicted_over_measured"] for m in final["models"]]
        for m in final["models"]:
            rows.append((seed, m))
    print()
    print("seed  model  predicted ms  measured ms (p10-p90)    pred/meas  in window")
    for seed, m in rows:
        band = f"({m['measured_p10_ms']:.2f}-{m['measured_p90_ms']:.2f})"
        print(
            f"{seed:<5} {m['label']:<6} {m['latency_ms']:<13.2f} {m['measured_ms']:<7.2f} "
            f"{band:<17} {m['predicted_over_measured']:<10.3f} {m['measured_in_window']}"
        )
    ratios = [r for rs in per_seed.values() for r in rs]
    medians = [statistics.median(rs) for rs in per_seed.values()]
    print()
    print(
        f"pred/meas over {len(ratios)} models: median {statistics.median(ratios):.3f}, "
        f"range {min(ratios):.3f}-{max(ratios):.3f}"
    )
    spread = statistics.stdev(medians) if len(medians) > 1 else float("nan")
    print(
        "per-seed medians: "
        + ", ".join(f"seed {s} {statistics.median(rs):.3f}" for s, rs in per_seed.items())
        + f"; std across seeds {spread:.3f}"
    )


if __name__ == "__main__":
    main()
