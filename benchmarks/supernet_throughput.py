"""Supernet training-step overhead and one-shot evaluation throughput (quick preset, mnist5k).

1. Step time: a supernet training step along a sampled path (forward, backward, SGD step over the
   whole supernet's optimizer, as ``train_supernet`` does) against the stand-alone ChildNet of the
   same path on the same batch, interleaved path by path and alternating which goes first, so
   both see the same machine load. Medians and their ratio (target <= 1.15).
2. A real epoch of ``train_supernet`` (data, steps, checkpoint) and, from it, the supernet
   training time of the quick preset's whole 4-stage schedule.
3. One-shot evaluations per minute: ``OneShotEvaluator`` (BN recalibration on the preset's
   recalibration images, then validation accuracy) over fresh random architectures.

The machine is shared: the load average before and after is printed with the figures.

    python benchmarks/supernet_throughput.py [--space basic|large] [--threads 1] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from padnas.data import load_data
from padnas.evaluate import OneShotEvaluator
from padnas.space import get_space
from padnas.train import PRESETS, build_supernet, make_optimizer, train_supernet


def _step(model, opt, x, y, *args) -> float:
    t = time.perf_counter()
    loss = nn.functional.cross_entropy(model(x, *args), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="basic", choices=["basic", "large"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paths", type=int, default=8, help="sampled paths per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--evals", type=int, default=40, help="architectures for eval/min")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    cfg = PRESETS["quick"]
    data = load_data("mnist5k", cfg.resolution, seed=0)
    sp = get_space(args.space)
    net = build_supernet(sp, cfg, data.num_classes, seed=0).train()
    opt = make_optimizer(net, 0.005, cfg)
    rng = np.random.default_rng(0)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net.to(memory_format=fmt)
    x, y = data.train.fetch(rng.permutation(len(data.train))[: cfg.batch_size])
    x = x.to(memory_format=fmt)

    # --- 1. step time, supernet vs stand-alone, interleaved --------------------------------------
    super_t, child_t = [], []
    for r in range(args.rounds + 1):  # round 0 warms up both
        for i in range(args.paths):
            arch = sp.sample(np.random.default_rng([r, i]))
            child = net.extract(arch).train().to(memory_format=fmt)
            copt = make_optimizer(child, 0.005, cfg)
            _step(child, copt, x, y)  # first touch of fresh modules, not timed
            pair = [("s", lambda a=arch: _step(net, opt, x, y, a)),
                    ("c", lambda c=child, o=copt: _step(c, o, x, y))]  # fmt: skip
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                dt = fn()
                if r > 0:
                    (super_t if name == "s" else child_t).append(dt)
    s_med, c_med = statistics.median(super_t), statistics.median(child_t)
    ratios = [s / c for s, c in zip(super_t, child_t, strict=True)]

    # --- 2. a real epoch of train_supernet ------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build_supernet(sp, cfg, data.num_classes, seed=1)
        t = time.perf_counter()
        train_supernet(fresh, data, cfg, tmp, seed=0, epochs=1, progress=False)
        epoch_s = time.perf_counter() - t

    # --- 3. one-shot evaluations per minute -----------------------------------------------------
    net.eval()
    ev = OneShotEvaluator.from_config(net, data, cfg, seed=0)
    archs = [sp.sample(np.random.default_rng([99, i])) for i in range(args.evals + 2)]
    ev.accuracy(archs[:2])  # warm-up
    t = time.perf_counter()
    ev.accuracy(archs[2:])
    eval_s = (time.perf_counter() - t) / args.evals

    load_after = os.getloadavg()[0]
    total_epochs = cfg.supernet_epochs_total
    print(f"space {sp.family}, quick preset (resolution {cfg.resolution}, width {cfg.width_mult}, "
          f"batch {cfg.batch_size}), {torch.get_num_threads()} thread(s), "
          f"{len(super_t)} timed pairs; recalibration {cfg.recal_images} images, "
          f"validation {len(data.val)} images")  # fmt: skip
    print(f"per-pair ratio p10/p90: {np.percentile(ratios, 10):.3f} / "
          f"{np.percentile(ratios, 90):.3f}")  # fmt: skip
    print(f"load_average_before: {load_before:.2f}")
    print(f"load_average_after: {load_after:.2f}")
    print(f"supernet_step_ms: {s_med * 1e3:.1f}")
    print(f"childnet_step_ms: {c_med * 1e3:.1f}")
    print(f"quick_epoch_s: {epoch_s:.1f}")
    print(f"quick_supernet_training_all_stages_s: {epoch_s * total_epochs:.0f}")
    print(f"oneshot_eval_ms: {eval_s * 1e3:.0f}")
    print(f"oneshot_evals_per_min: {60 / eval_s:.0f}")
    print(f"supernet_vs_childnet_step_ratio: {s_med / c_med:.3f}")


if __name__ == "__main__":
    main()
