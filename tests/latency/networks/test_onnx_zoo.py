"""The mobile zoo through ONNX: MobileNetV2, MobileNetV3-Large/Small, MnasNet-A1,
EfficientNet-B0, ShuffleNetV2 x1.0 and ResNet-18, written in plain torch from their papers
(``tests/zoo_support.py``) and exported at 224x224, read back as their published layer lists
(block widths, parameter counts, MACs) and priced unit by unit."""

from __future__ import annotations

import json
import math
from collections import Counter

import onnx
import pytest
import zoo_support
from repo_support import PIXEL3

from latency.lut.table import load_lut
from latency.networks.latency import predict_network
from latency.networks.onnx_import import read_onnx
from latency.networks.units import network_units


@pytest.fixture(scope="module")
def zoo_onnx(tmp_path_factory):
    """``onnx_of(name)``: the network's ONNX file, exported on first use (each test pays for
    the networks it reads)."""
    folder = tmp_path_factory.mktemp("zoo")
    files = {}

    def onnx_of(name, build=None):
        if name not in files:
            module = (build or zoo_support.ZOO[name])()
            files[name] = zoo_support.export_onnx(module, folder / f"{name}.onnx")
        return files[name]

    return onnx_of


@pytest.fixture(scope="module")
def lut():
    return load_lut(PIXEL3, "basic")


# What each paper publishes: the block widths in order; parameters as torchvision's model pages
# list them for its implementations of the same definitions (MnasNet-A1: the paper's 3.9 M);
# multiply-adds at 224x224 as each paper gives them.
REPEAT = [n for c, r in ((116, 4), (232, 8), (464, 4)) for n in [c] * r]
ZOO = {
    "MobileNetV2": dict(
        layers={"conv": 2, "ibconv": 17, "pool": 1, "fc": 1},
        widths=[16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320],
        se=0,
        params=3_504_872,
        macs=300e6,
    ),
    "MobileNetV3-Large": dict(
        layers={"conv": 2, "ibconv": 15, "pool": 1, "fc": 2},
        widths=[16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160],
        se=8,
        params=5_483_032,
        macs=219e6,
    ),
    "MobileNetV3-Small": dict(
        layers={"conv": 2, "ibconv": 11, "pool": 1, "fc": 2},
        widths=[16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96],
        se=9,
        params=2_542_856,
        macs=56e6,
    ),
    "MnasNet-A1": dict(
        layers={"conv": 2, "ibconv": 16, "pool": 1, "fc": 1},
        widths=[16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160, 320],
        se=8,
        params=3.9e6,
        macs=312e6,
    ),
    "EfficientNet-B0": dict(
        layers={"conv": 2, "ibconv": 16, "pool": 1, "fc": 1},
        widths=[16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320],
        se=16,
        params=5_288_548,
        macs=390e6,
    ),
    "ShuffleNetV2": dict(
        layers={"conv": 2, "maxpool": 1, "shufflev2": 16, "pool": 1, "fc": 1},
        widths=REPEAT,
        se=0,
        params=2_278_604,
        macs=146e6,
    ),
    "ResNet-18": dict(
        layers={"conv": 1, "maxpool": 1, "basicblock": 8, "pool": 1, "fc": 1},
        widths=[64, 64, 128, 128, 256, 256, 512, 512],
        se=0,
        params=11_689_512,
        macs=1.8e9,
    ),
}
BLOCKS = ("ibconv", "shufflev2", "basicblock")


def test_the_seven_networks_are_tested():
    assert set(ZOO) == set(zoo_support.ZOO)


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_network_reads_as_its_published_layers(zoo_onnx, name):
    want = ZOO[name]
    net = read_onnx(zoo_onnx(name))
    assert net.input_hw == (224, 224) and net.num_classes == 1000
    assert Counter(layer.type for layer in net.layers) == want["layers"]
    blocks = [layer for layer in net.layers if layer.type in BLOCKS]
    assert [layer.cout for layer in blocks] == want["widths"]
    assert sum(bool(layer.se_hidden) for layer in blocks) == want["se"]
    if isinstance(want["params"], int):
        assert net.params == want["params"]
    else:
        assert net.params == pytest.approx(want["params"], rel=0.01)
    assert net.macs == pytest.approx(want["macs"], rel=0.02)


def test_resnet18_blocks_project_where_the_shape_changes(zoo_onnx):
    net = read_onnx(zoo_onnx("ResNet-18"))
    blocks = [layer for layer in net.layers if layer.type == "basicblock"]
    assert [(b.stride, b.projection) for b in blocks] == [(1, False), (1, False)] + [
        (2, True),
        (1, False),
    ] * 3
    assert all(b.kernel == 3 and b.act == "relu" for b in blocks)
    stem, pool = net.layers[:2]
    assert (stem.type, stem.kernel, stem.stride, stem.cout) == ("conv", 7, 2, 64)
    assert (pool.type, pool.kernel, pool.stride, pool.out_hw) == ("maxpool", 3, 2, (56, 56))


def test_shufflenet_units_split_or_stride(zoo_onnx):
    net = read_onnx(zoo_onnx("ShuffleNetV2"))
    units = [layer for layer in net.layers if layer.type == "shufflev2"]
    strided = [(u.cin, u.cout, u.in_hw) for u in units if u.stride == 2]
    assert strided == [(24, 116, (56, 56)), (116, 232, (28, 28)), (232, 464, (14, 14))]
    assert all(u.kernel == 3 and u.act == "relu" for u in units)
    assert [layer.type for layer in net.layers[-3:]] == ["conv", "pool", "fc"]


def test_shufflenet_split_by_slicing_reads_as_split_by_chunk(zoo_onnx):
    sliced = zoo_onnx("ShuffleNetV2-slice", lambda: zoo_support.shufflenet_v2(split="slice"))
    assert read_onnx(sliced).layers == read_onnx(zoo_onnx("ShuffleNetV2")).layers


def test_efficientnet_linear_squeeze_excite_reads_as_a_conv_one(zoo_onnx):
    net = read_onnx(zoo_onnx("EfficientNet-B0"))
    first = next(layer for layer in net.layers if layer.type == "ibconv")
    assert (first.se_hidden, first.se_act, first.se_gate) == (8, "swish", "sigmoid")
    assert all(layer.act == "swish" for layer in net.layers if layer.type == "ibconv")


def test_a_graph_listed_out_of_order_reads_the_same(zoo_onnx, tmp_path):
    model = onnx.load(str(zoo_onnx("ResNet-18")))
    nodes = list(model.graph.node)[::-1]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    path = tmp_path / "reversed.onnx"
    onnx.save(model, str(path))
    assert read_onnx(path).layers == read_onnx(zoo_onnx("ResNet-18")).layers


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_network_onnx_is_priced_unit_by_unit(zoo_onnx, lut, name):
    net = read_onnx(zoo_onnx(name))
    units = network_units(net)
    pred = predict_network(net, lut)
    assert [(kind, key) for kind, key, _, _ in pred.rows] == [(u.kind, u.key) for u in units]
    assert all(math.isfinite(ms) and ms > 0 for _, _, ms, _ in pred.rows)
    assert {src for *_, src in pred.rows} <= {"measured", "estimate", "regression"}
    # a unit the LUT's space does not have is priced by the fallback
    for kind, key, _, src in pred.rows:
        if kind in ("maxpool", "basicblock", "shufflev2"):
            assert key not in lut.entries and src == "regression"
    assert pred.raw_ms == pytest.approx(sum(ms for _, _, ms, _ in pred.rows))
    assert pred.ms == pytest.approx(lut.calibrate(pred.raw_ms))


def test_predicted_latency_follows_the_work(zoo_onnx, lut):
    """56 M MACs, 300 M and 1.8 G: the fallback must rank them as their work does."""
    ms = {
        name: predict_network(read_onnx(zoo_onnx(name)), lut).ms
        for name in ("MobileNetV3-Small", "MobileNetV2", "ResNet-18")
    }
    assert ms["MobileNetV3-Small"] < ms["MobileNetV2"] < ms["ResNet-18"]


@pytest.mark.parametrize(
    ("name", "kind", "count"), [("ShuffleNetV2", "shufflev2", 16), ("ResNet-18", "basicblock", 8)]
)
def test_describe_and_predict_on_the_cli(zoo_onnx, latency_cli, tmp_path, name, kind, count):
    path, out = zoo_onnx(name), tmp_path / "net.json"
    r = latency_cli("describe", path, "-o", out)
    assert r.exit_code == 0, r.output
    assert f"{count} {kind}" in r.stdout
    assert [layer["type"] for layer in json.loads(out.read_text())["layers"]].count(kind) == count
    r = latency_cli("predict", path, "--lut", PIXEL3, "--json")
    assert r.exit_code == 0, r.output
    (doc,) = json.loads(r.stdout)["predictions"]
    assert doc["name"] == name and doc["ms"] > 0
    assert [u["kind"] for u in doc["units"]].count(kind) == count
    # the written layer list prices exactly as the ONNX file
    r = latency_cli("predict", out, "--lut", PIXEL3, "--json")
    assert json.loads(r.stdout)["predictions"][0]["units"] == doc["units"]
