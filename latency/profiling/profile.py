"""Profile a space on a device (variants -> export -> measure -> store) and turn a store into a LUT.

On a device that needs files, conversion and measurement overlap: export workers (pinned to the
cores the measuring thread does not use) convert blocks while the main thread times each block as
soon as it is ready, so a cold build costs about max(export, measure) rather than their sum. When
every block is already in the store nothing is imported beyond this package (no TensorFlow, no
LiteRT), which keeps a warm re-run to a second or two.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

from latency.backends.base import Backend
from latency.export.convert import tool_versions, tools_hash
from latency.export.pool import iter_export
from latency.lut.table import Lut, LutError, scaled_entry
from latency.profiling.guard import GUARD_FIELDS, make_guard, reference_ratio
from latency.profiling.loop import MeasureLoop, export_cpus, measure_bar, pending_keys
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore
from latency.variants import DEFAULT_PRECISION, space_variants
from padnas.core import read_json
from padnas.space import DEPLOY_CLASSES, DEPLOY_RESOLUTION, SearchSpace


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
    guard: bool = True,
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

    ``guard``: time blocks in batches bracketed by the reference op, on a quiet host only
    (:mod:`latency.profiling.guard`); every record keeps its batch's conditions and reference
    time. Off only for backends that price blocks without files (the mock).

    Each measurement is appended to the store before the next starts; an interrupted run
    resumes where it stopped. Blocks that fail to convert or to run are reported in
    :attr:`ProfileReport.failed` (and left out of the store) instead of stopping the run.
    """
    t0 = time.perf_counter()
    variants = space_variants(space, resolution, width_mult, num_classes)
    missing = store.missing([v.key for v in variants], force)
    todo_keys = set(pending_keys(store, [v.key for v in variants], force, limit))
    todo = [v for v in variants if v.key in todo_keys]
    passes = int(passes if passes is not None else backend.passes)
    if passes < 1:
        raise LutError(f"passes must be at least 1, got {passes}")
    report = ProfileReport(
        backend.name, len(variants), reused=len(variants) - len(missing), passes=passes
    )
    if not todo:
        report.wall_s = time.perf_counter() - t0
        return report
    bar = measure_bar(len(todo), f"profile {backend.name}", progress)
    try:
        if not backend.needs_files:  # the mock prices blocks without files
            for v in todo:
                ts = time.perf_counter()
                stats = backend.measure_variant(v, store.precision)
                report.measure_s += time.perf_counter() - ts
                store.add(v.key, stats)
                report.measured += 1
                bar.update(1)
        else:
            checker = make_guard(backend, cache_dir, bar) if guard else None
            paths = _profile_with_files(
                todo, backend, store, report, bar, workers, cache_dir, overlap, checker
            )
            for p in range(2, passes + 1):
                bar.reset(total=len(paths))
                bar.set_description(f"pass {p}/{passes} {backend.name}")
                _remeasure(paths, backend, store, report, bar, checker)
    finally:
        bar.close()
    report.wall_s = time.perf_counter() - t0
    return report


def _profile_with_files(
    todo, backend, store, report, bar, workers, cache_dir, overlap, guard=None
) -> dict[str, object]:
    """First pass; returns the .tflite path of every block it measured."""
    if overlap is None:
        overlap = not backend.runs_on_host
    # overlapping on the host: the measuring core stays free of conversions
    cpus = export_cpus(backend, overlap)
    if workers is None:
        workers = len(cpus)
    results = iter_export(
        todo, workers=workers, cpus=cpus, cache_dir=cache_dir, precision=store.precision
    )
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
    return MeasureLoop(backend, store, report, bar, guard=guard).run(results)


def _remeasure(paths: dict, backend, store, report, bar, guard=None) -> None:
    """One more pass over ``paths``; a block's record becomes its calmest pass so far (with the
    conditions and reference time of the pass it came from)."""
    tools = tools_hash()
    items = list(paths.items())
    size = guard.settings.batch_size if guard else len(items) or 1
    for start in range(0, len(items), size):
        chunk = items[start : start + size]

        def timed(chunk=chunk) -> dict:
            out = {}
            for key, path in chunk:
                ts = time.perf_counter()
                out[key] = backend.measure(path)  # a device lost now is fatal; the store stays
                report.measure_s += time.perf_counter() - ts
            return out

        if guard is None:
            fresh, meta = timed(), {}
        else:
            fresh, rec = guard.run(timed)
            store.remember_conditions(rec.conditions, rec.facts)
            meta = rec.meta()
        for key, stats in fresh.items():
            prev = store.get(key)
            seen = [*prev.get("extra", {}).get("passes_ms", [prev["ms"]]), stats.ms]
            kept = meta
            if prev["ms"] <= stats.ms:  # keep the stored pass, note this one
                extra = {**prev.get("extra", {}), "passes_ms": seen}
                stats = replace(
                    stats, ms=prev["ms"], p10=prev["p10"], p90=prev["p90"], n=prev["n"], extra=extra
                )
                kept = {k: prev[k] for k in GUARD_FIELDS if k in prev}
            else:
                stats = replace(stats, extra={**stats.extra, "passes_ms": seen})
            store.add(key, stats, tools=tools, **kept)
            bar.set_postfix_str(f"{key[:28]} {stats.ms:.3f} ms", refresh=False)
            bar.update(1)


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
    # one machine only; batches whose reference time moved are brought to the common reference
    check = reference_ratio([records[k] for k in entries])
    for key, factor in check["rescaled"].items():
        entries[key] = scaled_entry(entries[key], factor)
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
        "conditions": check["conditions"],
        "conditions_facts": store.conditions().get(check["conditions"]),
        "reference_ms": check["reference_ms"],
        "reference_spread": round(check["spread"], 5),
        "rescaled_to_reference": len(check["rescaled"]),
        "unguarded": len(check["unguarded"]),
    }
    tools = {r.get("tools") for k, r in records.items() if k in entries and r.get("tools")}
    if tools:
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
        precision=store.precision,
    )
    if holes:
        if not fill:
            raise LutError(
                f"{len(holes)} of {len(variants)} variants are not measured (e.g. "
                f"{holes[0].key}); finish profile or allow the regression fallback"
            )
        from latency.lut.regression import fill_holes  # scikit-learn: only when there are holes

        filled, reg = fill_holes(lut, holes, min_measured=min_measured)
        for key, ms in filled.items():
            lut.entries[key] = {"ms": ms, "p10": ms, "p90": ms, "n": 0, "source": "regression"}
        lut.provenance["regression"] = reg.summary()
    return lut


def device_info_path(store: MeasurementStore):
    """Where ``profile`` keeps the device's description (the LUT header) beside its store."""
    return store.root / f"{store.device}.device.json"


def stored_lut(
    profile: dict,
    space: SearchSpace,
    *,
    resolution: int = DEPLOY_RESOLUTION,
    width_mult: float = 1.0,
    store_dir=None,
    fill: bool = True,
    precision: str = DEFAULT_PRECISION,
) -> Lut:
    """The LUT ``export-lut`` writes for a profiled device, built from its measurement store
    of ``precision`` (``$PADNAS_CACHE/measurements`` unless ``store_dir``); LutError naming the
    profile command when nothing of the space at that resolution was measured."""
    store = MeasurementStore(profile["name"], store_dir, precision=precision)
    info = device_info_path(store)
    dev = read_json(info, expect=dict) if info.is_file() else {"name": profile["name"]}
    dev.setdefault("transport", profile["transport"])
    keys = {v.key for v in space_variants(space, resolution, width_mult)}
    if not keys & set(store.records()):
        flag = "" if precision == DEFAULT_PRECISION else f" --precision {precision}"
        raise LutError(
            f"device profile {profile['name']!r} ships no LUT and nothing of the {space.family} "
            f"space at {resolution} was measured on it in {store.path}: run padnas-latency "
            f"profile --device {profile['name']} --space {space.family} --resolution "
            f"{resolution}{flag} first, or give a LUT JSON"
        )
    return build_lut(space, store, dev, resolution=resolution, width_mult=width_mult, fill=fill)
