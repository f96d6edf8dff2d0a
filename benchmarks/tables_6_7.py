"""The paper's Tables 6 and 7 at CPU scale: does the auto-designed space give better architectures?

Table 6 (I-Supernet vs PAD-NAS): for the searches with M = 2 and M = 4 (shared with ranking.py:
same run directories, same stand-alone cache), the final models (A, B, C, ... across the latency
window) are trained stand-alone; printed are the best stand-alone accuracy and the mean gap between
one-shot and stand-alone accuracy of those models, mean +- std over seeds.

Table 7 (random search): ``--k`` random architectures of the latency window drawn from the basic
space of the family ("Random-L") and ``--k`` from the final auto-designed space of the M = 4 search
of the same seed ("Random-L-AD"), trained stand-alone; mean +- std of their accuracy over all
architectures and seeds. The draws use a generator seeded by (seed, 7) and are independent of
the searches' own randomness.

What it reproduces: the comparisons' direction on Fashion-MNIST at 32x32 and minutes of training,
not the paper's ImageNet numbers (printed beside ours). Beside every row stands the noise ceiling
of the searches behind it (tau between two stage-1 supernets differing only by seed, and the seed
noise of a one-shot accuracy): the final models were chosen, and the auto-designed space pruned,
by a one-shot ranking no better than that.

Usage: python benchmarks/tables_6_7.py [--space basic] [--window 40:100] [--seeds 0 1 2] [--k 5]
       [--runs runs/bench-ranking] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from evidence_runs import (
    add_search_args,
    ceiling_text,
    resumable,
    run_searches,
    standalone_config,
)

from latency.lut import LatencyModel, load_lut
from padnas.experiments.standalone import Job, run_jobs
from padnas.search.window import LatencyWindow
from padnas.space import SearchSpace

PAPER_T6 = {  # Section 4.3's text (the table's cells did not survive): ImageNet, 69 ms
    ("large", "I-Supernet"): "gap 21.99 pts",
    ("large", "PAD-NAS"): "gap 2.94 pts; stand-alone 1.02 pts above I-Supernet-L",
    ("basic", "I-Supernet"): "(gap not given)",
    ("basic", "PAD-NAS"): "stand-alone 0.42 pts above I-Supernet-S",
}
SHORT = {"basic": "S", "large": "L", "v3": "V3"}  # the paper's names for the spaces
PAPER_T7 = {
    "Random-L": (72.71, 0.46),
    "Random-L-AD": (74.91, 0.11),
    "Random-S": (73.88, 0.19),
    "Random-S-AD": (74.72, 0.10),
}


def random_window_archs(space: SearchSpace, model, window, k: int, seed: int) -> list[str]:
    """``k`` distinct random architectures of ``space`` whose latency lies in ``window``."""
    rng = np.random.default_rng([seed, 7])
    found: list[str] = []
    for _ in range(200):
        g = space.sample_genomes(rng, 4096)
        for i in np.flatnonzero(window.contains(model.predict(g))):
            a = str(space.decode(g[i]))
            if a not in found:
                found.append(a)
            if len(found) == k:
                return found
    raise SystemExit(f"fewer than {k} random architectures of the space lie in {window}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_search_args(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    cfg = standalone_config(args.preset)
    runs = run_searches(
        args.runs,
        args.space,
        args.lut,
        args.data,
        [2, 4],
        args.seeds,
        args.preset,
        args.workers,
        args.window,
    )
    lut = load_lut(args.lut, family=args.space, resolution=224)
    out: dict = {"table6": [], "table7": []}

    def train(archs: list[str], seed: int) -> list[float]:
        jobs = [Job(args.space, a, args.data, cfg, seed) for a in archs]
        return [r["test_accuracy"] for r in run_jobs(jobs, workers=args.workers)]

    for run in runs:
        models = run.final()["models"]
        alone = train([m["arch"] for m in models], run.seed)
        gaps = [m["one_shot_accuracy"] - a for m, a in zip(models, alone, strict=True)]
        out["table6"].append(
            {
                "method": run.label.split(" seed")[0],
                "seed": run.seed,
                "labels": [m["label"] for m in models],
                "standalone": alone,
                "one_shot": [m["one_shot_accuracy"] for m in models],
                "best": max(alone),
                "gap": float(np.mean(gaps)),
                "noise_ceiling": run.ceiling(),
            }
        )
        if run.stages == 4:
            window = LatencyWindow(
                *json.loads((run.path / "config.json").read_text())["latency_window_ms"]
            )
            base = SearchSpace.from_family(args.space)
            ad = run.final_space()
            tag = SHORT[args.space]
            for name, space in ((f"Random-{tag}", base), (f"Random-{tag}-AD", ad)):
                model = LatencyModel.from_lut(lut, space)
                archs = random_window_archs(space, model, window, args.k, run.seed)
                out["table7"].append(
                    {
                        "name": name,
                        "seed": run.seed,
                        "archs": archs,
                        "standalone": train(archs, run.seed),
                        "noise_ceiling": run.ceiling() if space is ad else None,
                    }
                )
    args.runs.mkdir(parents=True, exist_ok=True)
    (args.runs / "tables_6_7.json").write_text(json.dumps(out, indent=1))

    print("\nTable 6: final models trained stand-alone (test accuracy, %)")
    print(f"{'method':<12} {'best stand-alone':<18} {'gap one-shot - stand-alone':<28} paper")
    for method in ("I-Supernet", "PAD-NAS"):
        rows = [r for r in out["table6"] if r["method"] == method]
        best = 100 * np.array([r["best"] for r in rows])
        gap = 100 * np.array([r["gap"] for r in rows])
        paper = PAPER_T6.get((args.space, method), "(the paper has no such row)")
        print(
            f"{method:<12} {best.mean():6.2f} ± {best.std():4.2f}     "
            f"{gap.mean():+6.2f} ± {gap.std():4.2f} pts{'':13}{paper}"
        )
        print(f"{'':13}[{ceiling_text([r['noise_ceiling'] for r in rows])}]")
    print(f"\nTable 7: {args.k} random window architectures per seed, stand-alone (test, %)")
    print(f"{'algorithm':<14} {'ours':<16} paper")
    for name in dict.fromkeys(r["name"] for r in out["table7"]):
        accs = 100 * np.concatenate([r["standalone"] for r in out["table7"] if r["name"] == name])
        p = PAPER_T7.get(name)
        print(
            f"{name:<14} {accs.mean():6.2f} ± {accs.std():4.2f}   "
            + (f"{p[0]:.2f} ± {p[1]:.2f}" if p else "")
        )
        if name.endswith("-AD"):  # the space the M = 4 searches pruned by one-shot ranking
            blocks = [r["noise_ceiling"] for r in out["table7"] if r["name"] == name]
            print(f"{'':15}[pruned by a ranking with {ceiling_text(blocks)}]")
    print(f"\nwall {time.perf_counter() - t0:.0f} s; figures in {args.runs / 'tables_6_7.json'}")


if __name__ == "__main__":
    resumable(main)
