#!/usr/bin/env python3
"""Stand-in for the Android ``benchmark_model`` binary, for the loopback ADB peer.

It really times the given ``.tflite`` on the host with the LiteRT interpreter and prints what
LiteRT's benchmark_model prints, with the same run-loop semantics: a warm-up batch of at least
``--warmup_runs`` runs and ``--warmup_min_secs`` seconds, then a measured batch of at least
``--num_runs`` runs and ``--min_secs`` seconds, each cut off after ``--max_secs``. Statistics
lines carry the p5/median/p95 suffix; timings are integer microseconds. Unknown flags are
warned about and ignored, as the real tool does.
"""

from __future__ import annotations

import math
import os
import sys
import time

DEFAULTS = {
    "graph": "",
    "num_runs": "50",
    "min_secs": "1.0",
    "max_secs": "150.0",
    "warmup_runs": "1",
    "warmup_min_secs": "0.5",
    "num_threads": "-1",
    "use_xnnpack": "false",
    "run_delay": "-1",
}


def usage() -> str:
    lines = [f"usage: {sys.argv[0]}", "Flags:"]
    lines += [f"\t--{k}={v}\t\toptional" for k, v in DEFAULTS.items()]
    return "\n".join(lines)


def fmt(x: float) -> str:
    return f"{x:g}"  # C++ ostream's default: 6 significant digits


def stats_line(values: list[int]) -> str:
    n = len(values)
    if n == 0:
        return "count=0"
    lo, hi = min(values), max(values)
    avg = sum(values) / n
    if lo == hi:
        head = f"count={n} curr={values[-1]}" + ("(all same)" if n > 1 else "")
    else:
        std = int(math.sqrt(max(sum(v * v for v in values) / n - avg * avg, 0.0)))
        head = (
            f"count={n} first={values[0]} curr={values[-1]} min={lo} max={hi} "
            f"avg={fmt(avg)} std={std}"
        )
    ordered = sorted(values)

    def pct(p: int) -> int:
        return ordered[n * p // 100] if p < 100 else ordered[-1]

    return f"{head} p5={pct(5)} median={pct(50)} p95={pct(95)}"


def run_batch(invoke, min_runs: int, min_secs: float, max_secs: float) -> list[int]:
    print(
        f"INFO: Running benchmark for at least {min_runs} iterations and at least "
        f"{fmt(min_secs)} seconds but terminate if exceeding {fmt(max_secs)} seconds.",
        flush=True,
    )
    values: list[int] = []
    now = time.perf_counter()
    min_finish, max_finish = now + min_secs, now + max_secs
    run = 0
    while (run < min_runs or now < min_finish) and now <= max_finish:
        start = time.perf_counter_ns()
        invoke()
        values.append((time.perf_counter_ns() - start) // 1000)
        now = time.perf_counter()
        run += 1
    print(f"INFO: {stats_line(values)}\n", flush=True)
    return values


def main(argv: list[str]) -> int:
    print("INFO: STARTING!", flush=True)
    params = dict(DEFAULTS)
    unknown = []
    for arg in argv:
        if arg in ("--help", "--help=true"):
            print(usage(), flush=True)
            return 1
        key, eq, value = arg[2:].partition("=")
        if arg.startswith("--") and eq and key in params:
            params[key] = value
        else:
            unknown.append(arg)
    if unknown:
        print(f"WARN: Unconsumed cmdline flags: {' '.join(unknown)}", flush=True)
    if not params["graph"]:
        print("ERROR: Please specify the name of your TF Lite input file with --graph")
        return 1
    if not os.path.isfile(params["graph"]):
        print(f"ERROR: Could not open '{params['graph']}'.\nERROR: Failed to mmap model.")
        return 1
    print(f"INFO: Num threads: [{params['num_threads']}]", flush=True)
    print(f"INFO: Graph: [{params['graph']}]", flush=True)

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    t0 = time.perf_counter_ns()
    threads = int(params["num_threads"])
    interp = Interpreter(model_path=params["graph"], num_threads=threads if threads > 0 else None)
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for det in interp.get_input_details():
        data = rng.standard_normal(det["shape"]).astype(det["dtype"])
        interp.set_tensor(det["index"], data)
    init_us = (time.perf_counter_ns() - t0) // 1000
    size_mb = os.path.getsize(params["graph"]) / 1e6
    print(f"INFO: The input model file size (MB): {fmt(size_mb)}", flush=True)
    print(f"INFO: Initialized session in {fmt(init_us / 1e3)}ms.", flush=True)

    max_secs = float(params["max_secs"])
    warm = run_batch(
        interp.invoke, int(params["warmup_runs"]), float(params["warmup_min_secs"]), max_secs
    )
    regular = run_batch(interp.invoke, int(params["num_runs"]), float(params["min_secs"]), max_secs)
    first = warm[0] if warm else regular[0]
    print(
        f"INFO: Inference timings in us: Init: {init_us}, First inference: {first}, "
        f"Warmup (avg): {fmt(sum(warm) / len(warm)) if warm else 0}, "
        f"Inference (avg): {fmt(sum(regular) / len(regular))}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
