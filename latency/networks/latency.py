"""Latency of described networks: predicted from a LUT, or exported and measured on a device.

Prediction sums the LUT entry of every unit (:mod:`latency.networks.units`); a unit the LUT
lacks — any layer outside the LUT's space, or the space's layers at another resolution — is
priced by the regression fallback fitted on the LUT's own entries, and the result says how many
milliseconds came from which source, so an answer made mostly of regression is visibly so. The
LUT's calibration (``scale · sum + offset_ms``) applies to the whole network, as it does for an
architecture.

Measurement exports a unit or a whole network with :mod:`latency.export` (cached, checked
against PyTorch) and times it with a backend; units go through the profiler's measure loop into
the device's measurement store (append-only, so an interrupted run resumes).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from latency.backends.base import Backend, LatencyStats
from latency.cache import is_checked
from latency.errors import ExportError
from latency.export.convert import (
    cached_path,
    export_dir,
    export_module,
    export_variant,
    randomize,
    seed_of,
)
from latency.export.model_file import export_onnx_model, onnx_model_path
from latency.export.onnx_file import OnnxFileError, load_onnx_model
from latency.export.pool import ExportJob, run_exports
from latency.lut.table import Lut, source_line
from latency.networks.description import Network
from latency.networks.units import Unit, network_units
from latency.profiling.guard import make_guard, measure_guarded
from latency.profiling.loop import MeasureLoop, export_cpus, measure_bar, pending_keys
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore
from latency.variants import DEFAULT_PRECISION


@dataclass
class NetPrediction:
    """A network's predicted latency, per unit and per source."""

    name: str
    ms: float  # calibrated when the LUT has a calibration
    raw_ms: float  # sum of the unit entries
    rows: list[tuple[str, str, float, str]]  # (unit kind, key, ms, source)
    calibration: dict | None = None
    by_source: dict[str, float] = field(default_factory=dict)

    @property
    def sources(self) -> set[str]:
        return set(self.by_source)

    def source_line(self) -> str:
        """``52.10 ms estimate (20 units), 1.20 ms regression (2 units)``."""
        return source_line((src, ms) for _, _, ms, src in self.rows)


def predict_network(net: Network, lut: Lut, regression=None) -> NetPrediction:
    """Sum of LUT entries over the network's units; holes filled by regression (fitted on the
    LUT's entries when ``regression`` is not given; LutError if the LUT has too few)."""
    from latency.lut.regression import fill_holes  # scikit-learn: only for holes

    units = network_units(net)
    filled, _ = fill_holes(lut, units, regression)
    rows, by_source = [], {}
    for u in units:
        if u.key in lut.entries:
            ms, src = float(lut.entries[u.key]["ms"]), lut.entries[u.key]["source"]
        else:
            ms, src = filled[u.key], "regression"
        rows.append((u.kind, u.key, ms, src))
        by_source[src] = by_source.get(src, 0.0) + ms
    raw = float(sum(r[2] for r in rows))
    return NetPrediction(
        net.name,
        float(lut.calibrate(raw)),
        raw,
        rows,
        dict(lut.calibration) if lut.calibration else None,
        by_source,
    )


# ---- export ----------------------------------------------------------------------------------


def unit_path(unit: Unit, cache_dir=None) -> Path:
    """Where a unit's ``.tflite`` is cached (space variants share the profiler's files)."""
    if unit.variant is not None:
        return cached_path(unit.variant, cache_dir)
    return export_dir(cache_dir) / "units" / f"{unit.key}.tflite"


def export_unit(unit: Unit, cache_dir=None) -> Path:
    """The checked ``.tflite`` of one unit (cached by key and tool versions)."""
    if unit.variant is not None:
        return export_variant(unit.variant, cache_dir)
    path = unit_path(unit, cache_dir)
    if is_checked(path):
        return path
    seed = seed_of(unit.key)
    module = randomize(unit.build_module(), seed)
    return export_module(
        module, unit.input_shape, path, seed=seed, meta={"unit": unit.key}, cache_dir=cache_dir
    )


def network_label(net: Network) -> str:
    """Cache label of a whole network: its name plus a hash of its layer list and input."""
    payload = json.dumps([list(net.input_hw), net.in_chs, net.raw_layers()], sort_keys=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in net.name)[:60]
    return f"{safe}-{digest}"


def network_path(net: Network, cache_dir=None, fmt: str = "tflite") -> Path:
    """Where :func:`export_network` caches a whole network."""
    return export_dir(cache_dir) / "net" / f"{network_label(net)}.{fmt}"


def export_network(
    net: Network, path: str | Path | None = None, fmt: str = "tflite", cache_dir=None
) -> Path:
    """The whole network (random weights, checked against PyTorch) as .tflite or .onnx; cached
    by :func:`network_label` unless ``path`` is given."""
    label = network_label(net)
    if path is None:
        path = network_path(net, cache_dir, fmt)
        if path.is_file() and (fmt == "onnx" or is_checked(path)):
            return path
    seed = seed_of(label)
    module = randomize(net.build_module(), seed)
    return export_module(
        module,
        net.input_shape,
        path,
        fmt,
        seed=seed,
        meta={"network": net.name, "label": label},
        cache_dir=cache_dir,
    )


# ---- measurement -----------------------------------------------------------------------------


def measure_network(net: Network, backend: Backend, cache_dir=None) -> LatencyStats:
    """Whole-network latency on a device (the mock prices it from its units, without files).
    The network is exported in a worker process (cached), so TensorFlow's logs stay out."""
    if not backend.needs_files:
        return backend.measure_variants(network_units(net), network_label(net))
    cache = export_dir(cache_dir)
    job = ExportJob(net.name, export_network, net, network_path(net, cache))
    (res,) = run_exports([job], workers=1, cpus=export_cpus(backend), cache_dir=cache)
    if res.error:
        raise ExportError(f"{net.name}: {res.error}")
    return measure_guarded(backend, res.path, cache_dir)


def measure_onnx_model(
    path: str | Path, backend: Backend, cache_dir=None, precision: str = DEFAULT_PRECISION
) -> LatencyStats:
    """Latency of a user's ONNX file: converted like every LUT block (in a worker process,
    checked against ONNX Runtime, cached; int8 when ``precision`` says so) and timed whole. The
    mock, which times no files, prices the layer list the graph reads as
    (:mod:`latency.networks.onnx_import`)."""
    if not backend.needs_files:
        from latency.networks.onnx_import import read_onnx

        net = read_onnx(path)
        return backend.measure_variants(network_units(net), network_label(net), precision)
    load_onnx_model(path)  # a bad file is a usage error here, not a failed conversion
    cache = export_dir(cache_dir)
    convert = functools.partial(export_onnx_model, precision=precision)
    job = ExportJob(str(path), convert, str(path), onnx_model_path(path, cache, precision))
    (res,) = run_exports([job], workers=1, cpus=export_cpus(backend), cache_dir=cache)
    if res.bad_input:
        raise OnnxFileError(res.error)
    if res.error:
        raise ExportError(f"{Path(path).name}: {res.error}")
    return measure_guarded(backend, res.path, cache_dir)


def measure_units(
    units: Sequence[Unit],
    backend: Backend,
    store: MeasurementStore,
    *,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    cache_dir=None,
    guarded: bool = True,
) -> list[tuple[str, str]]:
    """Measure every unit not yet in ``store`` (in guarded batches: see
    :mod:`latency.profiling.guard`; each batch stored once accepted); returns failures
    ``[(key, message)]`` — a unit that fails to convert or run does not stop the others.

    Units are converted in worker processes pinned away from the measuring core and timed as
    soon as each is ready, through the profiler's own loop (:class:`MeasureLoop`).
    """
    unique = {u.key: u for u in units}
    todo = [unique[k] for k in pending_keys(store, list(unique), force)]
    report = ProfileReport(backend.name, len(unique))
    if not todo:
        return report.failed
    with measure_bar(len(todo), f"measure {backend.name}", progress, unit="unit") as bar:
        if not backend.needs_files:  # the mock prices a unit without its file
            for unit in todo:
                store.add(unit.key, backend.measure_variant(unit))
                bar.update(1)
            return report.failed
        cache = export_dir(cache_dir)
        cpus = export_cpus(backend)
        jobs = [ExportJob(u.key, export_unit, u, unit_path(u, cache)) for u in todo]
        results = run_exports(jobs, workers=workers or len(cpus), cpus=cpus, cache_dir=cache)
        guard = make_guard(backend, cache, bar) if guarded else None
        MeasureLoop(backend, store, report, bar, guard=guard).run(results)
    return report.failed
