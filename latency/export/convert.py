"""PyTorch block or network -> ONNX -> onnx2tf -> float32 (or int8) ``.tflite``, checked and cached.

Every latency in a LUT is the time of a file this module produced, so two things matter:

* **Correctness.** A silent conversion error (a transposed weight, a dropped residual) would give a
  plausible latency for the wrong computation. Every exported model is run once in LiteRT and
  compared with PyTorch on a seeded random input, with seeded random weights *and* BatchNorm
  statistics (identity BN would hide a mis-folded BN); a model that disagrees is never cached.
* **Reproducibility and speed.** Files are cached under ``$PADNAS_CACHE/tflite/<tools>/`` where
  ``<tools>`` hashes the torch, onnx, onnx2tf and TensorFlow versions and this exporter's version,
  so upgrading a tool re-exports and nothing stale is timed. Conversion runs in worker processes
  (``spawn``; each imports TensorFlow once and converts many blocks), optionally pinned away from
  the core that measures.

onnx2tf fetches sample images from the network when every model input is a 3-channel image (the
stem, whole networks). The exporter works offline: conversions run with their working directory in
a cache folder holding a locally generated, seeded copy of that file (onnx2tf reads it from the
working directory), and with the HTTP(S) proxy pointed at an unreachable local port.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from latency.cache import cache_root, is_checked
from latency.errors import ExportError, verbose_enabled
from latency.export.quantize import check_precision, int8_beside, torch_reference
from latency.variants import DEFAULT_PRECISION, Variant
from padnas.core import atomic_write_bytes, atomic_write_json
from padnas.space import Proxy

#: bump when a change here changes the produced files
EXPORTER_VERSION = 2
OPSET = 17
CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
_DEAD_PROXY = "http://127.0.0.1:9"  # discard port: connections fail at once, nothing leaves
ATOL, RTOL = 1e-4, 1e-4


# ---- versions and cache layout ----------------------------------------------------------------
def package_version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"


@lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    """Versions that shape an exported file (read from metadata: imports nothing heavy)."""
    return {
        "torch": package_version("torch"),
        "onnx": package_version("onnx"),
        "onnx2tf": package_version("onnx2tf"),
        "tensorflow": package_version("tensorflow", "tensorflow-cpu"),
        "exporter": str(EXPORTER_VERSION),
    }


@lru_cache(maxsize=1)
def tools_hash() -> str:
    payload = json.dumps(tool_versions(), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:12]


def export_dir(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir) if cache_dir else cache_root() / "tflite" / tools_hash()


def precision_dir(cache_dir: str | Path | None, precision: str = DEFAULT_PRECISION) -> Path:
    """Where files of ``precision`` are cached: the export folder (fp32) or its ``int8/``."""
    root = export_dir(cache_dir)
    return root if precision == DEFAULT_PRECISION else root / check_precision(precision)


def cached_path(
    variant: Variant | str,
    cache_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
) -> Path:
    key = variant if isinstance(variant, str) else variant.key
    return precision_dir(cache_dir, precision) / f"{key}.tflite"


def is_cached(
    variant: Variant | str,
    cache_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
) -> bool:
    """True when a checked file exists (the sidecar is written last, after the check passed)."""
    return is_checked(cached_path(variant, cache_dir, precision))


# ---- offline conversion ------------------------------------------------------------------------
def calibration_workdir(cache_dir: Path) -> Path:
    """A folder holding the seeded calibration sample onnx2tf would otherwise download."""
    work = cache_dir / "work"
    sample = work / CALIBRATION_FILE
    if not sample.is_file():
        rng = np.random.default_rng(20240601)
        data = rng.random((20, 128, 128, 3), dtype=np.float32)
        import io

        buf = io.BytesIO()
        np.save(buf, data)
        atomic_write_bytes(sample, buf.getvalue())
    return work


@contextlib.contextmanager
def offline(cache_dir: Path):
    """cwd = the calibration folder and a dead proxy, restored afterwards."""
    work = calibration_workdir(cache_dir)
    old_cwd = os.getcwd()
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
    old_env = {k: os.environ.get(k) for k in names}
    for k in names[:4]:
        os.environ[k] = _DEAD_PROXY
    os.environ.pop("NO_PROXY", None)
    os.environ.pop("no_proxy", None)
    os.chdir(work)
    try:
        yield work
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def quiet_tf() -> None:
    if not verbose_enabled():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def randomize(module, seed: int):
    """Seeded random weights and BatchNorm statistics, so the numerical check can fail.

    Default init leaves BN at mean 0 / var 1 / weight 1 / bias 0, which a converter may fold
    wrongly and still match; random statistics make every BN visible in the output.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
    return module.eval()


def seed_of(text: str) -> int:
    """A stable 32-bit seed from a cache key, so the same key always gets the same weights."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _to_onnx(module, input_shape: tuple[int, ...], path: Path) -> None:
    import torch

    x = torch.zeros(input_shape)
    with contextlib.redirect_stdout(None):
        torch.onnx.export(
            module,
            (x,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=OPSET,
            dynamo=False,
        )


def onnx_to_tflite(onnx_path: Path, out_dir: Path) -> Path:
    """onnx2tf in the current process; returns the float32 .tflite it wrote."""
    quiet_tf()
    import onnx2tf

    try:
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            onnx2tf.convert(
                input_onnx_file_path=str(onnx_path),
                output_folder_path=str(out_dir),
                non_verbose=True,
                # also the path that names the saved model's ops by signature: without it, grouped
                # (non-depthwise) convs fail on ONNX node names starting with "/" (FBNet g2 blocks)
                output_signaturedefs=True,
            )
    except SystemExit as exc:
        # onnx2tf ends the process on a failed conversion; a failed block is an error, not an exit
        raise ExportError(
            f"onnx2tf could not convert {onnx_path.name} (exit {exc.code}); rerun with --verbose"
        ) from None
    out = out_dir / f"{onnx_path.stem}_float32.tflite"
    if not out.is_file():
        raise ExportError(f"onnx2tf wrote no {out.name} for {onnx_path.name}")
    return out


def check_tflite(module, input_shape: tuple[int, ...], tflite_path: Path, seed: int) -> float:
    """Max abs difference between LiteRT and PyTorch on a seeded input; raises ExportError
    when it exceeds ``ATOL + RTOL * max|reference|``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(input_shape, generator=gen) * 2 - 1
    with torch.no_grad():
        ref = module(x).numpy()
    return compare_outputs(tflite_output(tflite_path, x.numpy()), ref, tflite_path.name, "PyTorch")


def tflite_output(tflite_path: Path, x: np.ndarray) -> np.ndarray:
    """Run a converted file once on the NCHW input ``x``; the output back in NCHW (onnx2tf
    makes 4-D tensors NHWC)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    nhwc = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    if tuple(inp["shape"]) != nhwc.shape:
        raise ExportError(f"TFLite input shape {tuple(inp['shape'])}, expected {nhwc.shape}")
    interp.set_tensor(inp["index"], np.ascontiguousarray(nhwc, dtype=np.float32))
    interp.invoke()
    got = interp.get_tensor(out["index"])
    return got.transpose(0, 3, 1, 2) if got.ndim == 4 else got


def compare_outputs(got: np.ndarray, ref: np.ndarray, name: str, reference: str) -> float:
    """Max abs difference of a converted file's output from the reference's; ExportError when
    the shapes differ or it exceeds ``ATOL + RTOL * max|reference|``."""
    if got.shape != ref.shape:
        raise ExportError(f"TFLite output shape {got.shape}, {reference} gives {ref.shape}")
    err = float(np.abs(got - ref).max())
    tol = ATOL + RTOL * float(np.abs(ref).max())
    if not err <= tol:
        raise ExportError(
            f"{name}: TFLite output differs from {reference} by {err:.3g} "
            f"(tolerance {tol:.3g}); the conversion is wrong, the file is not kept"
        )
    return err


def export_module(
    module,
    input_shape: tuple[int, ...],
    path: str | Path,
    fmt: str = "tflite",
    *,
    check: bool = True,
    seed: int = 0,
    meta: dict | None = None,
    cache_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
) -> Path:
    """Export any eval-mode module (NCHW input ``input_shape``) to ``path`` (.onnx or .tflite).

    The weights are used as given (use :func:`randomize` for latency-only files). A ``.tflite``
    is checked against PyTorch unless ``check=False``; ``meta`` (plus the check result and tool
    versions) goes to the sidecar ``<path stem>.json``. ``precision`` int8: a full-integer
    file calibrated on the task's images and checked within the int8 tolerance
    (:mod:`latency.export.quantize`).
    """
    if fmt not in ("onnx", "tflite"):
        raise ExportError(f"unknown export format {fmt!r}: use onnx or tflite")
    check_precision(precision)
    if precision != DEFAULT_PRECISION and fmt != "tflite":
        raise ExportError(f"{precision} is a TFLite precision: export ONNX as fp32")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="padnas-export-") as tmp:
        tmp = Path(tmp)
        onnx_path = tmp / "model.onnx"
        _to_onnx(module, input_shape, onnx_path)
        if fmt == "onnx":
            shutil.copyfile(onnx_path, path)
            return path
        with offline(export_dir(cache_dir)):
            out = onnx_to_tflite(onnx_path, tmp / "out")
        err = check_tflite(module, input_shape, out, seed) if check else None
        checks = {"check_max_abs_err": err}
        if precision == "int8":
            reference = torch_reference(module) if check else None
            out, checks["check_int8_rel_rms"] = int8_beside(
                out, input_shape, seed, reference, "PyTorch"
            )
        atomic_write_bytes(path, out.read_bytes())
    sidecar = {
        **(meta or {}),
        "input_shape": list(input_shape),
        "precision": precision,
        **checks,
        "export_s": round(time.perf_counter() - t0, 3),
        "tools": tool_versions(),
    }
    atomic_write_json(path.with_suffix(".json"), sidecar)
    return path


def convert_variant(
    variant: Variant, cache_dir: Path, precision: str = DEFAULT_PRECISION
) -> tuple[Path, float]:
    seed = seed_of(variant.key)
    module = randomize(variant.build_module(), seed)
    path = cached_path(variant, cache_dir, precision)
    t0 = time.perf_counter()
    export_module(
        module,
        variant.input_shape,
        path,
        seed=seed,
        meta={"variant": variant.key},
        cache_dir=cache_dir,
        precision=precision,
    )
    return path, time.perf_counter() - t0


def export_variant(
    variant: Variant, cache_dir: str | Path | None = None, precision: str = DEFAULT_PRECISION
) -> Path:
    """The checked ``.tflite`` of one variant (converted in this process unless cached)."""
    cache = export_dir(cache_dir)
    if is_cached(variant, cache, precision):
        return cached_path(variant, cache, precision)
    return convert_variant(variant, cache, precision)[0]


def arch_label(family: str, arch, resolution: int, width_mult: float, num_classes: int) -> str:
    return f"{family}-r{resolution}-w{width_mult:g}-c{num_classes}-{arch}"


def arch_path(
    family: str,
    arch,
    resolution: int = 224,
    width_mult: float = 1.0,
    num_classes: int = 1000,
    cache_dir: str | Path | None = None,
    fmt: str = "tflite",
    precision: str = DEFAULT_PRECISION,
) -> Path:
    """Where :func:`export_arch` caches a random-weight network (for latency only)."""
    label = arch_label(family, arch, resolution, width_mult, num_classes)
    return precision_dir(cache_dir, precision) / "arch" / f"{label}.{fmt}"


def export_arch(
    space,
    arch,
    resolution: int = 224,
    path: str | Path | None = None,
    fmt: str = "tflite",
    *,
    width_mult: float = 1.0,
    num_classes: int = 1000,
    state_dict: dict | None = None,
    cache_dir: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
) -> Path:
    """A whole network of ``arch`` (stem, blocks, head) as .tflite or .onnx (``precision``
    int8: a full-integer .tflite, see :mod:`latency.export.quantize`).

    Without ``state_dict`` the weights are seeded random (latency does not depend on them) and
    the file is cached by arch; with one (a trained child), the network is the deployable model.
    """
    from padnas.nn.supernet import ChildNet

    arch = space.validate(arch)
    proxy = Proxy(resolution, width_mult)
    net = ChildNet(space, arch, proxy, num_classes).eval()
    label = arch_label(space.family, arch, resolution, width_mult, num_classes)
    seed = seed_of(label)
    if state_dict is None:
        randomize(net, seed)
    else:
        net.load_state_dict(state_dict)
    if path is None:
        if state_dict is not None:
            raise ExportError("export_arch with trained weights needs an output path")
        path = arch_path(
            space.family, arch, resolution, width_mult, num_classes, cache_dir, fmt, precision
        )
        if path.is_file() and (fmt == "onnx" or is_checked(path)):
            return path
    meta = {
        "arch": str(arch),
        "family": space.family,
        "resolution": resolution,
        "width_mult": width_mult,
        "num_classes": num_classes,
        "weights": "trained" if state_dict is not None else "random",
    }
    shape = (1, 3, resolution, resolution)
    return export_module(
        net, shape, path, fmt, seed=seed, meta=meta, cache_dir=cache_dir, precision=precision
    )
