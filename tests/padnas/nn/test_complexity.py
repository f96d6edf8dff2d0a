"""MACs and parameters: the per-block table sums to the whole-network count and to the formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from padnas.nn.complexity import count_macs, count_params, macs_params
from padnas.nn.supernet import ChildNet
from padnas.space import Proxy, get_space, parse_op

torch.set_num_threads(1)


@pytest.mark.parametrize("family", ["basic", "large"])
def test_table_sum_equals_whole_network_count(family):
    sp = get_space(family)
    arch = sp.sample(np.random.default_rng(0))
    net = ChildNet(sp, arch, Proxy(224, 1.0), 1000)
    assert macs_params(sp, arch) == (count_macs(net, (1, 3, 224, 224)), count_params(net))


def _formula(sp, arch, res=224, classes=1000):
    """MobileNetV2 MAC/parameter arithmetic written out by hand."""
    size = res // 2
    macs = size * size * 3 * 32 * 9 if sp.family == "basic" else size * size * 3 * 16 * 9
    params = 3 * sp.stem_chs * 9 + 2 * sp.stem_chs
    for op, spec in zip(arch.ops, sp.layers, strict=True):
        cin, cout, s = spec.in_chs, spec.out_chs, spec.stride
        out = size // s
        parsed = parse_op(op)
        if parsed is not None:
            k, e, _se = parsed  # basic and large ops have no SE
            hidden = cin * e
            if e != 1:
                macs += size * size * cin * hidden
                params += cin * hidden + 2 * hidden
            macs += out * out * hidden * k * k + out * out * hidden * cout
            params += hidden * k * k + 2 * hidden + hidden * cout + 2 * cout
        size = out
    macs += size * size * 320 * 1280 + 1280 * classes
    params += 320 * 1280 + 2 * 1280 + 1280 * classes + classes
    return macs, params


@pytest.mark.parametrize("seed", [0, 1])
def test_counts_match_the_formula(seed):
    sp = get_space("basic")
    arch = sp.sample(np.random.default_rng(seed))
    assert macs_params(sp, arch) == _formula(sp, arch)


def test_mobilenetv2_like_reference_point():
    """All-K3E6 in the basic space is a deeper, wider MobileNetV2 (300M MACs, 3.4M params):
    bigger, and in the range of Table 3's models."""
    sp = get_space("basic")
    macs, params = macs_params(sp, "K3E1-" + "-".join(["K3E6"] * 21))
    assert 300e6 < macs < 600e6 and 3.4e6 < params < 6e6
    small, _ = macs_params(sp, "K3E1-" + "-".join(["K3E3", "K3E3", "K3E3", "ID"] * 5) + "-K3E3")
    assert small < macs
