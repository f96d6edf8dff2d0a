"""How does a block, an architecture or a network become a checked, cached ``.tflite``?

``convert``: torch -> ONNX -> onnx2tf -> ``.tflite``, checked against PyTorch and cached by tool
versions; ``onnx_file``: the one checked reader of a user's ONNX file; ``model_file``: that file
through the same conversion; ``pool``: spawned export workers and the one cache check
(:func:`run_exports`).
"""

from latency.export.convert import (
    ExportError,
    arch_path,
    cached_path,
    export_arch,
    export_dir,
    export_module,
    export_variant,
    is_cached,
    randomize,
    tool_versions,
    tools_hash,
)
from latency.export.model_file import export_onnx_model, onnx_model_path
from latency.export.onnx_file import load_onnx_model
from latency.export.pool import (
    ExportJob,
    ExportResult,
    export_variants,
    iter_export,
    iter_export_archs,
    run_exports,
)

__all__ = [
    "ExportError",
    "ExportJob",
    "ExportResult",
    "arch_path",
    "cached_path",
    "export_arch",
    "export_dir",
    "export_module",
    "export_onnx_model",
    "export_variant",
    "export_variants",
    "is_cached",
    "iter_export",
    "iter_export_archs",
    "load_onnx_model",
    "onnx_model_path",
    "randomize",
    "run_exports",
    "tool_versions",
    "tools_hash",
]
