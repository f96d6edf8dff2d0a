"""Why a supernet with the deployed topology stays near chance: its transition layers.

Trains the quick preset's basic-space supernet on Fashion-MNIST (500 images per class) for
``--epochs`` epochs, once per variant, and prints the training accuracy of each epoch:

- ``sampled``: every searchable layer sampled uniformly from the first step (SPOS);
- ``fix0``: layer 0 (the first searchable layer, no residual) kept to one op;
- ``fixed``: every searchable layer without a residual (the transitions) kept to one op;
- ``lr0.1`` / ``frozen``: the transitions sampled, with 0.1x / 0 times the learning rate;
- ``warmup2``: the transitions train their smallest op for 2 epochs, then every op of theirs
  starts as an exact copy of it and all are sampled (the quick preset's default).

    python benchmarks/transition_layers.py [--epochs 5] [--seed 0] [--variants sampled fixed ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from padnas.data.datasets import load_data
from padnas.run.settings import PRESETS
from padnas.space import get_space
from padnas.train.loop import build_supernet, train_supernet

VARIANTS = ("sampled", "fix0", "fixed", "lr0.1", "frozen", "warmup2")


def variant_setup(name: str, space, cfg):
    """The space and training config of one variant (the preset's warm-up off unless named)."""
    cfg = cfg.replace(warmup_epochs=0)
    if name in ("fix0", "fixed"):
        ops = [list(o) for o in space.layer_ops]
        for j in [0] if name == "fix0" else space.transition_layers:
            ops[j] = ops[j][:1]
        space = space.with_layer_ops(ops)
    elif name in ("lr0.1", "frozen"):
        cfg = cfg.replace(transition_lr_mult=0.1 if name == "lr0.1" else 0.0)
    elif name == "warmup2":
        cfg = cfg.replace(warmup_epochs=2)
    elif name != "sampled":
        raise SystemExit(f"unknown variant {name}; choose from {', '.join(VARIANTS)}")
    return space, cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = PRESETS["quick"].train
    data = load_data("fashion", cfg.resolution, seed=a.seed, train_per_class=cfg.train_per_class)
    for name in a.variants:
        space, vcfg = variant_setup(name, get_space("basic"), cfg)
        net = build_supernet(space, vcfg, data.num_classes, seed=a.seed)
        t0 = time.process_time()
        with tempfile.TemporaryDirectory() as tmp:
            train_supernet(net, data, vcfg, tmp, seed=a.seed, epochs=a.epochs, progress=False)
            log = [json.loads(line) for line in (Path(tmp) / "train_log.jsonl").open()]
        accs = " ".join(f"{r['train_acc']:.3f}" for r in log)
        print(f"{name:<9} train accuracy per epoch: {accs}  ({time.process_time() - t0:.0f} CPU-s)")


if __name__ == "__main__":
    main()
