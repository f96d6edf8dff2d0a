"""Real conversions: PyTorch -> ONNX -> onnx2tf -> .tflite, checked against PyTorch, offline,
cached by key; then timed on the host backend. Slow (TensorFlow import and conversions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_support import other_weights_converter

from latency.backends.host import HostBackend
from latency.export import convert as export
from latency.export.pool import iter_export
from latency.variants import Variant

pytestmark = pytest.mark.slow

BLOCK = Variant.from_key("ibconv-k5-e3-s2-i16x16x16-o8x8x24")
STEM = Variant.from_key("stem-k3-s2-i32x32x3-o16x16x16")


@pytest.fixture
def cache(padnas_cache):
    return export.export_dir()


def test_block_converts_checks_and_caches(cache, monkeypatch):
    path = export.export_variant(BLOCK)
    assert path == export.cached_path(BLOCK) and export.is_cached(BLOCK)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["variant"] == BLOCK.key and meta["tools"] == export.tool_versions()
    assert 0 <= meta["check_max_abs_err"] < 1e-3
    # cached: a second call does not convert again
    monkeypatch.setattr(export, "onnx_to_tflite", lambda *a: pytest.fail("re-converted"))
    assert export.export_variant(BLOCK) == path

    stats = HostBackend({"name": "host", "transport": "host"}, min_s=0.05, max_s=0.5).measure(path)
    assert stats.source == "measured" and stats.n >= 20
    assert 0 < stats.p10 <= stats.ms <= stats.p90
    assert stats.extra["clock"] == "cpu" and stats.extra["wall_ms"] > 0


def test_wrong_conversion_is_refused(cache, monkeypatch):
    """A converter that silently produces another computation must be caught, not cached."""
    monkeypatch.setattr(export, "onnx_to_tflite", other_weights_converter(BLOCK))
    with pytest.raises(export.ExportError, match="differs from PyTorch"):
        export.export_variant(BLOCK)
    assert not export.cached_path(BLOCK).exists() and not export.is_cached(BLOCK)


def test_stem_converts_offline(cache, monkeypatch):
    """A 3-channel input makes onnx2tf want sample images from the network: it must not."""
    import onnx2tf.utils.common_functions as cf

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(cf.requests, "get", no_network)
    path = export.export_variant(STEM)
    sample = cache / "work" / export.CALIBRATION_FILE
    assert path.is_file() and sample.is_file()
    assert np.load(sample).shape == (20, 128, 128, 3)


def test_worker_pool_exports_in_parallel(cache):
    variants = [
        Variant.from_key("ibconv-k3-e1-s1-i8x8x24-o8x8x24"),
        Variant.from_key("ibconv-k7-e6-s1-i8x8x24-o8x8x32"),
    ]
    results = list(iter_export(variants, workers=2))
    assert sorted(r.key for r in results) == sorted(v.key for v in variants)
    assert all(r.error is None and not r.cached and r.path.is_file() for r in results)
    again = list(iter_export(variants, workers=2))
    assert all(r.cached for r in again)


def test_host_profile_passes_keep_each_blocks_calmest_median(cache, tmp_path):
    """A 2-pass host profile times every block twice and stores its lowest median."""
    from latency.profiling.profile import profile_space
    from latency.profiling.store import MeasurementStore
    from padnas.space import get_space

    backend = HostBackend(
        {"name": "host", "transport": "host", "passes": 2}, min_s=0.02, max_s=0.2, retries=0
    )
    store = MeasurementStore("host", tmp_path / "m")
    report = profile_space(
        get_space("basic"), backend, store, resolution=32, limit=2, progress=False, workers=1
    )
    assert report.passes == 2 and report.measured == 2
    lines = [json.loads(x) for x in store.path.read_text().splitlines()]
    assert len(lines) == 4  # two blocks, each appended once per pass
    for key, rec in store.records().items():
        passes = rec["extra"]["passes_ms"]
        assert len(passes) == 2 and rec["ms"] == min(passes)
        first = next(x for x in lines if x["key"] == key)
        assert passes[0] == first["ms"]  # the first pass's record stays in the log
