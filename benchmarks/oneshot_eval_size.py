"""Where the noise of a one-shot ranking comes from: the evaluation images or the supernet's seed.

Two supernets that differ only by their seed (e.g. the pair ``proxy_candidates.py`` trained) score
the same ``--archs`` random architectures (``--eval-seed``, as ``padnas evaluate --random N
--seed S``) on held-out images no run of the proxy size trains or validates on
(``DataBundle.holdout``, the same images for both). For each evaluation size n, ``--draws``
disjoint draws of n images are scored on both supernets, and it prints Kendall's tau (scipy),
mean ± std over the draws,

- between the two supernets on the same n images (the seed-to-seed ceiling at that size), and
- between two disjoint draws of n images on the first supernet (what the images alone allow: no
  seed changes),

for top-1 accuracy and for the mean log-likelihood of the true class (a score with less sampling
noise per image). The first row repeats what ``padnas evaluate`` does by default: each supernet on
its own validation split (1,000 images, carved with the run's seed). BatchNorm is recalibrated on
each run's own training images with the same draw, as ``padnas evaluate --seed`` does.

    python benchmarks/oneshot_eval_size.py runs/bench-proxy/wu2 --sizes 1000 5000 20000 --draws 4
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from padnas.data.datasets import load_data
from padnas.search.oneshot import OneShotEvaluator
from padnas.train.checkpoint import load_supernet
from padnas.train.config import TrainConfig


def parts(split, k: int):
    """``k`` disjoint, class-balanced parts of a held-out split (every k-th member per class)."""
    labels = split.labels
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return [
        type(split)(split.images[rank % k == i], labels[rank % k == i], split.mean, split.std)
        for i in range(k)
    ]


def tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(kendalltau(x, y)[0])


def line(tag: str, taus: list[float]) -> str:
    sd = f" ± {np.std(taus, ddof=1):.3f}" if len(taus) > 1 else ""
    each = " ".join(f"{t:+.2f}" for t in taus)
    return f"  {tag:<44} tau {np.mean(taus):+.3f}{sd}  ({len(taus)} draws: {each})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pair", type=Path, help="folder holding seed0/ and seed1/ supernets")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--eval-seed", type=int, default=7)
    ap.add_argument("--draws", type=int, default=4, help="disjoint image draws per size")
    a = ap.parse_args()
    torch.set_num_threads(1)

    nets = [load_supernet(d) for d in sorted(a.pair.glob("seed*"))[:2]]
    space = nets[0][0].space
    rng = np.random.default_rng(a.eval_seed)
    archs = [space.sample(rng) for _ in range(a.archs)]
    # eval_images=0: the evaluator scores the split handed to it, not the preset's held-out images
    cfg = TrainConfig.from_dict(nets[0][1]["config"]).replace(eval_images=0)
    bundles = [
        load_data(m["data"], n.proxy.resolution, m.get("data_seed", 0), cfg.train_per_class)
        for n, m in nets
    ]
    # BatchNorm is recalibrated on each run's own training images with the same draw, as
    # `padnas evaluate --seed` does

    def score(net, bundle, val):
        ev = OneShotEvaluator.from_config(net, replace(bundle, val=val), cfg, seed=a.eval_seed)
        acc = ev.accuracy(archs)
        return acc, np.array([ev.log_likelihood(x) for x in archs])

    t0 = time.process_time()
    own = [score(n, b, b.val) for (n, _), b in zip(nets, bundles, strict=True)]
    print(f"{a.pair}: {a.archs} random architectures (seed {a.eval_seed})")
    print(line("own validation splits (1,000 each), accuracy", [tau(own[0][0], own[1][0])]))
    spare = bundles[0].spare_per_class * bundles[0].num_classes
    for n in a.sizes:
        k = max(2, min(a.draws, spare // n))
        draws = [parts(b.holdout(k * n), k) for b in bundles]
        s0 = [score(nets[0][0], bundles[0], v) for v in draws[0]]
        s1 = [score(nets[1][0], bundles[1], v) for v in draws[1]]
        for m, name in ((0, "accuracy"), (1, "log-likelihood")):
            seeds = [tau(x[m], y[m]) for x, y in zip(s0, s1, strict=True)]
            images = [tau(s0[i][m], s0[(i + 1) % k][m]) for i in range(k if k > 2 else 1)]
            print(line(f"n={n} seed 0 vs seed 1, {name}", seeds))
            print(line(f"n={n} two image draws, seed 0, {name}", images))
        print(f"  ({time.process_time() - t0:.0f} CPU-s so far)", flush=True)


if __name__ == "__main__":
    main()
