"""An estimated table says when a price lies beyond what its transfer was fitted on."""

from __future__ import annotations

import json

from click.testing import CliRunner

from latency.cli.app import main
from latency.lut.table import EXTRAPOLATION, load_lut
from latency.transfer.estimate import DATA_DIR, DEFAULT_PUBLISHED
from padnas.run.plan import plan_search

SLIM = DATA_DIR / "tf_slim_published.json"


def _predict(*args):
    res = CliRunner().invoke(main, ["predict", *args, "--lut", "pixel3", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{") :])["predictions"]


def test_the_shipped_estimate_knows_its_fitted_range():
    lut = load_lut("pixel3", "basic")
    lo, hi = lut.fitted_range()
    assert (lo, hi) == (61.13, 104.65)  # the paper's four networks
    assert lut.extrapolation_note(lo / EXTRAPOLATION * 1.01) is None
    assert lut.extrapolation_note(hi * EXTRAPOLATION * 1.01) is not None
    note = lut.extrapolation_note(20.0)
    assert note.startswith("warning: 20.0 ms is outside") and "offset" in note


def test_predict_warns_for_a_small_network_and_not_for_the_fitted_ones():
    small = _predict(str(SLIM), "--net", "MobileNetV3_Small_1.0")[0]
    assert small["ms"] < 61.13 / EXTRAPOLATION and "outside" in small["warning"]
    for doc in _predict(str(DEFAULT_PUBLISHED)):
        assert doc["warning"] is None, doc["name"]


def test_predict_prints_the_warning_on_stderr():
    res = CliRunner().invoke(
        main, ["predict", str(SLIM), "--net", "MobileNetV3_Small_0.75", "--lut", "pixel3"]
    )
    assert res.exit_code == 0
    assert "outside what the pixel3 estimate was fitted on" in res.stderr
    assert "outside" not in res.stdout


def test_a_search_window_beyond_the_fitted_range_is_warned_about():
    inside = plan_search("device_profiles/pixel3.json", family="basic", window="60:70")
    assert not any("outside" in w for w in inside.warnings)
    below = plan_search("device_profiles/pixel3.json", family="large", window="25:40")
    assert any("latency window 25" in w and "outside" in w for w in below.warnings)
