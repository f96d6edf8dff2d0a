"""The final models measured whole on the LUT's device, before they are returned.

A LUT prices a network as the sum of its blocks; a phone runs the whole graph, with its fused
ops, its cache and its start-up cost. Users trust a searched model once it has been measured
whole, so after the last stage the search exports models A, B, C... at the LUT's resolution and,
when the LUT's device can be reached (the host, the mock, or a phone over ADB named by the
profile or ``$ANDROID_SERIAL``), times each one with the same guarded loop the LUT was built
with (:func:`latency.profiling.validation.measure_archs`). Each model then carries its measured
latency beside the predicted one, their ratio, and whether the measured latency still lies in
the search's window.

When the device cannot be reached, or the guard refuses to measure (a busy host, a drifting
phone), nothing is made up: the verification block says what was not measured and why, and
``padnas search --resume`` on the finished run measures it later. A phone-free estimate LUT
(``source: estimate``) says plainly that nothing was measured on the phone.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

from latency.backends.base import Backend
from latency.devices import ProfileError, load_profile, make_backend
from latency.errors import LatencyError
from latency.lut.table import HOST_INT8
from latency.profiling.conditions import ConditionsError
from latency.profiling.validation import measure_archs
from padnas.search.window import LatencyWindow
from padnas.space import Arch, SearchSpace

MEASURED = "measured"
NOT_MEASURED = "not measured"
#: the fields :func:`verify_models` adds to a model of ``final.json``
MODEL_FIELDS = (
    "measured_ms",
    "measured_p10_ms",
    "measured_p90_ms",
    "measured_source",
    "predicted_over_measured",
    "measured_in_window",
)
#: how a user runs the verification again once the device can be reached
RETRY = "run the same padnas search command with --resume to measure them"


def reach_device(lut) -> tuple[Backend | None, str | None]:
    """A backend for the LUT's device, or None and why it cannot be reached from here."""
    name = lut.device_name
    estimate = bool({"estimate", HOST_INT8} & lut.sources())
    try:
        profile = load_profile(name)
    except ProfileError:
        return None, (
            f"no device profile named {name!r} here (the LUT's device), so the models were not "
            "measured"
        )
    if profile["transport"] == "adb":
        serial = (profile.get("adb") or {}).get("serial") or os.environ.get("ANDROID_SERIAL")
        if not serial:
            what = f"{name} is reached over ADB and no phone is named"
            if HOST_INT8 in lut.sources():
                what = (
                    f"the LUT holds host int8 timings standing in for {name}, and no phone is named"
                )
            elif estimate:
                what = (
                    f"the LUT is a phone-free estimate of {name} (host measurements transferred "
                    "to the phone), and no phone is named"
                )
            return None, (
                f"{what}: nothing was measured on the phone (connect it, set "
                f"ANDROID_SERIAL=HOST:PORT or usb, and {RETRY})"
            )
    try:
        return make_backend(profile), None
    except LatencyError as exc:
        return None, f"cannot reach {name}: {exc}; {RETRY}"


def host_mismatch(lut, backend: Backend) -> str | None:
    """A note when the LUT was measured on another host CPU than the one timing the models."""
    if not backend.runs_on_host:
        return None
    made, here = lut.device.get("cpu_model"), backend.describe().get("cpu_model")
    if made and here and made != here:
        return (
            f"the LUT was measured on {made!r}, the models on {here!r}: their ratio includes the "
            "difference between the two CPUs"
        )
    return None


def verify_models(
    lut,
    space: SearchSpace,
    models: Sequence[dict],
    window: LatencyWindow,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = lambda msg: None,
    reach: Callable = reach_device,
) -> tuple[list[dict], dict]:
    """``models`` (final.json's) with their whole-network measurements added, and the
    verification block; models are returned unchanged when nothing could be measured."""
    t0 = time.perf_counter()
    block: dict = {
        "device": lut.device_name,
        "precision": lut.precision,
        "resolution": lut.resolution,
        "width_mult": lut.width_mult,
        "num_classes": lut.num_classes,
    }
    if not models:
        return [], {**block, "status": NOT_MEASURED, "reason": "no model to measure"}
    backend, reason = reach(lut)
    if backend is None:
        return list(models), {**block, "status": NOT_MEASURED, "reason": reason}
    archs = [Arch.parse(m["arch"]) for m in models]
    echo(f"verify: measuring {len(archs)} final model(s) whole on {backend.label}")
    try:
        with backend:
            stats = measure_archs(
                backend,
                space,
                archs,
                lut.resolution,
                lut.width_mult,
                num_classes=lut.num_classes,
                progress=progress,
                precision=lut.precision,
            )
            mismatch = host_mismatch(lut, backend)
    except (ConditionsError, LatencyError) as exc:
        return list(models), {**block, "status": NOT_MEASURED, "reason": f"{exc}; {RETRY}"}
    out = []
    for m, st in zip(models, stats, strict=True):
        out.append(
            {
                **m,
                "measured_ms": round(st.ms, 4),
                "measured_p10_ms": round(st.p10, 4),
                "measured_p90_ms": round(st.p90, 4),
                "measured_source": st.source,
                "predicted_over_measured": round(m["latency_ms"] / st.ms, 4),
                "measured_in_window": bool(window.lo <= st.ms <= window.hi),
            }
        )
    ratios = [m["predicted_over_measured"] for m in out]
    conditions = {st.extra.get("conditions") for st in stats} - {None}
    block.update(
        status=MEASURED,
        source="+".join(sorted({st.source for st in stats})),
        outside_window=[m["label"] for m in out if not m["measured_in_window"]],
        ratio_median=round(statistics.median(ratios), 4),
        ratio_range=[min(ratios), max(ratios)],
        conditions=sorted(conditions),
    )
    echo(f"verify: {len(out)} model(s) measured in {time.perf_counter() - t0:.0f} s")
    if mismatch:
        block["note"] = mismatch
    return out, block


def verification_lines(block: dict | None) -> list[str]:
    """The summary's lines about the verification (none when the search skipped it)."""
    if block is None:
        return ["verify: skipped (--no-verify): the latencies above are the LUT's predictions"]
    where = f"{block['device']} at {block['resolution']} px"
    if block.get("precision", "fp32") != "fp32":
        where += f", {block['precision']}"
    if block["status"] != MEASURED:
        return [f"verify: nothing measured on {where}: {block['reason']}"]
    lo, hi = block["ratio_range"]
    lines = [
        f"verify: models measured whole on {where} (source {block['source']}); predicted / "
        f"measured {block['ratio_median']:.3f} median ({lo:.3f}-{hi:.3f})"
    ]
    if block["outside_window"]:
        lines.append(
            f"warning: measured whole, model(s) {', '.join(block['outside_window'])} fall "
            "outside the latency window"
        )
    if block.get("note"):
        lines.append(f"note: {block['note']}")
    return lines
