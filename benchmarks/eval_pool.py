"""What spreading one-shot evaluation over processes saves a search (padnas.search.eval_pool).

Replays the evaluations a finished search made (each stage's ``ces.jsonl``, generation by
generation, as CES asks for them) on the supernet that stage searched, in 1 process and in each
of ``--processes`` (this one and helpers, one torch thread each). Prints per process count the
seconds per stage, the median total over ``--repeats`` replays with its range, the ratio to one
process, and the largest difference to the log-likelihoods the search recorded (0 where the
replay runs on the machine the search ran on: spreading changes no value). The helpers start
before the clock does, as a search starts them once for all its stages.

    python benchmarks/eval_pool.py runs/quick --processes 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from padnas.search.eval_pool import EvaluationPool
from padnas.search.oneshot import OneShotEvaluator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prefix_cache import generations, searched_stages, stage_evaluator, stage_times


def replay(run: Path, stages: list[int], pool: EvaluationPool) -> dict:
    seconds, worst = [], 0.0
    for k in stages:
        local: OneShotEvaluator = stage_evaluator(run, k)
        ev = pool.spread(local)
        t = time.perf_counter()
        for rows in generations(run / f"stage-{k}" / "ces.jsonl"):
            ll = ev.log_likelihoods([r["arch"] for r in rows])
            worst = max(worst, float(np.abs(ll - [r["log_likelihood"] for r in rows]).max()))
        seconds.append(time.perf_counter() - t)
    return {"seconds": seconds, "worst": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished padnas search run folder")
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="replays per process count (median)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    stages = searched_stages(a.run, "1 thread a process")
    base = None
    for n in a.processes:
        with EvaluationPool(n) as pool:
            # the helpers' start (spawn, import torch) is not part of a stage's evaluations
            first = stage_evaluator(a.run, stages[0])
            rng = np.random.default_rng(0)
            pool.spread(first).accuracy([first.supernet.space.sample(rng) for _ in range(2 * n)])
            repeats = [replay(a.run, stages, pool) for _ in range(a.repeats)]
        total, times = stage_times(stages, [r["seconds"] for r in repeats])
        base = base or total
        print(
            f"  {n} process(es): {times}; {base / total:.2f}x {a.processes[0]} process(es)); "
            f"max |log-likelihood - recorded| {max(r['worst'] for r in repeats):.1e}; "
            f"load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
