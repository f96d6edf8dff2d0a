"""Profile a space on a device (variants -> export -> measure -> store) and turn a store into a LUT.

On a device that needs files, conversion and measurement overlap: export workers (pinned to the
cores the measuring thread does not use) convert blocks while the main thread times each block as
soon as it is ready, so a cold build costs about max(export, measure) rather than their sum. When
every block is already in the store nothing is imported beyond this package (no TensorFlow, no
LiteRT), which keeps a warm re-run to a second or two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from padnas.progress import progress_bar
from padnas.space import DEPLOY_CLASSES, DEPLOY_RESOLUTION, SearchSpace

from .backends.base import Backend, BackendError
from .lut import Lut, LutError
from .store import MeasurementStore
from .variants import space_variants


@dataclass
class ProfileReport:
    """What a ``profile`` run did, with the export / measurement time split."""

    device: str
    total: int
    reused: int = 0
    measured: int = 0
    exported: int = 0  # converted in this run
    export_cached: int = 0  # .tflite found in the cache
    export_s: float = 0.0  # conversion seconds summed over workers
    export_wall_s: float = 0.0  # wall time of the conversion phase (when not overlapped)
    measure_s: float = 0.0  # seconds spent timing on the device
    passes: int = 1  # passes over every block measured in this run
    wall_s: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def count_export(self, res) -> None:
        """Tally one export result (an ``export_pool`` result that did not fail)."""
        if res.cached:
            self.export_cached += 1
        else:
            self.exported += 1
            self.export_s += res.seconds

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["failed"] = [list(f) for f in self.failed]
        return d

    def summary(self) -> str:
        parts = [
            f"{self.device}: {self.total} variants, {self.reused} already stored, "
            f"{self.measured} measured",
        ]
        if self.exported or self.export_cached:
            phase = f", {self.export_wall_s:.1f} s wall" if self.export_wall_s else ""
            parts.append(
                f"export {self.exported} converted ({self.export_s:.1f} s of worker time"
                f"{phase}), {self.export_cached} cached"
            )
        parts.append(f"measure {self.measure_s:.1f} s, wall {self.wall_s:.1f} s")
        if self.failed:
            parts.append(f"{len(self.failed)} FAILED (first: {self.failed[0][0]})")
        return "; ".join(parts)


def profile_space(
    space: SearchSpace,
    backend: Backend,
    store: MeasurementStore,
    *,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
    cache_dir=None,
    limit: int | None = None,
    overlap: bool | None = None,
    passes: int | None = None,
) -> ProfileReport:
    """Measure every variant of ``space`` not yet in ``store`` (all with ``force``), at most
    ``limit`` of them in this run.

    ``overlap``: time blocks while others still convert. By default only when the device is
    not this machine (a phone): on the host, a converter on the neighbouring core shares the
    caches and memory bandwidth and inflates memory-bound blocks (7x7 depthwise by 10-20%), so
    everything is converted first, on every core, then timed on an otherwise idle machine;
    that is about as fast overall, since conversion then uses every core.

    ``passes`` (default: the backend's, from its device profile): after the first pass, time
    every block measured in this run again, in order, and keep each block's calmest (lowest)
    median. A shared machine drifts over tens of seconds (another tenant, memory placement), so
    one pass leaves a block's entry a few percent off at random; passes spread over minutes
    sample the drift, and the minimum matches how whole networks are validated.

    Each measurement is appended to the store before the next starts; an interrupted run
    resumes where it stopped. Blocks that fail to convert or to run are reported in
    :attr:`ProfileReport.failed` (and left out of the store) instead of stopping the run.
    """
    t0 = time.perf_counter()
    variants = space_variants(space, resolution, width_mult, num_classes)
    missing = store.missing([v.key for v in variants], force)
    todo_keys = set(missing if limit is None else missing[: max(limit, 0)])
    todo = [v for v in variants if v.key in todo_keys]
    passes = int(passes if passes is not None else getattr(backend, "passes", 1))
    if passes < 1:
        raise LutError(f"passes must be at least 1, got {passes}")
    report = ProfileReport(
        backend.name, len(variants), reused=len(variants) - len(missing), passes=passes
    )
    if not todo:
        report.wall_s = time.perf_counter() - t0
        return report
    bar = _bar(len(todo), f"profile {backend.name}", progress)
    try:
        if hasattr(backend, "measure_variant"):  # needs no files (the mock)
            for v in todo:
                ts = time.perf_counter()
                stats = backend.measure_variant(v)
                report.measure_s += time.perf_counter() - ts
                store.add(v.key, stats)
                report.measured += 1
                bar.update(1)
        else:
            paths = _profile_with_files(
                todo, backend, store, report, bar, workers, cache_dir, overlap
            )
            for p in range(2, passes + 1):
                bar.reset(total=len(paths))
                bar.set_description(f"pass {p}/{passes} {backend.name}")
                _remeasure(paths, backend, store, report, bar)
    finally:
        bar.close()
    report.wall_s = time.perf_counter() - t0
    return report


def _profile_with_files(
    todo, backend, store, report, bar, workers, cache_dir, overlap
) -> dict[str, object]:
    """First pass; returns the .tflite path of every block it measured."""
    from .backends.host import allowed_cpus
    from .export import iter_export, tools_hash

    cpus = allowed_cpus()
    if overlap is None:
        overlap = not getattr(backend, "runs_on_host", False)
    measuring = getattr(backend, "cpu", None)
    # overlapping on the host: the measuring core stays free of conversions
    export_cpus = ([c for c in cpus if c != measuring] or cpus) if overlap else cpus
    if workers is None:
        workers = len(export_cpus)
    tools = tools_hash()
    results = iter_export(todo, workers=workers, cpus=export_cpus, cache_dir=cache_dir)
    if not overlap:
        ready = []
        bar.set_description(f"export for {backend.name}")
        t0 = time.perf_counter()
        for res in results:
            ready.append(res)
            bar.update(1)
        report.export_wall_s = time.perf_counter() - t0
        bar.reset(total=len(todo))
        bar.set_description(f"profile {backend.name}")
        results = ready
    measured = {}
    for res in results:
        if res.error:
            report.failed.append((res.key, res.error))
            bar.update(1)
            continue
        report.count_export(res)
        ts = time.perf_counter()
        try:
            stats = backend.measure(res.path)
        except BackendError as exc:
            if getattr(exc, "fatal", False):  # the device is gone: stop, the store resumes
                raise
            report.failed.append((res.key, str(exc)))
            bar.update(1)
            continue
        report.measure_s += time.perf_counter() - ts
        store.add(res.key, stats, tools=tools)
        measured[res.key] = res.path
        report.measured += 1
        bar.set_postfix_str(f"{res.key[:28]} {stats.ms:.3f} ms", refresh=False)
        bar.update(1)
    return measured


def _remeasure(paths: dict, backend, store, report, bar) -> None:
    """One more pass over ``paths``; a block's record becomes its calmest pass so far."""
    from dataclasses import replace

    from .export import tools_hash

    tools = tools_hash()
    for key, path in paths.items():
        ts = time.perf_counter()
        stats = backend.measure(path)  # a device lost now is fatal; what is stored stays
        report.measure_s += time.perf_counter() - ts
        prev = store.get(key)
        seen = [*prev.get("extra", {}).get("passes_ms", [prev["ms"]]), stats.ms]
        if prev["ms"] <= stats.ms:  # keep the stored pass, note this one
            extra = {**prev.get("extra", {}), "passes_ms": seen}
            stats = replace(
                stats, ms=prev["ms"], p10=prev["p10"], p90=prev["p90"], n=prev["n"], extra=extra
            )
        else:
            stats = replace(stats, extra={**stats.extra, "passes_ms": seen})
        store.add(key, stats, tools=tools)
        bar.set_postfix_str(f"{key[:28]} {stats.ms:.3f} ms", refresh=False)
        bar.update(1)


def _bar(total: int, desc: str, enabled: bool):
    return progress_bar(
        total=total, desc=desc, unit="block", disable=not enabled, dynamic_ncols=True
    )


# ---- store -> LUT --------------------------------------------------------------------------------
def build_lut(
    space: SearchSpace,
    store: MeasurementStore,
    device: dict,
    *,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    num_classes: int = DEPLOY_CLASSES,
    fill: bool = True,
    min_measured: int | None = None,
) -> Lut:
    """The LUT of ``space`` from a device's store; holes filled by regression when ``fill``.

    Raises LutError when nothing is stored, or (with holes) when too few entries are stored to
    fit the fallback; without ``fill`` any hole is an error.
    """
    variants = space_variants(space, resolution, width_mult, num_classes)
    records = store.records()
    entries = {}
    for v in variants:
        r = records.get(v.key)
        if r is not None:
            entries[v.key] = {k: r[k] for k in ("ms", "p10", "p90", "n", "source")}
    if not entries:
        raise LutError(
            f"no measurements of the {space.family} space at {resolution} for device "
            f"{device.get('name')!r} in {store.path}; run padnas-latency profile first"
        )
    holes = [v for v in variants if v.key not in entries]
    provenance = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "store": str(store.path),
        "measured": len(entries),
        "filled": len(holes),
    }
    tools = {r.get("tools") for k, r in records.items() if k in entries and r.get("tools")}
    if tools:
        from .export import tool_versions, tools_hash

        provenance["export_tools"] = sorted(tools)
        if tools == {tools_hash()}:
            provenance["tool_versions"] = tool_versions()
    lut = Lut(
        device=device,
        family=space.family,
        space_signature=space.family_signature,
        resolution=resolution,
        entries=entries,
        width_mult=width_mult,
        num_classes=num_classes,
        provenance=provenance,
    )
    if holes:
        if not fill:
            raise LutError(
                f"{len(holes)} of {len(variants)} variants are not measured (e.g. "
                f"{holes[0].key}); finish profile or allow the regression fallback"
            )
        from .regression import fit_lut

        reg = fit_lut(lut, min_measured=min_measured)
        for v, ms in zip(holes, reg.predict_variants(holes), strict=True):
            lut.entries[v.key] = {"ms": float(ms), "p10": float(ms), "p90": float(ms), "n": 0,
                                  "source": "regression"}  # fmt: skip
        lut.provenance["regression"] = reg.summary()
    return lut
