"""The layer kinds ResNet and ShuffleNetV2 need: strided max/average pooling windows, the basic
block and the ShuffleNetV2 unit. Validation, keys, MACs counted on the torch module, modules that
compute the published blocks, the regression fallback and the mock pricing their units, and
(slow) each converted to TFLite, checked against PyTorch and timed on the host."""

from __future__ import annotations

import json
import math

import pytest
import torch
import zoo_support
from search_support import mock_lut
from torch import nn

from latency.backends.mock import MockBackend
from latency.devices import load_profile, make_backend
from latency.export.convert import randomize
from latency.lut.regression import fill_holes
from latency.networks.blocks import BasicBlock, ShuffleV2Unit
from latency.networks.checks import network_from_dict
from latency.networks.description import NetDescError
from latency.networks.latency import export_network, measure_units
from latency.networks.units import network_units
from latency.profiling.store import MeasurementStore

NEW_KINDS = ("maxpool", "avgpool", "basicblock", "shufflev2")

# one unit of every new kind and option, in a network small enough to convert in seconds
KINDS = {
    "input": 48,
    "layers": [
        {"type": "conv", "cin": 3, "cout": 16, "kernel": 3, "stride": 1, "act": "relu"},
        {"type": "maxpool", "cin": 16, "cout": 16, "kernel": 3, "stride": 2},
        {"type": "avgpool", "cin": 16, "cout": 16, "kernel": 3, "stride": 1, "count_pad": True},
        {"type": "basicblock", "cin": 16, "cout": 16, "kernel": 3, "stride": 1},
        {"type": "basicblock", "cin": 16, "cout": 32, "kernel": 3, "stride": 2},
        {"type": "shufflev2", "cin": 32, "cout": 64, "kernel": 3, "stride": 2},
        {"type": "shufflev2", "cin": 64, "cout": 64, "kernel": 5, "stride": 1, "act": "hswish"},
        {"type": "avgpool", "cin": 64, "cout": 64, "kernel": 3, "stride": 2},
        {"type": "pool", "cin": 64, "cout": 64},
        {"type": "fc", "cin": 64, "cout": 10},
    ],
}
KEYS = [
    "maxpool-k3-s2-i48x48x16-o24x24x16",
    "avgpool-k3-s1-i24x24x16-o24x24x16-countpad",
    "basicblock-k3-s1-i24x24x16-o24x24x16-id-relu",
    "basicblock-k3-s2-i24x24x16-o12x12x32-proj-relu",
    "shufflev2-k3-s2-i12x12x32-o6x6x64-relu",
    "shufflev2-k5-s1-i6x6x64-o6x6x64-hswish",
    "avgpool-k3-s2-i6x6x64-o3x3x64",
]


@pytest.fixture(scope="module")
def net():
    return network_from_dict("kinds", KINDS)


def test_each_unit_key_names_what_changes_its_computation(net):
    units = [u for u in network_units(net) if u.kind in NEW_KINDS]
    assert [u.key for u in units] == KEYS
    assert [u.kind for u in units] == [key.split("-", 1)[0] for key in KEYS]


def test_defaults_resolve_and_the_json_form_round_trips(net):
    block = next(layer for layer in net.layers if layer.type == "basicblock" and layer.stride == 2)
    assert block.projection and block.act == "relu"  # a changed shape needs the projection
    avg = net.layers[2]
    assert avg.count_pad and avg.out_hw == (24, 24)
    again = network_from_dict("again", json.loads(json.dumps(net.to_dict())))
    assert again.layers == net.layers
    assert net.to_dict()["layers"][3] == {
        "type": "basicblock",
        "cin": 16,
        "cout": 16,
        "kernel": 3,
        "stride": 1,
        "act": "relu",
        "projection": False,
    }
    # a projection where the shape stays is a different block, with a key of its own
    proj = network_from_dict(
        "p",
        {
            "input": 8,
            "in_chs": 16,
            "layers": [
                {"type": "basicblock", "cin": 16, "cout": 16, "kernel": 3, "projection": True}
            ],
        },
    )
    assert network_units(proj)[0].key == "basicblock-k3-s1-i8x8x16-o8x8x16-proj-relu"


def _layer_net(layer, size=16):
    return {"input": size, "in_chs": layer["cin"], "layers": [layer]}


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            {"type": "shufflev2", "cin": 24, "cout": 58 + 1, "kernel": 3, "stride": 2},
            "cout must be even, got 59",
        ),
        (
            {"type": "shufflev2", "cin": 24, "cout": 48, "kernel": 3, "stride": 1},
            "a stride-1 unit splits its input in halves and keeps its width (cin 24, cout 48)",
        ),
        (
            {"type": "basicblock", "cin": 16, "cout": 32, "kernel": 3, "projection": False},
            "an identity shortcut needs stride 1 and cin == cout (got stride 1, 16->32); set "
            "projection true",
        ),
        (
            {"type": "maxpool", "cin": 16, "cout": 32, "kernel": 3, "stride": 2},
            "a pool keeps its channels (cin 16, cout 32)",
        ),
        ({"type": "maxpool", "cin": 16, "cout": 16, "kernel": 2, "stride": 2}, "must be odd"),
        (
            {"type": "maxpool", "cin": 16, "cout": 16, "kernel": 3, "count_pad": True},
            "unknown field(s) count_pad",
        ),
        (
            {"type": "avgpool", "cin": 16, "cout": 16, "kernel": 3, "count_pad": 1},
            "'count_pad' must be true or false, got 1",
        ),
        ({"type": "basicblock", "cin": 16, "cout": 16, "stride": 1}, "'kernel' must be an integer"),
    ],
)
def test_bad_layers_name_the_layer_and_field(layer, message):
    with pytest.raises(NetDescError, match=message.replace("(", r"\(").replace(")", r"\)")):
        network_from_dict("net", _layer_net(layer))


def _torch_macs(module: nn.Module, shape) -> int:
    """Multiply-accumulates of every Conv2d and Linear in ``module``, counted while it runs."""
    total = 0

    def count(m, _inputs, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * m.in_channels // m.groups * math.prod(m.kernel_size)
        else:
            total += out.numel() * m.in_features

    hooks = [
        m.register_forward_hook(count)
        for m in module.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        module(torch.zeros(shape))
    for h in hooks:
        h.remove()
    return total


def test_macs_are_those_the_modules_compute(net):
    for layer in net.layers:
        assert layer.macs == _torch_macs(layer.build_module().eval(), layer.input_shape), layer
    assert net.macs == _torch_macs(net.build_module(), net.input_shape)


@pytest.mark.parametrize(("cin", "cout", "stride"), [(24, 116, 2), (116, 116, 1)])
def test_shufflev2_module_computes_the_published_unit(cin, cout, stride):
    ours = randomize(ShuffleV2Unit(cin, cout, 3, stride), seed=1)
    published = zoo_support.ShuffleUnit(cin, cout, stride).eval()
    published.load_state_dict(ours.state_dict())
    x = torch.randn(1, cin, 14, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), published(x))


@pytest.mark.parametrize(("cin", "cout", "stride"), [(64, 128, 2), (64, 64, 1)])
def test_basicblock_module_computes_the_published_block(cin, cout, stride):
    ours = randomize(BasicBlock(cin, cout, 3, stride, "relu", projection=stride != 1), seed=2)
    published = zoo_support.BasicBlock(cin, cout, stride).eval()
    state = {k.replace("shortcut.", "down."): v for k, v in ours.state_dict().items()}
    published.load_state_dict(state)
    x = torch.randn(1, cin, 14, 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), published(x))


def test_the_regression_fallback_prices_each_kind_by_its_size():
    lut = mock_lut("basic")
    small, large = (network_from_dict(f"r{size}", {**KINDS, "input": size}) for size in (48, 192))
    units = [u for net in (small, large) for u in network_units(net) if u.kind in NEW_KINDS]
    estimates, fitted = fill_holes(lut, units)
    assert fitted is not None and set(estimates) == {u.key for u in units}
    assert all(math.isfinite(ms) and ms > 0 for ms in estimates.values())
    # each unit at 16x the pixels is estimated slower
    pairs = zip(network_units(small), network_units(large), strict=True)
    for a, b in pairs:
        if a.kind in NEW_KINDS:
            assert estimates[b.key] > estimates[a.key], (a.key, b.key)


def test_the_mock_device_prices_every_unit(net, tmp_path):
    units = network_units(net)
    store = MeasurementStore("mock", tmp_path)
    failed = measure_units(units, MockBackend(load_profile("mock")), store, progress=False)
    assert failed == []
    records = store.records()
    assert set(records) == {u.key for u in units}
    assert all(r["source"] == "mock" and r["ms"] > 0 for r in records.values())


@pytest.mark.slow
def test_each_new_kind_converts_checked_and_times_on_the_host(net, padnas_cache):
    units = [u for u in network_units(net) if u.kind in NEW_KINDS]
    store = MeasurementStore("host-builtin", padnas_cache / "measurements")
    with make_backend("host-builtin") as backend:
        # each unit is exported to ONNX, converted by onnx2tf, checked against PyTorch, timed
        failed = measure_units(units, backend, store, progress=False)
    assert failed == []
    records = store.records()
    assert set(records) == set(KEYS)
    assert all(r["source"] == "measured" and r["ms"] > 0 for r in records.values())
    # and the whole network converts checked too
    assert export_network(net).with_suffix(".json").is_file()


def test_the_layer_modules_export_to_onnx_that_reads_back(net, tmp_path):
    """What ``measure`` exports (split and shuffle as channel gathers) reads as the layer list."""
    from latency.networks.onnx_import import read_onnx

    path = zoo_support.export_onnx(net.build_module(), tmp_path / "kinds.onnx", size=48)
    assert read_onnx(path).layers == net.layers
