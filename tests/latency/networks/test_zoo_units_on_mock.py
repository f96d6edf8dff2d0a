"""The unit kinds ResNet-18 and ShuffleNetV2 bring (maxpool, basicblock, shufflev2) are measured
on a backend like any other unit: their layer lists, read from ONNX and written by ``describe``,
go through ``measure_units`` into the device's store and through ``padnas-latency measure`` on
the mock device, and the regression fallback prices what a LUT of our space does not hold."""

from __future__ import annotations

import json
import math

import pytest
import zoo_support

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.regression import fill_holes
from latency.lut.table import load_lut
from latency.networks.checks import load_networks
from latency.networks.latency import measure_units
from latency.networks.units import network_units
from latency.profiling.store import MeasurementStore

NEW_KINDS = {"ResNet-18": {"maxpool", "basicblock"}, "ShuffleNetV2": {"maxpool", "shufflev2"}}


@pytest.fixture(scope="module")
def layer_list(tmp_path_factory):
    """``layer_list(name)``: the zoo network's NET.json as ``padnas-latency describe`` writes it
    from the network's ONNX export (made on first use)."""
    from click.testing import CliRunner

    from latency.cli.app import main

    folder = tmp_path_factory.mktemp("layer-lists")
    files = {}

    def get(name):
        if name not in files:
            onnx = zoo_support.export_onnx(zoo_support.ZOO[name](), folder / f"{name}.onnx")
            out = folder / f"{name}.json"
            r = CliRunner().invoke(main, ["describe", str(onnx), "-o", str(out)])
            assert r.exit_code == 0, r.output
            files[name] = out
        return files[name]

    return get


def _units(path):
    (net,) = load_networks(path).values()
    return network_units(net)


@pytest.mark.parametrize("name", list(NEW_KINDS))
def test_measure_units_stores_a_record_for_every_unit(layer_list, tmp_path, name):
    units = _units(layer_list(name))
    assert NEW_KINDS[name] <= {u.kind for u in units}
    store = MeasurementStore("mock", tmp_path)
    backend = MockBackend(load_profile("mock"))
    assert measure_units(units, backend, store, progress=False) == []
    records = store.records()
    assert set(records) == {u.key for u in units}
    for u in units:
        assert records[u.key]["source"] == "mock" and records[u.key]["ms"] > 0, u.key
    # the store resumes: a second pass measures nothing and changes nothing
    assert measure_units(units, backend, store, progress=False) == []
    assert store.records() == records


@pytest.mark.parametrize("name", list(NEW_KINDS))
def test_measure_times_the_layer_list_from_the_units_it_stores(
    layer_list, latency_cli, lut_file, tmp_path, name
):
    """``measure NET.json`` on the mock costs the network from the same unit prices
    ``measure_units`` stores (the mock's whole-network model: scale · sum + offset, with a
    per-network jitter of at most 1 %), and ``--lut`` prices the new kinds by regression."""
    path = layer_list(name)
    units = _units(path)
    store = MeasurementStore("mock", tmp_path)
    measure_units(units, MockBackend(load_profile("mock")), store, progress=False)
    records = store.records()
    r = latency_cli("measure", path, "--device", "mock", "--lut", lut_file, "--json")
    assert r.exit_code == 0, r.output
    (doc,) = json.loads(r.stdout)["measurements"]
    assert doc["name"] == name and doc["source"] == "mock"
    coef = load_profile("mock")["mock"]
    units_ms = sum(records[u.key]["ms"] for u in units)
    whole = coef["net_scale"] * units_ms + coef["net_offset_ms"]
    assert doc["ms"] == pytest.approx(whole, rel=coef["net_jitter"])
    check = doc["lut_check"]
    assert check["source_ms"]["regression"] > 0 and math.isfinite(check["ms"])


@pytest.mark.parametrize("name", list(NEW_KINDS))
def test_the_regression_fallback_prices_the_new_units(layer_list, lut_file, tmp_path, name):
    """Fitted on the mock's basic-space LUT, which holds none of these units, the fallback
    prices each one finite and positive, and within a third of what the mock itself charges
    for it (a sanity bound on a deterministic stand-in, not an accuracy claim)."""
    lut = load_lut(lut_file)
    new = [u for u in _units(layer_list(name)) if u.kind in NEW_KINDS[name]]
    assert not {u.key for u in new} & set(lut.entries)
    estimates, fitted = fill_holes(lut, new)
    assert fitted is not None and set(estimates) == {u.key for u in new}
    backend = MockBackend(load_profile("mock"))
    for u in new:
        mock_ms = backend.measure_variant(u).ms
        assert math.isfinite(estimates[u.key]) and estimates[u.key] > 0, u.key
        assert estimates[u.key] == pytest.approx(mock_ms, rel=1 / 3), u.key
