"""What the main job returns when CES ranks by one-shot accuracy or by log-likelihood, seed by seed.

For each seed in ``--seeds`` and each score in ``--scores``, runs the README's main job
(``padnas search --lut device_profiles/pixel3.json --preset quick --latency-window 40:100``) with
``--rank-by`` set, into ``--runs/{score}-seed{S}`` (resumed, so a finished run is only read), and
prints per run:

- the search's wall seconds (the run's own bookkeeping: training, searches, ceiling; no set-up);
- how many models it returned;
- its noise ceiling: Kendall tau between the two seeds' supernets on the first search's
  architectures, in the score it ranked by and in accuracy;
- the A → last step in the score it ranked by, against the ceiling's band (within the noise or not);

then per score the median of each figure over the seeds, side by side. The ceiling is measured on
the architectures the search itself evaluated, so a search that exploits its supernet's noise
lowers its own ceiling: the figures compare whole searches, not scores on a fixed set (for that:
``benchmarks/oneshot_eval_size.py``). Run on an otherwise idle machine; seconds are compared.

    python benchmarks/rank_by.py [--seeds 3 4 5] [--scores accuracy log-likelihood]
        [--runs runs/bench-rank-by]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB = [
    "search",
    "--lut",
    "device_profiles/pixel3.json",
    "--preset",
    "quick",
    "--latency-window",
    "40:100",
    "--quiet",
]


def run(out: Path, score: str, seed: int) -> dict:
    """The main job with ``--rank-by score --seed seed`` in ``out`` (resumed); its figures."""
    cmd = [sys.executable, "-m", "padnas.cli", *MAIN_JOB, "--rank-by", score, "--seed", str(seed)]
    cmd += ["--out", str(out)] + (["--resume"] if (out / "config.json").exists() else [])
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    state = json.loads((out / "state.json").read_text())["done"]
    # the twin trains beside the first supernet: its seconds overlap theirs
    seconds = sum(float(v.get("seconds") or 0) for k, v in state.items() if k != "train-1-twin")
    block = summary["noise_ceiling"]
    last = block["steps"][-1] if block["steps"] else None
    unit = None if last is None else ("nats" if "nats" in last else "points")
    return {
        "score": score,
        "seed": seed,
        "seconds": seconds,
        "models": len(summary["final"]),
        "tau": block["tau"],
        "accuracy_tau": block["accuracy_tau"],
        "step": None if last is None else f"{last[unit]:+.3f} ± {last[f'band_{unit}']:.3f} {unit}",
        "beyond_noise": None if last is None else not last["within_noise"],
    }


def _tau(value: float | None) -> str:
    return "undef" if value is None else f"{value:+.2f}"


def _spread(values: list) -> str:
    """Median and std (seed to seed) of the defined values."""
    got = [v for v in values if v is not None]
    return f"{np.median(got):+.2f} ± {np.std(got):.2f}" if got else "undef"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument(
        "--scores",
        nargs="+",
        default=["accuracy", "log-likelihood"],
        choices=["accuracy", "log-likelihood"],
    )
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-rank-by"))
    args = ap.parse_args()
    rows = []
    print(
        f"{'score':<15} {'seed':>4} {'seconds':>8} {'models':>6} {'tau':>6} {'acc tau':>8}  "
        "A -> last"
    )
    for score in args.scores:
        for seed in args.seeds:
            r = run(args.runs / f"{score}-seed{seed}", score, seed)
            rows.append(r)
            print(
                f"{score:<15} {seed:>4} {r['seconds']:>8.0f} {r['models']:>6} {_tau(r['tau']):>6} "
                f"{_tau(r['accuracy_tau']):>8}  {r['step'] or '-'}"
                + (
                    ""
                    if r["beyond_noise"] is None
                    else " beyond"
                    if r["beyond_noise"]
                    else " within"
                ),
                flush=True,
            )
    print(f"\nmedians over seeds {args.seeds}:")
    print(
        f"{'score':<15} {'seconds':>8} {'models':>6} {'tau (median ± std)':>19} "
        f"{'acc tau':>13} {'A->last beyond noise':>21}"
    )
    for score in args.scores:
        sel = [r for r in rows if r["score"] == score]
        beyond = sum(bool(r["beyond_noise"]) for r in sel)
        print(
            f"{score:<15} {np.median([r['seconds'] for r in sel]):>8.0f} "
            f"{np.median([r['models'] for r in sel]):>6.0f} "
            f"{_spread([r['tau'] for r in sel]):>19} "
            f"{_spread([r['accuracy_tau'] for r in sel]):>13} {beyond:>19}/{len(sel)}"
        )
    (args.runs / "rank_by.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
