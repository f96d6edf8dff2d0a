"""Every layer kind of the network format converts to TFLite, numerically checked against
PyTorch, and runs on the host: per unit and as a whole network (``measure NET.json``)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from repo_support import TEST_DATA

from latency.cli.app import main
from latency.devices import make_backend
from latency.networks.checks import load_networks
from latency.networks.latency import export_network, measure_units
from latency.networks.units import network_units
from latency.profiling.store import MeasurementStore

# conv with h-swish, dwconv, linear 1x1, ibconv with SE (MnasNet-style ratio of cin), grouped
# ibconv with channel shuffle (FBNet g2), forced expand conv with h-sigmoid SE (MobileNetV3),
# identity, 7x7 ibconv, pool, fc with h-swish and a bias-free classifier; 32x32 input
ALL_KINDS = TEST_DATA / "netdesc_allkinds.json"


@pytest.fixture
def cache(padnas_cache):
    return padnas_cache


@pytest.mark.slow
def test_every_layer_kind_exports_checked_and_measures(cache):
    (net,) = load_networks(ALL_KINDS).values()
    units = network_units(net)
    # a 3x3 stride-2 first conv with h-swish is priced as a v3 stem variant
    assert {u.kind for u in units} == {"stem", "conv", "dwconv", "ibconv", "pool", "fc"}
    path = export_network(net)  # raises ExportError if TFLite disagrees with PyTorch
    assert path.with_suffix(".json").is_file()
    store = MeasurementStore("host-builtin", cache / "measurements")
    with make_backend("host-builtin") as backend:
        assert backend.describe()["kernels"] == "builtin"
        failed = measure_units(units, backend, store, progress=False)
    assert failed == []
    recs = store.records()
    assert set(recs) == {u.key for u in units}
    assert all(r["ms"] > 0 and r["source"] == "measured" and r["tools"] for r in recs.values())
    # a second run measures nothing (resumable store)
    with make_backend("host-builtin") as backend:
        assert measure_units(units, backend, store, progress=False) == []
    assert len(store.path.read_text().splitlines()) == len(units)


@pytest.mark.slow
def test_measure_network_file_on_the_host(cache):
    r = CliRunner().invoke(
        main, ["measure", str(ALL_KINDS), "--device", "host"], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith("allkinds: ") and "source measured, device host" in r.output
