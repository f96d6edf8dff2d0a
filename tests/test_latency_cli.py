"""padnas-latency end to end on the mock device, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from latency.lut.table import load_lut


def test_mock_profile_export_validate_measure(latency_cli, tmp_path):
    r = latency_cli("profile", "--device", "mock", "--space", "large", "-q")
    assert r.exit_code == 0, r.output
    assert "203 variants, 0 already stored, 203 measured" in r.output
    r = latency_cli("profile", "--device", "mock", "--space", "large", "-q")
    assert "203 already stored, 0 measured" in r.output

    out = tmp_path / "mock.json"
    r = latency_cli("export-lut", "--device", "mock", "--space", "large", "-o", out)
    assert r.exit_code == 0, r.output
    lut = load_lut(out, "large", 224)
    assert len(lut.entries) == 203 and lut.sources() == {"mock"} and lut.calibration is None

    r = latency_cli("validate", "--lut", out, "--device", "mock", "--n", 20, "-q")
    assert r.exit_code == 0, r.output
    assert "calibrated, held-out" in r.output
    cal = load_lut(out).calibration
    assert cal["n_fit"] == 10 and cal["mape_after_pct"] < cal["mape_before_pct"]

    arch = "-".join(["K3E1", *["K5E3"] * 21])
    r = latency_cli("measure", arch, "--device", "mock", "--space", "large", "--lut", out)
    assert r.exit_code == 0, r.output
    assert "source mock" in r.output and "vs measured" in r.output


def test_export_lut_fills_holes_by_regression(latency_cli, tmp_path):
    assert latency_cli("profile", "--device", "mock", "--space", "basic", "-q").exit_code == 0
    store = tmp_path / "cache" / "measurements" / "mock.jsonl"
    lines = store.read_text().splitlines()
    store.write_text("\n".join(lines[:50]) + "\n")
    out = tmp_path / "filled.json"
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", out)
    assert r.exit_code == 0, r.output
    lut = load_lut(out)
    srcs = [e["source"] for e in lut.entries.values()]
    assert srcs.count("mock") == 50 and srcs.count("regression") == 21
    assert "k-fold MAPE" in r.output

    store.write_text("\n".join(lines[:5]) + "\n")
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", out)
    assert r.exit_code == 2
    assert "only 5 measured entries" in r.output and "needs at least 12" in r.output


@pytest.mark.parametrize(
    "args, expect",
    [
        (["profile", "--device", "nokia3310"], "unknown device 'nokia3310'"),
        (["profile", "--device", "mock", "--resolution", "100"], "resolution 100"),
        (["measure", "K3E1-K9E9", "--device", "mock"], "unknown op 'K9E9'"),
        (["export-lut", "--device", "mock", "-o", "x.json"], "no measurements"),
    ],
)
def test_bad_input_one_line_exit_2(latency_cli, args, expect):
    r = latency_cli(*args)
    assert r.exit_code == 2
    assert expect in r.output
    assert "Traceback" not in r.output


def test_bad_lut_files_exit_2(latency_cli, tmp_path):
    assert latency_cli("profile", "--device", "mock", "--space", "basic", "-q").exit_code == 0
    good = tmp_path / "good.json"
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", good)
    assert r.exit_code == 0, r.output
    text = good.read_text()
    data = json.loads(text)
    cases = {
        "trunc.json": (text[:300], "truncated"),
        "schema.json": (json.dumps({**data, "schema": 9}), "schema version 9"),
        "nan.json": (text.replace('"ms": ', '"ms": NaN, "x": ', 1), "NaN"),
    }
    for name, (content, expect) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        r = latency_cli("validate", "--lut", path, "--device", "mock", "--n", 4, "-q")
        assert r.exit_code == 2 and expect in r.output, (name, r.output)
        assert len(r.output.strip().splitlines()) == 1
    r = latency_cli("validate", "--lut", good, "--device", "mock", "--space", "large", "-q")
    assert r.exit_code == 2 and "not for large" in r.output
    r = latency_cli("validate", "--lut", good, "--device", "host", "-q")
    assert r.exit_code == 2 and "built on device 'mock'" in r.output
