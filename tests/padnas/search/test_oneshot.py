"""One-shot evaluation: BN recalibration, caching, staleness, exactness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from padnas.data.datasets import load_data
from padnas.run.settings import PRESETS
from padnas.search.oneshot import OneShotEvaluator, evaluate_model
from padnas.space import get_space
from padnas.train.loop import build_supernet, train_supernet

torch.set_num_threads(1)  # a shared 2-core machine: two OpenMP threads stall when one is taken


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A supernet briefly trained on mnist5k with the quick preset (its 2 warm-up epochs, then 2
    with every op sampled: 108 steps)."""
    data = load_data("mnist5k", 32, seed=0)
    sp = get_space("basic")
    cfg = PRESETS["quick"].train
    net = build_supernet(sp, cfg, data.num_classes, seed=0)
    train_supernet(
        net, data, cfg, tmp_path_factory.mktemp("sn"), seed=0, epochs=4, lr=0.005, progress=False
    )
    archs = [sp.sample(np.random.default_rng(s)) for s in range(6)]
    return net, data, archs


def _evaluator(net, data, **kw):
    kw = {"recal_batches": 2, "batch_size": 250, "seed": 0, **kw}
    return OneShotEvaluator(net, data, **kw)


def test_recalibration_raises_one_shot_accuracy(trained):
    net, data, archs = trained
    ev = _evaluator(net, data)
    plain = np.array([ev.evaluate(a, recalibrate=False) for a in archs])
    recal = ev.accuracy(archs)
    # training statistics mix every sampled path; per-path statistics fit the path evaluated
    print("recalibrated", recal, "training statistics", plain)
    assert recal.mean() > plain.mean() + 0.05, (recal, plain)
    assert (recal >= plain - 0.02).all()


def test_log_likelihood_is_the_mean_log_probability_of_the_true_class(trained):
    net, data, archs = trained
    ev = _evaluator(net, data)
    # without recalibration the path runs on its training statistics: the value can be
    # recomputed from the supernet's own outputs
    acc = ev.evaluate(archs[0], recalibrate=False)
    loglik = ev.log_likelihood(archs[0], recalibrate=False)
    was = net.training
    net.eval()
    with torch.no_grad():
        x, y = data.val.fetch(list(range(len(data.val))))
        out = net(x.to(memory_format=torch.channels_last), archs[0])
    net.train(was)
    logp = torch.log_softmax(out.double(), 1)[torch.arange(len(y)), y]
    assert loglik == pytest.approx(float(logp.mean()), rel=1e-4)
    assert acc == pytest.approx(float((out.argmax(1) == y).double().mean()))
    # asked first, it measures (and caches the accuracy of the same pass)
    fresh = _evaluator(net, data)
    assert fresh.log_likelihood(archs[1]) < 0 and fresh.cache_size == 1


def test_evaluation_is_cached_and_leaves_the_supernet_unchanged(trained):
    net, data, archs = trained
    before = {k: v.clone() for k, v in net.state_dict().items()}
    was_training = net.training
    ev = _evaluator(net, data)
    accs = ev.accuracy(archs[:3])
    assert isinstance(accs, np.ndarray) and accs.shape == (3,)
    assert ev.cache_size == 3
    assert ev.accuracy([str(a) for a in reversed(archs[:3])]).tolist() == accs[::-1].tolist()
    assert ev.cache_size == 3  # string and Arch share one key
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training == was_training
    # the same result without the cache (a fresh evaluator)
    assert _evaluator(net, data).evaluate(archs[1]) == accs[1]


def test_cache_is_dropped_when_the_weights_change(trained):
    net, data, archs = trained
    ev = _evaluator(net, data)
    ev.evaluate(archs[0])
    assert ev.cache_size == 1
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        with torch.no_grad():
            net.head.classifier.weight.mul_(-1.0)  # an in-place update, as an optimiser makes
        assert ev.accuracy([archs[0]])[0] < 0.5
        assert ev.cache_size == 1  # dropped, then refilled with the new value
        net.load_state_dict(saved)
        assert ev.evaluate(archs[0]) == _evaluator(net, data).evaluate(archs[0])
        other = build_supernet(net.space, PRESETS["quick"].train, 10, seed=5)
        ev.supernet = other
        assert ev.cache_size == 0
    finally:
        net.load_state_dict(saved)


def test_recalibration_overrides_stale_statistics(trained):
    net, data, archs = trained
    ev = _evaluator(net, data)
    arch = archs[2]
    ref_recal = ev.evaluate(arch)
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        g = torch.Generator().manual_seed(0)
        for m in net.path_modules(arch):
            for bn in m.modules():
                if isinstance(bn, nn.BatchNorm2d):
                    bn.running_mean.add_(torch.randn(bn.running_mean.shape, generator=g))
                    bn.running_var.mul_(4.0)
        fresh = _evaluator(net, data)
        # a reset, not an update: the scrambled statistics leave no trace
        assert fresh.evaluate(arch) == ref_recal
    finally:
        net.load_state_dict(saved)


def test_recalibration_matches_a_child_with_exact_batch_statistics(trained):
    """One recalibration batch: the path's BN statistics become that batch's exact statistics,
    so the supernet's accuracy equals a stand-alone copy recalibrated by hand."""
    net, data, archs = trained
    arch = archs[3]
    ev = _evaluator(net, data, recal_batches=1, batch_size=400)
    child = net.extract(arch).to(memory_format=torch.channels_last)  # the evaluator's layout
    for bn in child.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = 1.0  # running = this batch's statistics
    child.train()
    with torch.no_grad():
        child(ev.recal_images[0].to(memory_format=torch.channels_last))
    assert evaluate_model(child, data.val, batch_size=500) == ev.evaluate(arch)


def _sharing_prefixes(space, base, rng, count):
    """Architectures that differ from ``base`` from a random layer on (prefixes of any length)."""
    out = []
    for _ in range(count):
        other = space.sample(rng)
        cut = int(rng.integers(0, len(base.ops)))
        out.append(space.validate("-".join(base.ops[:cut] + other.ops[cut:])))
    return out


@pytest.mark.parametrize("budget_mb", [1024, 1])
def test_kept_prefix_outputs_change_no_value(trained, budget_mb):
    """Starting an architecture where an evaluated prefix ends gives the values a full pass
    gives, bit for bit, in any order, with the training statistics too, and whatever the budget
    evicts (1 MB holds a few deep layers' outputs of the 500 validation images)."""
    net, data, archs = trained
    rng = np.random.default_rng(4)
    shared = _sharing_prefixes(net.space, archs[0], rng, 6) + _sharing_prefixes(
        net.space, archs[1], rng, 4
    )
    plain = _evaluator(net, data, prefix_cache_mb=0)
    ll = plain.log_likelihoods(shared)
    acc = plain.accuracy(shared)
    untouched = [plain.evaluate(a, recalibrate=False) for a in shared[:4]]
    assert plain.prefix_cache_bytes == 0
    ev = _evaluator(net, data, prefix_cache_mb=budget_mb)
    order = rng.permutation(len(shared))
    assert np.array_equal(ev.log_likelihoods([shared[i] for i in order]), ll[order])
    assert np.array_equal(ev.accuracy(shared), acc)
    assert [ev.evaluate(a, recalibrate=False) for a in shared[:4]] == untouched
    assert 0 < ev.prefix_cache_bytes <= budget_mb << 20


def test_kept_prefix_outputs_are_dropped_when_the_weights_change(trained):
    net, data, archs = trained
    rng = np.random.default_rng(5)
    first, second = _sharing_prefixes(net.space, archs[2], rng, 2)
    ev = _evaluator(net, data)
    ev.evaluate(first)
    assert ev.prefix_cache_bytes > 0
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        with torch.no_grad():
            net.stem[0].weight.mul_(-0.5)  # every kept prefix output is stale now
        assert ev.evaluate(second) == _evaluator(net, data, prefix_cache_mb=0).evaluate(second)
    finally:
        net.load_state_dict(saved)
