"""The PAD-NAS paper's held-out networks through ONNX: FBNet-A/B/C, FairNAS-C, Single-Path NAS
and MobileNetV3-Large x0.75, written in plain torch from their authors' definitions
(``tests/zoo_support.py``), exported at 224x224, read back as their published layer lists and
priced by ``padnas-latency predict`` with the shipped, pooled Pixel 3 table: one price whatever
``--space`` says. (What the prices are against the paper's latencies is
``benchmarks/pixel3_heldout.py``'s to print; no test holds a latency figure.)"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import zoo_support
from repo_support import PIXEL3

from latency.networks.onnx_import import read_onnx

# What each paper publishes: layer kinds, block widths in order, MACs at 224x224 (the PAD-NAS
# paper's FLOPs column) with the agreement each builder's docstring states, and the builder's
# exact parameter count (within 1.5 % of the paper's, FBNet-B excepted: see its docstring).


def _fbnet_widths(blocks):
    return [b[2] for b in blocks if b is not None]


HELD_OUT = {
    "FBNet-A": dict(
        layers={"conv": 2, "ibconv": 19, "pool": 1, "fc": 1},
        widths=_fbnet_widths(zoo_support.FBNET_A),
        macs=(249e6, 0.005),
        params=4_321_464,
    ),
    "FBNet-B": dict(
        layers={"conv": 2, "ibconv": 21, "pool": 1, "fc": 1},
        widths=_fbnet_widths(zoo_support.FBNET_B),
        macs=(295e6, 0.01),
        params=4_813_048,
    ),
    "FBNet-C": dict(
        layers={"conv": 2, "ibconv": 21, "pool": 1, "fc": 1},
        widths=_fbnet_widths(zoo_support.FBNET_C),
        macs=(375e6, 0.03),
        params=5_572_200,
    ),
    "FairNAS-C": dict(
        layers={"conv": 2, "ibconv": 20, "pool": 1, "fc": 1},
        widths=[16, *[32] * 2, *[40] * 4, *[80] * 4, *[96] * 4, *[192] * 4, 320],
        macs=(321e6, 0.005),
        params=4_397_864,
    ),
    "Single-Path NAS": dict(
        layers={"conv": 2, "ibconv": 21, "pool": 1, "fc": 1},
        widths=[16, *[24] * 3, *[40] * 4, *[80] * 4, *[96] * 4, *[192] * 4, 320],
        macs=(334e6, 0.005),
        params=4_421_616,
    ),
    "MobileNetV3-Large-0.75": dict(
        layers={"conv": 2, "ibconv": 15, "pool": 1, "fc": 2},
        widths=[16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 88, 88, 120, 120, 120],
        macs=(155e6, 0.005),
        params=3_993_528,
    ),
}
PAPER_PARAMS = {
    "FBNet-A": 4.3e6,
    "FBNet-C": 5.5e6,
    "FairNAS-C": 4.4e6,
    "Single-Path NAS": 4.4e6,
    "MobileNetV3-Large-0.75": 4.0e6,
}
SPACES = (None, "basic", "large", "v3")


@pytest.fixture(scope="module")
def onnx_of(tmp_path_factory):
    """``onnx_of(name)``: the held-out network's ONNX file, exported on first use."""
    folder = tmp_path_factory.mktemp("heldout")
    files = {}

    def get(name):
        if name not in files:
            module = zoo_support.HELD_OUT[name]()
            files[name] = zoo_support.export_onnx(module, folder / f"{name}.onnx")
        return files[name]

    return get


def test_every_held_out_network_is_tested():
    assert set(HELD_OUT) == set(zoo_support.HELD_OUT)


@pytest.mark.parametrize("name", list(HELD_OUT))
def test_held_out_network_reads_as_its_published_layers(onnx_of, name):
    want = HELD_OUT[name]
    net = read_onnx(onnx_of(name))
    assert net.input_hw == (224, 224) and net.num_classes == 1000
    assert Counter(layer.type for layer in net.layers) == want["layers"]
    assert [layer.cout for layer in net.layers if layer.type == "ibconv"] == want["widths"]
    macs, rel = want["macs"]
    assert net.macs == pytest.approx(macs, rel=rel)
    assert net.params == want["params"]
    if name in PAPER_PARAMS:
        assert net.params == pytest.approx(PAPER_PARAMS[name], rel=0.015)


def test_fbnet_group_blocks_read_with_their_shuffle(onnx_of):
    """FBNet's 'g2' blocks: both 1x1 convs in two groups, a channel shuffle after the first,
    and the expand conv kept at expansion 1."""
    net = read_onnx(onnx_of("FBNet-A"))
    blocks = [layer for layer in net.layers if layer.type == "ibconv"]
    grouped = [b for b in blocks if b.groups == 2]
    assert [(b.cin, b.kernel) for b in grouped] == [(64, 5), (112, 5), (112, 3)]
    assert all(b.channel_shuffle and b.expand_conv and b.hidden == b.cin for b in grouped)
    assert all(b.residual for b in grouped)
    assert all(b.act == "relu" for b in blocks)


@pytest.mark.parametrize("name", list(HELD_OUT))
def test_held_out_network_is_priced_alike_with_every_space(onnx_of, latency_cli, name):
    docs = []
    for space in SPACES:
        args = ["predict", onnx_of(name), "--lut", PIXEL3, "--json"]
        r = latency_cli(*args, *(["--space", space] if space else []))
        assert r.exit_code == 0, r.output
        (doc,) = json.loads(r.stdout)["predictions"]
        docs.append(doc)
    first = docs[0]
    assert math.isfinite(first["ms"]) and first["ms"] > 0
    assert {u["source"] for u in first["units"]} <= {"estimate", "regression"}
    for doc in docs[1:]:
        assert doc["ms"] == first["ms"]
        assert doc["units"] == first["units"]
