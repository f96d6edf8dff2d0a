"""How noisy is one-shot accuracy? The final models of a run, re-evaluated with other
recalibration draws.

One-shot accuracy depends on which training images recalibrate BatchNorm (drawn with a seed). This
loads the supernet the final search of RUN_DIR used, evaluates each final model (A, B, C, ...)
with ``--recal-seeds`` different recalibration draws (the search itself used the run's seed), and
prints per model the mean and std over draws, then the accuracy step from the fastest to the
slowest model beside that noise: a trade-off the main job reports is real only if the step is
well above it. Beside it stands the run's noise ceiling when it measured one (a second supernet of
another seed: seed noise, which recalibration draws do not show).

Usage: python benchmarks/oneshot_noise.py runs/quick [--recal-seeds 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from padnas.data.datasets import load_data
from padnas.search.ceiling import describe
from padnas.search.oneshot import OneShotEvaluator
from padnas.train.checkpoint import load_supernet
from padnas.train.config import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--recal-seeds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    config = json.loads((args.run_dir / "config.json").read_text())
    final = json.loads((args.run_dir / "final.json").read_text())
    last_trained = config["stages"] - 1
    net, meta = load_supernet(args.run_dir / f"stage-{last_trained}" / "ckpt" / "checkpoint.pt")
    cfg = TrainConfig.from_dict(meta["config"])
    data = load_data(meta["data"], net.proxy.resolution, meta["data_seed"], cfg.train_per_class)
    models = final["models"]
    accs = np.zeros((len(models), args.recal_seeds))
    for s in range(args.recal_seeds):
        ev = OneShotEvaluator.from_config(net, data, cfg, seed=1000 + s)
        accs[:, s] = ev.accuracy([m["arch"] for m in models])
    noise = accs.std(axis=1, ddof=1)
    print(f"{args.run_dir}: {len(models)} final models, {args.recal_seeds} recalibration draws")
    print(f"{'model':<6} {'latency ms':>10} {'search acc':>10} {'mean':>8} {'std':>7}")
    for m, row, sd in zip(models, accs, noise, strict=True):
        print(
            f"{m['label']:<6} {m['latency_ms']:10.2f} {m['one_shot_accuracy']:10.4f} "
            f"{row.mean():8.4f} {sd:7.4f}"
        )
    if len(models) > 1:
        step = accs[-1] - accs[0]  # same draw for both: the paired difference
        print(
            f"slowest - fastest: {100 * step.mean():+.2f} pts (std over draws "
            f"{100 * step.std(ddof=1):.2f}; per-model noise {100 * noise.mean():.2f} pts); "
            f"positive in {int((step > 0).sum())}/{len(step)} draws"
        )
    summary = json.loads((args.run_dir / "summary.json").read_text())
    block = summary.get("noise_ceiling")
    print(
        "the run's noise ceiling (seed noise): "
        + ("not measured" if block is None else describe(block))
    )
    print(f"wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
