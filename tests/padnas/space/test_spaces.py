"""Search space: Table 1 macro structure, Table 2 catalogues, constraints, encodings."""

from __future__ import annotations

import numpy as np
import pytest

from padnas.space import (
    FIRST_LAYER_OPS,
    IDENTITY,
    Arch,
    Proxy,
    SearchSpace,
    SpaceError,
    get_space,
)


def test_sizes_are_exactly_the_papers():
    assert get_space("basic").size == 3 * 6**6 * 7**15
    assert get_space("large").size == 3 * 18**6 * 19**15


@pytest.mark.parametrize("family", ["basic", "large"])
def test_macro_structure_table1(family):
    sp = get_space(family)
    assert sp.num_layers == 22
    stages = [s.stage for s in sp.layers]
    assert [stages.count(k) for k in range(7)] == [1, 4, 4, 4, 4, 4, 1]
    firsts = [s for s in sp.layers if s.first_in_stage]
    assert [s.stride for s in firsts] == [1, 2, 2, 2, 1, 2, 1]
    assert all(s.stride == 1 for s in sp.layers if not s.first_in_stage)
    outs = [s.out_chs for s in firsts]
    head3 = [32, 16, 32] if family == "basic" else [16, 16, 24]
    assert [sp.stem_chs, *outs[:2]] == head3
    assert outs[2:] == [40, 80, 96, 192, 320]


@pytest.mark.parametrize("family", ["basic", "large"])
def test_constraints(family):
    sp = get_space(family)
    assert sp.layer_ops[0] == FIRST_LAYER_OPS[family]
    for spec, ops in zip(sp.layers, sp.layer_ops, strict=True):
        assert (IDENTITY in ops) != spec.first_in_stage
    if family == "basic":
        assert set(sp.layer_ops[2]) == {"K3E3", "K3E6", "K5E3", "K5E6", "K7E3", "K7E6", "ID"}
    else:
        assert len(sp.layer_ops[2]) == 19


def test_validate_rejects_and_names_choices():
    sp = get_space("basic")
    good = ["K3E1"] + ["K3E3"] * 21
    sp.validate("-".join(good))
    with pytest.raises(SpaceError, match="22"):
        sp.validate("-".join(good[:-1]))
    bad = list(good)
    bad[0] = "K3E6"  # expansion of the first SBS is fixed to 1
    with pytest.raises(SpaceError, match="K3E1, K5E1, K7E1"):
        sp.validate("-".join(bad))
    bad = list(good)
    bad[5] = "ID"  # layer 5 is the first layer of stage 2
    with pytest.raises(SpaceError, match="layer 5 does not allow ID"):
        sp.validate("-".join(bad))
    bad = list(good)
    bad[3] = "K3E2"  # only in the large space
    with pytest.raises(SpaceError, match="allowed: K3E3"):
        sp.validate("-".join(bad))
    with pytest.raises(SpaceError, match="unknown op 'K4E3'"):
        sp.validate("-".join(["K4E3", *good[1:]]))
    with pytest.raises(SpaceError, match="choose one of basic, large"):
        get_space("huge")


@pytest.mark.parametrize("family", ["basic", "large"])
def test_string_and_genome_round_trip(family):
    sp = get_space(family)
    rng = np.random.default_rng(0)
    genomes = sp.sample_genomes(rng, 200)
    for g in genomes:
        arch = sp.decode(g)
        assert Arch.parse(str(arch)) == arch
        assert np.array_equal(sp.encode(arch), g)
        assert np.array_equal(sp.encode(str(arch)), g)
    assert Arch.parse(" k3e1-id ").ops == ("K3E1", "ID")


def test_sampling_is_uniform_per_layer():
    sp = get_space("basic")
    genomes = sp.sample_genomes(np.random.default_rng(1), 7000)
    counts = np.bincount(genomes[:, 2], minlength=7)
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected each
    assert set(np.unique(genomes[:, 0])) == {0, 1, 2}


def test_pruned_space_is_a_new_space():
    sp = get_space("basic")
    ops = [list(o) for o in sp.layer_ops]
    ops[3] = ["K5E6", "K3E3"]
    pruned = sp.with_layer_ops(ops)
    assert pruned.layer_ops[3] == ("K3E3", "K5E6")  # the parent's order is kept
    assert pruned.size == sp.size // 7 * 2
    assert pruned.signature != sp.signature
    assert pruned.family_signature == sp.signature
    assert SearchSpace.from_dict(pruned.to_dict()) == pruned
    ops[4] = ["K3E2"]
    with pytest.raises(SpaceError, match="not in this space"):
        sp.with_layer_ops(ops)


def test_proxy_keeps_op_choices():
    from padnas.nn.supernet import ChildNet

    sp = get_space("basic")
    arch = sp.sample(np.random.default_rng(2))
    small = ChildNet(sp, arch, Proxy(32, 0.25), 10)
    full = ChildNet(sp, arch, Proxy(224, 1.0), 1000)
    assert [type(b).__name__ for b in small.blocks] == [type(b).__name__ for b in full.blocks]
    for a, b in zip(small.blocks, full.blocks, strict=True):
        assert getattr(a, "kernel_size", None) == getattr(b, "kernel_size", None)
        assert getattr(a, "exp_ratio", None) == getattr(b, "exp_ratio", None)
    with pytest.raises(SpaceError, match="multiple of 32"):
        Proxy(48)
