"""Op distributions and pruning: P_th respected, no layer ever emptied, spaces nest."""

from __future__ import annotations

import numpy as np
import pytest

from padnas.core.errors import UsageError
from padnas.search.prune import OpDistribution, prune
from padnas.space import SearchSpace


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_family("large")


def _archs(space, genomes):
    return [space.decode(g) for g in genomes]


def test_distribution_is_normalised_frequency(space):
    rng = np.random.default_rng(0)
    genomes = space.sample_genomes(rng, 300)
    dist = OpDistribution.estimate(space, _archs(space, genomes))
    assert dist.count == 300
    for j in range(space.num_layers):
        p = np.array(dist.probs[j])
        assert p.sum() == pytest.approx(1.0)
        counts = np.bincount(genomes[:, j], minlength=space.num_ops[j])
        np.testing.assert_allclose(p, counts / 300)
    again = OpDistribution.from_json(space, dist.to_json())
    assert again == dist


def test_prune_respects_threshold_and_keeps_layers(space):
    rng = np.random.default_rng(1)
    # a skewed sample: layer j mostly uses op 0, a few use op 1, op 2 once in 200 (p = 0.005)
    genomes = np.zeros((200, space.num_layers), dtype=np.int64)
    genomes[:10] = 1
    genomes[10, :] = 2
    genomes[11:] = np.where(rng.random((189, space.num_layers)) < 0.1, 1, 0)
    dist = OpDistribution.estimate(space, _archs(space, genomes))
    res = prune(dist)  # the paper's default P_th = 0.01
    assert res == prune(dist, p_th=0.01)
    for j, ops in enumerate(space.layer_ops):
        layer = dist.layer(j)
        kept = set(res.space.layer_ops[j])
        assert kept == {op for op, p in layer.items() if p > 0.01}
        assert kept == set(ops[:2])
        assert set(res.removed[j]) == set(ops) - kept
    assert res.space.size == 2**space.num_layers
    assert res.kept_by_rule == ()
    # p == P_th is removed too (the paper: p <= P_th)
    edge, below = prune(dist, p_th=0.005), prune(dist, p_th=0.0049)
    for j in range(space.num_layers):
        assert space.layer_ops[j][2] not in edge.space.layer_ops[j]
        assert space.layer_ops[j][2] in below.space.layer_ops[j]


def test_prune_never_empties_a_layer(space):
    # a near-uniform spread over 19 ops: with P_th = 0.2 every op would go
    genomes = space.sample_genomes(np.random.default_rng(2), 500)
    genomes[:, 3] = np.arange(500) % 2  # layer 3: two ops tie at p = 0.5
    dist = OpDistribution.estimate(space, _archs(space, genomes))
    res = prune(dist, p_th=0.6)
    assert all(len(ops) >= 1 for ops in res.space.layer_ops)
    assert res.space.layer_ops[3] == space.layer_ops[3][:2]  # the tie keeps both
    assert 3 in res.kept_by_rule
    for j in res.kept_by_rule:
        best = max(dist.probs[j])
        assert set(res.space.layer_ops[j]) == {op for op, p in dist.layer(j).items() if p == best}


def test_pruning_is_progressive_and_pruned_space_round_trips(space):
    rng = np.random.default_rng(3)
    first = prune(
        OpDistribution.estimate(space, _archs(space, space.sample_genomes(rng, 40))), 0.02
    )
    second_space = first.space
    second = prune(
        OpDistribution.estimate(
            second_space, _archs(second_space, second_space.sample_genomes(rng, 15))
        ),
        0.02,
    )
    for a, b, c in zip(
        space.layer_ops, second_space.layer_ops, second.space.layer_ops, strict=True
    ):
        assert set(c) <= set(b) <= set(a)
    assert second.space.size <= second_space.size <= space.size
    assert SearchSpace.from_dict(second.space.to_dict()) == second.space


def test_heatmap_matrix_marks_pruned_ops(space):
    genomes = space.sample_genomes(np.random.default_rng(4), 50)
    dist = OpDistribution.estimate(space, _archs(space, genomes))
    small = prune(dist, 0.04).space
    sub = OpDistribution.estimate(
        small, _archs(small, small.sample_genomes(np.random.default_rng(5), 30))
    )
    mat, cols = sub.matrix()
    assert mat.shape == (space.num_layers, len(cols))
    for j in range(space.num_layers):
        row = {c: v for c, v in zip(cols, mat[j], strict=True) if not np.isnan(v)}
        assert set(row) == set(small.layer_ops[j])
        assert sum(row.values()) == pytest.approx(1.0)


def test_bad_threshold(space):
    dist = OpDistribution.estimate(space, [space.sample(np.random.default_rng(0))])
    with pytest.raises(UsageError, match=r"^p_th must be in \[0, 1\)") as refused:
        prune(dist, 1.5)
    assert refused.value.param == "p_th"
    with pytest.raises(ValueError):
        OpDistribution.estimate(space, [])


def test_distribution_needs_archs_and_records_its_space(space):
    with pytest.raises(ValueError, match=r"^cannot estimate an op distribution from zero arch"):
        OpDistribution.estimate(space, [])
    genomes = space.sample_genomes(np.random.default_rng(0), 5)
    data = OpDistribution.estimate(space, _archs(space, genomes)).to_json()
    assert data["space_signature"] == space.signature and data["count"] == 5
