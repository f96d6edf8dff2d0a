"""``--json``: one JSON document on stdout, latencies with their unit and source."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from latency.cli.app import main as latency_main

ROOT = Path(__file__).resolve().parents[1]
PIXEL3 = str(ROOT / "device_profiles" / "pixel3.json")
PUBLISHED = str(ROOT / "latency" / "data" / "pixel3_published.json")


def _json(args):
    res = CliRunner().invoke(latency_main, args)
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)  # the whole of stdout is one document


def test_predict_network_json_sums_its_units():
    doc = _json(["predict", PUBLISHED, "--lut", PIXEL3, "--json", "--net", "MobileNetV2_1.0"])
    (pred,) = doc["predictions"]
    assert pred["name"] == "MobileNetV2_1.0" and pred["unit"] == "ms"
    assert pred["published_ms"] == 61.13
    (lut,) = doc["luts"]
    assert lut["device"] == "pixel3" and lut["lut"] == pred["lut"]
    units = pred["units"]
    assert units[0]["kind"] == "stem" and all(u["source"] for u in units)
    raw = sum(u["ms"] for u in units)
    assert abs(raw - pred["raw_ms"]) < 1e-3
    assert abs(sum(pred["source_ms"].values()) - raw) < 1e-3
    cal = lut["calibration"]
    assert abs(pred["ms"] - (cal["scale"] * raw + cal["offset_ms"])) < 1e-3


def test_predict_arch_json():
    arch = "-".join(["K3E1", *(["K3E3"] * 21)])
    doc = _json(["predict", arch, "--space", "basic", "--lut", PIXEL3, "--json"])
    (pred,) = doc["predictions"]
    assert pred["name"] == arch and doc["luts"][0]["lut"] == "basic@224"
    assert [u["kind"] for u in pred["units"]] == ["stem", *(["ibconv"] * 22), "head"]
    assert set(pred["source_ms"]) == {"estimate"}


def test_devices_json_lists_profiles_with_their_luts():
    doc = _json(["devices", "--json"])
    by_name = {p["name"]: p for p in doc["profiles"]}
    assert {"host", "host-builtin", "mock", "pixel3"} <= set(by_name)
    assert by_name["pixel3"]["transport"] == "adb" and by_name["pixel3"]["cpu_mask"] == "80"
    assert {"basic@224", "large@224"} <= set(by_name["pixel3"]["luts"])
    assert doc["phones"] == [] and all(p["valid"] for p in doc["profiles"])
