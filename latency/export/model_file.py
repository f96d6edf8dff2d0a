"""A user's ONNX model file as a checked, cached ``.tflite``, converted as the LUT's blocks are.

``padnas-latency measure MODEL.onnx`` must time what a LUT entry would have timed, so the file
goes through the very conversion of :mod:`latency.export.convert` (onnx2tf, offline, float32) and
the same numerical check, with ONNX Runtime on the original graph as the reference in place of
PyTorch: the converted file runs once in LiteRT on a seeded random input and must agree, or it
is not kept. Files are cached by the model's content hash under the tool-version folder, so a
changed model or an upgraded converter converts again and nothing stale is timed.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from latency.cache import is_checked
from latency.export.convert import (
    compare_outputs,
    export_dir,
    offline,
    onnx_to_tflite,
    precision_dir,
    seed_of,
    tflite_output,
    tool_versions,
)
from latency.export.onnx_file import OnnxFileError, load_onnx_model
from latency.export.quantize import int8_beside
from latency.variants import DEFAULT_PRECISION
from padnas.core import atomic_write_bytes, atomic_write_json


def model_digest(onnx_path: str | Path) -> str:
    return hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()[:16]


def onnx_model_path(
    onnx_path: str | Path, cache_dir=None, precision: str = DEFAULT_PRECISION
) -> Path:
    """Where :func:`export_onnx_model` caches the converted file of ``onnx_path``."""
    src = Path(onnx_path)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in src.stem)[:60]
    return precision_dir(cache_dir, precision) / "model" / f"{safe}-{model_digest(src)}.tflite"


def export_onnx_model(
    onnx_path: str | Path, cache_dir=None, precision: str = DEFAULT_PRECISION
) -> Path:
    """The checked ``.tflite`` of a user's ONNX file (cached by content, tool versions and
    precision; int8: calibrated on the task's images, checked against ONNX Runtime)."""
    import onnx

    src = Path(onnx_path)
    path = onnx_model_path(src, cache_dir, precision)
    if is_checked(path):
        return path
    model, input_name, shape = load_onnx_model(src)
    t0 = time.perf_counter()
    digest = model_digest(src)
    x = np.random.default_rng(seed_of(digest)).uniform(-1, 1, shape).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="padnas-model-") as tmp:
        fixed = Path(tmp) / "model.onnx"
        onnx.save(model, str(fixed))
        # the reference first: a file ONNX Runtime cannot run is bad input, not a failed export
        ref = _reference(fixed, input_name, x, src.name)
        with offline(export_dir(cache_dir)):
            out = onnx_to_tflite(fixed, Path(tmp) / "out")
        err = compare_outputs(tflite_output(out, x), ref, src.name, "ONNX Runtime")
        checks = {"check_max_abs_err": err}
        if precision != DEFAULT_PRECISION:

            def reference(samples):
                return np.concatenate(
                    [_reference(fixed, input_name, s[None], src.name) for s in samples]
                )

            out, checks["check_int8_rel_rms"] = int8_beside(
                out, tuple(shape), seed_of(digest), reference, "ONNX Runtime"
            )
        atomic_write_bytes(path, out.read_bytes())
    sidecar = {
        "model": str(src),
        "sha256_16": digest,
        "input_shape": list(shape),
        "precision": precision,
        **checks,
        "check_reference": "onnxruntime",
        "export_s": round(time.perf_counter() - t0, 3),
        "tools": tool_versions(),
    }
    atomic_write_json(path.with_suffix(".json"), sidecar)
    return path


def _reference(onnx_path: Path, input_name: str, x: np.ndarray, name: str) -> np.ndarray:
    """The original graph's output on ``x`` (ONNX Runtime, one thread: export runs beside
    other work). A file it cannot load or run is :class:`OnnxFileError` (exit 2): ONNX Runtime
    is the reference implementation, so such a file is not a model padnas can time."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 4  # its own error lines on stderr: the error below says it once
    try:
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        return sess.run(None, {input_name: x})[0]
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
        first = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise OnnxFileError(f"ONNX Runtime cannot run {name}: {first}") from None
