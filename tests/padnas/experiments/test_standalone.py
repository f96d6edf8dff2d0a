"""Stand-alone ground truth: the per-(arch, data, schedule, seed) cache and rank consistency."""

from __future__ import annotations

import json

import pytest

from padnas.experiments import standalone
from padnas.experiments.standalone import Job, StandaloneCache, rank_consistency, run_jobs
from padnas.run.settings import PRESETS
from padnas.space import get_space
from padnas.train.config import Stage

TINY = PRESETS["quick"].train.replace(
    standalone=Stage(1, 0.05), batch_size=64, train_per_class=None
)


def _arch(seed: int = 0) -> str:
    import numpy as np

    return str(get_space("basic").sample(np.random.default_rng(seed)))


def test_rank_consistency_on_a_hand_checked_example():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5 - 1) / 6
    assert rank_consistency([0.1, 0.2, 0.3, 0.4], [0.5, 0.7, 0.6, 0.8]) == pytest.approx(2 / 3)
    assert rank_consistency([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two equally long lists"):
        rank_consistency([1, 2], [1])


def test_results_are_cached_per_arch_data_schedule_and_seed(tmp_path, monkeypatch):
    cache = StandaloneCache(tmp_path)
    job = Job("basic", _arch(), "digits", TINY, seed=0)
    [first] = run_jobs([job], cache=cache)  # a real (one-epoch) training
    assert 0.0 <= first["test_accuracy"] <= 1.0 and first["job"] == job.identity()
    assert cache.path(job).is_file()

    calls = []

    def counting(j):
        calls.append(j)
        return {"test_accuracy": 0.5, "val_accuracy": 0.5, "seconds": 0.0}

    monkeypatch.setattr(standalone, "train_job", counting)
    [again] = run_jobs([job], cache=cache)
    assert again == first and calls == []  # read back, not retrained
    # any change of seed, schedule, data or arch is another job
    others = [
        Job("basic", job.arch, "digits", TINY, seed=1),
        Job("basic", job.arch, "digits", TINY.replace(standalone=Stage(2, 0.05)), seed=0),
        Job("basic", job.arch, "mnist5k", TINY, seed=0),
        Job("basic", _arch(1), "digits", TINY, seed=0),
    ]
    run_jobs([*others, job, others[0]], cache=cache)
    assert calls == others  # each trained once, duplicates and the cached job not at all
    assert len({o.key() for o in [*others, job]}) == 5


def test_a_damaged_or_foreign_cache_file_counts_as_absent(tmp_path):
    cache = StandaloneCache(tmp_path)
    job = Job("basic", _arch(), "digits", TINY, seed=0)
    cache.root.mkdir(parents=True, exist_ok=True)
    cache.path(job).write_text("{truncated")
    assert cache.get(job) is None
    other = Job("basic", job.arch, "digits", TINY, seed=5)
    cache.path(job).write_text(json.dumps({"job": other.identity(), "test_accuracy": 0.9}))
    assert cache.get(job) is None
    cache.put(job, {"test_accuracy": 0.25, "val_accuracy": 0.5, "seconds": 3.0})
    assert cache.get(job)["test_accuracy"] == 0.25
