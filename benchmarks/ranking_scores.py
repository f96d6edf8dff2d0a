"""Which one-shot score ranks stand-alone accuracy better: accuracy or log-likelihood (Table 8's
architectures, rescored).

Reads a finished ``benchmarks/ranking.py`` run (``RUNS/ranking.json`` and its search run
directories), and for every setting (M, seed) scores its picked architectures once more on the
supernet their final search ranked them on (``stage-{M-1}/ckpt``) with ``padnas evaluate --json``
and the run's own seed (the search's BatchNorm recalibration draw, its validation split). It checks
that the one-shot accuracies come out as the search recorded them (the same supernet, images and
draw), then prints Kendall's tau (scipy) against the stand-alone accuracies ranking.py trained,
per setting, for one-shot accuracy and for the mean log-likelihood of the true class from the same
pass, and per M their mean ± std over the seeds and the paired difference (log-likelihood minus
accuracy) with its std. No training; about 10 s per setting.

    python benchmarks/ranking_scores.py [--runs runs/ev4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from evidence_runs import METHODS
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]


def rescore(run: Path, stages: int, seed: int, archs: list[str]) -> list[dict]:
    """``padnas evaluate --json`` of ``archs`` on the run's final supernet with its seed."""
    cmd = [sys.executable, "-m", "padnas.cli", "evaluate", "--json", "--seed", str(seed)]
    cmd += ["--supernet", str(run / f"stage-{stages - 1}" / "ckpt")]
    for arch in archs:
        cmd += ["--arch", arch]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["results"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs/ev4"))
    ap.add_argument("--space", default="basic")
    ap.add_argument("--window", default="40:100")
    args = ap.parse_args()
    rows = json.loads((args.runs / "ranking.json").read_text())
    tag = f"{args.space}-w{args.window.replace(':', '-')}"
    print(f"{'setting':<22} {'tau accuracy':>12} {'tau log-lik':>11} {'acc as recorded':>16}")
    found = []
    for row in rows:
        run = args.runs / f"{tag}-M{row['stages']}-seed{row['seed']}"
        got = rescore(run, row["stages"], row["seed"], row["archs"])
        acc = [r["accuracy"] for r in got]
        ll = [r["log_likelihood"] for r in got]
        same = np.allclose(acc, row["one_shot"], atol=1e-9)
        tau_acc = kendalltau(acc, row["standalone"]).statistic
        tau_ll = kendalltau(ll, row["standalone"]).statistic
        found.append({"stages": row["stages"], "seed": row["seed"], "acc": tau_acc, "ll": tau_ll})
        print(
            f"{row['label']:<22} {tau_acc:>+12.2f} {tau_ll:>+11.2f} {'yes' if same else 'NO':>16}",
            flush=True,
        )
    print(
        f"\n{'method':<12} {'M':>2} {'tau accuracy':>14} {'tau log-lik':>14} {'log-lik - acc':>16}"
    )
    for m in sorted({f["stages"] for f in found}):
        sel = [f for f in found if f["stages"] == m]
        a, b = np.array([f["acc"] for f in sel]), np.array([f["ll"] for f in sel])
        d = b - a
        print(
            f"{METHODS.get(m, m):<12} {m:>2} {a.mean():>+8.2f} ± {a.std():.2f} "
            f"{b.mean():>+8.2f} ± {b.std():.2f} {d.mean():>+10.2f} ± {d.std():.2f}"
        )
    a = np.array([f["acc"] for f in found])
    b = np.array([f["ll"] for f in found])
    print(
        f"{'all':<15} {a.mean():>+8.2f} ± {a.std():.2f} {b.mean():>+8.2f} ± {b.std():.2f} "
        f"{(b - a).mean():>+10.2f} ± {(b - a).std():.2f}  ({len(found)} settings)"
    )


if __name__ == "__main__":
    main()
