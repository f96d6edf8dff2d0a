"""One-shot evaluation shared out among 2 gloo ranks equals one process; one run dir writer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from padnas.data.datasets import TensorSplit, load_data
from padnas.run.settings import PRESETS
from padnas.search.oneshot import OneShotEvaluator
from padnas.search.sharding import shard, sharded
from padnas.space import get_space
from padnas.train.checkpoint import load_supernet
from padnas.train.distributed import DistContext
from padnas.train.loop import build_supernet, train_supernet

torch.set_num_threads(1)

CFG = PRESETS["quick"].train.replace(batch_size=64)
N_ARCHS = 7  # odd: the ranks get 4 and 3


def tiny_data():
    d = load_data("digits", 32, seed=0)
    t = d.train
    return dataclasses.replace(d, train=TensorSplit(t.images[:256], t.labels[:256], t.mean, t.std))


def _archs():
    sp = get_space("basic")
    return [sp.sample(np.random.default_rng([42, i])) for i in range(N_ARCHS)]


def _evaluator(ckpt: str) -> OneShotEvaluator:
    net, _ = load_supernet(ckpt)
    return OneShotEvaluator(net, tiny_data(), recal_batches=1, batch_size=64, seed=3)


def _worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist

    from padnas.run.ranks import open_run
    from padnas.train.distributed import dist_context

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world)
    try:
        ctx = dist_context()
        ev = _evaluator(f"{tmp}/ckpt")
        acc = sharded(ev.accuracy, ctx)(_archs())
        run = open_run(f"{tmp}/run", {"x": 1}, resume=False, ctx=ctx)
        try:
            open_run(f"{tmp}/run", {"x": 2}, resume=True, ctx=ctx)
            refused = ""
        except Exception as exc:  # every rank must be told, none left waiting
            refused = str(exc)
        out = {
            "accuracy": acc.tolist(),
            "evaluated_here": ev.cache_size,
            "run_dir": str(run.path),
            "refused": refused,
        }
        Path(f"{tmp}/rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shard")
    data = tiny_data()
    net = build_supernet(get_space("basic"), CFG, data.num_classes, seed=0)
    train_supernet(net, data, CFG, tmp / "ckpt", seed=0, epochs=3, lr=0.05, progress=False)
    return tmp


def test_two_gloo_ranks_give_exactly_the_single_process_accuracies(trained):
    single = _evaluator(str(trained / "ckpt")).accuracy(_archs())
    assert len(set(single.tolist())) > 1  # distinct values, so the order is checked too
    mp.spawn(_worker, args=(2, str(trained)), nprocs=2, join=True)
    ranks = [json.loads((trained / f"rank{r}.json").read_text()) for r in range(2)]
    for r in ranks:
        assert r["accuracy"] == single.tolist()  # exact, in the original order
    assert [r["evaluated_here"] for r in ranks] == [4, 3]  # the work was shared out
    # rank 0 owns the run directory; rank 1 works in a private copy of it
    assert ranks[0]["run_dir"] == str(trained / "run")
    assert ranks[1]["run_dir"] != ranks[0]["run_dir"]
    assert json.loads((trained / "run" / "config.json").read_text())["x"] == 1
    # a refused --resume reaches both ranks with rank 0's message
    assert ranks[0]["refused"] and ranks[0]["refused"] == ranks[1]["refused"]


def test_shard_deals_round_robin():
    items = list(range(7))
    parts = [shard(items, DistContext(r, 3)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    one = lambda archs: np.arange(len(archs), dtype=float)  # noqa: E731
    assert sharded(one, DistContext()) is one  # one process: the function itself


def _search_worker(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist
    from search_support import mock_lut, tiny_plan

    from padnas.run.pipeline import Pipeline
    from padnas.run.ranks import open_run
    from padnas.train.distributed import dist_context

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/store2", rank=rank, world_size=world)
    try:
        lut = Path(tmp) / "lut.json"
        if rank == 0:
            mock_lut("basic").save(lut)
        dist.barrier()
        plan = tiny_plan(lut, 3, eval_batch_size=64)
        settings = plan.settings
        ctx = dist_context()
        run = open_run(f"{tmp}/search", settings.to_config(), resume=False, ctx=ctx)
        summary = Pipeline(settings, plan.lut, tiny_data(), run, progress=False).execute()
        out = {"final": summary["final"], "run_dir": str(run.path)}
        Path(f"{tmp}/search{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_search_under_two_ranks_agrees_and_writes_one_run_dir(tmp_path):
    mp.spawn(_search_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"search{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["final"] == ranks[1]["final"] and ranks[0]["final"]
    assert ranks[0]["run_dir"] == str(tmp_path / "search")
    final = json.loads((tmp_path / "search" / "final.json").read_text())
    assert final["models"] == ranks[0]["final"]
    assert (tmp_path / "search" / "stage-2" / "ces.jsonl").is_file()
