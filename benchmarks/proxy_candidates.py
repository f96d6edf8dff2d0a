"""Which proxy lets one-shot accuracy rank architectures: noise ceiling per CPU minute.

For each candidate (a set of ``padnas supernet train`` overrides on the quick preset), trains two
supernets that differ only by their seed (``--seeds``, default 0 and 1), side by side, one thread
each, evaluates the same ``--archs`` random architectures on both (``padnas evaluate --random N
--seed S``, same BN recalibration draw) and reports

- Kendall's tau (scipy) between the two supernets' one-shot accuracies: the noise ceiling of any
  ranking the supernet gives (the issue's figure: 0.20 for the quick preset);
- the noise of one one-shot accuracy: std of the per-architecture differences / sqrt(2);
- the spread of accuracy across architectures, and its ratio to that noise;
- CPU seconds of training and evaluation (user + system of the child processes), and tau per
  CPU minute.

Candidates are given as ``NAME:opt=value,opt=value`` with the options of ``padnas supernet
train`` (epochs, lr, resolution, width-mult, batch-size), e.g. ``res64:resolution=64``. The
supernets live under ``--out`` and are reused when already trained (the CLI resumes); pass
``--fresh`` to retrain. Run on an otherwise idle machine: CPU seconds are what is compared.

    python benchmarks/proxy_candidates.py base: res64:resolution=64 [--archs 40] [--eval-seed 7]
        [--holdout-images 20000]   # both seeds scored on the same held-out images
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
PADNAS = [sys.executable, "-m", "padnas.cli"]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def parse_candidate(text: str) -> tuple[str, list[str]]:
    name, _, opts = text.partition(":")
    args = []
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        args += [f"--{key}", value]
    return name, args


def train_pair(name, args, seeds, out: Path, space: str) -> tuple[list[Path], float, float]:
    dirs = [out / name / f"seed{s}" for s in seeds]
    train = [*PADNAS, "supernet", "train", "--space", space, "--threads", "1", *args]
    cmds = [[*train, "--seed", str(s), "--out", str(d)] for s, d in zip(seeds, dirs, strict=True)]
    cpu0, t0 = _cpu_s(), time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL) for c in cmds]
    for p, c in zip(procs, cmds, strict=True):
        if p.wait() != 0:
            raise SystemExit(f"{name}: training failed: {' '.join(c)}")
    return dirs, _cpu_s() - cpu0, time.perf_counter() - t0


def evaluate(ckpt: Path, archs: int, seed: int, holdout: int) -> dict[str, float]:
    cmd = [*PADNAS, "evaluate", "--supernet", str(ckpt), "--random", str(archs)]
    cmd += ["--seed", str(seed), "--json", "--threads", "1"]
    if holdout:  # the same held-out images for both seeds, instead of each run's own val split
        cmd += ["--split", "holdout", "--holdout-images", str(holdout)]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"evaluate {ckpt} failed: {res.stderr.strip()[-500:]}")
    doc = json.loads(res.stdout)
    return {r["arch"]: r["accuracy"] for r in doc["results"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", help="NAME:opt=value,... (see the module doc)")
    ap.add_argument("--space", default="basic")
    ap.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--eval-seed", type=int, default=7)
    ap.add_argument(
        "--holdout-images",
        type=int,
        default=0,
        help="score on this many held-out images (padnas evaluate --split holdout); 0 = each "
        "run's own 1,000-image validation split",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-proxy")
    ap.add_argument("--fresh", action="store_true", help="retrain what --out already holds")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()

    rows = []
    for text in a.candidates:
        name, args = parse_candidate(text)
        if a.fresh:
            shutil.rmtree(a.out / name, ignore_errors=True)
        dirs, train_cpu, train_wall = train_pair(name, args, a.seeds, a.out, a.space)
        cpu0 = _cpu_s()
        accs = [evaluate(d, a.archs, a.eval_seed, a.holdout_images) for d in dirs]
        eval_cpu = _cpu_s() - cpu0
        archs = sorted(accs[0])
        x = np.array([accs[0][k] for k in archs])
        y = np.array([accs[1][k] for k in archs])
        tau, p = kendalltau(x, y)
        noise = float(np.std(x - y, ddof=1) / np.sqrt(2))
        spread = float(np.std((x + y) / 2, ddof=1))
        cpu_min = (train_cpu + eval_cpu) / 60
        row = {
            "candidate": name,
            "overrides": " ".join(args) or "(quick preset)",
            "scored_on": f"holdout {a.holdout_images}" if a.holdout_images else "own val split",
            "tau": float(tau),
            "p": float(p),
            "noise_pts": noise * 100,
            "spread_pts": spread * 100,
            "mean_acc": float((x.mean() + y.mean()) / 2),
            "train_cpu_s": train_cpu,
            "train_wall_s": train_wall,
            "eval_cpu_s": eval_cpu,
            "tau_per_cpu_min": float(tau) / cpu_min,
        }
        rows.append(row)
        print(
            f"{name:<14} tau {tau:+.3f} (p {p:.2g})  one-shot noise ±{noise * 100:.2f} pts, "
            f"spread {spread * 100:.2f} pts ({spread / noise:.1f}x), "
            f"mean acc {row['mean_acc']:.3f}; "
            f"train {train_cpu:.0f} CPU-s ({train_wall:.0f} s wall), eval {eval_cpu:.0f} CPU-s; "
            f"tau per CPU-minute {row['tau_per_cpu_min']:.3f}  [{row['overrides']}; "
            f"{row['scored_on']}]",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
