"""Latency of described networks: predicted from a LUT, or exported and measured on a device.

Prediction sums the LUT entry of every unit (:mod:`latency.netunits`); a unit the LUT lacks — any
layer outside the LUT's space, or the space's layers at another resolution — is priced by the
regression fallback fitted on the LUT's own entries, and the result says how many milliseconds
came from which source, so an answer made mostly of regression is visibly so. The LUT's
calibration (``scale · sum + offset_ms``) applies to the whole network, as it does for an
architecture.

Measurement exports a unit or a whole network with :mod:`latency.export` (cached, checked against
PyTorch) and times it with a backend; units go to the device's measurement store (append-only, so
an interrupted run resumes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from padnas.progress import progress_bar

from .backends.base import Backend, BackendError, LatencyStats
from .lut import Lut
from .netdesc import Network
from .netunits import Unit, network_units
from .store import MeasurementStore
from .variants import FEATURE_NAMES


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
        counts: dict[str, int] = {}
        for _, _, _, src in self.rows:
            counts[src] = counts.get(src, 0) + 1
        parts = [
            f"{ms:.2f} ms {src} ({counts[src]} unit{'s' if counts[src] != 1 else ''})"
            for src, ms in sorted(self.by_source.items(), key=lambda kv: -kv[1])
        ]
        return ", ".join(parts)


def unit_feature_matrix(units: Sequence[Unit]) -> np.ndarray:
    return np.array([[u.features()[n] for n in FEATURE_NAMES] for u in units], dtype=float)


def predict_network(net: Network, lut: Lut, regression=None) -> NetPrediction:
    """Sum of LUT entries over the network's units; holes filled by regression (fitted on the
    LUT's entries when ``regression`` is not given; LutError if the LUT has too few)."""
    units = network_units(net)
    missing = [u for u in units if u.key not in lut.entries]
    filled: dict[str, float] = {}
    if missing:
        if regression is None:
            from .regression import fit_lut

            regression = fit_lut(lut)
        preds = regression.estimator.predict(unit_feature_matrix(missing))
        filled = {u.key: float(ms) for u, ms in zip(missing, preds, strict=True)}
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


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def unit_path(unit: Unit, cache_dir=None) -> Path:
    """Where a unit's ``.tflite`` is cached (space variants share the profiler's files)."""
    from .export import cached_path, export_dir

    if unit.variant is not None:
        return cached_path(unit.variant, cache_dir)
    return export_dir(cache_dir) / "units" / f"{unit.key}.tflite"


def export_unit(unit: Unit, cache_dir=None) -> Path:
    """The checked ``.tflite`` of one unit (cached by key and tool versions)."""
    from .export import export_module, export_variant, randomize

    if unit.variant is not None:
        return export_variant(unit.variant, cache_dir)
    path = unit_path(unit, cache_dir)
    if path.is_file() and path.with_suffix(".json").is_file():
        return path
    seed = _seed(unit.key)
    module = randomize(unit.build_module(), seed)
    return export_module(
        module, unit.input_shape, path, seed=seed, meta={"unit": unit.key}, cache_dir=cache_dir
    )


def network_label(net: Network) -> str:
    """Cache label of a whole network: its name plus a hash of its layer list and input."""
    payload = json.dumps([list(net.input_hw), net.in_chs, net._raw_layers()], sort_keys=True)
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in net.name)[:60]
    return f"{safe}-{digest}"


def export_network(
    net: Network, path: str | Path | None = None, fmt: str = "tflite", cache_dir=None
) -> Path:
    """The whole network (random weights, checked against PyTorch) as .tflite or .onnx; cached
    by :func:`network_label` unless ``path`` is given."""
    from .export import export_dir, export_module, randomize

    label = network_label(net)
    if path is None:
        path = export_dir(cache_dir) / "net" / f"{label}.{fmt}"
        if path.is_file() and (fmt == "onnx" or path.with_suffix(".json").is_file()):
            return path
    seed = _seed(label)
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


def _worker_export_unit(unit: Unit):
    """Runs in an export worker (TF quiet, pinned away from the measuring core)."""
    import time

    from . import export
    from .export_pool import ExportResult

    t0 = time.perf_counter()
    try:
        path = export_unit(unit, export._WORKER_CACHE)
        return ExportResult(unit.key, path, time.perf_counter() - t0, False)
    except Exception as exc:  # reported per unit, like the profiler's blocks
        return ExportResult(unit.key, None, 0.0, False, f"{type(exc).__name__}: {exc}")


def _worker_export_network(net: Network):
    import time

    from . import export
    from .export_pool import ExportResult

    t0 = time.perf_counter()
    try:
        path = export_network(net, cache_dir=export._WORKER_CACHE)
        return ExportResult(net.name, path, time.perf_counter() - t0, False)
    except Exception as exc:
        return ExportResult(net.name, None, 0.0, False, f"{type(exc).__name__}: {exc}")


def _export_cpus(backend: Backend) -> list[int]:
    from .backends.host import allowed_cpus

    cpus = allowed_cpus()
    return [c for c in cpus if c != getattr(backend, "cpu", None)] or cpus


def measure_network(net: Network, backend: Backend, cache_dir=None) -> LatencyStats:
    """Whole-network latency on a device (the mock prices it from its units, without files).
    The network is exported in a worker process (cached), so TensorFlow's logs stay out."""
    if hasattr(backend, "measure_variants"):
        return backend.measure_variants(network_units(net), network_label(net))
    from .export import ExportError, export_dir
    from .export_pool import _pool_results

    cache = export_dir(cache_dir)
    path = cache / "net" / f"{network_label(net)}.tflite"
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        (res,) = list(_pool_results(_worker_export_network, [net], 1, _export_cpus(backend), cache))
        if res.error:
            raise ExportError(f"{net.name}: {res.error}")
        path = res.path
    return backend.measure(path)


def measure_units(
    units: Sequence[Unit],
    backend: Backend,
    store: MeasurementStore,
    *,
    force: bool = False,
    progress: bool = True,
    workers: int | None = None,
    cache_dir=None,
) -> list[tuple[str, str]]:
    """Measure every unit not yet in ``store`` (each stored at once); returns failures
    ``[(key, message)]`` — a unit that fails to convert or run does not stop the others.

    Units are converted in worker processes pinned away from the measuring core and timed as
    soon as each is ready, as the profiler does for a space's variants.
    """
    unique = {u.key: u for u in units}
    todo = [unique[k] for k in store.missing(list(unique), force)]
    failed: list[tuple[str, str]] = []
    if not todo:
        return failed
    bar = progress_bar(
        total=len(todo),
        desc=f"measure {backend.name}",
        unit="unit",
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        if hasattr(backend, "measure_variant"):  # the mock prices a unit without its file
            for unit in todo:
                store.add(unit.key, backend.measure_variant(unit))
                bar.update(1)
            return failed
        from .export import export_dir, tools_hash
        from .export_pool import _pool_results

        cache = export_dir(cache_dir)
        ready = [(u, unit_path(u, cache)) for u in todo]
        cached = [(u.key, p) for u, p in ready if p.is_file() and p.with_suffix(".json").is_file()]
        convert = [u for u, p in ready if not (p.is_file() and p.with_suffix(".json").is_file())]
        cpus = _export_cpus(backend)
        results = iter(cached)
        if convert:
            pooled = _pool_results(_worker_export_unit, convert, workers or len(cpus), cpus, cache)
            results = itertools.chain(cached, ((r.key, r.path or r.error) for r in pooled))
        for key, path in results:
            if not isinstance(path, Path):
                failed.append((key, str(path)))
            else:
                try:
                    stats = backend.measure(path)
                except BackendError as exc:
                    failed.append((key, str(exc)))
                else:
                    store.add(key, stats, tools=tools_hash())
                    bar.set_postfix_str(f"{key[:28]} {stats.ms:.3f} ms", refresh=False)
            bar.update(1)
    finally:
        bar.close()
    return failed
