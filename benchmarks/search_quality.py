"""Search quality: CES against SPOS-evolution and random search on one supernet.

What it reproduces: Fig. 7 of the paper (the op distribution CES estimates varies less across seeds
and is sparser than SPOS evolution's). The hypervolume comparison with SPOS evolution and random
search at equal budgets is our own check, not a table of the paper.

All three searches run on the same briefly trained supernet (trained once, cached under
``$PADNAS_CACHE/bench/search_quality``), the same LUT, latency window and one-shot evaluator
(BN recalibrated, cached per architecture, so an architecture two methods both find is measured
once), and the same number of supernet evaluations: CES's population x generations.

Every search ranks by the quick preset's one-shot score (``rank_by``: the log-likelihood of the
true class, or ``--rank-by accuracy`` as the paper does) on the preset's scoring images (its
5,000 held-out images where the data keeps them).

Figures:
- hypervolume (pymoo HV) of each method's Pareto front over (-score, latency), with a fixed
  reference point (accuracy 0, or the log-likelihood of a uniform guess, -ln(classes); latency =
  the window's upper end), mean +- std and median over the shared seeds, and CES's ratio to each
  baseline;
- variance across seeds of the op distribution estimated from the archs of rank < 10 (what
  pruning uses): the last layer (Fig. 7) and the mean over layers, CES vs SPOS; and how sparse
  those distributions are (entropy / log(#ops), mean over layers and seeds; 1 = uniform);
- beside them, the noise ceiling of the supernet all of them ran on (padnas.search.ceiling): a
  second supernet trained the same way but for its seed (cached too) scores up to
  ``--ceiling-archs`` of seed 0's CES architectures, spread along the window; Kendall tau between
  the two and the seed noise of one one-shot accuracy say how much of a difference between the
  methods' fronts one-shot accuracy can resolve at all (``--ceiling-archs 0`` skips it).

Usage: python benchmarks/search_quality.py [--lut L.json] [--space basic] [--seeds 3]
       [--dist-seeds 5] [--pop 16] [--generations 8] [--epochs 10] [--data fashion]
       [--ceiling-archs 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymoo.indicators.hv import HV

from latency.lut.model import LatencyModel
from latency.lut.table import Lut, load_lut
from padnas.data.datasets import load_data
from padnas.experiments.baselines import random_search, spos_evolution
from padnas.run.plan import default_window
from padnas.run.settings import PRESETS
from padnas.search.ceiling import NoiseCeiling, describe, measure_ceiling, spread_by_latency
from padnas.search.ceiling import twin_seed as derive_twin_seed
from padnas.search.ces import CESConfig, SearchResult, run_ces
from padnas.search.oneshot import OneShotEvaluator, held_out_images
from padnas.search.prune import MAX_RANK, OpDistribution
from padnas.space import SPACE_NAMES, get_space
from padnas.train.config import Stage
from padnas.train.loop import build_supernet, train_supernet


def mock_lut(family: str) -> Lut:
    """The mock device's table for ``family`` (deterministic; used when no --lut is given)."""
    from latency.backends.mock import MockBackend
    from latency.devices import load_profile
    from latency.variants import space_variants

    space = get_space(family)
    backend = MockBackend(load_profile("mock"))
    entries = {}
    for v in space_variants(space):
        e = backend.measure_variant(v).to_dict()
        e.pop("extra", None)
        entries[v.key] = e
    return Lut({"name": "mock"}, family, space.family_signature, 224, entries)


def cached_supernet(family: str, data, epochs: int, seed: int, rank_by: str | None = None):
    quick = PRESETS["quick"].train
    preset = replace(quick, supernet_stages=(Stage(epochs, quick.supernet_stages[0].lr),))
    # the cache is keyed by what trains the supernet: the scoring fields do not
    trained = {k: v for k, v in preset.to_dict().items() if k not in ("rank_by", "eval_images")}
    key = hashlib.sha256(
        json.dumps([family, data.spec, trained, seed], sort_keys=True).encode()
    ).hexdigest()[:12]
    if rank_by is not None:
        preset = preset.replace(rank_by=rank_by)
    root = Path(os.environ.get("PADNAS_CACHE", Path.home() / ".cache" / "padnas"))
    ckpt = root / "bench" / "search_quality" / key
    net = build_supernet(get_space(family), preset, data.num_classes, seed)
    t0 = time.perf_counter()
    train_supernet(net, data, preset, ckpt, seed=seed, resume=True, progress=False)
    print(f"supernet: {epochs} epochs ({time.perf_counter() - t0:.0f} s; cache {ckpt})")
    return net, preset


def noise_ceiling(result: SearchResult, evaluator, data, epochs: int, n: int) -> NoiseCeiling:
    """``result``'s architectures (up to ``n``, spread by latency) on a second supernet that
    differs from the evaluator's only by its seed, under the same recalibration draw."""
    recs = result.records
    picks = [
        recs[i] for i in spread_by_latency([r.latency_ms for r in recs], [r.arch for r in recs], n)
    ]
    seed = derive_twin_seed(0)
    twin, preset = cached_supernet(result.space.family, data, epochs, seed=seed)
    twin_eval = OneShotEvaluator.from_config(twin, data, preset, seed=evaluator.seed)
    archs = [r.arch for r in picks]
    return measure_ceiling(
        archs,
        [r.latency_ms for r in picks],
        evaluator.accuracy(archs),
        twin_eval.accuracy(archs),
        seeds=(0, seed),
        recal_seed=evaluator.seed,
        log_likelihood=evaluator.log_likelihoods(archs),
        twin_log_likelihood=twin_eval.log_likelihoods(archs),
        rank_by=result.rank_by,
    )


def front_hv(result: SearchResult, ref: np.ndarray) -> float:
    F = result.objectives()[[r.rank == 1 for r in result.records]]
    return float(HV(ref_point=ref)(F))


def distribution(result: SearchResult) -> np.ndarray:
    """(layers, max ops) op probabilities over the archs of rank < 10, zero-padded."""
    dist = OpDistribution.estimate(result.space, result.archs(max_rank=MAX_RANK))
    out = np.zeros((result.space.num_layers, max(result.space.num_ops)))
    for j, p in enumerate(dist.probs):
        out[j, : len(p)] = p
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lut", help="LUT file (default: the mock device's table)")
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--data", default="fashion")
    ap.add_argument("--seeds", type=int, default=3, help="shared seeds for the HV comparison")
    ap.add_argument("--dist-seeds", type=int, default=5, help="seeds for the distribution variance")
    ap.add_argument("--pop", type=int, default=16)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=10, help="supernet training epochs (cached)")
    ap.add_argument(
        "--mutation-prob", type=float, default=None, help="CES per-gene PM rate [CESConfig's]"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--rank-by",
        choices=["accuracy", "log-likelihood"],
        default=None,
        help="the one-shot score every search ranks by [the quick preset's]",
    )
    ap.add_argument(
        "--ceiling-archs",
        type=int,
        default=40,
        help="architectures the noise ceiling is measured on (0: do not measure it)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    space = get_space(args.space)
    lut = load_lut(args.lut, family=args.space) if args.lut else mock_lut(args.space)
    model = LatencyModel.from_lut(lut, space)
    window, rule = default_window(lut, model)
    print(f"latency: {model.describe()}; window {window} ({rule})")
    quick = PRESETS["quick"].train
    data = load_data(args.data, quick.resolution, seed=0, train_per_class=quick.train_per_class)
    rank_by = args.rank_by.replace("-", "_") if args.rank_by else quick.rank_by
    supernet, preset = cached_supernet(args.space, data, args.epochs, seed=0, rank_by=rank_by)
    evaluator = OneShotEvaluator.from_config(supernet, data, preset, seed=0)
    images = held_out_images(preset, data)
    print(
        f"ranked by one-shot {rank_by} on "
        + (f"{images} held-out images" if images else f"the {len(data.val)} validation images")
    )
    scores = dict(log_likelihood=evaluator.log_likelihoods, rank_by=rank_by)
    ces_cfg = CESConfig(pop_size=args.pop, generations=args.generations)
    if args.mutation_prob is not None:
        ces_cfg = replace(ces_cfg, mutation_prob=args.mutation_prob)
    print(f"CES: {ces_cfg}")
    # the worst score counted: accuracy 0, or the log-likelihood of a uniform guess
    worst = 0.0 if rank_by == "accuracy" else -float(np.log(data.num_classes))
    ref = np.array([-worst, window.hi])

    seeds = list(range(max(args.seeds, args.dist_seeds)))
    results: dict[str, list[SearchResult]] = {"ces": [], "spos": [], "random": []}
    t0 = time.perf_counter()
    for seed in seeds:
        ces = run_ces(
            space, model.predict, evaluator.accuracy, window, ces_cfg, seed=seed, **scores
        )
        budget = ces.evaluations
        results["ces"].append(ces)
        results["spos"].append(
            spos_evolution(
                space, model.predict, evaluator.accuracy, window, budget, seed=seed, **scores
            )
        )
        if seed < args.seeds:
            results["random"].append(
                random_search(
                    space, model.predict, evaluator.accuracy, window, budget, seed=seed, **scores
                )
            )
        done = [m for m in results if len(results[m]) > seed]
        print(
            f"seed {seed}: budget {budget} evaluations; HV "
            + ", ".join(f"{m} {front_hv(results[m][seed], ref):.3f}" for m in done)
            + f"; {evaluator.cache_size} archs measured so far, {time.perf_counter() - t0:.0f} s"
        )

    hv = {m: np.array([front_hv(r, ref) for r in rs[: args.seeds]]) for m, rs in results.items()}
    ceiling = None
    if args.ceiling_archs:
        ceiling = noise_ceiling(
            results["ces"][0], evaluator, data, args.epochs, max(3, args.ceiling_archs)
        )
        print(f"noise ceiling of the supernet: {describe(ceiling.summary())}")
    var, entropy = {}, {}
    for m in ("ces", "spos"):
        dists = np.stack([distribution(r) for r in results[m][: args.dist_seeds]])
        v = dists.var(axis=0)  # (layers, ops) variance across seeds
        last = space.num_ops[-1]
        per_layer = [v[j, :n].mean() for j, n in enumerate(space.num_ops)]
        var[m] = (float(v[-1, :last].mean()), float(np.mean(per_layer)))
        # sparsity (Fig. 7's other claim): entropy of each layer's distribution / log(#ops)
        ent = []
        for d in dists:
            for j, n in enumerate(space.num_ops):
                p = d[j, :n][d[j, :n] > 0]
                ent.append(float(-(p * np.log(p)).sum() / np.log(n)) if n > 1 else 0.0)
        entropy[m] = float(np.mean(ent))
        p_last = dists[:, -1, :last]
        print(
            f"{m} last-layer op probabilities (mean +- std over {args.dist_seeds} seeds): "
            + ", ".join(
                f"{op} {mu:.2f}+-{sd:.2f}"
                for op, mu, sd in zip(
                    space.layer_ops[-1], p_last.mean(0), p_last.std(0), strict=True
                )
            )
        )
    print()
    for m, v in hv.items():
        print(f"hv_{m}_mean: {v.mean():.4f}")
        print(f"hv_{m}_std: {v.std():.4f}")
        print(f"hv_{m}_median: {np.median(v):.4f}")
    if ceiling is not None:
        # beside every HV and its ratios: how far the one-shot accuracies under them are noise
        print(f"noise_ceiling_tau: {ceiling.tau if ceiling.tau is None else round(ceiling.tau, 4)}")
        print(f"noise_ceiling_p_value: {ceiling.p_value}")
        print(f"noise_ceiling_archs: {ceiling.n}")
        print(f"noise_ceiling_seeds: {list(ceiling.seeds)}")
        block = ceiling.summary()
        print(f"noise_ceiling_rank_by: {ceiling.rank_by}")
        print(f"noise_ceiling_accuracy_tau: {block['accuracy_tau']}")
        print(f"noise_ceiling_accuracy_noise_pts: {100 * ceiling.accuracy_noise:.2f}")
        print(f"noise_ceiling_step_noise_pts: {100 * ceiling.step_noise:.2f}")
        if ceiling.rank_by == "log_likelihood":
            print(f"noise_ceiling_ll_noise_nats: {block['log_likelihood_noise']:.4f}")
            print(f"noise_ceiling_ll_step_noise_nats: {block['ll_step_noise']:.4f}")
    print(f"hv_ratio_ces_over_spos: {hv['ces'].mean() / hv['spos'].mean():.4f}")
    print(f"hv_ratio_ces_over_random: {hv['ces'].mean() / hv['random'].mean():.4f}")
    for m in ("ces", "spos"):
        print(f"opdist_var_last_layer_{m}: {var[m][0]:.5f}")
        print(f"opdist_var_mean_layers_{m}: {var[m][1]:.5f}")
    for i, where in enumerate(("last_layer", "mean_layers")):
        ratio = var["spos"][i] / max(var["ces"][i], 1e-12)
        print(f"opdist_var_ratio_spos_over_ces_{where}: {ratio:.3f}")
    for m in ("ces", "spos"):
        print(f"opdist_norm_entropy_{m}: {entropy[m]:.4f}")
    print(f"rank_by: {rank_by}")
    print(f"eval_images: {images or len(data.val)} ({'held-out' if images else 'validation'})")
    print(f"budget_evaluations: {ces_cfg.budget}")
    print(f"seeds: {args.seeds}")
    print(f"dist_seeds: {args.dist_seeds}")


if __name__ == "__main__":
    main()
