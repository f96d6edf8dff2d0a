"""Layer-list network descriptions: loading, validation errors, MACs/params against the
published figures, units and keys shared with the space, and LUT predictions."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from network_support import PROXYLESS_ARCH
from search_support import mock_lut

from latency.lut.model import LatencyModel
from latency.networks.checks import load_networks, network_from_dict, select_networks
from latency.networks.description import NetDescError
from latency.networks.latency import predict_network
from latency.networks.units import arch_layers, as_arch, network_units
from latency.transfer.estimate import DEFAULT_PUBLISHED
from latency.variants import arch_keys
from padnas.space import get_space

# ProxylessNAS-mobile in the basic space (Table 1 with stem 32 and the first SBS E1): stage by
# stage from its released config — 16: K3E1 | 32: K5E3 K3E3 ID ID | 40: K7E3 K3E3 K5E3 K5E3 |
# 80: K7E6 K5E3 K5E3 K5E3 | 96: K5E6 K5E3 K5E3 K5E3 | 192: K7E6 K7E6 K7E3 K7E3 | 320: K7E6


@pytest.fixture(scope="module")
def published():
    return load_networks(DEFAULT_PUBLISHED)


@pytest.fixture(scope="module")
def mock_luts():
    """Basic and large LUTs of the mock device (no files, well under a second)."""
    return {fam: mock_lut(fam) for fam in ("basic", "large")}


def test_published_macs_and_params_match_the_authors(published):
    assert set(published) == {
        "MobileNetV1_1.0",
        "MobileNetV2_1.0",
        "MobileNetV2_1.4",
        "ProxylessNAS_mobile",
    }
    for net in published.values():
        macs_m, params_m = net.macs / 1e6, net.params / 1e6
        assert abs(macs_m / net.meta["published_flops_M"] - 1) < 0.01, (net.name, macs_m)
        # MobileNetV2 1.0: the paper rounds to 3.4 M, the slim release says 3.47 M; we count 3.50
        assert abs(params_m / net.meta["published_params_M"] - 1) < 0.04, (net.name, params_m)


def test_whole_network_module_runs(published):
    net = published["MobileNetV2_1.0"]
    with torch.no_grad():
        y = net.build_module()(torch.zeros(net.input_shape))
    assert y.shape == (1, 1000)


def test_round_trip_and_single_network_file(published, tmp_path):
    for net in published.values():
        again = network_from_dict(net.name, json.loads(json.dumps(net.to_dict())))
        assert again.layers == net.layers and again.input_hw == net.input_hw
    path = tmp_path / "one.json"
    path.write_text(json.dumps(published["MobileNetV1_1.0"].to_dict()))
    (only,) = load_networks(path).values()
    assert only.name == "one" and only.layers == published["MobileNetV1_1.0"].layers
    with pytest.raises(NetDescError, match="no network named Nope; the file holds: one"):
        select_networks(load_networks(path), ["Nope"])


def _net(*layers, **top):
    return {"input": 32, "layers": list(layers), **top}


CONV = {"type": "conv", "cin": 3, "cout": 8, "kernel": 3, "stride": 2}
POOL = {"type": "pool", "cin": 8, "cout": 8}


@pytest.mark.parametrize(
    "data, message",
    [
        (_net({**CONV, "type": "deconv"}), "layer 0: unknown type 'deconv'; use one of conv"),
        (_net({**CONV, "kernal": 3}), "layer 0 (conv): unknown field(s) kernal"),
        (_net(CONV, {**CONV, "cin": 4}), "cin is 4 but the previous layer outputs 8"),
        (_net(CONV, {"type": "dwconv", "cin": 8, "cout": 16, "kernel": 3}), "keeps its channels"),
        (_net({**CONV, "kernel": 2}), "'kernel' must be odd"),
        (_net({**CONV, "cout": "8"}), "'cout' must be an integer, got '8'"),
        (_net({**CONV, "act": "gelu"}), "unknown activation 'gelu'"),
        (_net(CONV, {"type": "fc", "cin": 8, "cout": 10}), "put a 'pool' layer before it"),
        (_net(CONV, POOL, {**CONV, "cin": 8}), "after 'pool' only 'fc' layers may follow"),
        (
            _net(
                CONV,
                {
                    "type": "ibconv",
                    "cin": 8,
                    "cout": 8,
                    "kernel": 3,
                    "stride": 2,
                    "expansion": 6,
                    "residual": True,
                },
            ),
            "a residual add needs stride 1 and cin == cout",
        ),
        (
            _net(
                CONV,
                {
                    "type": "ibconv",
                    "cin": 8,
                    "cout": 8,
                    "kernel": 3,
                    "expansion": 6,
                    "se_ratio": 0.25,
                },
            ),
            "se_ratio given but 'se' is not true",
        ),
        (
            _net(
                CONV,
                {
                    "type": "ibconv",
                    "cin": 8,
                    "cout": 8,
                    "kernel": 3,
                    "expansion": 3,
                    "expand_conv": False,
                },
            ),
            "without an expand conv the hidden width is cin",
        ),
        (
            _net(
                CONV,
                {"type": "ibconv", "cin": 8, "cout": 8, "kernel": 3, "expansion": 6, "groups": 3},
            ),
            "groups 3 must divide",
        ),
        (_net(CONV, {"type": "identity", "cin": 8, "cout": 16}), "identity needs cin == cout"),
        (
            _net(CONV, POOL, {"type": "fc", "cin": 8, "cout": 10}, num_classes=5),
            "num_classes is 5 but the last layer outputs 10",
        ),
        ({"layers": []}, "'layers' must be a non-empty list"),
        ({"input": "big", "layers": [CONV]}, "'input' must be an integer"),
    ],
)
def test_bad_descriptions_name_the_layer_and_field(data, message):
    with pytest.raises(NetDescError, match=message.replace("(", r"\(").replace(")", r"\)")):
        network_from_dict("net", data)


def test_file_errors(tmp_path):
    with pytest.raises(NetDescError, match="network file not found"):
        load_networks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"networks": {"a": ')
    with pytest.raises(NetDescError, match="not valid JSON"):
        load_networks(bad)
    bad.write_text('{"nets": {}}')
    with pytest.raises(NetDescError, match="no network found"):
        load_networks(bad)


def test_options_resolve_to_exact_widths():
    net = network_from_dict(
        "n",
        _net(
            {**CONV, "cout": 24},
            {
                "type": "ibconv",
                "cin": 24,
                "cout": 24,
                "kernel": 5,
                "expansion": 3,
                "se": True,
                "se_ratio": 0.25,
                "act": "h-swish",
            },
            {
                "type": "ibconv",
                "cin": 24,
                "cout": 24,
                "kernel": 5,
                "expansion": 3,
                "se": True,
                "se_ratio": 0.25,
                "se_base": "hidden",
            },
            {
                "type": "ibconv",
                "cin": 24,
                "cout": 32,
                "kernel": 3,
                "stride": 2,
                "expansion": 6,
                "groups": 2,
                "channel_shuffle": True,
            },
            {
                "type": "ibconv",
                "cin": 32,
                "cout": 32,
                "kernel": 3,
                "expansion": 1,
                "hidden": 96,
                "expand_conv": True,
            },
        ),
    )
    _, se_cin, se_hidden, grouped, forced = net.layers
    assert (se_cin.se_hidden, se_cin.act, se_cin.residual) == (6, "hswish", True)
    assert se_hidden.se_hidden == 18
    assert grouped.residual is False and grouped.out_hw == (8, 8)
    assert forced.hidden == 96 and forced.expand_conv
    # the module computes what the fields say (SE and expand convs present, grouped weights)
    assert net.params == sum(p.numel() for p in net.build_module().parameters())
    keys = [u.key for u in network_units(net)]
    assert keys[1].endswith("-h72-se6.relu.sigmoid-hswish")
    assert "-g2shuffle-" in keys[3]
    # "expansion 1, hidden 96, expand conv" computes the e3 block: it gets the e3 variant's key
    assert keys[4] == "ibconv-k3-e3-s1-i8x8x32-o8x8x32"
    assert all(u.variant is None for u in network_units(net)[1:4])


def test_a_block_has_one_key_however_its_width_is_written():
    """``hidden`` or ``expansion``: the same computation is the same LUT entry."""
    stem = {"type": "conv", "cin": 3, "cout": 16, "kernel": 3, "stride": 2, "act": "relu6"}
    block = {"type": "ibconv", "cin": 16, "cout": 24, "kernel": 3, "stride": 2}
    keys = [
        network_units(network_from_dict("n", _net(stem, block | width)))[1].key
        for width in ({"expansion": 6}, {"hidden": 96}, {"hidden": 72})
    ]
    assert keys[0] == keys[1] == "ibconv-k3-e6-s2-i16x16x16-o8x8x24"
    assert keys[2] == "ibconv-k3-e4.5-s2-i16x16x16-o8x8x24-h72-relu6"


def test_proxyless_layer_list_is_the_basic_space_arch(published):
    basic = get_space("basic")
    net = published["ProxylessNAS_mobile"]
    arch = as_arch(net, basic)
    assert str(arch) == PROXYLESS_ARCH
    assert [u.key for u in network_units(net)] == arch_keys(basic, arch)
    assert as_arch(net, get_space("large")) is None  # stem 16 and 24-channel stage there
    assert as_arch(published["MobileNetV2_1.0"], basic) is None


def test_arch_layer_lists_round_trip():
    rng = np.random.default_rng(7)
    for fam in ("basic", "large"):
        space = get_space(fam)
        for _ in range(5):
            arch = space.sample(rng)
            net = network_from_dict("a", arch_layers(space, arch))
            assert as_arch(net, space) == arch
            assert [u.key for u in network_units(net)] == arch_keys(space, arch)


def test_mobilenet_v1_units_and_keys(published):
    units = network_units(published["MobileNetV1_1.0"])
    assert [u.kind for u in units[:3]] == ["stem", "dwconv", "conv"]
    assert units[0].key == "stem-k3-s2-i224x224x3-o112x112x32"
    assert units[1].key == "dwconv-k3-s1-i112x112x32-o112x112x32-relu6"
    assert units[2].key == "conv-k1-s1-g1-i112x112x32-o112x112x64-relu6"
    assert units[-1].kind == "head" and units[-1].key == "head-i7x7x1024-f1024-c1000"
    assert len(units) == 27  # stem + 13 dw/pw pairs (26 layers, the last pw in the head) + head


def test_proxyless_predicts_the_same_as_layer_list_and_arch(published, mock_luts):
    basic = get_space("basic")
    lut = copy.deepcopy(mock_luts["basic"])
    lut.calibration = {"scale": 1.1, "offset_ms": 3.0}
    pred = predict_network(published["ProxylessNAS_mobile"], lut)
    by_arch = LatencyModel.from_lut(lut, basic).predict([PROXYLESS_ARCH])[0]
    assert pred.ms == pytest.approx(by_arch, rel=1e-12)
    assert pred.sources == {"mock"} and pred.ms == pytest.approx(1.1 * pred.raw_ms + 3.0)


def test_layers_outside_the_lut_use_the_regression_fallback(published, mock_luts):
    pred = predict_network(published["MobileNetV1_1.0"], mock_luts["large"])
    srcs = {key: src for _, key, _, src in pred.rows}
    assert srcs["stem-k3-s2-i224x224x3-o112x112x32"] == "regression"  # basic stem: not in large
    assert srcs["dwconv-k3-s1-i112x112x32-o112x112x32-relu6"] == "regression"
    assert pred.by_source.keys() == {"regression"}
    assert sum(pred.by_source.values()) == pytest.approx(pred.raw_ms)
    assert all(ms > 0 for _, _, ms, _ in pred.rows)
    mixed = predict_network(published["MobileNetV2_1.0"], mock_luts["large"])
    assert mixed.sources == {"mock", "regression"}
    assert "ms mock (" in mixed.source_line() and "ms regression (" in mixed.source_line()
