"""Training memory of the paper-scale supernet, counted exactly on any machine (no GPU needed).

A training step holds the weights, their gradients and SGD momentum (3 x 4 bytes per supernet
parameter: every op's weights exist even though one path runs), plus the activations autograd
saves for the backward pass, which grow with the batch. The saved activations are counted with
:func:`torch.autograd.graph.saved_tensors_hooks` (bytes of every tensor saved, each storage once)
for one image along the heaviest path (K7E6 in every layer, where allowed) and along sampled
paths, in fp32 and under bf16 autocast (which saves most activations in 2 bytes). On a GPU, add
the CUDA context and cudnn workspaces (~1-3 GiB) and the allocator's slack; the benchmark in
``supernet_throughput.py`` prints the peak that torch actually allocated there.

    python benchmarks/supernet_memory.py [--space basic] [--batches 128,256,1024]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

from padnas.run.settings import PRESETS
from padnas.space import SPACE_NAMES, get_space, parse_op
from padnas.train.loop import build_supernet
from padnas.train.precision import resolve_precision


def saved_bytes(net, arch, x, y, prec) -> int:
    """Bytes autograd keeps for the backward pass of one step (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), prec.autocast():
        loss = nn.functional.cross_entropy(net(x, arch), y)
    del loss
    return sum(seen.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--batches", default="128,256,1024")
    ap.add_argument("--paths", type=int, default=3, help="sampled paths besides the heaviest")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = PRESETS["paper"].train
    sp = get_space(args.space)
    net = build_supernet(sp, cfg, 1000, seed=0).train()
    params = sum(p.numel() for p in net.parameters())
    state_gib = params * 4 * 3 / 2**30
    # the heaviest op of each layer: largest kernel, then expansion, then squeeze-excite
    heavy = sp.validate(
        "-".join(max(ops, key=lambda o: parse_op(o) or (0, 0)) for ops in sp.layer_ops)
    )
    paths = [("heaviest", heavy)] + [
        (f"sampled {i}", sp.sample(np.random.default_rng([7, i]))) for i in range(args.paths)
    ]
    x = torch.randn(2, 3, cfg.resolution, cfg.resolution).to(memory_format=torch.channels_last)
    y = torch.tensor([0, 1])
    batches = [int(b) for b in args.batches.split(",")]
    print(
        f"space {sp.family}, paper preset {cfg.resolution}x{cfg.resolution} width "
        f"{cfg.width_mult}: {params / 1e6:.1f} M supernet parameters -> weights + grads + "
        f"momentum {state_gib:.2f} GiB"
    )
    for name in ("fp32", "bf16"):
        prec = resolve_precision(name, "cpu")
        for label, arch in paths:
            per_image = saved_bytes(net, arch, x, y, prec) / 2 / 2**20
            totals = "  ".join(
                f"batch {b}: {state_gib + per_image * b / 1024:.1f} GiB" for b in batches
            )
            print(f"[{name}] {label}: saved activations {per_image:.1f} MiB/image; {totals}")


if __name__ == "__main__":
    main()
