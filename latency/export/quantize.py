"""int8 models: full-integer post-training quantisation of the float graph onnx2tf writes,
calibrated on the task's own images and checked against the float PyTorch module.

Mobile engineers ship int8 TFLite models, and an int8 kernel's time is not the float one's
scaled: so an int8 op variant is its own file, converted and timed like the float one. The
converter is TensorFlow's (``TFLiteConverter.from_saved_model`` on the SavedModel onnx2tf leaves
beside its ``.tflite``, offline like every conversion), with every op restricted to int8 builtins
and int8 input and output, as a block inside an int8 network receives and hands on int8 tensors.

The representative set is drawn from the task's images, never downloaded: Fashion-MNIST's test
images (Debian's ``dataset-fashion-mnist``; another IDX folder with ``$PADNAS_INT8_IMAGES``),
resized bilinearly to the block's input and mapped to [-1, 1] like the float check's inputs, one
image per channel. A block in the middle of a network sees feature maps, not images; what matters
here is that the ranges the converter calibrates on are real, spatially correlated data, and
that the check below sees inputs from the same distribution.

The check: the int8 file runs on held-out samples (other images than the calibration's), its
output dequantised, and its RMS error from PyTorch's float output, relative to the RMS of that
output, must stay within :data:`INT8_TOLERANCE`. Quantising one block to int8 costs a few percent
(the report of the basic space is in ``docs/int8.md``); a wrong conversion (a transposed weight, a
dropped residual, a mis-folded BatchNorm) costs about 100 %.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from latency.errors import ExportError, LatencyUsageError
from latency.variants import PRECISIONS
from padnas.core.idx import read_idx

#: relative RMS error (RMS of int8 - float output over RMS of the float output) an int8 file may
#: show on held-out samples
INT8_TOLERANCE = 0.1
#: representative samples the converter calibrates on, and held-out samples the check runs
CALIBRATION_SAMPLES = 32
CHECK_SAMPLES = 8
IMAGES_ENV = "PADNAS_INT8_IMAGES"
DEFAULT_IMAGES = Path("/usr/share/datasets/fashion-mnist")
IMAGES_STEM = "t10k-images-idx3-ubyte"


#: the float computation an int8 file is checked against: NCHW samples -> outputs
Reference = Callable[[np.ndarray], np.ndarray]


class PrecisionError(LatencyUsageError):
    """An unknown precision, or int8 asked for without the images it calibrates on (exit 2)."""


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def images_folder() -> Path:
    return Path(os.environ.get(IMAGES_ENV) or DEFAULT_IMAGES)


@functools.lru_cache(maxsize=2)
def task_images(folder: Path) -> np.ndarray:
    """The grey test images of the task (uint8, [n, h, w]) the representative sets come from."""
    for name in (IMAGES_STEM + ".gz", IMAGES_STEM):
        if (folder / name).is_file():
            return read_idx(folder / name, 3)
    raise PrecisionError(
        f"int8 export calibrates on the task's images and found no {IMAGES_STEM}[.gz] in "
        f"{folder}: install Debian's dataset-fashion-mnist, or set ${IMAGES_ENV} to a folder "
        "holding that IDX file"
    )


def representative_inputs(input_shape: tuple[int, ...], seed: int, n: int) -> np.ndarray:
    """``n`` NCHW float32 inputs of ``input_shape[1:]`` in [-1, 1], each channel one task
    image (seeded draw), resized bilinearly to the input's height and width."""
    import torch
    import torch.nn.functional as F

    _, c, h, w = input_shape
    images = task_images(images_folder())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(images), size=n * c)
    x = torch.from_numpy(images[picks].astype(np.float32) / 255.0).unsqueeze(1)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (x.reshape(n, c, h, w).numpy() * 2.0 - 1.0).astype(np.float32)


def quantize_saved_model(saved_model: Path, calibration: np.ndarray) -> bytes:
    """A full-integer (int8 ops, int8 input and output) ``.tflite`` of the SavedModel onnx2tf
    wrote, calibrated on ``calibration`` (NCHW float32)."""
    import tensorflow as tf

    nhwc = calibration.transpose(0, 2, 3, 1)

    def representative():
        for sample in nhwc:
            yield [sample[None]]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises a zoo of types, all meaning "cannot"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"TensorFlow could not quantise the model to int8: {first}") from None


def int8_outputs(tflite_path: Path, x: np.ndarray) -> np.ndarray:
    """Run an int8 file on each NCHW float sample of ``x``: inputs quantised with the file's
    input scale, outputs dequantised, returned in NCHW (or as given for 2-D outputs)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
    results = []
    for sample in x:
        nhwc = sample.transpose(1, 2, 0)[None]
        q = np.clip(np.round(nhwc / s_in) + z_in, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q)
        interp.invoke()
        got = (interp.get_tensor(out["index"]).astype(np.float32) - z_out) * s_out
        results.append(got.transpose(0, 3, 1, 2) if got.ndim == 4 else got)
    return np.concatenate(results)


def check_int8(reference: Reference, tflite_path: Path, samples: np.ndarray, name: str) -> float:
    """Relative RMS error of the int8 file against the float reference's output on
    ``samples``; ExportError beyond :data:`INT8_TOLERANCE` (the file is then not kept)."""
    ref = reference(samples)
    got = int8_outputs(tflite_path, samples)
    if got.shape != ref.shape:
        raise ExportError(f"int8 TFLite output shape {got.shape}, {name} gives {ref.shape}")
    scale = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    err = float(np.sqrt(np.mean((got.astype(np.float64) - ref) ** 2))) / max(scale, 1e-12)
    if not err <= INT8_TOLERANCE:
        raise ExportError(
            f"{tflite_path.name}: the int8 output differs from {name}'s float output by "
            f"{err:.1%} RMS (tolerance {INT8_TOLERANCE:.0%}); the conversion is wrong, the file "
            "is not kept"
        )
    return err


def int8_beside(
    float_file: Path,
    input_shape: tuple[int, ...],
    seed: int,
    reference: Reference | None,
    name: str,
) -> tuple[Path, float | None]:
    """The int8 file made from the SavedModel onnx2tf wrote beside ``float_file``, calibrated on
    :data:`CALIBRATION_SAMPLES` representative inputs, and its relative RMS error against
    ``reference`` (``name``) on :data:`CHECK_SAMPLES` held-out ones (None: unchecked)."""
    if len(input_shape) != 4:
        raise PrecisionError(
            f"int8 export calibrates on images: it needs one NCHW input, got shape {input_shape}"
        )
    samples = representative_inputs(input_shape, seed, CALIBRATION_SAMPLES + CHECK_SAMPLES)
    int8_file = float_file.with_name(float_file.stem.replace("_float32", "") + "_int8.tflite")
    int8_file.write_bytes(quantize_saved_model(float_file.parent, samples[:CALIBRATION_SAMPLES]))
    held_out = samples[CALIBRATION_SAMPLES:]
    err = None if reference is None else check_int8(reference, int8_file, held_out, name)
    return int8_file, err


def torch_reference(module) -> Reference:
    """A PyTorch module as the float reference of an int8 check."""

    def run(samples: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return module(torch.from_numpy(samples)).numpy()

    return run
