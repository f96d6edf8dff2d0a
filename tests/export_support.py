"""Shared by the conversion tests: a converter that silently converts another computation."""

from __future__ import annotations

from latency.export import convert as export


def other_weights_converter(variant):
    """An ``onnx_to_tflite`` that converts ``variant`` with other (seeded) weights instead of the
    ONNX file it is given: a plausible file of the wrong computation, which every check of a
    conversion must catch."""
    real = export.onnx_to_tflite

    def sabotaged(onnx_path, out_dir):
        mod = export.randomize(variant.build_module(), seed=12345)
        other = out_dir.parent / "other.onnx"
        export._to_onnx(mod, variant.input_shape, other)
        return real(other, out_dir)

    return sabotaged
