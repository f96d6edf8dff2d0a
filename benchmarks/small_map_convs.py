"""What the small-map conv shortcuts (``padnas.nn.ops.SameConv2d``) buy: supernet steps, plain
vs fast.

The quick preset's supernet runs its late layers on 2x2 and 1x1 maps, where PyTorch's CPU backward
of depthwise convs costs many times their forward. ``SameConv2d`` crops kernel taps that only see
padding and gives depthwise convs a backward made of forward convs. This times one SGD training
step of the supernet along sampled paths (forward, backward, step over the whole supernet, as
``train_supernet`` does) and one no-grad forward of an evaluation batch, each with the shortcuts
and with ``nn.Conv2d``'s own forward, interleaved path by path with the order alternating so both
see the same machine load; it prints the medians and their ratio, and checks on the first path
that both give the same loss and gradients (to float rounding).

    python benchmarks/small_map_convs.py [--space basic] [--paths 12] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from padnas.nn.ops import SameConv2d
from padnas.run.settings import get_preset
from padnas.space import SPACE_NAMES, get_space
from padnas.train.loop import build_supernet


@contextmanager
def plain_convs():
    """Run every SameConv2d as the plain nn.Conv2d it subclasses."""
    fast = SameConv2d.forward
    SameConv2d.forward = nn.Conv2d.forward
    try:
        yield
    finally:
        SameConv2d.forward = fast


def train_step(net, opt, x, y, arch) -> float:
    t = time.perf_counter()
    loss = nn.functional.cross_entropy(net(x, arch), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def eval_forward(net, x, arch) -> float:
    t = time.perf_counter()
    with torch.inference_mode():
        net(x, arch)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--paths", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = get_preset("quick").train
    space = get_space(args.space)
    net = build_supernet(space, cfg, 10, args.seed).to(memory_format=torch.channels_last)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.0, momentum=cfg.momentum)  # lr 0: same weights
    g = torch.Generator().manual_seed(args.seed)
    shape = (cfg.batch_size, 3, cfg.resolution, cfg.resolution)
    x = torch.randn(shape, generator=g).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (cfg.batch_size,), generator=g)
    xe = torch.randn((cfg.eval_batch_size, *shape[1:]), generator=g)
    xe = xe.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(args.seed)

    check = space.sample(rng)
    grads = []
    for ctx in (plain_convs, nullcontext):
        with ctx():
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x, check), y).backward()
            grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
    scale = max(float(b.abs().max()) for b in grads[0])
    worst = max(float((a - b).abs().max()) for a, b in zip(*grads, strict=True)) / scale
    print(
        f"check: largest gradient difference, fast vs plain, relative to the largest gradient: "
        f"{worst:.1e}"
    )

    times = {"train plain": [], "train fast": [], "eval plain": [], "eval fast": []}
    for i in range(args.paths + 2):
        arch = space.sample(rng)
        for kind in ("plain", "fast") if i % 2 else ("fast", "plain"):
            if kind == "plain":
                with plain_convs():
                    t, e = train_step(net, opt, x, y, arch), eval_forward(net, xe, arch)
            else:
                t, e = train_step(net, opt, x, y, arch), eval_forward(net, xe, arch)
            if i >= 2:  # two warm-up paths
                times[f"train {kind}"].append(t)
                times[f"eval {kind}"].append(e)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(
        f"{args.space} supernet, quick preset ({cfg.resolution}x{cfg.resolution}, width "
        f"{cfg.width_mult}), {args.threads} thread(s), {args.paths} paths, medians:"
    )
    for what, batch in (("train", cfg.batch_size), ("eval", cfg.eval_batch_size)):
        plain, fast = med[f"{what} plain"], med[f"{what} fast"]
        print(
            f"  {what} step (batch {batch}): plain {plain:7.1f} ms   fast {fast:7.1f} ms   "
            f"plain/fast {plain / fast:4.2f}x"
        )


if __name__ == "__main__":
    main()
