"""What one one-shot evaluation costs, and what folding BatchNorm into the convs saves.

An evaluation (``OneShotEvaluator``) recalibrates the path's BatchNorm statistics on the preset's
recalibration images (train mode: batch statistics, nothing to fold) and then scores the held-out
images in eval mode. The eval pass can run the module forward (conv, BN, activation: three ops per
conv) or :meth:`padnas.nn.supernet.Supernet.infer` (the running statistics folded into the conv
weight and a bias, activations in place). For ``--archs`` random architectures of a trained
supernet it times, per architecture, the recalibration and both eval passes over ``--images``
held-out images, and prints medians, the folded/module ratio, the whole evaluation at each size and
the largest logit difference between the two passes (float rounding only).

    python benchmarks/oneshot_speed.py runs/bench-proxy/wu2/seed0 --images 1000 5000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from padnas.data.datasets import load_data
from padnas.search.oneshot import OneShotEvaluator
from padnas.train.checkpoint import load_supernet
from padnas.train.config import TrainConfig


def seconds(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def run_pass(forward, batches, arch) -> None:
    for x, _ in batches:
        forward(x, arch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("supernet", type=Path, help="a trained supernet (run folder or checkpoint)")
    ap.add_argument("--images", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--archs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7, help="draws the architectures")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, meta = load_supernet(a.supernet)
    # eval_images=0: the evaluator scores the split handed to it, not the preset's held-out images
    cfg = TrainConfig.from_dict(meta["config"]).replace(eval_images=0)
    bundle = load_data(
        meta["data"], net.proxy.resolution, meta.get("data_seed", 0), cfg.train_per_class
    )
    rng = np.random.default_rng(a.seed)
    archs = [net.space.sample(rng) for _ in range(a.archs)]
    print(
        f"{a.supernet}: {a.archs} random architectures, {a.threads} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for n in a.images:
        ev = OneShotEvaluator.from_config(net, replace(bundle, val=bundle.holdout(n)), cfg)
        ev.evaluate(archs[0])  # lays the supernet out and materialises the images
        recal, module, folded, worst = [], [], [], 0.0
        with torch.inference_mode():
            for arch in archs:
                ev._cache.clear()
                # recalibration + the folded pass, as a search runs it
                total = seconds(ev.evaluate, arch)
                for mod in net.path_modules(arch):
                    mod.eval()
                batches = ev._val  # the evaluator's materialised images, for both passes
                module.append(seconds(run_pass, net, batches, arch))
                folded.append(seconds(run_pass, net.infer, batches, arch))
                recal.append(total - folded[-1])  # the rest of the evaluation
                x = batches[0][0]
                worst = max(worst, float((net(x, arch) - net.infer(x, arch)).abs().max()))
        m, f, r = (float(np.median(v)) for v in (module, folded, recal))
        print(
            f"  {n:>6} images: eval pass module {m * 1e3:7.1f} ms, folded {f * 1e3:7.1f} ms "
            f"(module/folded {m / f:.2f}x); recalibration {r * 1e3:6.1f} ms; "
            f"whole evaluation {(r + m) * 1e3:7.1f} -> {(r + f) * 1e3:7.1f} ms "
            f"({(r + m) / (r + f):.2f}x); max |logit difference| {worst:.1e}"
        )


if __name__ == "__main__":
    main()
