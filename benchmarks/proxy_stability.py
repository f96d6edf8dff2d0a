"""Is the proxy task stable enough to rank architectures? (the ground truth behind the evidence)

Trains ``--archs`` architectures spread evenly over the latency window stand-alone, each with
``--seeds`` seeds, under one stand-alone schedule (the quick preset's unless overridden), and
prints per architecture the test accuracy over seeds, then

- seed noise: the mean over architectures of the std across seeds;
- architecture spread: the std across architectures of their mean accuracy, and its ratio to the
  seed noise (the schedule is usable for ranking when this ratio is well above 1);
- Kendall tau (scipy) between latency and mean accuracy (larger architectures should not be worse).

The architectures are random members of the window at evenly spaced latencies (selection seed
``--pick-seed``): uniform samples of the space cluster around its typical latency, so the candidates
also come from samplers of varied density (a per-sample probability of identity and of small
expansions), which reach the window's fast end too. Results are cached per (arch, data,
schedule, seed) (padnas.experiments.standalone), so a re-run or a run after Ctrl-C trains only
what is missing.

Usage: python benchmarks/proxy_stability.py [--space large] [--archs 6] [--seeds 0 1 2]
       [--epochs E] [--lr LR] [--train-per-class N] [--label-smoothing S] [--resolution R]
       [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import kendalltau

from latency.lut import LatencyModel, load_lut
from padnas.experiments.standalone import jobs_for, run_jobs
from padnas.run.plan import default_window
from padnas.run.settings import PRESETS
from padnas.search.window import LatencyWindow
from padnas.space import IDENTITY, SPACE_NAMES, get_space, parse_op
from padnas.train.config import Stage


def varied_genomes(space, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random genomes, each drawn with its own density: identity with probability
    ``p_id ~ U(0, 0.8)`` where a layer allows it, else an expansion <= 3 with probability
    ``p_small ~ U(0, 1)``, else any other op (uniformly within each group)."""
    out = np.zeros((n, space.num_layers), dtype=np.int64)
    for i in range(n):
        p_id, p_small = rng.uniform(0, 0.8), rng.uniform(0, 1)
        for j, ops in enumerate(space.layer_ops):
            ids = [o for o in range(len(ops)) if ops[o] == IDENTITY]
            rest = [o for o in range(len(ops)) if ops[o] != IDENTITY]
            small = [o for o in rest if parse_op(ops[o])[1] <= 3]
            large = [o for o in rest if o not in small]
            if ids and rng.random() < p_id:
                group = ids
            elif small and (not large or rng.random() < p_small):
                group = small
            else:
                group = large
            out[i, j] = group[rng.integers(len(group))]
    return out


def pick_archs(family: str, lut_path: str, k: int, seed: int, window=None, rule="even"):
    """``k`` random window members: [(arch, ms)]. ``rule`` "even": at evenly spaced latencies
    among uniform and varied-density samples; "quantile": at evenly spaced latency quantiles of
    10,000 uniform samples (typical members, bunched toward the space's usual latencies)."""
    space = get_space(family)
    lut = load_lut(lut_path, family=family, resolution=224)
    model = LatencyModel.from_lut(lut, space)
    if window is None:
        window, _ = default_window(lut, model)
    rng = np.random.default_rng(seed)
    if rule == "quantile":
        genomes = space.sample_genomes(rng, 10_000)
        ms = model.predict(genomes)
        inside = np.flatnonzero(window.contains(ms))
        order = inside[np.argsort(ms[inside], kind="stable")]
        picks = order[((np.arange(k) + 0.5) / k * len(order)).astype(int)]
        return [(str(space.decode(genomes[i])), float(ms[i])) for i in picks], window
    genomes = np.concatenate([space.sample_genomes(rng, 5_000), varied_genomes(space, rng, 5_000)])
    ms = model.predict(genomes)
    inside = np.flatnonzero(window.contains(ms))
    targets = window.lo + (np.arange(k) + 0.5) / k * (window.hi - window.lo)
    picks = [inside[np.argmin(np.abs(ms[inside] - t))] for t in targets]
    return [(str(space.decode(genomes[i])), float(ms[i])) for i in picks], window


def schedule_from_args(args) -> object:
    cfg = PRESETS[args.preset].train
    changes = {}
    if args.epochs is not None or args.lr is not None:
        changes["standalone"] = Stage(
            args.epochs if args.epochs is not None else cfg.standalone.epochs,
            args.lr if args.lr is not None else cfg.standalone.lr,
        )
    if args.train_per_class is not None:
        changes["train_per_class"] = args.train_per_class
    if args.label_smoothing is not None:
        changes["label_smoothing"] = args.label_smoothing
    if args.width_mult is not None:
        changes["width_mult"] = args.width_mult
    if args.resolution is not None:
        changes["resolution"] = args.resolution
    if args.no_zero_init:
        changes["zero_init_residual"] = False
    return cfg.replace(**changes)


def summarise(rows: list[dict]) -> dict:
    means = np.array([r["mean"] for r in rows])
    noise = float(np.mean([r["std"] for r in rows]))
    spread = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
    tau = kendalltau([r["ms"] for r in rows], means).statistic
    return {
        "seed_noise_pts": 100 * noise,
        "arch_spread_pts": 100 * spread,
        "ratio": spread / noise if noise > 0 else float("inf"),
        "range_pts": 100 * float(means.max() - means.min()),
        "kendall_tau_latency_accuracy": float(tau),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="large", choices=SPACE_NAMES)
    ap.add_argument("--lut", default="device_profiles/pixel3.json")
    ap.add_argument("--data", default="fashion")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--archs", type=int, default=6)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pick-seed", type=int, default=2024)
    ap.add_argument("--window", help="latency window LO:HI in ms [the LUT's default]")
    ap.add_argument("--pick", choices=["even", "quantile"], default="even")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--train-per-class", type=int)
    ap.add_argument("--label-smoothing", type=float)
    ap.add_argument("--width-mult", type=float)
    ap.add_argument("--resolution", type=int, help="proxy input size (a multiple of 32)")
    ap.add_argument("--no-zero-init", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    cfg = schedule_from_args(args)
    window = LatencyWindow.parse(args.window) if args.window else None
    picks, window = pick_archs(args.space, args.lut, args.archs, args.pick_seed, window, args.pick)
    print(
        f"{len(picks)} {args.space} archs in {window} ms x seeds {args.seeds}; schedule: "
        f"{cfg.standalone.epochs} epochs lr {cfg.standalone.lr}, {cfg.train_per_class or 'all'} "
        f"img/class, width {cfg.width_mult}, res {cfg.resolution}, smoothing "
        f"{cfg.label_smoothing}, zero-init residual {cfg.zero_init_residual}",
        flush=True,
    )
    t0 = time.perf_counter()
    done = []
    jobs = jobs_for(args.space, [a for a, _ in picks], args.data, cfg, args.seeds)
    results = run_jobs(
        jobs,
        workers=args.workers,
        on_done=lambda j, r: (
            done.append(1),
            print(
                f"  [{len(done)}] {j.arch[:40]}... seed {j.seed}: {r['test_accuracy']:.4f} "
                f"({r['seconds']:.0f} s)",
                flush=True,
            ),
        ),
    )
    rows = []
    for i, (arch, ms) in enumerate(picks):
        accs = np.array(
            [r["test_accuracy"] for r in results[i * len(args.seeds) :][: len(args.seeds)]]
        )
        rows.append(
            {
                "arch": arch,
                "ms": ms,
                "accs": accs.tolist(),
                "mean": float(accs.mean()),
                "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
            }
        )
    print(f"\n{'latency ms':>10}  {'mean acc':>8}  {'std':>6}  per seed")
    for r in rows:
        print(
            f"{r['ms']:10.2f}  {r['mean']:8.4f}  {r['std']:6.4f}  "
            + " ".join(f"{a:.4f}" for a in r["accs"])
        )
    s = summarise(rows)
    print(
        f"\nseed noise (mean std over seeds): {s['seed_noise_pts']:.2f} pts; "
        f"architecture spread (std of means): {s['arch_spread_pts']:.2f} pts; "
        f"ratio {s['ratio']:.2f}; range of means {s['range_pts']:.2f} pts; "
        f"Kendall tau(latency, accuracy) {s['kendall_tau_latency_accuracy']:+.2f}; "
        f"wall {time.perf_counter() - t0:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps({"config": cfg.to_dict(), "rows": rows, **s}, indent=1))


if __name__ == "__main__":
    main()
