"""Shared plumbing of the evidence benchmarks (ranking.py, tables_6_7.py): the searches they
compare, run through the real ``padnas search`` command into resumable run directories, and the
stand-alone schedule they train architectures with.

A search that is finished is read back, one that was interrupted continues with ``--resume``, so
re-running a benchmark after Ctrl-C redoes nothing that was kept.

Searches with M >= 3 and the same seed begin identically: the same initial supernet (stage 1 keeps
the preset's first schedule entry whatever M is, pipeline.stage_schedule) and the same stage-2 CES.
The runs of ev2 showed it byte for byte (M = 3 and M = 4 at seeds 0-2: equal stage-1 checkpoints
and stage-2 CES logs), so the longest of them runs first and the others start from a copy of its
stage 1 and its stage-2 search instead of recomputing them (:func:`share_prefix`).

Every figure these benchmarks print stands beside the noise ceiling of the searches behind it
(:func:`ceiling_text`): Kendall tau between two stage-1 supernets that differ only by their seed,
and the seed noise of a one-shot accuracy, as each search's summary records them
(``padnas.search.ceiling``; the quick preset measures it by default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from padnas.run.settings import PRESETS, method_name, stage_schedule  # noqa: E402
from padnas.search.ceiling import spread_by_latency  # noqa: E402
from padnas.space import SPACE_NAMES, SearchSpace  # noqa: E402
from padnas.train.config import TrainConfig  # noqa: E402

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

    @property
    def rank_by(self) -> str:
        """The one-shot score the search ranked by (runs from before the option: accuracy)."""
        config = json.loads((self.path / "config.json").read_text())
        return config["preset"].get("rank_by", "accuracy")

    def ceiling(self) -> dict | None:
        """The search's noise ceiling (summary.json's ``noise_ceiling``; None: not measured)."""
        return json.loads((self.path / "summary.json").read_text()).get("noise_ceiling")

    def seconds(self) -> float:
        state = json.loads((self.path / "state.json").read_text())
        return sum(float(v.get("seconds") or 0) for v in state.get("done", {}).values())


def share_prefix(donor: SearchRun, run: SearchRun, preset: str) -> None:
    """Start ``run`` (M >= 3) from ``donor``'s stage 1 and stage-2 search (same seed, M >= 3):
    its config is the donor's with M's method, stages and schedule, so ``--resume`` checks it
    like any other; the supernet checkpoint and the CES log are copies, so stage 1 is already
    trained and the stage-2 search replays from the log. Pruning and finetuning follow from them."""
    config = json.loads((donor.path / "config.json").read_text())
    config.update(
        method=method_name(run.stages),
        stages=run.stages,
        schedule=[[st.epochs, st.lr] for st in stage_schedule(PRESETS[preset].train, run.stages)],
    )
    tmp = run.path.with_name(run.path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(donor.path / "stage-1", tmp / "stage-1")
    (tmp / "stage-2").mkdir()
    for name in ("ces.jsonl", "search.json"):
        shutil.copy2(donor.path / "stage-2" / name, tmp / "stage-2" / name)
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    tmp.rename(run.path)


def run_searches(
    root: Path,
    family: str,
    lut: str,
    data: str,
    stages: list[int],
    seeds: list[int],
    preset: str,
    workers: int,
    window: str | None = None,
) -> list[SearchRun]:
    """Run (or finish, or just read) one search per (stages, seed); ``workers`` at a time.

    ``window`` (``LO:HI`` ms) is passed as ``--latency-window``; None keeps the LUT's default.
    Runs are returned in (seed, stages) order; they are started longest first (the donors of
    :func:`share_prefix`, then M = 2, then the runs that reuse a donor's first two stages).
    """
    tag = f"{family}-w{window.replace(':', '-')}" if window else family
    runs = [SearchRun(root / f"{tag}-M{m}-seed{s}", m, s) for s in seeds for m in stages]
    donors = {
        s: SearchRun(root / f"{tag}-M{max(stages)}-seed{s}", max(stages), s)
        for s in seeds
        if sum(m >= 3 for m in stages) >= 2
    }
    failed: set[Path] = set()

    def wait_for_prefix(donor: SearchRun, run: SearchRun) -> None:
        """Until the donor's stage-2 search is done (it runs in another worker)."""
        while True:
            if donor.path in failed:
                raise SystemExit(f"search {donor.label} failed; {run.label} needs its stage 2")
            state = donor.path / "state.json"
            if state.exists() and "search-2" in json.loads(state.read_text()).get("done", {}):
                return
            time.sleep(2)

    def one(run: SearchRun) -> None:
        if (run.path / "final.json").exists():
            return
        donor = donors.get(run.seed)
        if donor and run.stages >= 3 and run != donor and not run.path.exists():
            wait_for_prefix(donor, run)
            share_prefix(donor, run, preset)
            print(f"  search: {run.label} starts from {donor.label}'s stages 1-2", flush=True)
        cmd = [
            sys.executable,
            "-m",
            "padnas.cli",
            "search",
            "--lut",
            lut,
            "--space",
            family,
            "--data",
            data,
            "--stages",
            str(run.stages),
            "--seed",
            str(run.seed),
            "--preset",
            preset,
            "--out",
            str(run.path),
            "--quiet",
            "--threads",
            "1",
        ]
        if window:
            cmd += ["--latency-window", window]
        if run.path.exists():
            cmd.append("--resume")
        print(f"  search: {run.label} -> {run.path}", flush=True)
        log = run.path.with_suffix(".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            rc = subprocess.call(
                cmd,
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        if rc != 0:
            failed.add(run.path)
            raise SystemExit(f"search {run.label} failed (exit {rc}); see {log}")

    def order(run: SearchRun) -> tuple[int, int]:
        donor = donors.get(run.seed)
        return (0 if run == donor else 1 if run.stages == 2 or not donor else 2, run.seed)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(one, sorted(runs, key=order)))
    return runs


def resumable(main) -> None:
    """Run a benchmark's ``main``; Ctrl-C ends it with one line (exit 130) instead of a
    traceback: the searches keep their run directories and finished trainings are cached."""
    try:
        main()
    except KeyboardInterrupt:
        print(
            "interrupted: finished searches and trainings are kept; run the same command "
            "again to resume",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


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
    """``n`` distinct records at evenly spaced positions of the latency order (the rule the
    noise ceiling picks its architectures by)."""
    at = spread_by_latency([r["latency_ms"] for r in records], [r["arch"] for r in records], n)
    return [records[i] for i in at]


def ceiling_text(blocks: list[dict | None], *, short: bool = False) -> str:
    """The noise ceiling of one or more searches (their summaries' ``noise_ceiling``), for a
    table cell: tau between seeds (mean ± std over the searches) and, unless ``short``, the seed
    noise of one model's one-shot score and of a difference of two (points of accuracy, or nats
    of log-likelihood when the searches ranked by it)."""
    got = [b for b in blocks if b is not None]
    missing = len(blocks) - len(got)
    if not got:
        return "ceiling not measured"
    taus = np.array([b["tau"] for b in got if b["tau"] is not None], dtype=float)
    tau = f"tau {taus.mean():+.2f}" if len(taus) else "tau undefined"
    if len(taus) > 1:
        tau += f" ± {taus.std():.2f}"
    if any(b.get("rank_by") == "log_likelihood" for b in got):
        tau += " by log-likelihood"
    if short:
        return f"ceiling {tau}"
    if any(b.get("rank_by") == "log_likelihood" for b in got):
        one = np.mean([b["log_likelihood_noise"] for b in got])
        two = np.mean([b["ll_step_noise"] for b in got])
        text = f"ceiling {tau}, ±{one:.3f} nats per model, ±{two:.3f} per difference"
    else:
        one = 100 * np.mean([b["accuracy_noise"] for b in got])
        two = 100 * np.mean([b["step_noise"] for b in got])
        text = f"ceiling {tau}, ±{one:.1f} pts per model, ±{two:.1f} per difference"
    return text + (f" ({missing} of {len(blocks)} not measured)" if missing else "")


def standalone_config(preset: str) -> TrainConfig:
    """The stand-alone schedule every evidence benchmark trains with: the preset's own."""
    return PRESETS[preset].train
