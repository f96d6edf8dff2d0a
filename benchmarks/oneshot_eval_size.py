"""Where the noise of a one-shot ranking comes from: the evaluation images or the supernet's seed.

Two supernets that differ only by their seed (e.g. the pair ``proxy_candidates.py`` trained) score
the same ``--archs`` random architectures (``--eval-seed``, as ``padnas evaluate --random N
--seed S``) on held-out images no run of the proxy size trains or validates on
(``DataBundle.holdout``), with the same BatchNorm recalibration images. For each evaluation size
n it prints Kendall's tau (scipy)

- between the two supernets on the same n images (the seed-to-seed ceiling at that size), and
- between two disjoint draws of n images on the first supernet (the ceiling the images alone
  allow: no seed changes),

for top-1 accuracy and for the mean log-likelihood of the true class (a score with less sampling
noise per image), beside the ratio of the architectures' spread to the noise of one score.
The first row repeats what ``padnas evaluate`` does by default: each supernet on its own
validation split (1,000 images, carved with the run's seed).

    python benchmarks/oneshot_eval_size.py runs/bench-proxy/wu2 --sizes 1000 5000 20000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau

from padnas.data.datasets import load_data
from padnas.search.oneshot import OneShotEvaluator
from padnas.train.checkpoint import load_supernet
from padnas.train.config import TrainConfig


class ScoringEvaluator(OneShotEvaluator):
    """One-shot accuracy, and the mean log-likelihood of the true class on the same pass."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.loglik: dict[str, float] = {}

    def _accuracy(self, arch) -> float:
        correct = total = 0
        ll = 0.0
        for x, y in self._val:
            out = self.supernet(x, arch)
            correct += int((out.argmax(1) == y).sum())
            ll -= float(F.cross_entropy(out.float(), y, reduction="sum"))
            total += len(y)
        self.loglik[str(arch)] = ll / total
        return correct / total


def halves(split, labels: np.ndarray):
    """Two disjoint, class-balanced halves of a held-out split (alternate members per class)."""
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return [
        type(split)(split.images[rank % 2 == k], labels[rank % 2 == k], split.mean, split.std)
        for k in (0, 1)
    ]


def line(tag: str, x: np.ndarray, y: np.ndarray) -> str:
    tau, p = kendalltau(x, y)
    noise = np.std(x - y, ddof=1) / np.sqrt(2)
    spread = np.std((x + y) / 2, ddof=1)
    return f"  {tag:<46} tau {tau:+.3f} (p {p:.2g})  spread/noise {spread / noise:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pair", type=Path, help="folder holding seed0/ and seed1/ supernets")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--eval-seed", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)

    nets = [load_supernet(d) for d in sorted(a.pair.glob("seed*"))[:2]]
    space = nets[0][0].space
    rng = np.random.default_rng(a.eval_seed)
    archs = [space.sample(rng) for _ in range(a.archs)]
    cfg = TrainConfig.from_dict(nets[0][1]["config"])
    bundles = [
        load_data(m["data"], n.proxy.resolution, m.get("data_seed", 0), cfg.train_per_class)
        for n, m in nets
    ]
    # BatchNorm is recalibrated on each run's own training images with the same draw, as
    # `padnas evaluate --seed` does

    def score(net, bundle, val):
        ev = ScoringEvaluator.from_config(net, replace(bundle, val=val), cfg, seed=a.eval_seed)
        acc = ev.accuracy(archs)
        return acc, np.array([ev.loglik[str(x)] for x in archs])

    t0 = time.process_time()
    own = [score(n, b, b.val) for (n, _), b in zip(nets, bundles, strict=True)]
    print(f"{a.pair}: {a.archs} random architectures (seed {a.eval_seed})")
    print(line("own validation splits (1,000 each): accuracy", own[0][0], own[1][0]))
    for n in a.sizes:
        held = [b.holdout(2 * n) for b in bundles]
        first = [halves(h, h.labels)[0] for h in held]
        second = halves(held[0], held[0].labels)[1]
        s0, s1 = (score(net, b, v) for (net, _), b, v in zip(nets, bundles, first, strict=True))
        other = score(nets[0][0], bundles[0], second)
        for k, name in ((0, "accuracy"), (1, "log-likelihood")):
            print(line(f"n={n} seed 0 vs seed 1, {name}", s0[k], s1[k]))
            print(line(f"n={n} two image draws, seed 0, {name}", s0[k], other[k]))
        print(f"  ({time.process_time() - t0:.0f} CPU-s so far)", flush=True)


if __name__ == "__main__":
    main()
