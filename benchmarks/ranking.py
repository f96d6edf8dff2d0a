"""Ranking consistency of one-shot accuracy (the paper's Table 8 and Fig. 6) at CPU scale.

For each number of stages M in ``--stages`` (2 = I-Supernet, 3 = P-Supernet, 4 = PAD-NAS; the same
total supernet epochs, stage_schedule) and each seed in ``--seeds``: run ``padnas search`` on the
proxy task, take ``--n`` architectures spread evenly along the latency order of the final stage's
evaluated set (all in the latency window), train each stand-alone with the preset's one short fixed
schedule and the same seed, and compute Kendall's tau (scipy) between their one-shot score (the one
the search ranked by: accuracy, or log-likelihood; the accuracy's tau is printed beside it then)
and stand-alone accuracy. Prints tau per seed, mean +- std over seeds, the final space's size, and
the paper's tau beside it, and beside every tau the noise ceiling of the searches behind it (tau
between two stage-1 supernets differing only by seed, and the seed noise of one one-shot score: a
tau against stand-alone accuracy cannot be trusted beyond it); draws one-shot vs stand-alone
accuracy per setting.

What it reproduces: the *direction* of Table 8 (does tau rise with M?) on Fashion-MNIST at 32x32,
width 0.25, minutes of training; not the paper's ImageNet numbers.

M = 3 starts from a copy of the M = 4 search's first two stages, which are the same (evidence_runs).
Searches live in resumable run directories and stand-alone results in a per-(arch, data,
schedule, seed) cache, so a re-run or a run after Ctrl-C repeats nothing.

Usage: python benchmarks/ranking.py [--space basic] [--window 40:100] [--stages 2 3 4]
       [--seeds 0 1 2] [--n 12]
       [--runs runs/bench-ranking] [--workers 2] [--plot docs/figures/ranking.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from evidence_runs import (
    METHODS,
    add_search_args,
    ceiling_text,
    resumable,
    run_searches,
    spread,
    standalone_config,
)

from padnas.experiments.standalone import Job, rank_consistency, run_jobs

# Table 8 of the paper (ImageNet, 30 models on the front, 3 seeds; large space unless "-S").
PAPER_TAU = {2: (0.4977, 0.0573), 3: (0.7451, 0.0332), 4: (0.8879, 0.0201)}
PAPER_SIZE = {2: "1e27", 3: "1e15", 4: "1e9"}


def rank_setting(run, picks: list[dict], alone: list[float]) -> dict:
    """tau between the one-shot score ``run``'s final search ranked by (accuracy or
    log-likelihood) and stand-alone accuracy of ``picks``; the one-shot accuracy's tau beside."""
    one_shot = [r["accuracy"] for r in picks]
    score = [r[run.rank_by] for r in picks]
    return {
        "label": run.label,
        "stages": run.stages,
        "seed": run.seed,
        "rank_by": run.rank_by,
        "tau": rank_consistency(score, alone),
        "accuracy_tau": rank_consistency(one_shot, alone),
        "space_size": float(run.final_space().size),
        "archs": [r["arch"] for r in picks],
        "latency_ms": [r["latency_ms"] for r in picks],
        "one_shot": one_shot,
        "score": score,
        "standalone": alone,
        "search_seconds": run.seconds(),
        "noise_ceiling": run.ceiling(),
    }


def train_all(runs, n: int, data: str, preset: str, family: str, workers: int) -> list[dict]:
    """Every setting's ``n`` picks trained stand-alone in one pool (no idle core between
    settings), then one row per run."""
    picks = [spread(run.final_stage()["records"], n) for run in runs]
    cfg = standalone_config(preset)
    jobs = [
        Job(family, r["arch"], data, cfg, run.seed)
        for run, p in zip(runs, picks, strict=True)
        for r in p
    ]
    done = []
    print(f"stand-alone: {len(jobs)} trainings (cached ones are read)", flush=True)
    results = run_jobs(
        jobs,
        workers=workers,
        on_done=lambda j, r: (
            done.append(1),
            print(
                f"    stand-alone {len(done)}: {r['test_accuracy']:.4f} ({r['seconds']:.0f} s)",
                flush=True,
            ),
        ),
    )
    accs = iter(r["test_accuracy"] for r in results)  # in job order: run by run
    return [
        rank_setting(run, p, [next(accs) for _ in p]) for run, p in zip(runs, picks, strict=True)
    ]


def plot(rows: list[dict], stages: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.8), squeeze=False)
    for ax, m in zip(axes[0], stages, strict=True):
        taus = [r["tau"] for r in rows if r["stages"] == m]
        for r in (r for r in rows if r["stages"] == m):
            # the score tau is measured on (older rows kept only the accuracy)
            ax.scatter(
                r.get("score", r["one_shot"]), r["standalone"], s=14, label=f"seed {r['seed']}"
            )
        ceiling = ceiling_text([r["noise_ceiling"] for r in rows if r["stages"] == m], short=True)
        ax.set_title(
            f"{METHODS[m]} (M={m}): tau {np.mean(taus):.2f} ± {np.std(taus):.2f}\n{ceiling}",
            fontsize=9,
        )
        scores = {r.get("rank_by", "accuracy") if "score" in r else "accuracy" for r in rows}
        ax.set_xlabel(f"one-shot {' / '.join(sorted(scores)).replace('_', '-')} (search's images)")
        ax.set_ylabel("stand-alone accuracy (test)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_search_args(ap)
    ap.add_argument("--stages", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=12, help="architectures per search (>= 12)")
    ap.add_argument("--plot", type=Path, default=Path("docs/figures/ranking.png"))
    args = ap.parse_args()

    t0 = time.perf_counter()
    print(f"searches: M in {args.stages} x seeds {args.seeds} ({args.space}, {args.data})")
    runs = run_searches(
        args.runs,
        args.space,
        args.lut,
        args.data,
        args.stages,
        args.seeds,
        args.preset,
        args.workers,
        args.window,
    )
    rows = train_all(runs, args.n, args.data, args.preset, args.space, args.workers)
    (args.runs / "ranking.json").write_text(json.dumps(rows, indent=1))
    print(
        f"\n{'setting':<12} {'M':>2} {'tau per seed':<24} {'tau mean±std':<14} "
        f"{'size':>9} {'paper tau':<14} {'paper size':>10}"
    )
    for m in args.stages:
        sel = [r for r in rows if r["stages"] == m]
        taus = np.array([r["tau"] for r in sel])
        size = np.median([r["space_size"] for r in sel])
        p_mean, p_std = PAPER_TAU.get(m, (float("nan"), float("nan")))
        print(
            f"{METHODS[m]:<12} {m:>2} {' '.join(f'{t:+.2f}' for t in taus):<24} "
            f"{taus.mean():+.2f} ± {taus.std():.2f}   {size:9.2e} "
            f"{p_mean:.4f}±{p_std:.4f} {PAPER_SIZE.get(m, '?'):>10}  "
            f"[{ceiling_text([r['noise_ceiling'] for r in sel])}]"
        )
        if any(r.get("rank_by", "accuracy") != "accuracy" for r in sel):
            acc = np.array([r["accuracy_tau"] for r in sel])
            print(
                f"{'':<15} ranked by {sel[0]['rank_by']}; by one-shot accuracy: "
                f"{' '.join(f'{t:+.2f}' for t in acc)}  {acc.mean():+.2f} ± {acc.std():.2f}"
            )
    plot(rows, args.stages, args.plot)
    print(
        f"plot: {args.plot}; wall {time.perf_counter() - t0:.0f} s "
        f"(the searches' run directories record {sum(r['search_seconds'] for r in rows):.0f} s "
        "of work, summed; a re-run reads them)"
    )


if __name__ == "__main__":
    resumable(main)
