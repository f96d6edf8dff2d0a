"""The final models measured whole on the LUT's device (issue 24): measured beside predicted,
flagged when a measurement leaves the window, said plainly when nothing could be measured, and
measured later by ``--resume`` once the device is reachable."""

from __future__ import annotations

import json

import pytest
from search_support import TINY_CES, TINY_PRESET, mock_lut

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.model import LatencyModel
from latency.profiling.conditions import ConditionsError
from padnas.cli.runs import show
from padnas.cli.search import search
from padnas.run.settings import PRESETS, Preset
from padnas.run.verify import MEASURED, NOT_MEASURED, verify_models
from padnas.search.window import LatencyWindow
from padnas.space import Arch, get_space

SPACE = get_space("basic")
ARCHS = ["K3E1" + "-K3E3" * 6 + "-K5E6" * 15, "K3E1" + "-K7E6" * 6 + "-K3E3" * 15]


def _models(lut) -> list[dict]:
    model = LatencyModel.from_lut(lut, SPACE)
    return [
        {"label": label, "arch": a, "latency_ms": float(model.predict([Arch.parse(a)])[0])}
        for label, a in zip("AB", ARCHS, strict=True)
    ]


@pytest.fixture(scope="module")
def lut():
    return mock_lut("basic")


def test_models_are_measured_on_the_mock_and_compared_with_their_prediction(lut):
    models = _models(lut)
    backend = MockBackend(load_profile("mock"))
    wide = LatencyWindow(1.0, 1000.0)
    out, block = verify_models(lut, SPACE, models, wide, progress=False)
    assert block["status"] == MEASURED and block["source"] == "mock"
    assert block["device"] == "mock" and block["resolution"] == 224
    for m in out:
        whole = backend.measure_arch(SPACE, Arch.parse(m["arch"]), 224).ms
        assert m["measured_ms"] == pytest.approx(whole, abs=1e-4)
        assert m["predicted_over_measured"] == pytest.approx(m["latency_ms"] / whole, abs=1e-4)
        # the mock runs a whole network 8 % slower than its blocks' sum, plus 0.4 ms
        assert 0.85 < m["predicted_over_measured"] < 0.95
        assert m["measured_in_window"] and m["measured_source"] == "mock"
    assert block["outside_window"] == []
    assert block["ratio_range"][0] <= block["ratio_median"] <= block["ratio_range"][1]


def test_an_int8_table_has_its_models_measured_as_int8(tmp_path):
    import tempfile

    from latency.profiling.profile import build_lut, profile_space
    from latency.profiling.store import MeasurementStore

    with tempfile.TemporaryDirectory() as root:
        store = MeasurementStore("mock", root, precision="int8")
        profile_space(SPACE, MockBackend(load_profile("mock")), store, progress=False)
        int8 = build_lut(SPACE, store, {"name": "mock"})
    models = _models(int8)
    out, block = verify_models(int8, SPACE, models, LatencyWindow(1, 1000), progress=False)
    assert block["status"] == MEASURED and block["precision"] == "int8"
    backend = MockBackend(load_profile("mock"))
    for m in out:
        arch = Arch.parse(m["arch"])
        assert m["measured_ms"] == pytest.approx(
            backend.measure_arch(SPACE, arch, 224, precision="int8").ms, abs=1e-4
        )
        assert m["measured_ms"] < backend.measure_arch(SPACE, arch, 224).ms  # not the fp32 one


def test_a_model_measured_outside_the_window_is_flagged(lut):
    models = _models(lut)
    fast, slow = sorted(m["latency_ms"] for m in models)
    # both predictions inside; measured 8 % slower, the slower model leaves through the top
    window = LatencyWindow(fast * 0.9, slow * 1.02)
    out, block = verify_models(lut, SPACE, models, window, progress=False)
    by_label = {m["label"]: m for m in out}
    slow_label = max(models, key=lambda m: m["latency_ms"])["label"]
    assert block["outside_window"] == [slow_label]
    assert not by_label[slow_label]["measured_in_window"]
    assert all(m["measured_in_window"] for m in out if m["label"] != slow_label)


def test_a_phone_free_estimate_says_nothing_was_measured_on_the_phone(lut, monkeypatch):
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    est = mock_lut("basic", device="pixel3")
    for entry in est.entries.values():
        entry["source"] = "estimate"
    models = _models(lut)
    out, block = verify_models(est, SPACE, models, LatencyWindow(1, 1000), progress=False)
    assert out == models  # unchanged: nothing is made up
    assert block["status"] == NOT_MEASURED
    assert "phone-free estimate" in block["reason"]
    assert "nothing was measured on the phone" in block["reason"]
    assert "ANDROID_SERIAL" in block["reason"] and "--resume" in block["reason"]


def test_an_unknown_device_is_not_measured_and_says_why(lut):
    odd = mock_lut("basic", device="my-unprofiled-phone")
    models = _models(lut)
    out, block = verify_models(odd, SPACE, models, LatencyWindow(1, 1000), progress=False)
    assert out == models and block["status"] == NOT_MEASURED
    assert "no device profile named 'my-unprofiled-phone'" in block["reason"]


class _RefusingDevice(MockBackend):
    """The mock, refusing like the guard does on a busy machine."""

    def measure_arch(self, *args, **kwargs):
        raise ConditionsError("the machine is busy: other processes keep 1.80 cores busy")


def test_a_refused_measurement_keeps_the_models_and_says_how_to_retry(lut):
    models = _models(lut)
    refusing = _RefusingDevice(load_profile("mock"))
    out, block = verify_models(
        lut, SPACE, models, LatencyWindow(1, 1000), progress=False, reach=lambda _: (refusing, None)
    )
    assert out == models and block["status"] == NOT_MEASURED
    assert "the machine is busy" in block["reason"] and "--resume" in block["reason"]


@pytest.fixture
def tiny_quick(monkeypatch, padnas_cache):
    monkeypatch.setitem(PRESETS, "quick", Preset(TINY_PRESET, TINY_CES))


def _args(lut_file, out):
    return ["--lut", lut_file, "--data", "digits", "--stages", "2", "--out", out, "-q"]


def test_search_measures_its_models_and_resume_measures_a_skipped_run(
    tiny_quick, cli, lut_file, tmp_path
):
    out = tmp_path / "run"
    r = cli(search, *_args(lut_file, out), "--no-verify")
    assert r.exit_code == 0, r.output
    final = json.loads((out / "final.json").read_text())
    assert final["verification"] is None
    assert all("measured_ms" not in m for m in final["models"])
    assert "verify: skipped (--no-verify)" in r.output

    r = cli(search, *_args(lut_file, out), "--resume")
    assert r.exit_code == 0, r.output
    assert "were not measured whole and mock can be reached: measuring them now" in r.output
    after = json.loads((out / "final.json").read_text())
    assert after["verification"]["status"] == MEASURED
    assert [m["arch"] for m in after["models"]] == [m["arch"] for m in final["models"]]
    assert all(m["measured_source"] == "mock" for m in after["models"])
    text = (out / "summary.txt").read_text()
    assert "verify: models measured whole on mock at 224 px" in text

    doc = json.loads(cli(show, out, "--json").output)
    assert doc["verification"]["status"] == MEASURED
    assert doc["final"][0]["measured_ms"] == after["models"][0]["measured_ms"]

    # measured already: a further --resume only shows the summary
    r = cli(search, *_args(lut_file, out), "--resume")
    assert r.exit_code == 0 and "is finished; its summary" in r.output
    assert json.loads((out / "final.json").read_text()) == after


@pytest.mark.slow
def test_final_models_are_measured_whole_on_the_host(padnas_cache, tmp_path):
    """A host LUT (the mock's numbers under the host's name, at 32 px to keep the export short):
    the models are exported whole, timed with the guarded loop, and their ratio computed from
    a real measurement with its conditions."""
    import tempfile

    from latency.profiling.profile import build_lut, profile_space
    from latency.profiling.store import MeasurementStore

    with tempfile.TemporaryDirectory() as root:
        store = MeasurementStore("mock", root)
        profile_space(
            SPACE, MockBackend(load_profile("mock")), store, resolution=32, progress=False
        )
        host = build_lut(SPACE, store, {"name": "host", "transport": "host"}, resolution=32)
    models = _models(host)[:1]
    out, block = verify_models(host, SPACE, models, LatencyWindow(0.001, 1000), progress=False)
    assert block["status"] == MEASURED, block.get("reason")
    assert block["source"] == "measured" and block["resolution"] == 32
    assert len(block["conditions"]) == 1  # one guarded batch, its conditions recorded
    (m,) = out
    assert m["measured_source"] == "measured" and m["measured_ms"] > 0
    assert m["measured_p10_ms"] <= m["measured_ms"] <= m["measured_p90_ms"]
    assert m["predicted_over_measured"] == pytest.approx(m["latency_ms"] / m["measured_ms"], 1e-3)
