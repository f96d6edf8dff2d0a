"""What keeping the outputs of evaluated path prefixes saves a search's one-shot evaluations.

Replays the evaluations a finished search made (each stage's ``ces.jsonl``, generation by
generation, as CES asks for them) on the supernet that stage searched, with the prefix cache of
:class:`~padnas.search.oneshot.OneShotEvaluator` at each ``--budgets`` size in MB (0 keeps
nothing: every path from the images). Prints per budget the seconds per stage, the median
seconds per evaluation, the ratio of the median totals over ``--repeats`` replays to the
first budget's, the peak memory the cache held, and the largest
difference to the log-likelihoods the search recorded (0 where the replay runs on the machine the
search ran on: the cache changes no value).

    python benchmarks/prefix_cache.py runs/quick --budgets 0 256 512 1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from padnas.data.datasets import load_data
from padnas.search.oneshot import OneShotEvaluator
from padnas.train.checkpoint import load_supernet
from padnas.train.config import TrainConfig


def generations(path: Path) -> list[list[dict]]:
    """The evaluations of one search, grouped by generation, in the order they were made."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_gen: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        by_gen[row["generation"]].append(row)
    return [by_gen[g] for g in sorted(by_gen)]


def stage_evaluator(run: Path, stage: int, **kw) -> OneShotEvaluator:
    """The evaluator stage ``stage`` of ``run`` searched with (on the supernet of the stage
    before, with the run's preset and seed), its images laid out and its caches empty."""
    net, meta = load_supernet(run / f"stage-{stage - 1}" / "ckpt" / "checkpoint.pt")
    config = json.loads((run / "config.json").read_text())
    preset = TrainConfig.from_dict(config["preset"])
    data = load_data(
        meta["data"], net.proxy.resolution, meta.get("data_seed", 0), preset.train_per_class
    )
    ev = OneShotEvaluator.from_config(net, data, preset, seed=config["seed"], **kw)
    ev.evaluate(net.space.sample(np.random.default_rng(0)))  # layout, images on the device
    ev.reset()
    return ev


def replay(run: Path, stage: int, budget_mb: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    ev = stage_evaluator(run, stage, prefix_cache_mb=budget_mb)
    per_arch, worst, peak = [], 0.0, 0
    start = time.perf_counter()
    for rows in generations(run / f"stage-{stage}" / "ces.jsonl"):
        t = time.perf_counter()
        ll = ev.log_likelihoods([r["arch"] for r in rows])
        per_arch += [(time.perf_counter() - t) / len(rows)] * len(rows)
        worst = max(worst, float(np.abs(ll - [r["log_likelihood"] for r in rows]).max()))
        peak = max(peak, ev.prefix_cache_bytes)
    return {
        "seconds": time.perf_counter() - start,
        "per_arch": per_arch,
        "worst": worst,
        "peak_mb": peak / 2**20,
    }


def searched_stages(run: Path, threads: str) -> list[int]:
    """The stages of ``run`` that searched (refused when none), after printing what the replay
    runs on."""
    stages = sorted(int(p.parent.name.split("-")[1]) for p in run.glob("stage-*/ces.jsonl"))
    if not stages:
        raise SystemExit(f"{run}: no stage-*/ces.jsonl: give the folder of a finished search")
    print(
        f"{run}: stages {stages}, {threads}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    return stages


def stage_times(stages: list[int], seconds: list[list[float]]) -> tuple[float, str]:
    """The median total of replays' per-stage ``seconds`` (one list per replay), and the text
    "stage 2 S s, ...; all T s (median of R, range A-B" that reports them."""
    totals = [sum(run) for run in seconds]
    stage_s = np.median(seconds, axis=0)
    total = float(np.median(totals))
    text = (
        ", ".join(f"stage {k} {s:6.1f} s" for k, s in zip(stages, stage_s, strict=True))
        + f"; all {total:6.1f} s (median of {len(seconds)}, range {min(totals):.1f}-"
        f"{max(totals):.1f}"
    )
    return total, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished padnas search run folder")
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 256, 512, 1024])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=3, help="replays per budget (median)")
    a = ap.parse_args()
    stages = searched_stages(a.run, f"{a.threads} threads")
    base = None
    for budget in a.budgets:
        repeats = [[replay(a.run, k, budget, a.threads) for k in stages] for _ in range(a.repeats)]
        per_arch = [s for runs in repeats for r in runs for s in r["per_arch"]]
        total, times = stage_times(stages, [[r["seconds"] for r in runs] for runs in repeats])
        base = base or total
        print(
            f"  budget {budget:>5} MB: {times}; {base / total:.2f}x budget {a.budgets[0]}); median "
            f"{np.median(per_arch) * 1e3:6.1f} ms an evaluation; cache peak "
            f"{max(r['peak_mb'] for runs in repeats for r in runs):6.1f} MB; "
            f"max |log-likelihood - recorded| "
            f"{max(r['worst'] for runs in repeats for r in runs):.1e}; "
            f"load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
