"""Stand-alone ground truth: train architectures from scratch, cached per (arch, data, schedule,
seed), in parallel worker processes.

Every evidence benchmark (proxy stability, Kendall tau, Tables 6 and 7) compares one-shot accuracy
with the accuracy an architecture reaches when trained alone. Those trainings dominate the cost, so
each result is stored the moment it exists as one JSON file named by the SHA-256 of everything that
determines it; a re-run, an interrupted run, or another benchmark asking for the same training
reads it instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from latency.cache import cache_root
from padnas.core import atomic_write_json, read_json
from padnas.search.ces import StoredRecordError, check_accuracy
from padnas.train.config import TrainConfig

CACHE_FORMAT = 1


@dataclass(frozen=True)
class Job:
    """One stand-alone training: ``arch`` of space ``family`` on ``data`` under ``config``'s
    stand-alone schedule (``config.standalone``, proxy, batch, smoothing, init) with ``seed``."""

    family: str
    arch: str
    data: str
    config: TrainConfig
    seed: int

    def identity(self) -> dict:
        """Everything that determines the result (the cache key is its hash)."""
        return {
            "format": CACHE_FORMAT,
            "family": self.family,
            "arch": self.arch,
            "data": self.data,
            "config": self.config.to_dict(),
            "seed": self.seed,
        }

    def key(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    return cache_root() / "standalone"


class StandaloneCache:
    """One JSON file per finished job under ``root``; unreadable or foreign files are absent."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, job: Job) -> Path:
        return self.root / f"{job.key()}.json"

    def get(self, job: Job) -> dict | None:
        """The cached result of ``job`` (None when there is none, or the file is unreadable or
        another job's); a result holding impossible values is refused, never returned."""
        path = self.path(job)
        try:
            record = read_json(path, expect=dict)
        except (OSError, ValueError):
            return None
        if record.get("job") != job.identity():
            return None
        fix = "delete it to train the job again"
        for name in ("test_accuracy", "val_accuracy"):
            check_accuracy(record.get(name), f"{path}: {name}", fix)
        seconds = record.get("seconds")
        if (
            not isinstance(seconds, (int, float))
            or isinstance(seconds, bool)
            or not 0 <= seconds < float("inf")
        ):
            raise StoredRecordError(f"{path}: seconds must be a number >= 0; {fix}")
        return record

    def put(self, job: Job, result: dict) -> dict:
        record = {"job": job.identity(), **result}
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path(job), record)
        return record


def train_job(job: Job) -> dict:
    """Train ``job`` from scratch; return test and validation accuracy and the seconds it took."""
    import torch

    from padnas.data.datasets import load_data
    from padnas.search.oneshot import evaluate_model
    from padnas.space import get_space
    from padnas.train.loop import train_arch

    t0 = time.perf_counter()
    cfg = job.config
    data = load_data(job.data, cfg.resolution, job.seed, cfg.train_per_class)
    space = get_space(job.family)
    with tempfile.TemporaryDirectory(prefix="padnas-standalone-") as tmp:
        net = train_arch(
            space, job.arch, data, cfg, tmp, seed=job.seed, resume=False, progress=False
        )
    with torch.inference_mode():
        test = evaluate_model(net, data.test, batch_size=cfg.eval_batch_size)
        val = evaluate_model(net, data.val, batch_size=cfg.eval_batch_size)
    return {
        "test_accuracy": test,
        "val_accuracy": val,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _train_indexed(item: tuple[int, Job]) -> tuple[int, dict]:
    return item[0], train_job(item[1])


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_jobs(
    jobs: Sequence[Job],
    *,
    cache: StandaloneCache | None = None,
    workers: int = 1,
    on_done: Callable[[Job, dict], None] | None = None,
) -> list[dict]:
    """Results of ``jobs`` in order: cached ones read, the rest trained by ``workers`` processes
    (one torch thread each) and stored as each finishes, so Ctrl-C loses only running jobs."""
    cache = cache or StandaloneCache()
    results: dict[str, dict] = {}
    todo: list[Job] = []
    for job in jobs:
        hit = cache.get(job)
        if hit is not None:
            results[job.key()] = hit
        elif job.key() not in {j.key() for j in todo}:
            todo.append(job)

    def store(job: Job, result: dict) -> None:
        results[job.key()] = cache.put(job, result)
        if on_done is not None:
            on_done(job, results[job.key()])

    if workers <= 1 or len(todo) <= 1:
        _worker_init(1)
        for job in todo:
            store(job, train_job(job))
    else:
        ctx = mp.get_context("spawn")  # torch and fork do not mix
        with ctx.Pool(min(workers, len(todo)), _worker_init, (1,)) as pool:
            for i, result in pool.imap_unordered(_train_indexed, list(enumerate(todo))):
                store(todo[i], result)
    return [results[job.key()] for job in jobs]


def rank_consistency(one_shot: Sequence[float], standalone: Sequence[float]) -> float:
    """Kendall's tau-b (scipy) between one-shot and stand-alone accuracies of the same archs:
    1 = the supernet ranks them exactly as training them alone does, 0 = no relation."""
    from scipy.stats import kendalltau

    if len(one_shot) != len(standalone) or len(one_shot) < 2:
        raise ValueError("rank consistency needs two equally long lists of at least 2 accuracies")
    return float(kendalltau(one_shot, standalone).statistic)


def jobs_for(
    family: str, archs: Iterable[str], data: str, config: TrainConfig, seeds: Iterable[int]
) -> list[Job]:
    """Every (arch, seed) pair as a job, archs outermost."""
    seeds = list(seeds)
    return [Job(family, str(a), data, config, s) for a in archs for s in seeds]
