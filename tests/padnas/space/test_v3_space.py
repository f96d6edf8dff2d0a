"""The MobileNetV3-based space (``--space v3``): its size, blocks, supernet, LUT keys, a real
TFLite conversion of an SE/h-swish block, the shipped Pixel 3 estimate, and a search end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from repo_support import REPO
from search_support import mock_lut, run_pipeline, tiny_data, tiny_plan
from torch import nn

from latency.lut.table import load_lut
from latency.networks.checks import network_from_dict
from latency.networks.units import arch_layers, as_arch, network_units
from latency.variants import Variant, arch_keys, space_variants
from padnas.cli import main as padnas_main
from padnas.nn import ops
from padnas.nn.complexity import count_macs, macs_params
from padnas.nn.supernet import ChildNet, Supernet
from padnas.run.plan import plan_search
from padnas.space import Proxy, SpaceError, get_space, se_channels


@pytest.fixture(scope="module")
def v3():
    return get_space("v3")


def test_size_matches_the_formula_on_the_command_line(v3):
    res = CliRunner().invoke(padnas_main, ["space", "--space", "v3", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    # first layer: K3/5/7 at E1 with SE on/off (6); five stages of 4 layers each: the first of a
    # stage 3 kernels x 2 expansions x SE on/off (12), the other three also identity (13)
    assert int(data["size"]) == 6 * 12**5 * 13**15 == v3.size
    assert data["num_layers"] == 21 and data["stem_chs"] == 16
    assert [layer["out_chs"] for layer in data["layers"][::4]] == [16, 24, 40, 80, 112, 160]
    assert data["stem_act"] == data["head_act"] == "hswish"
    acts = [layer["act"] for layer in data["layers"]]
    assert acts == ["relu"] * 9 + ["hswish"] * 12  # h-swish from the 80-channel stage on


def test_op_names_and_refusals(v3):
    assert v3.validate("-".join(["K5E1SE", *(["K7E6SE"] * 20)]))
    with pytest.raises(SpaceError, match="does not allow K3E4"):
        v3.validate("-".join(["K3E1", "K3E4", *(["ID"] * 19)]))
    with pytest.raises(SpaceError, match="layer 1 does not allow K5E3SE"):
        get_space("basic").validate("-".join(["K3E1", "K5E3SE", *(["K3E3"] * 20)]))
    with pytest.raises(SpaceError, match=r"K<kernel>E<expansion>\[SE\]"):
        v3.validate("K5E3X")
    with pytest.raises(SpaceError, match="allowed"):
        v3.validate("-".join(["K3E1", "ID", *(["K3E3"] * 19)]))  # no identity where stride 2


def test_se_op_is_mobilenetv3s_block():
    block = ops.build_op("K5E6SE", 24, 24, 1, "hswish")
    assert block.residual
    mods = list(block.modules())
    se = [m for m in mods if isinstance(m, ops.SqueezeExcite)]
    assert len(se) == 1 and se[0].reduce.out_channels == se_channels(144) == 40
    assert isinstance(se[0].gate, nn.Hardsigmoid) and isinstance(se[0].act, nn.ReLU)
    assert sum(isinstance(m, nn.Hardswish) for m in mods) == 2  # expand and depthwise
    plain = ops.build_op("K5E6", 24, 24, 1, "relu")
    assert not any(isinstance(m, ops.SqueezeExcite) for m in plain.modules())
    assert not any(isinstance(m, nn.Hardswish) for m in plain.modules())


def test_supernet_path_equals_extracted_child(v3):
    torch.manual_seed(0)
    proxy = Proxy(32, 0.25)
    net = Supernet(v3, proxy, num_classes=5).eval()
    arch = v3.sample(np.random.default_rng(3))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = net(x, arch)
        b = net.extract(arch).eval()(x)
    assert a.shape == (2, 5) and torch.equal(a, b)
    assert isinstance(ChildNet(v3, arch, proxy).stem[2], nn.Hardswish)


def test_variant_keys_rebuild_blocks_and_match_layer_lists(v3):
    variants = space_variants(v3)
    keys = [v.key for v in variants]
    assert "stem-k3-s2-i224x224x3-o112x112x16-hswish" in keys
    assert "head-i7x7x160-f1280-c1000-hswish" in keys
    assert "ibconv-k3-e1-s1-i112x112x16-o112x112x16-se-relu" in keys
    assert "ibconv-k7-e6-s1-i14x14x112-o14x14x112-se-hswish" in keys
    assert len(set(keys)) == len(keys) == 128
    for v in variants:
        assert Variant.from_key(v.key) == v
    # a key's regression features count what its block computes
    v = Variant.from_key("ibconv-k5-e6-s1-i14x14x80-o14x14x80-se-hswish")
    block = v.build_module()
    assert v.features()["macs"] == count_macs(block, v.input_shape)
    assert v.features()["params"] == sum(p.numel() for p in block.parameters())
    # an architecture written as a layer list gets the same keys, and reads back as itself
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = v3.sample(rng)
        net = network_from_dict("x", arch_layers(v3, arch))
        assert [u.key for u in network_units(net)] == arch_keys(v3, arch)
        assert as_arch(net, v3) == arch


def test_relu6_spaces_keep_their_keys_and_signatures():
    # the shipped LUTs of basic and large are keyed by these: v3 must not move them
    assert get_space("basic").signature == "a4775ea0f28a0468"
    assert get_space("large").signature == "04dfddacf6dd3ec1"
    basic = [v.key for v in space_variants(get_space("basic"))]
    assert "stem-k3-s2-i224x224x3-o112x112x32" in basic
    assert all("-se" not in k and "swish" not in k for k in basic)


def test_macs_are_additive_over_blocks(v3):
    arch = v3.sample(np.random.default_rng(1))
    macs, params = macs_params(v3, arch, resolution=64, num_classes=10)
    whole = ChildNet(v3, arch, Proxy(64), num_classes=10)
    assert macs == count_macs(whole, (1, 3, 64, 64))
    assert params == sum(p.numel() for p in whole.parameters())


def test_shipped_pixel3_estimate_for_v3(v3):
    lut = load_lut(str(REPO / "device_profiles" / "pixel3.json"), "v3", 224)
    assert lut.family == "v3" and lut.space_signature == v3.signature
    assert set(lut.entries) == {v.key for v in space_variants(v3)}
    assert {e["source"] for e in lut.entries.values()} == {"estimate"}
    transfer = lut.provenance["transfer"]
    assert not transfer.get("reused")  # fitted with the other spaces, in one guarded run
    # the very model the basic and large tables were made with, fitted on the four networks
    basic = load_lut(str(REPO / "device_profiles" / "pixel3.json"), "basic", 224)
    for k in ("scale", "per_unit_ms", "offset_ms", "fitted_on", "host_reference"):
        assert transfer[k] == basic.provenance["transfer"][k]
    assert len(transfer["fitted_on"]) == 4
    assert transfer["host_reference"]["reference_ms"] > 0
    assert lut.provenance["host_measured"]["records"] > 0


def test_quick_search_end_to_end(tmp_path):
    """``padnas search --space v3`` (the planner and pipeline the command runs) with tiny settings
    on a mock v3 LUT: trains, searches and writes its final architectures."""
    lut_file = tmp_path / "mock-v3.json"
    mock_lut("v3").save(lut_file)
    plan = tiny_plan(lut_file, 2, family="v3")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_pipeline(plan, tiny_data(), tmp_path / "run")
    finally:
        torch.set_num_threads(before)
    final = json.loads((tmp_path / "run" / "final.json").read_text())
    text = json.dumps(final)
    v3 = get_space("v3")
    archs = [a for a in _strings(final) if a.count("-") == v3.num_layers - 1]
    assert archs and all(v3.validate(a) for a in archs), text[:300]


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


@pytest.mark.slow
def test_v3_block_converts_to_tflite(tmp_path, monkeypatch):
    """An SE + h-swish block goes through the checked ONNX -> TFLite conversion."""
    monkeypatch.setenv("PADNAS_CACHE", str(tmp_path / "cache"))
    from latency.export import convert as export

    block = Variant.from_key("ibconv-k5-e3-s2-i16x16x16-o8x8x24-se-hswish")
    path = export.export_variant(block)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["variant"] == block.key and 0 <= meta["check_max_abs_err"] < 1e-3


def test_reused_transfer_model_is_the_shipped_one():
    from latency.transfer.estimate import shipped_transfer
    from latency.transfer.fit import TransferError, TransferModel

    profile = json.loads((REPO / "device_profiles" / "pixel3.json").read_text())
    transfer = shipped_transfer(profile)
    model = TransferModel.from_dict(transfer)
    assert model.formula() == transfer["formula"] and model.fitted_on == tuple(
        transfer["fitted_on"]
    )
    assert model.network_ms([1.0, 2.0]) == pytest.approx(3 * transfer["scale"] + model.offset_ms)
    with pytest.raises(TransferError, match="ships no estimated LUT"):
        shipped_transfer({"name": "phone", "luts": []})
    other = json.loads(json.dumps(profile))
    other["luts"][0]["provenance"]["transfer"]["scale"] = 1.0
    with pytest.raises(TransferError, match="different transfer models"):
        shipped_transfer(other)


def test_default_window_on_the_pixel3_estimate():
    """On the re-estimated Pixel 3 table Table 4's 40-56 ms is reachable and is the default."""
    plan = plan_search(str(REPO / "device_profiles" / "pixel3.json"), family="v3")
    win = plan.settings.window
    assert (win.lo, win.hi) == (40.0, 56.0)
    assert "Table 4" in plan.settings.window_rule
