"""``padnas-latency measure MODEL.onnx|MODEL.tflite``: a user's model file is converted like the
LUT's blocks (checked against ONNX Runtime, cached) and timed with the device's set-up."""

from __future__ import annotations

import json

import pytest
import torch
from repo_support import PIXEL3

from latency.export import convert, model_file
from latency.networks.checks import network_from_dict

PIXEL3 = PIXEL3
SMALL = {
    "input": 32,
    "num_classes": 10,
    "layers": [
        {"type": "conv", "cin": 3, "cout": 16, "kernel": 3, "stride": 2, "act": "hswish"},
        {
            "type": "ibconv",
            "cin": 16,
            "cout": 16,
            "kernel": 3,
            "stride": 1,
            "expansion": 3,
            "se": True,
            "se_hidden": 8,
            "se_gate": "hsigmoid",
            "act": "relu",
        },
        {
            "type": "ibconv",
            "cin": 16,
            "cout": 24,
            "kernel": 5,
            "stride": 2,
            "expansion": 4,
            "act": "hswish",
        },
        {"type": "pool", "cin": 24, "cout": 24},
        {"type": "fc", "cin": 24, "cout": 10, "act": None},
    ],
}


def small_onnx(folder, name="small", seed=0, free_batch=True):
    net = network_from_dict(name, SMALL)
    module = convert.randomize(net.build_module(), seed)
    path = folder / f"{name}.onnx"
    torch.onnx.export(
        module,
        (torch.zeros(net.input_shape),),
        str(path),
        opset_version=17,
        dynamo=False,
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}} if free_batch else None,
    )
    return path


def test_onnx_on_the_mock_measures_as_its_layer_list(tmp_path, latency_cli):
    """The mock times no files: it prices the layer list the graph reads as, exactly as it
    prices the same network written as a NET.json."""
    onnx = small_onnx(tmp_path)
    desc = tmp_path / "small.json"
    desc.write_text(json.dumps({"name": "small", **SMALL}))
    a = latency_cli("measure", onnx, "--device", "mock")
    b = latency_cli("measure", desc, "--device", "mock")
    assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
    assert a.stdout.startswith(f"{onnx}: ") and "source mock, device mock" in a.stdout
    assert a.stdout.split(": ", 1)[1] == b.stdout.split(": ", 1)[1]
    c = latency_cli("measure", onnx, "--device", "mock", "--lut", PIXEL3)
    assert c.exit_code == 0, c.output
    assert c.stdout.splitlines()[1].startswith(f"  LUT {PIXEL3}: ")
    # --json: the same figures, the LUT's check of the layer list included
    doc = json.loads(
        latency_cli("measure", onnx, "--device", "mock", "--lut", PIXEL3, "--json").stdout
    )
    by_desc = json.loads(
        latency_cli("measure", desc, "--device", "mock", "--lut", PIXEL3, "--json").stdout
    )
    assert doc["target"] == str(onnx) and doc["device"] == "mock"
    (m,) = doc["measurements"]
    assert m == {**by_desc["measurements"][0], "name": str(onnx)}
    assert c.stdout.splitlines()[1].startswith(f"  LUT {PIXEL3}: {m['lut_check']['ms']:.3f} ms")


def test_bad_onnx_files_are_refused_before_converting(tmp_path, latency_cli, expect_error):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    expect_error(latency_cli("measure", bad, "--device", "host"), 2, "bad.onnx")
    expect_error(latency_cli("measure", tmp_path / "no.onnx", "--device", "host"), 2, "no.onnx")
    fixed = small_onnx(tmp_path)
    import onnx

    model = onnx.load(str(fixed))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    free = tmp_path / "free.onnx"
    onnx.save(model, str(free))
    expect_error(latency_cli("measure", free, "--device", "host"), 2, "no fixed size")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.tflite"))


@pytest.mark.slow
def test_onnx_converts_checked_cached_and_times_on_the_host(tmp_path, latency_cli, padnas_cache):
    onnx = small_onnx(tmp_path)
    r = latency_cli("measure", onnx, "--device", "host")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{onnx}: ") and "source measured, device host" in r.stdout
    (tflite,) = padnas_cache.rglob("model/small-*.tflite")
    meta = json.loads(tflite.with_suffix(".json").read_text())
    assert meta["check_reference"] == "onnxruntime" and meta["check_max_abs_err"] < 1e-3
    assert meta["input_shape"] == [1, 3, 32, 32]  # the free batch was fixed to 1
    before = tflite.stat().st_mtime_ns
    again = latency_cli("measure", onnx, "--device", "host")  # cached: not converted again
    assert again.exit_code == 0 and tflite.stat().st_mtime_ns == before
    # the converted file itself, as a MODEL.tflite
    t = latency_cli("measure", tflite, "--device", "host")
    assert t.exit_code == 0 and "source measured, device host" in t.stdout, t.output


@pytest.mark.slow
def test_a_wrong_conversion_of_an_onnx_file_is_not_kept(tmp_path, padnas_cache, monkeypatch):
    """A converter that yields another computation (other weights) fails the ONNX Runtime check."""
    onnx = small_onnx(tmp_path)
    other = small_onnx(tmp_path, name="other", seed=1, free_batch=False)
    real = model_file.onnx_to_tflite
    monkeypatch.setattr(model_file, "onnx_to_tflite", lambda src, out: real(other, out))
    with pytest.raises(convert.ExportError, match="differs from ONNX Runtime"):
        model_file.export_onnx_model(onnx)
    assert not model_file.onnx_model_path(onnx).exists()


@pytest.mark.slow  # the measurement guard exports its reference op first (~10 s, once per cache)
def test_bad_tflite_files_and_non_files_are_usage_errors(tmp_path, latency_cli, expect_error):
    """An empty or random 'model' is exit 2 naming the file, never a runtime failure; a directory
    or a device is named as what it is, not as a missing file."""
    empty, noise = tmp_path / "empty.tflite", tmp_path / "noise.tflite"
    empty.write_bytes(b"")
    noise.write_bytes(bytes(range(256)) * 8)
    for bad in (empty, noise):
        r = latency_cli("measure", bad, "--device", "host")
        expect_error(r, 2, f"LiteRT cannot load {bad.name}", "not a valid TFLite model")
    folder = tmp_path / "folder.tflite"
    folder.mkdir()
    r = latency_cli("measure", folder, "--device", "host")
    expect_error(r, 2, "is a directory", "MODEL.tflite")


@pytest.mark.slow
def test_an_onnx_model_measures_int8_on_the_host_and_prices_with_an_int8_table(
    tmp_path, latency_cli, padnas_cache
):
    """``measure MODEL.onnx --precision int8``: a full-integer file checked against ONNX
    Runtime within the int8 tolerance, timed on the host; priced beside with an int8 table."""
    from latency.backends.mock import MockBackend
    from latency.devices import load_profile
    from latency.export.quantize import INT8_TOLERANCE
    from latency.profiling.profile import build_lut, profile_space
    from latency.profiling.store import MeasurementStore
    from padnas.space import get_space

    onnx = small_onnx(tmp_path)
    store = MeasurementStore("mock", tmp_path / "store", precision="int8")
    profile_space(get_space("basic"), MockBackend(load_profile("mock")), store, progress=False)
    lut_path = build_lut(get_space("basic"), store, {"name": "mock"}).save(tmp_path / "i8.json")
    r = latency_cli("measure", onnx, "--device", "host", "--precision", "int8", "--lut", lut_path)
    assert r.exit_code == 0, r.output
    assert "source measured, device host" in r.stdout
    (tflite,) = padnas_cache.rglob("int8/model/small-*.tflite")
    meta = json.loads(tflite.with_suffix(".json").read_text())
    assert meta["precision"] == "int8" and meta["check_reference"] == "onnxruntime"
    assert 0 < meta["check_int8_rel_rms"] <= INT8_TOLERANCE
    assert not list(padnas_cache.rglob("model/small-*.tflite"))[1:]  # no float file made
    p = latency_cli("predict", onnx, "--lut", lut_path, "--json")
    assert p.exit_code == 0, p.output
    assert json.loads(p.stdout)["luts"][0]["precision"] == "int8"
