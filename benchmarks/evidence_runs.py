"""Shared plumbing of the evidence benchmarks (ranking.py, tables_6_7.py): the searches they
compare, run through the real ``padnas search`` command into resumable run directories, and the
stand-alone schedule they train architectures with.

A search that is finished is read back, one that was interrupted continues with ``--resume``, so
re-running a benchmark after Ctrl-C redoes nothing that was kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from padnas.presets import PRESETS, TrainConfig  # noqa: E402
from padnas.space import SPACE_NAMES, SearchSpace  # noqa: E402

METHODS = {2: "I-Supernet", 3: "P-Supernet", 4: "PAD-NAS"}


@dataclass(frozen=True)
class SearchRun:
    """One ``padnas search`` of ``stages`` stages with ``seed`` in ``path``."""

    path: Path
    stages: int
    seed: int

    @property
    def label(self) -> str:
        return f"{METHODS.get(self.stages, f'M={self.stages}')} seed {self.seed}"

    def final_stage(self) -> dict:
        return json.loads((self.path / f"stage-{self.stages}" / "search.json").read_text())

    def final(self) -> dict:
        return json.loads((self.path / "final.json").read_text())

    def final_space(self) -> SearchSpace:
        """The space the last search ran in (the auto-designed space for M > 2)."""
        data = json.loads((self.path / f"stage-{self.stages - 1}" / "space.json").read_text())
        return SearchSpace.from_dict(data)

    def seconds(self) -> float:
        state = json.loads((self.path / "state.json").read_text())
        return sum(float(v.get("seconds") or 0) for v in state.get("done", {}).values())


def run_searches(
    root: Path, family: str, lut: str, data: str, stages: list[int], seeds: list[int],
    preset: str, workers: int, window: str | None = None,
) -> list[SearchRun]:  # fmt: skip
    """Run (or finish, or just read) one search per (stages, seed); ``workers`` at a time.

    ``window`` (``LO:HI`` ms) is passed as ``--latency-window``; None keeps the LUT's default.
    """
    tag = f"{family}-w{window.replace(':', '-')}" if window else family
    runs = [SearchRun(root / f"{tag}-M{m}-seed{s}", m, s) for s in seeds for m in stages]

    def one(run: SearchRun) -> None:
        if (run.path / "final.json").exists():
            return
        cmd = [
            sys.executable, "-m", "padnas.cli", "search", "--lut", lut, "--space", family,
            "--data", data, "--stages", str(run.stages), "--seed", str(run.seed),
            "--preset", preset, "--out", str(run.path), "--quiet", "--threads", "1",
        ]  # fmt: skip
        if window:
            cmd += ["--latency-window", window]
        if run.path.exists():
            cmd.append("--resume")
        print(f"  search: {run.label} -> {run.path}", flush=True)
        log = run.path.with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            rc = subprocess.call(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        if rc != 0:
            raise SystemExit(f"search {run.label} failed (exit {rc}); see {log}")

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(one, runs))
    return runs


def add_search_args(ap) -> None:
    """The options every evidence benchmark shares: which searches, where, how many workers."""
    # basic space, 40-100 ms: the large space's supernet does not learn at the quick preset's
    # budget, and in the paper's 60-70 ms window stand-alone accuracy barely varies at this
    # scale (docs/reproduction.md)
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--lut", default="device_profiles/pixel3.json")
    ap.add_argument("--data", default="fashion")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--window", default="40:100", help="latency window LO:HI ms of the searches")
    ap.add_argument("--runs", type=Path, default=Path("runs/bench-ranking"))
    ap.add_argument("--workers", type=int, default=2)


def spread(records: list[dict], n: int) -> list[dict]:
    """``n`` distinct records at evenly spaced positions of the latency order."""
    order = sorted(records, key=lambda r: (r["latency_ms"], r["arch"]))
    if len(order) <= n:
        return order
    idx = np.unique(np.round(np.linspace(0, len(order) - 1, n)).astype(int))
    return [order[i] for i in idx]


def standalone_config(preset: str) -> TrainConfig:
    """The stand-alone schedule every evidence benchmark trains with: the preset's own."""
    return PRESETS[preset]
