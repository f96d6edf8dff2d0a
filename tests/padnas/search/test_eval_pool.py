"""One-shot evaluation shared with helper processes: the same scores bit for bit, whatever the
number of processes, what is cached or which weights came last; a helper that dies or fails is
an error here, never a silent gap. Real spawned processes on a small supernet; no timing."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pytest
import torch
from search_support import tiny_data

from padnas.core.errors import RuntimeFailure
from padnas.run.settings import PRESETS
from padnas.search.eval_pool import MAX_PROCESSES, EvaluationPool, auto_processes
from padnas.search.oneshot import OneShotEvaluator
from padnas.space import get_space
from padnas.train.loop import build_supernet, train_supernet

CONFIG = replace(PRESETS["quick"].train, width_mult=0.1, batch_size=32, eval_images=0)


@pytest.fixture(scope="module")
def net_and_data(tmp_path_factory):
    """A basic-space supernet trained one epoch on the tiny four-class problem."""
    torch.set_num_threads(1)
    data = tiny_data()
    net = build_supernet(get_space("basic"), CONFIG, data.num_classes, seed=0)
    train_supernet(
        net,
        data,
        CONFIG,
        tmp_path_factory.mktemp("sn"),
        seed=0,
        epochs=1,
        lr=0.05,
        progress=False,
    )
    return net, data


@pytest.fixture(scope="module")
def pair():
    """This process and one helper, shared by the tests that leave it running."""
    with EvaluationPool(2) as pool:
        yield pool


def _evaluator(net, data) -> OneShotEvaluator:
    return OneShotEvaluator(net, data, recal_batches=1, batch_size=32, eval_batch_size=24)


def _archs(space, n: int, seed: int) -> list:
    """``n`` random architectures, then a copy of the first with its last op redrawn (a shared
    prefix) and the second again (a repeat)."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    ops = list(archs[0].ops)
    ops[-1] = next(op for op in space.layer_ops[-1] if op != ops[-1])
    return [*archs, space.validate("-".join(ops)), archs[1]]


@pytest.mark.parametrize("processes", [2, 3])
def test_spread_scores_are_the_local_ones_bit_for_bit(net_and_data, pair, processes):
    net, data = net_and_data
    archs = _archs(net.space, 7, seed=1)
    alone = _evaluator(net, data)
    want_acc, want_ll = alone.accuracy(archs), alone.log_likelihoods(archs)
    with EvaluationPool(processes) if processes != 2 else nullcontext(pair) as pool:
        local = _evaluator(net, data)
        local.accuracy(archs[2:4])  # some already cached here: only the rest are dealt out
        spread = pool.spread(local)
        acc, ll = spread.accuracy(archs), spread.log_likelihoods(archs)
    np.testing.assert_array_equal(acc, want_acc)
    np.testing.assert_array_equal(ll, want_ll)
    assert local.cache_size == len({str(a) for a in archs})
    assert len(set(ll.tolist())) > 1  # the architectures do differ


def test_new_weights_reach_the_helpers(net_and_data, pair):
    net, data = net_and_data
    archs = _archs(net.space, 5, seed=2)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        spread = pair.spread(_evaluator(net, data))
        before = spread.log_likelihoods(archs)
        with torch.no_grad():  # an optimiser step would write them in place too
            net.head.classifier.weight.mul_(0.5)
        after = spread.log_likelihoods(archs)
        # a second evaluator of the same pool (the next stage's) hands its own weights over
        again = pair.spread(_evaluator(net, data)).log_likelihoods(archs)
        want = _evaluator(net, data).log_likelihoods(archs)
    finally:
        net.load_state_dict(state)
    np.testing.assert_array_equal(after, want)
    np.testing.assert_array_equal(again, want)
    assert not np.array_equal(before, after)


def test_a_batch_begun_in_the_helpers_leaves_this_process_free(net_and_data, pair):
    net, data = net_and_data
    archs = _archs(net.space, 5, seed=6)
    spread = pair.spread(_evaluator(net, data))
    collect = spread.begin(archs)
    # nothing else may use the pool until the batch is collected
    with pytest.raises(RuntimeError, match="not collected"):
        pair.spread(_evaluator(net, data)).accuracy(archs)
    want = _evaluator(net, data)  # this process works meanwhile
    want_ll = want.log_likelihoods(archs)
    collect()
    assert spread.local.cache_size == len({str(a) for a in archs})  # all measured there
    np.testing.assert_array_equal(spread.log_likelihoods(archs), want_ll)
    with EvaluationPool(1) as alone:  # without helpers, collecting measures them here
        local = _evaluator(net, data)
        collect = alone.spread(local).begin(archs)
        assert local.cache_size == 0
        collect()
        np.testing.assert_array_equal(local.log_likelihoods(archs), want_ll)


def test_a_dead_helper_is_a_clear_failure_and_the_pool_carries_on_alone(net_and_data):
    net, data = net_and_data
    archs = _archs(net.space, 5, seed=3)
    with EvaluationPool(2) as pool:
        spread = pool.spread(_evaluator(net, data))
        spread.accuracy(archs[:2])
        pool._helpers[0].proc.kill()
        pool._helpers[0].proc.join()
        with pytest.raises(RuntimeFailure, match=r"helper process ended.*--resume.*processes 1"):
            spread.accuracy(archs[2:])
        assert pool._helpers == []  # stopped: no later batch reads a stale reply
        got = spread.log_likelihoods(archs)  # evaluated here from now on
    np.testing.assert_array_equal(got, _evaluator(net, data).log_likelihoods(archs))


def test_an_error_in_a_helper_is_raised_here(net_and_data, monkeypatch):
    net, data = net_and_data
    archs = _archs(net.space, 3, seed=4)
    from padnas.search import eval_pool

    handover = eval_pool.SpreadEvaluator._handover

    def broken(self):
        space, proxy, classes, state, data, settings = handover(self)
        state = dict(state)
        state.pop(next(iter(state)))
        return space, proxy, classes, state, data, settings

    monkeypatch.setattr(eval_pool.SpreadEvaluator, "_handover", broken)
    with EvaluationPool(2) as pool, pytest.raises(RuntimeError, match="Missing key"):
        pool.spread(_evaluator(net, data)).accuracy(archs)


def test_one_process_evaluates_here_only(net_and_data):
    net, data = net_and_data
    archs = _archs(net.space, 3, seed=5)
    with EvaluationPool(1) as pool:
        assert pool._helpers == []
        got = pool.spread(_evaluator(net, data)).accuracy(archs)
    np.testing.assert_array_equal(got, _evaluator(net, data).accuracy(archs))
    with pytest.raises(ValueError, match="at least 1"):
        EvaluationPool(0)


@pytest.mark.parametrize(
    ("threads", "cores", "want"),
    [(1, 1, 1), (1, 2, 2), (2, 2, 1), (2, 5, 2), (1, 64, MAX_PROCESSES), (0, 2, 2)],
)
def test_auto_processes_gives_each_process_its_threads_cores(threads, cores, want):
    assert auto_processes(threads, cores) == want
