"""What the deterministic mode (``--deterministic``) costs: quick-preset supernet training and
one-shot evaluation in the normal and the deterministic mode, side by side.

The mode's environment (portable ATen, oneDNN and MKL kernels; see
:mod:`padnas.train.reproducibility`) must be in place before torch loads, so every measurement
runs in a fresh child process: the normal mode in this process's environment, the deterministic
one in the pinned environment the ``padnas`` entry point uses. Each child builds the quick preset's
basic supernet (Fashion-MNIST, 500 images per class, 32x32, width 0.25, one thread), runs a few
untimed warm-up steps, then times one epoch of ``train_supernet`` (39 steps of 128) and the
one-shot evaluation (BN recalibration + validation accuracy) of ``--evals`` architectures.
Repeats alternate which mode runs first, so both see the same machine load; the figures are
medians over the repeats and their ratios (deterministic / normal), with the per-repeat ratios'
range beside them.

    python benchmarks/deterministic_cost.py [--repeats 3] [--evals 5] [--data fashion]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from padnas.train.reproducibility import cpu_model, pinned_environment

REPO = Path(__file__).resolve().parents[1]
MODES = ("normal", "deterministic")


def worker(mode: str, data_spec: str, evals: int) -> dict:
    """One measurement in this process (started by :func:`measure` with its environment)."""
    import dataclasses
    import tempfile

    import numpy as np
    import torch

    from padnas.data.datasets import TensorSplit, load_data
    from padnas.run.settings import PRESETS
    from padnas.search.oneshot import OneShotEvaluator
    from padnas.space import get_space
    from padnas.train.loop import build_supernet, train_supernet
    from padnas.train.reproducibility import enter_deterministic_mode

    if mode == "deterministic":
        enter_deterministic_mode()  # refuses unless the environment took
    torch.set_num_threads(1)
    cfg = PRESETS["quick"].train
    sp = get_space("basic")
    data = load_data(data_spec, cfg.resolution, 0, cfg.train_per_class)
    with tempfile.TemporaryDirectory() as tmp:
        warm = build_supernet(sp, cfg, data.num_classes, seed=1)
        t3, n = data.train, cfg.batch_size * 3  # three untimed warm-up steps
        short = dataclasses.replace(
            data, train=TensorSplit(t3.images[:n], t3.labels[:n], t3.mean, t3.std)
        )
        train_supernet(warm, short, cfg, Path(tmp) / "w", seed=0, epochs=1, progress=False)
        net = build_supernet(sp, cfg, data.num_classes, seed=0)
        t = time.perf_counter()
        train_supernet(net, data, cfg, Path(tmp) / "t", seed=0, epochs=1, progress=False)
        epoch_s = time.perf_counter() - t
    ev = OneShotEvaluator.from_config(net, data, cfg, seed=0)
    archs = [sp.sample(np.random.default_rng([7, i])) for i in range(evals + 1)]
    ev.accuracy(archs[:1])  # warm-up
    t = time.perf_counter()
    ev.accuracy(archs[1:])
    eval_s = (time.perf_counter() - t) / evals
    return {
        "mode": mode,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "epoch_s": epoch_s,
        "eval_s": eval_s,
    }


def measure(mode: str, data_spec: str, evals: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if mode == "deterministic":
        env = pinned_environment(env)
    cmd = [sys.executable, __file__, "--worker", mode, "--data", data_spec, "--evals", str(evals)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        sys.exit(f"{mode} worker failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--evals", type=int, default=5, help="one-shot evaluations timed per child")
    ap.add_argument("--data", default="fashion")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.evals)))
        return
    if args.repeats < 3:
        ap.error("--repeats must be >= 3 (medians of fewer say little)")
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    for r in range(args.repeats):
        for mode in MODES if r % 2 == 0 else MODES[::-1]:
            got = measure(mode, args.data, args.evals)
            runs[mode].append(got)
            print(
                f"repeat {r + 1} {mode:<13} ({got['capability']}, {got['threads']} thread): "
                f"epoch {got['epoch_s']:.2f} s, one-shot eval {got['eval_s'] * 1e3:.0f} ms",
                flush=True,
            )
    print(
        f"quick preset, basic space, {args.data}, one thread; CPU: {cpu_model()}, "
        f"{os.cpu_count()} cores; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )
    for key, label, scale, unit in (
        ("epoch_s", "supernet epoch", 1, "s"),
        ("eval_s", "one-shot evaluation", 1e3, "ms"),
    ):
        normal = [x[key] for x in runs["normal"]]
        det = [x[key] for x in runs["deterministic"]]
        ratios = [d / n for d, n in zip(det, normal, strict=True)]
        med_n, med_d = statistics.median(normal), statistics.median(det)
        print(
            f"{label}: normal {med_n * scale:.2f} {unit}, deterministic {med_d * scale:.2f} "
            f"{unit} (medians of {args.repeats}); ratio {med_d / med_n:.2f} "
            f"(per repeat {min(ratios):.2f}..{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
