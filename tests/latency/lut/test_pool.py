"""One table per device and resolution for networks: a profile's families pooled, checked against
each other first, and a network priced the same whatever else its file or the profile holds."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from search_support import mock_lut

from latency.cli.app import main
from latency.lut.pool import agreements, network_pool, pool_luts
from latency.lut.table import Lut, LutError, read_luts
from latency.networks.checks import network_from_dict
from latency.networks.latency import predict_network
from latency.networks.units import network_units
from latency.variants import clipping_twin, shape_key

NET = {
    "input": 224,
    "layers": [
        {"type": "conv", "cin": 3, "cout": 16, "kernel": 3, "stride": 2},
        {"type": "ibconv", "cin": 16, "cout": 16, "kernel": 3, "expansion": 1},
        {"type": "ibconv", "cin": 16, "cout": 24, "kernel": 5, "expansion": 6, "stride": 2},
        {"type": "pool", "cin": 24, "cout": 24},
        {"type": "fc", "cin": 24, "cout": 1000},
    ],
}


@pytest.fixture(scope="module")
def tables() -> list[Lut]:
    return [mock_lut(family) for family in ("basic", "large", "v3")]


def _bundle(tmp_path, luts: list[Lut]):
    path = tmp_path / "profile.json"
    doc = {"schema": 1, "name": "mock", "transport": "mock", "luts": [t.to_dict() for t in luts]}
    path.write_text(json.dumps(doc))
    return path


def _inflated(lut: Lut, factor: float) -> Lut:
    data = copy.deepcopy(lut.to_dict())
    for entry in data["entries"].values():
        for f in ("ms", "p10", "p90"):
            entry[f] *= factor
    return Lut.from_dict(data)


def test_relu_and_relu6_entries_of_a_shape_are_one_shape():
    assert shape_key("ibconv-k3-e1-s1-i112x112x16-o112x112x16-relu") == (
        "ibconv-k3-e1-s1-i112x112x16-o112x112x16"
    )
    assert shape_key("stem-k3-s2-i224x224x3-o112x112x16-hswish").endswith("-hswish")


def test_the_families_of_one_device_agree_and_pool(tables):
    assert all(a.holds() and a.shared for a in agreements(tables))
    pool = pool_luts(tables)
    assert pool.label == "basic+large+v3@224"
    held = set().union(*(t.entries for t in tables))
    twins = set(pool.entries) - held
    assert held <= set(pool.entries)
    # the rest are clipping twins: the same shape under the other of ReLU / ReLU6
    assert twins and all(clipping_twin(k) in held for k in twins)
    fams = pool.provenance["entry_families"]
    assert fams["head-i7x7x320-f1280-c1000"] == ["basic", "large"]


def test_a_shape_held_under_relu6_prices_its_relu_twin(tables):
    """TFLite fuses ReLU and ReLU6 into the conv at one cost: a ReLU unit of a shape the tables
    time under ReLU6 is priced by that entry (its families say so), not by the regression."""
    basic = next(t for t in tables if t.family == "basic")
    pool = pool_luts([basic])
    key = "ibconv-k5-e6-s1-i28x28x40-o28x28x40"
    relu = key + "-relu"
    assert key in basic.entries and relu not in basic.entries
    assert pool.entries[relu] == basic.entries[key]
    assert pool.provenance["entry_families"][relu] == [f"basic (as {key})"]
    assert clipping_twin(relu) == key and clipping_twin(key + "-hswish") is None
    assert clipping_twin("fc-i1280-o1000-linear") is None
    assert clipping_twin("dwconv-k3-s1-i7x7x8-o7x7x8-relu6") == "dwconv-k3-s1-i7x7x8-o7x7x8-relu"


def test_every_family_prices_a_shared_unit_the_same(tables):
    by_shape: dict[str, set[float]] = {}
    for t in tables:
        for key in t.entries:
            by_shape.setdefault(shape_key(key), set()).add(round(t.ms(key), 9))
    shared = [s for s in by_shape if len(s) > 0]
    assert shared and all(len(v) == 1 for v in by_shape.values())


def test_a_network_costs_the_same_whatever_else_its_file_holds(tables):
    pool = network_pool(tables, 224)
    net = network_from_dict("tiny", NET)
    alone = predict_network(net, pool).ms
    other = network_from_dict("other", {**NET, "layers": NET["layers"][:3]})
    together = {n.name: predict_network(n, network_pool(tables, 224)).ms for n in (other, net)}
    assert together["tiny"] == alone
    assert predict_network(net, network_pool(list(reversed(tables)), 224)).ms == alone
    assert network_units(net)  # priced unit by unit from one pool


def test_a_disagreeing_family_is_refused_naming_the_shape(tables):
    basic, large, v3 = tables
    with pytest.raises(LutError, match=r"disagree on ibconv-.* \(1\.67x, tolerance 3%\)"):
        pool_luts([basic, large, _inflated(v3, 1.67)])


def test_luts_of_other_devices_or_calibrations_are_not_pooled(tables):
    basic, large, _ = tables
    other = Lut.from_dict({**large.to_dict(), "device": {"name": "phone2"}})
    with pytest.raises(LutError, match="different devices"):
        pool_luts([basic, other])
    calibrated = Lut.from_dict({**large.to_dict(), "calibration": {"scale": 1.1, "offset_ms": 2.0}})
    with pytest.raises(LutError, match="calibrations differ"):
        pool_luts([basic, calibrated])


def test_validate_profile_passes_then_fails_on_an_inflated_family(tables, tmp_path):
    good = _bundle(tmp_path, tables)
    res = CliRunner().invoke(main, ["validate", str(good)])
    assert res.exit_code == 0, res.output
    assert "basic@224 vs v3@224: 6 shared shapes, agree" in res.output
    assert "all pairs agree within 3%" in res.output
    (tmp_path / "bad").mkdir()
    bad = _bundle(tmp_path / "bad", [*tables[:2], _inflated(tables[2], 1.67)])
    res = CliRunner().invoke(main, ["validate", str(bad), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.output[: res.output.rindex("}") + 1])
    assert doc["agree"] is False and [p["agree"] for p in doc["pairs"]] == [True, False, False]
    assert "error: 2 pair(s) of tables disagree by more than 3%" in res.output


def test_predict_prices_a_network_from_the_pool_and_says_which_family_held_each_unit(
    tables, tmp_path
):
    bundle = _bundle(tmp_path, tables)
    net_file = tmp_path / "net.json"
    net_file.write_text(json.dumps(NET))
    runs = {}
    for space in (None, "basic", "large", "v3"):
        args = ["predict", str(net_file), "--lut", str(bundle), "--json"]
        args += ["--space", space] if space else []
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        runs[space] = json.loads(res.output[res.output.index("{") :])
    assert len({json.dumps(doc["predictions"]) for doc in runs.values()}) == 1  # --space: same
    doc = runs[None]
    assert doc["luts"][0]["pooled"] == ["basic@224", "large@224", "v3@224"]
    # the same network inside a file of two is priced exactly as alone
    pair = tmp_path / "pair.json"
    small = {**NET, "layers": NET["layers"][:3]}
    pair.write_text(json.dumps({"networks": {"small": small, "net": NET}}))
    res = CliRunner().invoke(main, ["predict", str(pair), "--lut", str(bundle), "--json"])
    both = {
        p["name"]: p["ms"] for p in json.loads(res.output[res.output.index("{") :])["predictions"]
    }
    assert both["net"] == doc["predictions"][0]["ms"]
    units = {u["key"]: u for u in doc["predictions"][0]["units"]}
    assert units["stem-k3-s2-i224x224x3-o112x112x16"]["families"] == ["large"]
    assert any(u["source"] == "regression" and u["families"] is None for u in units.values())


def test_read_luts_names_a_single_lut_file(tables, tmp_path):
    path = tmp_path / "one.json"
    tables[0].save(path)
    resolved, luts, bundle = read_luts(path)
    assert (resolved, len(luts), bundle) == (path, 1, False)
