"""The device-transfer model, the estimated LUTs it produces and how they are shipped."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from network_support import PROXYLESS_ARCH
from repo_support import PIXEL3

from latency.lut.model import LatencyModel
from latency.lut.table import Lut, load_lut
from latency.networks.checks import load_networks
from latency.networks.latency import predict_network
from latency.transfer.estimate import (
    DEFAULT_PUBLISHED,
    published_targets,
    run_estimate,
    transfer_lut,
    update_profile,
)
from latency.transfer.fit import (
    NetworkSample,
    TransferError,
    evaluate_transfer,
    fit_transfer,
    parse_terms,
)
from padnas.space import get_space

PIXEL3 = str(PIXEL3)


def _samples(scale=3.0, per_unit=0.0, offset=20.0, seed=0, n=5):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        units = tuple(rng.uniform(0.1, 2.0, size=int(rng.integers(15, 30))))
        y = scale * sum(units) + per_unit * len(units) + offset
        out.append(NetworkSample(f"net{i}", y, units))
    return out


def test_terms_are_parsed_and_checked():
    assert parse_terms("offset, scale") == ("scale", "offset")
    assert parse_terms(["per_unit"]) == ("per_unit",)
    with pytest.raises(TransferError, match="unknown transfer term"):
        parse_terms("scale,bias")
    with pytest.raises(TransferError, match="unknown transfer term"):
        parse_terms("")


def test_fit_recovers_known_coefficients_and_loo_is_exact_on_exact_data():
    samples = _samples(scale=3.0, per_unit=0.5, offset=20.0)
    fit = evaluate_transfer(samples, ("scale", "per_unit", "offset"))
    assert fit.model.scale == pytest.approx(3.0, rel=1e-6)
    assert fit.model.per_unit_ms == pytest.approx(0.5, rel=1e-5)
    assert fit.model.offset_ms == pytest.approx(20.0, rel=1e-5)
    assert len(fit.loo) == 5 and fit.loo_mape < 1e-4
    # a model that cannot express the offset leaves a real leave-one-out error
    assert evaluate_transfer(samples, ("scale",)).loo_mape > 1.0


def test_coefficients_stay_nonnegative():
    samples = _samples(scale=2.0, offset=-5.0)  # data asks for a negative offset
    model = fit_transfer(samples, ("scale", "offset"))
    assert model.offset_ms == 0.0 and model.scale > 0


def test_too_few_networks():
    with pytest.raises(TransferError, match="cannot determine 2 transfer parameters"):
        fit_transfer(_samples(n=1), ("scale", "offset"))
    fit = evaluate_transfer(_samples(n=2), ("scale", "offset"))
    assert fit.loo == [] and np.isnan(fit.loo_mape)  # one held-in network cannot fit 2 terms
    with pytest.raises(TransferError, match="positive target"):
        fit_transfer([NetworkSample("x", 10.0, ())], ("scale",))


def test_published_targets():
    nets = load_networks(DEFAULT_PUBLISHED)
    assert published_targets(nets, "pixel3") == {
        "MobileNetV1_1.0": 89.97,
        "MobileNetV2_1.0": 61.13,
        "MobileNetV2_1.4": 104.65,
        "ProxylessNAS_mobile": 67.66,
    }
    with pytest.raises(TransferError, match="no network carries 'pixel4_latency_ms'"):
        published_targets(nets, "pixel4")


@pytest.fixture
def estimated(tmp_path_factory, monkeypatch):
    """The whole estimate pipeline with the mock device standing in for the host."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("PADNAS_CACHE", str(cache))
    return run_estimate(
        "pixel3", host_device="mock", spaces=("basic",), progress=False, command="test"
    )


def test_estimated_lut_maps_every_entry_through_the_model(estimated):
    (lut,) = estimated.luts
    model = estimated.fit.model
    assert lut.device_name == "pixel3" and lut.family == "basic" and lut.resolution == 224
    assert lut.sources() == {"estimate"}
    assert lut.calibration["offset_ms"] == pytest.approx(model.offset_ms, abs=1e-4)
    prov = lut.provenance
    assert prov["command"] == "test" and "no pixel3 measurement" in prov["method"]
    assert prov["transfer"]["loo_mape_pct"] == pytest.approx(estimated.fit.loo_mape, abs=1e-3)
    assert set(prov["transfer"]["leave_one_out"]) == set(prov["published"]["targets_ms"])
    assert prov["host"]["name"] == "mock" and prov["host_entries"] == {"mock": 71}
    # the LUT prices ProxylessNAS exactly as the transfer model prices its host units
    proxyless = next(s for s in estimated.samples if s.name == "ProxylessNAS_mobile")
    via_lut = LatencyModel.from_lut(lut, get_space("basic")).predict([PROXYLESS_ARCH])[0]
    assert via_lut == pytest.approx(model.predict(proxyless), rel=1e-5)
    net = load_networks(DEFAULT_PUBLISHED)["ProxylessNAS_mobile"]
    assert predict_network(net, lut).ms == pytest.approx(via_lut, rel=1e-9)


def test_transfer_lut_without_offset_has_no_calibration(estimated):
    (lut,) = estimated.luts
    fit = evaluate_transfer(estimated.samples, ("scale",))
    host = Lut(
        {"name": "h"},
        "basic",
        lut.space_signature,
        224,
        {k: {"ms": 1.0, "p10": 0.9, "p90": 1.1, "n": 5, "source": "measured"} for k in lut.entries},
    )
    out = transfer_lut(host, fit, {"name": "pixel3"}, {})
    assert out.calibration is None
    e = next(iter(out.entries.values()))
    assert e["ms"] == pytest.approx(fit.model.scale, rel=1e-4) and e["source"] == "estimate"


def test_update_profile_keeps_the_device_part_byte_for_byte(estimated, tmp_path):
    prof = tmp_path / "pixel3.json"
    shutil.copy(PIXEL3, prof)
    original = prof.read_text()
    before = {k: v for k, v in json.loads(original).items() if k != "luts"}
    head = original.rstrip()[:-1].rstrip()
    update_profile(prof, estimated.luts)
    text = prof.read_text()
    data = json.loads(text)
    assert {k: v for k, v in data.items() if k != "luts"} == before
    if "luts" not in json.loads(original):
        assert text.startswith(head)
    lut = load_lut(prof, "basic", 224)
    assert lut.sources() == {"estimate"} and lut.device_name == "pixel3"
    # replacing is idempotent: the second write gives the same file
    update_profile(prof, estimated.luts)
    assert prof.read_text() == text
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    with pytest.raises(TransferError, match="not a device profile"):
        update_profile(bad, estimated.luts)


def test_cli_estimate_then_predict(latency_cli, tmp_path):
    r = latency_cli("estimate", "--device", "pixel3", "--host-device", "mock", "-q")
    assert r.exit_code == 0, r.output
    assert "leave-one-out MAPE:" in r.output and "ProxylessNAS_mobile" in r.output
    out = tmp_path / "est.json"
    r = latency_cli(
        "estimate",
        "--device",
        "pixel3",
        "--host-device",
        "mock",
        "--space",
        "basic",
        "--space",
        "large",
        "-o",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert "basic@224: 71 entries (source estimate), reachable" in r.output
    assert {t.family for t in (load_lut(out, "basic"), load_lut(out, "large"))} == {
        "basic",
        "large",
    }
    r = latency_cli("predict", DEFAULT_PUBLISHED, "--lut", out, "--net", "ProxylessNAS_mobile")
    assert r.exit_code == 0, r.output
    assert "(basic+large@224 LUT; calibrated" in r.output  # networks: the pooled table
    assert "published 67.66 ms" in r.output
    assert "ms estimate (22 units)" in r.output
    r = latency_cli("predict", PROXYLESS_ARCH, "--space", "basic", "--lut", out, "--breakdown")
    assert r.exit_code == 0, r.output
    by_arch = r.output.split(":")[1].split("ms")[0]
    r2 = latency_cli("predict", DEFAULT_PUBLISHED, "--lut", out, "--net", "ProxylessNAS_mobile")
    assert r2.output.split(":")[1].split("ms")[0] == by_arch
    # another input resolution: no LUT matches it, the fallback prices every unit, and says so
    net = json.loads(DEFAULT_PUBLISHED.read_text())["networks"]["ProxylessNAS_mobile"]
    small = tmp_path / "p192.json"
    small.write_text(json.dumps({**net, "input": 192}))
    r = latency_cli("predict", small, "--lut", out)
    assert r.exit_code == 0, r.output
    assert "ms regression (22 units)" in r.output and "estimate" not in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["estimate", "--device", "pixel3", "--terms", "scale,bias"], "unknown transfer term"),
        (["estimate", "--device", "pixel3", "--space", "basic"], "say where they go"),
        (["estimate", "--device", "pixel3", "-o", "x.json"], "need the space(s)"),
        (["estimate", "--device", "nope"], "unknown device 'nope'"),
        (
            ["estimate", "--device", "pixel3", "--precision", "int8", "--reuse-fit"],
            "--reuse-fit reuses a float transfer",
        ),
        (["predict", "K3E1", "--lut", PIXEL3], "architecture has 1 layers"),
        (["predict", "missing.json", "--lut", PIXEL3], "not found"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(latency_cli, args, message):
    r = latency_cli(*args)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output


def test_shipped_pixel3_estimate():
    """The LUTs shipped in device_profiles/pixel3.json: estimates with provenance, covering the
    paper's windows, pricing ProxylessNAS the same as a layer list and as an architecture."""
    windows = {"basic": (60.0, 70.0), "large": (50.0, 100.0)}
    proxyless = load_networks(DEFAULT_PUBLISHED)["ProxylessNAS_mobile"]
    for family, (lo_w, hi_w) in windows.items():
        lut = load_lut(PIXEL3, family, 224)
        assert lut.sources() == {"estimate"} and lut.device_name == "pixel3"
        prov = lut.provenance
        assert prov["command"].startswith("padnas-latency estimate --device pixel3")
        assert prov["host"]["kernels"] == "builtin" and prov["tool_versions"]
        assert prov["transfer"]["loo_mape_pct"] <= 10.0
        assert lut.calibration["offset_ms"] == pytest.approx(prov["transfer"]["offset_ms"], 1e-4)
        model = LatencyModel.from_lut(lut, get_space(family))
        lo, hi = model.reachable_range()
        assert lo < lo_w and hi > hi_w, (family, lo, hi)
        genomes = get_space(family).sample_genomes(np.random.default_rng(0), 2000)
        ms = model.predict(genomes)
        assert ((ms >= lo_w) & (ms <= hi_w)).sum() >= 20  # a first CES population exists
    basic = load_lut(PIXEL3, "basic", 224)
    by_arch = LatencyModel.from_lut(basic, get_space("basic")).predict([PROXYLESS_ARCH])[0]
    assert predict_network(proxyless, basic).ms == pytest.approx(by_arch, rel=1e-12)
    fit = basic.provenance["transfer"]["fit"]["ProxylessNAS_mobile"]["predicted_ms"]
    assert by_arch == pytest.approx(fit, rel=1e-3)  # the LUT sum is the transfer model's number


def test_update_profile_keeps_luts_of_other_spaces(estimated, tmp_path):
    prof = tmp_path / "pixel3.json"
    shutil.copy(PIXEL3, prof)
    (basic,) = estimated.luts
    update_profile(prof, [basic])  # replaces basic@224, keeps the shipped large@224
    assert load_lut(prof, "basic", 224).provenance["command"] == "test"
    assert load_lut(prof, "large", 224).provenance["command"].startswith("padnas-latency")


def test_a_reused_fit_is_matched_to_its_host_reference_or_refused():
    from search_support import mock_lut

    from latency.transfer.estimate import TransferError, _at_fit_reference

    host = mock_lut("basic")
    key = next(iter(host.entries))
    fit = {"host_reference": {"conditions": "c1", "reference_ms": 2.0}}
    today = {"conditions": "c1", "reference_ms": 2.5, "rescaled": {}}
    slower_today = _at_fit_reference(host, fit, today)
    assert slower_today.entries[key]["ms"] == pytest.approx(host.entries[key]["ms"] * 0.8)
    assert slower_today.provenance["rescaled_to_fit_reference"] == 0.8
    with pytest.raises(TransferError, match="another host set-up"):
        _at_fit_reference(host, fit, {**today, "conditions": "c2"})
    with pytest.raises(TransferError, match="records no host reference time"):
        _at_fit_reference(host, {"scale": 3.1}, today)
