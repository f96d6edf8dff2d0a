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


def test_export_lut_fills_holes_by_regression(latency_cli, tmp_path, expect_error, frozen):
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
    before = frozen(store, out)
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", out)
    expect_error(r, 2, "only 5 measured entries", "needs at least 12", unchanged=before)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["profile", "--device", "nokia3310"], "unknown device 'nokia3310'"),
        (["profile", "--device", "mock", "--resolution", "100"], "resolution 100"),
        (["measure", "K3E1-K9E9", "--device", "mock"], "unknown op 'K9E9'"),
        (["export-lut", "--device", "mock", "-o", "x.json"], "profile --device mock"),
    ],
)
def test_bad_input_one_line_exit_2(latency_cli, expect_error, args, expect):
    expect_error(latency_cli(*args), 2, expect)


def test_bad_lut_files_exit_2(latency_cli, tmp_path, expect_error, frozen):
    assert latency_cli("profile", "--device", "mock", "--space", "basic", "-q").exit_code == 0
    good = tmp_path / "good.json"
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "-o", good)
    assert r.exit_code == 0, r.output
    text = good.read_text()
    data = json.loads(text)
    cases = {
        "trunc.json": (text[:300], "truncated"),
        "schema.json": (json.dumps({**data, "schema": 9}), "written by a newer padnas (schema 9"),
        "nan.json": (text.replace('"ms": ', '"ms": NaN, "x": ', 1), "NaN"),
    }
    for name, (content, expect) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        before = frozen(path)
        r = latency_cli("validate", "--lut", path, "--device", "mock", "--n", 4, "-q")
        expect_error(r, 2, expect, str(path), unchanged=before)
    r = latency_cli("validate", "--lut", good, "--device", "mock", "--space", "large", "-q")
    expect_error(r, 2, "not for large")
    r = latency_cli("validate", "--lut", good, "--device", "host", "-q")
    expect_error(r, 2, "built on device 'mock'")


def test_export_lut_no_fill_and_validate_to_another_file_with_report(
    latency_cli, tmp_path, expect_error
):
    assert latency_cli("profile", "--device", "mock", "--space", "basic", "-q").exit_code == 0
    lut = tmp_path / "mock.json"
    r = latency_cli("export-lut", "--device", "mock", "--space", "basic", "--no-fill", "-o", lut)
    assert r.exit_code == 0, r.output
    assert r.output == f"wrote {lut}: basic@224 on mock, 71 entries (71 mock)\n"
    before = lut.read_text()

    calibrated, report = tmp_path / "calibrated.json", tmp_path / "report.json"
    r = latency_cli(
        "validate",
        "--lut",
        lut,
        "--device",
        "mock",
        "--n",
        8,
        "-q",
        "-o",
        calibrated,
        "--report",
        report,
    )
    assert r.exit_code == 0, r.output
    assert lut.read_text() == before  # -o leaves --lut as it was
    cal = load_lut(calibrated).calibration
    rep = json.loads(report.read_text())
    assert rep["n"] == 8 and rep["n_fit"] + rep["n_test"] == 8 and len(rep["archs"]) == 8
    assert rep["calibration"] == cal and f"saved to {calibrated}" in r.output

    store = tmp_path / "cache" / "measurements" / "mock.jsonl"
    store.write_text("\n".join(store.read_text().splitlines()[:50]) + "\n")
    r = latency_cli(
        "export-lut",
        "--device",
        "mock",
        "--space",
        "basic",
        "--no-fill",
        "-o",
        tmp_path / "holes.json",
    )
    expect_error(r, 2, "21 of 71 variants are not measured", "regression fallback")
    assert not (tmp_path / "holes.json").exists()
