"""Which proxy lets one-shot accuracy rank architectures: noise ceiling per CPU minute.

For each candidate (a set of ``padnas supernet train`` overrides on the quick preset), trains two
supernets that differ only by their seed (``--seeds``, default 0 and 1), side by side, one thread
each, evaluates the same ``--archs`` random architectures on both (``padnas evaluate --random N
--seed S``, same BN recalibration draw) and reports

- Kendall's tau (scipy) between the two supernets' one-shot log-likelihoods (the score the quick
  preset ranks by) and accuracies: the noise ceiling of any ranking the supernet gives (the
  issue's figure: 0.20 by accuracy for the quick preset of its day);
- the noise of one one-shot accuracy: std of the per-architecture differences / sqrt(2);
- the spread of accuracy across architectures, and its ratio to that noise;
- CPU seconds of training and evaluation (user + system of the child processes), and tau per
  CPU minute.

Candidates are given as ``NAME:opt=value,opt=value`` with the options of ``padnas supernet
train`` (epochs, lr, resolution, dropped-strides, width-mult, batch-size, sampler,
warmup-epochs), e.g. ``res64:resolution=64`` or ``drop2:dropped-strides=2``. The
supernets live under ``--out`` and are reused when already trained (the CLI resumes); pass
``--fresh`` to retrain. Run on an otherwise idle machine: CPU seconds are what is compared.

    python benchmarks/proxy_candidates.py base: res64:resolution=64 [--archs 40] [--eval-seed 7]
        [--holdout-images 20000]   # both seeds scored on these many held-out images instead
                                   # of the preset's search images (5,000 held-out)
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
    side_by_side(cmds, f"{name}: training")
    return dirs, _cpu_s() - cpu0, time.perf_counter() - t0


def side_by_side(cmds: list[list[str]], what: str) -> list[str]:
    """Run ``cmds`` at once (one per core) and return their stdouts; the first failure ends the
    benchmark with the end of its stderr."""
    procs = [
        subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in cmds
    ]
    outs = []
    for proc, cmd in zip(procs, cmds, strict=True):
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed: {' '.join(cmd)}: {stderr.strip()[-500:]}")
        outs.append(stdout)
    return outs


def evaluate(ckpts: list[Path], archs: int, seed: int, holdout: int) -> list[dict]:
    """Per checkpoint {score: {arch: value}} for accuracy and log_likelihood, on the search's
    images (the preset's held-out images, the same for both seeds) or ``holdout`` held-out
    images; the checkpoints are scored side by side, one thread each."""
    cmd = [*PADNAS, "evaluate", "--random", str(archs), "--seed", str(seed), "--json"]
    cmd += ["--threads", "1"]
    if holdout:
        cmd += ["--split", "holdout", "--holdout-images", str(holdout)]
    outs = side_by_side([[*cmd, "--supernet", str(c)] for c in ckpts], "evaluate")
    return [
        {
            s: {r["arch"]: r[s] for r in json.loads(o)["results"]}
            for s in ("accuracy", "log_likelihood")
        }
        for o in outs
    ]


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
        help="score on this many held-out images (padnas evaluate --split holdout); 0 = the "
        "images the preset's search scores on (padnas evaluate's default)",
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
        scores = evaluate(dirs, a.archs, a.eval_seed, a.holdout_images)
        eval_cpu = _cpu_s() - cpu0
        archs = sorted(scores[0]["accuracy"])
        ll = [np.array([sc["log_likelihood"][k] for k in archs]) for sc in scores]
        x, y = (np.array([sc["accuracy"][k] for k in archs]) for sc in scores)
        tau, p = kendalltau(x, y)
        ll_tau, ll_p = kendalltau(*ll)
        noise = float(np.std(x - y, ddof=1) / np.sqrt(2))
        spread = float(np.std((x + y) / 2, ddof=1))
        ll_noise = float(np.std(ll[0] - ll[1], ddof=1) / np.sqrt(2))
        ll_spread = float(np.std((ll[0] + ll[1]) / 2, ddof=1))
        cpu_min = (train_cpu + eval_cpu) / 60
        row = {
            "candidate": name,
            "overrides": " ".join(args) or "(quick preset)",
            "scored_on": f"holdout {a.holdout_images}" if a.holdout_images else "search images",
            "ll_tau": float(ll_tau),
            "ll_p": float(ll_p),
            "ll_noise": ll_noise,
            "ll_spread": ll_spread,
            "mean_ll": float((ll[0].mean() + ll[1].mean()) / 2),
            "tau": float(tau),
            "p": float(p),
            "noise_pts": noise * 100,
            "spread_pts": spread * 100,
            "mean_acc": float((x.mean() + y.mean()) / 2),
            "train_cpu_s": train_cpu,
            "train_wall_s": train_wall,
            "eval_cpu_s": eval_cpu,
            "ll_tau_per_cpu_min": float(ll_tau) / cpu_min,
        }
        rows.append(row)
        print(
            f"{name:<14} log-likelihood: tau {ll_tau:+.3f} (p {ll_p:.2g}), one-shot noise "
            f"±{ll_noise:.4f} nats, spread {ll_spread:.4f} ({ll_spread / ll_noise:.1f}x), "
            f"mean {row['mean_ll']:.3f}; accuracy: tau {tau:+.3f} (p {p:.2g}), noise "
            f"±{noise * 100:.2f} pts, spread {spread * 100:.2f} pts ({spread / noise:.1f}x), "
            f"mean {row['mean_acc']:.3f}; "
            f"train {train_cpu:.0f} CPU-s ({train_wall:.0f} s wall), eval {eval_cpu:.0f} CPU-s; "
            f"log-likelihood tau per CPU-minute {row['ll_tau_per_cpu_min']:.3f}  "
            f"[{row['overrides']}; "
            f"{row['scored_on']}]",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
