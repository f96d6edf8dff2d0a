"""int8 op variants (issue 24): a real full-integer conversion of a small block, calibrated on
the task's images and checked against the float PyTorch block; a check that fails on a wrong
conversion; the host timing an int8 file; and the missing-images error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_support import other_weights_converter

from latency.backends.host import HostBackend
from latency.errors import ExportError
from latency.export import convert as export
from latency.export import quantize
from latency.variants import Variant

BLOCK = Variant.from_key("ibconv-k5-e3-s1-i8x8x16-o8x8x16")


@pytest.fixture
def cache(padnas_cache):
    return export.export_dir()


def test_representative_inputs_come_from_the_task_images_seeded():
    x = quantize.representative_inputs((1, 3, 12, 12), seed=4, n=5)
    assert x.shape == (5, 3, 12, 12) and x.dtype == np.float32
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0
    assert np.array_equal(x, quantize.representative_inputs((1, 3, 12, 12), seed=4, n=5))
    assert not np.array_equal(x, quantize.representative_inputs((1, 3, 12, 12), seed=5, n=5))
    # spatially smooth (resized images), unlike noise: neighbours correlate strongly
    flat = x.reshape(-1, 12)
    assert np.corrcoef(flat[:, :-1].ravel(), flat[:, 1:].ravel())[0, 1] > 0.5


@pytest.mark.slow
def test_int8_block_converts_checks_caches_and_times_on_the_host(cache, monkeypatch):
    path = export.export_variant(BLOCK, precision="int8")
    assert path == export.cached_path(BLOCK, precision="int8") != export.cached_path(BLOCK)
    assert export.is_cached(BLOCK, precision="int8") and not export.is_cached(BLOCK)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["precision"] == "int8"
    assert 0 < meta["check_int8_rel_rms"] <= quantize.INT8_TOLERANCE
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    # every op computes in int8 (int32 only for the biases): nothing falls back to float
    dtypes = {np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    assert np.dtype(np.float32) not in dtypes, dtypes
    monkeypatch.setattr(export, "onnx_to_tflite", lambda *a: pytest.fail("re-converted"))
    assert export.export_variant(BLOCK, precision="int8") == path

    stats = HostBackend({"name": "host", "transport": "host"}, min_s=0.05, max_s=0.5).measure(path)
    assert stats.source == "measured" and stats.n >= 20 and stats.ms > 0


@pytest.mark.slow
def test_the_int8_check_refuses_a_wrong_conversion(cache, monkeypatch):
    """A file quantised from other weights than the block's is plausible and wrong: caught."""
    monkeypatch.setattr(export, "onnx_to_tflite", other_weights_converter(BLOCK))
    monkeypatch.setattr(export, "check_tflite", lambda *a: 0.0)  # let the float file through
    with pytest.raises(ExportError, match=r"int8 output differs from PyTorch's float output"):
        export.export_variant(BLOCK, precision="int8")
    assert not export.is_cached(BLOCK, precision="int8")


def test_int8_without_the_task_images_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(quantize.IMAGES_ENV, str(tmp_path))
    quantize.task_images.cache_clear()
    try:
        with pytest.raises(quantize.PrecisionError, match="dataset-fashion-mnist") as err:
            quantize.representative_inputs((1, 3, 8, 8), seed=0, n=2)
    finally:
        quantize.task_images.cache_clear()
    assert quantize.IMAGES_ENV in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_precision_is_refused():
    with pytest.raises(quantize.PrecisionError, match="one of fp32, int8"):
        export.cached_path(BLOCK, precision="int4")
