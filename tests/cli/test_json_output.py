"""``--json``: one JSON document on stdout, latencies with their unit and source."""

from __future__ import annotations

import json

from click.testing import CliRunner
from repo_support import REPO

from latency.cli.app import main as latency_main

PIXEL3 = str(REPO / "device_profiles" / "pixel3.json")
PUBLISHED = str(REPO / "latency" / "data" / "pixel3_published.json")


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


def test_measure_arch_json_with_the_lut_check(latency_cli, lut_file, expect_error):
    arch = "-".join(["K3E1", *(["K5E3"] * 21)])
    r = latency_cli(
        "measure", arch, "--device", "mock", "--space", "basic", "--lut", lut_file, "--json"
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["device"] == "mock" and doc["target"] == arch
    (m,) = doc["measurements"]
    assert m["name"] == arch and m["unit"] == "ms" and m["source"] == "mock"
    assert m["p10"] <= m["ms"] <= m["p90"] and m["n"] == 0  # the mock times nothing
    check = m["lut_check"]
    assert check["file"] == str(lut_file) and check["lut"] == "basic@224"
    assert check["error_pct"] == round((check["ms"] - m["ms"]) / m["ms"] * 100, 3)
    # the LUT's price is the one predict gives for the same arch and LUT
    pred = _json(["predict", arch, "--space", "basic", "--lut", str(lut_file), "--json"])
    assert check["ms"] == pred["predictions"][0]["ms"]
    assert check["source_ms"] == pred["predictions"][0]["source_ms"]
    # the text form reports the same measurement
    r = latency_cli("measure", arch, "--device", "mock", "--space", "basic")
    assert r.stdout.startswith(f"{arch}: {m['ms']:.3f} ms (p10 {m['p10']:.3f}, ")
    # a LUT of another space is refused before anything is measured: the error is all it prints
    r = latency_cli("measure", arch, "--device", "mock", "--space", "large", "--lut", lut_file)
    expect_error(r, 2, "large")


def test_measure_networks_json(latency_cli):
    r = latency_cli(
        "measure",
        PUBLISHED,
        "--device",
        "mock",
        "--net",
        "MobileNetV2_1.0",
        "--net",
        "ProxylessNAS_mobile",
        "--lut",
        PIXEL3,
        "--json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [m["name"] for m in doc["measurements"]] == ["MobileNetV2_1.0", "ProxylessNAS_mobile"]
    assert all(m["source"] == "mock" and m["unit"] == "ms" for m in doc["measurements"])
    pred = _json(["predict", PUBLISHED, "--lut", PIXEL3, "--json", "--net", "MobileNetV2_1.0"])
    check = doc["measurements"][0]["lut_check"]
    assert check["ms"] == pred["predictions"][0]["ms"] and check["lut"] == "basic+large+v3@224"


def test_measure_model_file_json_on_the_mock(latency_cli, tmp_path, expect_error):
    """The mock times a model file through the sidecar padnas' exporter writes beside it (its
    bytes are never read): here the sidecar of a basic-space arch at 64 x 64."""
    arch = "-".join(["K3E1", *(["K3E3"] * 21)])
    model = tmp_path / "net.tflite"
    model.write_bytes(b"stands in for the exported model")
    sidecar = {"arch": arch, "family": "basic", "resolution": 64}
    (tmp_path / "net.json").write_text(json.dumps(sidecar))
    r = latency_cli("measure", model, "--device", "mock", "--json")
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)["measurements"]
    by_arch = latency_cli(
        "measure", arch, "--device", "mock", "--space", "basic", "--resolution", 64, "--json"
    )
    assert m == {**json.loads(by_arch.stdout)["measurements"][0], "name": str(model)}
    r = latency_cli("measure", model, "--device", "mock", "--lut", PIXEL3)
    expect_error(r, 2, "--lut prices an ARCH, a NET.json or a MODEL.onnx, not a .tflite")


def test_validate_json_matches_the_calibrated_lut(latency_cli, lut_file, tmp_path):
    from latency.lut.table import load_lut

    out = tmp_path / "calibrated.json"
    # without -q: the progress bars go to stderr, stdout stays one document
    r = latency_cli(
        "validate", "--lut", lut_file, "--device", "mock", "--n", 8, "-o", out, "--json"
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["device"] == "mock" and doc["lut"] == "basic@224"
    assert doc["lut_file"] == str(lut_file) and doc["saved_to"] == str(out)
    assert doc["n"] == 8 and doc["n_fit"] + doc["n_test"] == 8 and len(doc["archs"]) == 8
    assert doc["calibration"] == load_lut(out).calibration
    assert all(
        a["unit"] == "ms" and a["source"] == "mock" and a["lut_ms"] > 0 for a in doc["archs"]
    )
    for part in ("raw_all", "raw_test", "calibrated_test"):
        assert set(doc[part]) == {
            "n",
            "mape",
            "max_err",
            "within5",
            "within10",
            "bias",
            "kendall_tau",
        }
    assert doc["raw_test"]["n"] == doc["n_test"]


def test_strict_json_writes_undefined_figures_as_null(capsys):
    import numpy as np

    from padnas.core.cli import echo_json

    echo_json({"tau": float("nan"), "hi": np.float32(np.inf), "n": np.int64(3), "p": REPO})
    assert json.loads(capsys.readouterr().out) == {"tau": None, "hi": None, "n": 3, "p": str(REPO)}


def test_show_json_of_an_unfinished_run(cli, tmp_path):
    from padnas.cli.runs import show

    run = tmp_path / "run"
    (run / "stage-2").mkdir(parents=True)
    config = {"format": 1, "method": "PAD-NAS", "space": "basic", "stages": 4}
    (run / "config.json").write_text(json.dumps(config))
    (run / "state.json").write_text(json.dumps({"done": {"train-1": {"seconds": 3.0}}}))
    (run / "stage-2" / "ces.jsonl").write_text('{"arch": "a"}\n{"arch": "b"}\n{"arch": "c"}\n')
    r = cli(show, run, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "run_dir": str(run),
        "finished": False,
        "method": "PAD-NAS",
        "space": "basic",
        "stages": 4,
        "deterministic": False,
        "done": ["train-1"],
        "ces_in_progress": [{"stage": 2, "evaluated": 3}],
        "platform": None,  # a run from before the record
    }
    platform = {"cpu": "X", "cpu_capability": "DEFAULT", "threads": 1, "deterministic": True}
    config |= {"deterministic": True, "platform": platform}
    (run / "config.json").write_text(json.dumps(config))
    doc = json.loads(cli(show, run, "--json").stdout)
    assert doc["deterministic"] is True and doc["platform"] == platform
    text = cli(show, run).stdout
    assert "finished steps: train-1\nstage 2: CES in progress, 3 architectures evaluated\n" in text
