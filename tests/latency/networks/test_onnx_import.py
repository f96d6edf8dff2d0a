"""ONNX graphs read as layer lists: the published networks, written as plain torch models and
exported to ONNX here, read back as their hand-written descriptions and price the same; a graph
the format cannot describe is refused with the node named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from repo_support import REPO
from torch import nn

from latency.lut.table import load_lut
from latency.networks.checks import load_networks, network_from_dict
from latency.networks.description import Network, to_layer_dict
from latency.networks.latency import predict_network
from latency.networks.onnx_graph import UnsupportedGraph
from latency.networks.onnx_import import read_onnx

PUBLISHED = REPO / "latency" / "data" / "pixel3_published.json"
PIXEL3 = REPO / "device_profiles" / "pixel3.json"

# one of every layer kind in the reader's canonical form (see latency/networks/onnx_import.py)
ALL_KINDS = {
    "input": [40, 32],
    "layers": [
        {"type": "conv", "cin": 3, "cout": 16, "kernel": 3, "stride": 2, "act": "hswish"},
        {
            "type": "ibconv",
            "cin": 16,
            "cout": 16,
            "kernel": 3,
            "stride": 1,
            "expansion": 1,
            "se": True,
            "se_hidden": 8,
            "se_gate": "hsigmoid",
            "act": "relu",
        },
        {
            "type": "ibconv",
            "cin": 16,
            "cout": 24,
            "kernel": 5,
            "stride": 2,
            "expansion": 4,
            "groups": 2,
            "channel_shuffle": True,
            "act": "hswish",
        },
        {
            "type": "ibconv",
            "cin": 24,
            "cout": 24,
            "kernel": 7,
            "stride": 1,
            "expansion": 3,
            "se": True,
            "se_hidden": 6,
            "se_act": "swish",
            "se_gate": "sigmoid",
            "act": "relu6",
            "residual": True,
        },
        {
            "type": "ibconv",
            "cin": 24,
            "cout": 24,
            "kernel": 3,
            "stride": 1,
            "expansion": 2,
            "act": "relu6",
            "residual": False,
        },
        {"type": "dwconv", "cin": 24, "cout": 24, "kernel": 3, "stride": 1, "act": None},
        {"type": "conv", "cin": 24, "cout": 48, "kernel": 1, "stride": 1, "act": "swish"},
        {
            "type": "conv",
            "cin": 48,
            "cout": 48,
            "kernel": 3,
            "stride": 1,
            "groups": 4,
            "act": "relu",
        },
        {"type": "pool", "cin": 48, "cout": 48},
        {"type": "fc", "cin": 48, "cout": 10, "act": "hsigmoid"},
        {"type": "fc", "cin": 10, "cout": 5, "act": None, "bias": False},
    ],
}


# ---- a generic builder: a layer list as a plain torch model (not padnas.nn.ops) ------------------

_ACTS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "hsigmoid": nn.Hardsigmoid,
}


def _act(name):
    return _ACTS[name]() if name else nn.Identity()


def _conv(cin, cout, k, s, groups, act):
    pad = k // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), _act(act)
    )


class _Block(nn.Module):
    """An inverted bottleneck as a user writes one (AdaptiveAvgPool SE, view/transpose shuffle)."""

    def __init__(self, layer):
        super().__init__()
        h, g = layer.hidden, layer.groups
        self.expand = _conv(layer.cin, h, 1, 1, g, layer.act) if layer.expand_conv else None
        self.shuffle = g if layer.channel_shuffle else 0
        self.dw = _conv(h, h, layer.kernel, layer.stride, h, layer.act)
        self.se = None
        if layer.se_hidden:
            self.se = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(h, layer.se_hidden, 1),
                _act(layer.se_act),
                nn.Conv2d(layer.se_hidden, h, 1),
                _act(layer.se_gate),
            )
        self.project = _conv(h, layer.cout, 1, 1, g, None)
        self.residual = layer.residual

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        if self.shuffle:
            n, c, hh, ww = y.shape
            y = y.view(n, self.shuffle, c // self.shuffle, hh, ww).transpose(1, 2)
            y = y.reshape(n, c, hh, ww)
        y = self.dw(y)
        if self.se is not None:
            y = y * self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


def torch_model(net: Network) -> nn.Module:
    mods = []
    for layer in net.layers:
        t = layer.type
        if t == "conv":
            mods.append(
                _conv(layer.cin, layer.cout, layer.kernel, layer.stride, layer.groups, layer.act)
            )
        elif t == "dwconv":
            mods.append(
                _conv(layer.cin, layer.cout, layer.kernel, layer.stride, layer.cin, layer.act)
            )
        elif t == "ibconv":
            mods.append(_Block(layer))
        elif t == "pool":
            mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif t == "fc":
            mods += [nn.Linear(layer.cin, layer.cout, bias=layer.bias), _act(layer.act)]
        # identity: nothing to compute
    return nn.Sequential(*mods).eval()


def export(module: nn.Module, net: Network, path: Path) -> Path:
    torch.onnx.export(
        module, (torch.zeros(net.input_shape),), str(path), opset_version=17, dynamo=False
    )
    return path


def computed_layers(net: Network) -> list[dict]:
    """The layer list without identity layers (an export drops them; they cost nothing)."""
    return [to_layer_dict(layer) for layer in net.layers if layer.type != "identity"]


# ---- the published networks -------------------------------------------------------------------


@pytest.fixture(scope="module")
def published_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    nets = load_networks(PUBLISHED)
    return {
        name: (net, export(torch_model(net), net, folder / f"{name}.onnx"))
        for name, net in nets.items()
    }


def test_the_four_published_networks_are_tested():
    assert set(load_networks(PUBLISHED)) == {
        "MobileNetV1_1.0",
        "MobileNetV2_1.0",
        "MobileNetV2_1.4",
        "ProxylessNAS_mobile",
    }


@pytest.mark.parametrize("name", sorted(load_networks(PUBLISHED)))
def test_published_network_reads_back_as_its_description(published_onnx, name):
    net, path = published_onnx[name]
    read = read_onnx(path)
    assert read.name == name and read.input_hw == net.input_hw
    assert computed_layers(read) == computed_layers(net)
    assert read.macs == net.macs


@pytest.mark.parametrize("name", sorted(load_networks(PUBLISHED)))
def test_published_network_onnx_prices_exactly_as_its_description(published_onnx, name):
    net, path = published_onnx[name]
    lut = load_lut(PIXEL3, "basic")
    hand, read = predict_network(net, lut), predict_network(read_onnx(path), lut)
    assert read.ms == hand.ms and read.rows == hand.rows
    assert read.ms > 0


def test_predict_onnx_on_the_cli_equals_the_description(published_onnx, latency_cli):
    name = "ProxylessNAS_mobile"
    _, path = published_onnx[name]
    hand = latency_cli("predict", PUBLISHED, "--net", name, "--lut", PIXEL3, "--json")
    onnx = latency_cli("predict", path, "--lut", PIXEL3, "--json")
    assert hand.exit_code == 0 and onnx.exit_code == 0, (hand.output, onnx.output)
    (h,), (o,) = json.loads(hand.stdout)["predictions"], json.loads(onnx.stdout)["predictions"]
    assert o["name"] == name and o["ms"] == h["ms"] and o["units"] == h["units"]
    text = latency_cli("predict", path, "--lut", PIXEL3)
    assert text.stdout.startswith(f"{name}: {h['ms']:.2f} ms on pixel3")


def test_describe_writes_a_layer_list_that_predicts_the_same(published_onnx, latency_cli, tmp_path):
    net, path = published_onnx["MobileNetV2_1.4"]
    out = tmp_path / "net.json"
    r = latency_cli("describe", path, "-o", out)
    assert r.exit_code == 0, r.output
    assert str(out) in r.stdout
    (written,) = load_networks(out).values()
    assert computed_layers(written) == computed_layers(net)
    # without -o the layer list goes to stdout, nothing else
    doc = json.loads(latency_cli("describe", path).stdout)
    assert doc["layers"] == computed_layers(net)


# ---- every kind, from both ways of writing it in torch -----------------------------------------


@pytest.mark.parametrize("builder", ["plain torch", "padnas.nn.ops"])
def test_every_layer_kind_reads_back(tmp_path, builder):
    net = network_from_dict("allkinds", ALL_KINDS)
    module = torch_model(net) if builder == "plain torch" else net.build_module()
    read = read_onnx(export(module, net, tmp_path / "m.onnx"))
    assert computed_layers(read) == computed_layers(net)
    assert read.input_hw == (40, 32)


# ---- refused graphs ----------------------------------------------------------------------------


class _Upsampling(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")


def test_unsupported_op_is_refused_naming_the_node(tmp_path, latency_cli, expect_error):
    net = network_from_dict(
        "n",
        {"input": 16, "layers": [{"type": "conv", "cin": 3, "cout": 8, "kernel": 3, "stride": 1}]},
    )
    path = export(_Upsampling().eval(), net, tmp_path / "up.onnx")
    with pytest.raises(UnsupportedGraph, match=r"node '/Resize' \(Resize\) cannot be mapped"):
        read_onnx(path)
    for args in (["predict", path, "--lut", PIXEL3], ["describe", path]):
        expect_error(latency_cli(*args), 2, "'/Resize' (Resize)")


def test_a_residual_add_around_two_layers_is_refused(tmp_path):
    class TwoConvSkip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = _conv(8, 8, 3, 1, 1, "relu"), _conv(8, 8, 3, 1, 1, "relu")

        def forward(self, x):
            return x + self.b(self.a(x))

    net = network_from_dict(
        "n",
        {
            "input": 8,
            "in_chs": 8,
            "layers": [{"type": "conv", "cin": 8, "cout": 8, "kernel": 3, "stride": 1}],
        },
    )
    with pytest.raises(UnsupportedGraph, match=r"\(Add\): a residual add must enclose exactly"):
        read_onnx(export(TwoConvSkip().eval(), net, tmp_path / "skip.onnx"))


def test_not_an_onnx_file_is_a_usage_error(tmp_path, latency_cli, expect_error):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a model")
    expect_error(latency_cli("describe", bad), 2, "bad.onnx")
    expect_error(latency_cli("describe", tmp_path / "missing.onnx"), 2, "missing.onnx")


def test_a_custom_op_is_refused_naming_the_node(tmp_path):
    """An op of another domain has no shape inference: the reader still names the node."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], "stem", pads=[1, 1, 1, 1]),
            helper.make_node("FancyNorm", ["c"], ["y"], "fancy_1", domain="com.example"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    with pytest.raises(UnsupportedGraph, match=r"node 'fancy_1' \(FancyNorm\) cannot be mapped"):
        read_onnx(path)


def test_a_graph_with_a_cycle_is_refused_naming_a_node_on_it(tmp_path, latency_cli, expect_error):
    """a = x + c, b = relu(a), c = relu(b): refused before anything walks it (no hang)."""
    import threading

    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "c"], ["a"], "a"),
            helper.make_node("Relu", ["a"], ["b"], "b"),
            helper.make_node("Relu", ["b"], ["c"], "c"),
        ],
        "loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 8, 8, 8])],
    )
    path = tmp_path / "loop.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    outcome = {}

    def read():
        try:
            read_onnx(path)
        except UnsupportedGraph as exc:
            outcome["error"] = str(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "reading a graph with a cycle did not end"
    assert outcome["error"].startswith("node 'a' (Add): the graph has a cycle through this node")
    expect_error(latency_cli("describe", path), 2, "node 'a' (Add): the graph has a cycle")


def _one_input(size=8, chs=8):
    return network_from_dict(
        "n",
        {
            "input": size,
            "in_chs": chs,
            "layers": [{"type": "conv", "cin": chs, "cout": chs, "kernel": 1, "stride": 1}],
        },
    )


class _DenseConcat(nn.Module):
    """DenseNet's growth: the input beside a conv of it (not a ShuffleNetV2 unit)."""

    def __init__(self):
        super().__init__()
        self.conv = _conv(8, 4, 3, 1, 1, "relu")

    def forward(self, x):
        return torch.cat((x, self.conv(x)), 1)


class _SwappedHalves(nn.Module):
    """A ShuffleNetV2 unit whose concat puts the branch first: another function."""

    def __init__(self):
        super().__init__()
        self.branch = nn.Sequential(
            _conv(4, 4, 1, 1, 1, "relu"), _conv(4, 4, 3, 1, 4, None), _conv(4, 4, 1, 1, 1, "relu")
        )

    def forward(self, x):
        out = torch.cat((self.branch(x[:, 4:]), x[:, :4]), 1)
        return out.view(1, 2, 4, 8, 8).transpose(1, 2).reshape(1, 8, 8, 8)


class _EvenWindow(nn.Module):
    def forward(self, x):
        return nn.functional.max_pool2d(x, 2, 2)


class _AbsInBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _conv(8, 8, 3, 1, 1, None)

    def forward(self, x):
        return torch.relu(x + self.conv(torch.abs(x)))


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (
            _DenseConcat,
            r"node '/Concat' \(Concat\): a concat is only mapped as a ShuffleNetV2 unit",
        ),
        (_SwappedHalves, r"node '/Concat' \(Concat\): a concat is only mapped as a ShuffleNetV2"),
        (_EvenWindow, r"node '/MaxPool' \(MaxPool\): only square odd windows .* \(kernel 2x2"),
        (_AbsInBranch, r"node '/Abs' \(Abs\) cannot be mapped to a layer"),
    ],
)
def test_a_branching_graph_that_maps_to_no_layer_is_refused_naming_the_node(
    tmp_path, module, message
):
    path = export(module().eval(), _one_input(), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedGraph, match=message):
        read_onnx(path)
