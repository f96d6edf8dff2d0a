"""A device's LUT estimated without the device: host measurements through a fitted transfer model.

``padnas-latency estimate --device pixel3`` runs four steps, each resumable (measurements go to
the host's append-only store, exports to the cache):

1. measure, on the host, every unit of the networks whose device latency is published
   (``latency/data/pixel3_published.json``: the paper's Table 3);
2. fit the transfer model (:mod:`latency.transfer.fit`) from their per-unit host latencies to the
   published whole-network latencies, and its leave-one-out error;
3. profile every op variant of the requested spaces on the host (the profiler of ``profile``);
4. map each host entry through the model: entries ``source: estimate``, the model's per-network
   offset as the LUT's calibration offset, and the whole story in ``provenance``.

With ``reuse`` (``--reuse-fit``) steps 1 and 2 are skipped: the transfer model already shipped
in the device profile is applied unchanged, so a new space is estimated by exactly the model the
other spaces' tables were made with. Host measurements are guarded (:mod:`latency.profiling.guard`)
and the fit records the host's set-up and reference time (``transfer.host_reference``); a reused
fit brings today's host entries to that reference time (the ratio is in the LUT's provenance) and
is refused for another host set-up or a fit without a reference, never mixed silently.

The host runs TFLite's built-in kernels (profile ``host-builtin``), not XNNPACK: the published
Pixel 3 figures line up with the built-in kernels' relative costs far better (see
``docs/pixel3-estimate.md`` for the numbers), in particular for 7x7 depthwise convolutions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from latency.devices import load_profile, make_backend
from latency.errors import LatencyRuntimeError
from latency.export.convert import tool_versions
from latency.lut.table import Lut, scaled_entry
from latency.networks.checks import load_networks
from latency.networks.description import Network
from latency.networks.latency import measure_units
from latency.networks.units import network_units
from latency.profiling.guard import reference_ratio
from latency.profiling.profile import build_lut, profile_space
from latency.profiling.store import MeasurementStore
from latency.transfer.fit import (
    DEFAULT_TERMS,
    NetworkSample,
    Prediction,
    TransferError,
    TransferFit,
    TransferModel,
    evaluate_transfer,
)
from padnas.core import atomic_write_text, parse_json, read_json
from padnas.space import DEPLOY_RESOLUTION, get_space

DATA_DIR = Path(__file__).resolve().parents[1] / "data"  # latency/data
DEFAULT_PUBLISHED = DATA_DIR / "pixel3_published.json"
DEFAULT_HOST = "host-builtin"


def target_field(device: str) -> str:
    """The network field holding a device's published latency (``pixel3_latency_ms``)."""
    return f"{device}_latency_ms"


def published_targets(nets: dict[str, Network], device: str) -> dict[str, float]:
    """``{network: published ms}`` for the networks that carry the device's latency."""
    key = target_field(device)
    out = {}
    for name, net in nets.items():
        value = net.meta.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise TransferError(f"{name}: {key} must be a positive number, got {value!r}")
            out[name] = float(value)
    if not out:
        raise TransferError(
            f"no network carries '{key}': the published file has no {device} latencies "
            f"(networks: {', '.join(nets)})"
        )
    return out


def samples_from_store(
    nets: dict[str, Network],
    targets: dict[str, float],
    store: MeasurementStore,
    rescaled: dict[str, float] | None = None,
) -> list[NetworkSample]:
    """Per-unit host latencies of each target network, read from the store (each multiplied by
    its factor in ``rescaled``: batches brought to the common reference time)."""
    rescaled = rescaled or {}
    records = store.records()
    samples = []
    for name, target in targets.items():
        keys = [u.key for u in network_units(nets[name])]
        missing = [k for k in keys if k not in records]
        if missing:
            raise TransferError(
                f"{name}: {len(missing)} unit(s) not measured on {store.device} (e.g. "
                f"{missing[0]}); run padnas-latency estimate again to measure them"
            )
        ms = tuple(float(records[k]["ms"]) * rescaled.get(k, 1.0) for k in keys)
        samples.append(NetworkSample(name, target, ms))
    return samples


def shipped_transfer(profile: dict) -> dict:
    """The transfer model a device profile's shipped LUTs were made with (their
    ``provenance.transfer``); refuses a profile without one or whose LUTs disagree."""
    models = []
    for lut in profile.get("luts") or []:
        transfer = (lut.get("provenance") or {}).get("transfer") if isinstance(lut, dict) else None
        if transfer:
            models.append(transfer)
    if not models:
        raise TransferError(
            f"{profile.get('name', 'the profile')} ships no estimated LUT with a transfer model to "
            "reuse; run padnas-latency estimate without --reuse-fit to fit one"
        )
    coefs = {(m.get("scale"), m.get("per_unit_ms"), m.get("offset_ms")) for m in models}
    if len(coefs) > 1:
        raise TransferError(
            f"{profile.get('name', 'the profile')}: its LUTs carry {len(coefs)} different transfer "
            "models; refit them all (estimate without --reuse-fit)"
        )
    return models[0]


def _reused_fit(transfer: dict, samples: list[NetworkSample]) -> TransferFit:
    """A :class:`TransferFit` for a reused model: no refit, today's predictions as residuals."""
    model = TransferModel.from_dict(transfer)
    fitted = [Prediction(s.name, s.target_ms, model.predict(s)) for s in samples]
    return TransferFit(model, fitted, [])


def transfer_lut(host_lut: Lut, fit: TransferFit, device: dict, provenance: dict) -> Lut:
    """The device LUT: every host entry mapped through the model, ``source: estimate``."""
    model = fit.model
    entries = {}
    for key, e in host_lut.entries.items():
        entries[key] = {
            "ms": round(float(model.unit_ms(e["ms"])), 5),
            "p10": round(float(model.unit_ms(e["p10"])), 5),
            "p90": round(float(model.unit_ms(e["p90"])), 5),
            "n": int(e.get("n", 0)),
            "source": "estimate",
        }
    calibration = None
    if model.offset_ms > 0:
        calibration = {
            "scale": 1.0,
            "offset_ms": round(model.offset_ms, 5),
            "fitted_on": "published whole-network latencies (transfer model offset)",
        }
    host_sources: dict[str, int] = {}
    for e in host_lut.entries.values():
        host_sources[e["source"]] = host_sources.get(e["source"], 0) + 1
    prov = {**provenance, "host_entries": host_sources}
    if host_lut.provenance.get("export_tools"):  # tool hashes the host files were made with
        prov["host_export_tools"] = host_lut.provenance["export_tools"]
    return Lut(
        device=device,
        family=host_lut.family,
        space_signature=host_lut.space_signature,
        resolution=host_lut.resolution,
        entries=entries,
        width_mult=host_lut.width_mult,
        num_classes=host_lut.num_classes,
        calibration=calibration,
        provenance=prov,
    )


@dataclass
class EstimateResult:
    device: str
    host: dict
    fit: TransferFit
    samples: list[NetworkSample]
    luts: list[Lut] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _device_facts(profile: dict) -> dict:
    """The LUT's device header: the device's name and model, and what the numbers are."""
    facts = profile.get("device") if isinstance(profile.get("device"), dict) else {}
    model = facts.get("model", profile["name"])
    out = {"name": profile["name"], "model": model}
    if "soc" in facts:
        out["soc"] = facts["soc"]
    out["description"] = (
        f"{model}: latencies estimated from host measurements, not measured on the device "
        "(see provenance)"
    )
    return out


def run_estimate(
    device: str,
    *,
    published: str | Path = DEFAULT_PUBLISHED,
    host_device: str = DEFAULT_HOST,
    spaces: tuple[str, ...] = ("basic", "large"),
    resolution: int = DEPLOY_RESOLUTION,
    terms=DEFAULT_TERMS,
    store_dir=None,
    force: bool = False,
    progress: bool = True,
    command: str = "",
    reuse: dict | None = None,
) -> EstimateResult:
    """Measure, fit (or ``reuse`` a shipped transfer model) and build the estimated LUTs (see
    the module docstring)."""

    target_profile = load_profile(device)
    host_profile = load_profile(host_device)
    published = Path(published)
    nets = load_networks(published)
    targets = published_targets(nets, target_profile["name"])
    store = MeasurementStore(host_profile["name"], store_dir)
    with make_backend(host_profile) as backend:
        host = backend.describe()
        units = [] if reuse else [u for name in targets for u in network_units(nets[name])]
        failed = measure_units(units, backend, store, force=force, progress=progress)
        if failed:
            raise LatencyRuntimeError(
                f"{len(failed)} unit(s) failed on the host; first: {failed[0]}"
            )
        host_luts = []
        for name in spaces:
            report = profile_space(
                get_space(name),
                backend,
                store,
                resolution=resolution,
                force=force,
                progress=progress,
            )
            if report.failed:
                raise LatencyRuntimeError(
                    f"{len(report.failed)} {name} variant(s) failed on the host; first: "
                    f"{report.failed[0]}"
                )
            host_luts.append(build_lut(get_space(name), store, host, resolution=resolution))
    # fit after profiling: a space shares block keys with the published networks (ProxylessNAS'
    # blocks are basic-space ops), so the fit and the LUT entries read the same store state
    used_keys = {u.key for u in units}.union(*(lut.entries for lut in host_luts))
    records = store.records()
    # one host set-up; batches whose reference moved are brought to the common reference
    check = reference_ratio([records[k] for k in used_keys if k in records])
    host_reference = {"conditions": check["conditions"], "reference_ms": check["reference_ms"]}
    if reuse:
        host_luts = [_at_fit_reference(lut, reuse, check) for lut in host_luts]
        samples = []
        fit = _reused_fit(reuse, samples)
        transfer = {**reuse, "reused": True}
        how = "reused unchanged from the device profile's shipped LUTs, not refitted; "
    else:
        samples = samples_from_store(nets, targets, store, check["rescaled"])
        fit = evaluate_transfer(samples, terms)
        transfer, how = {**fit.to_dict(), "host_reference": host_reference}, ""
    provenance = {
        "method": (
            f"estimate: op variants measured on the host ({host_profile['name']}) and mapped to "
            f"{target_profile['name']} by a transfer model fitted on the published whole-network "
            f"{target_profile['name']} latencies of {len(fit.model.fitted_on or samples)} "
            f"networks ({how}see transfer); no {device} measurement is involved"
        ),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "host": host,
        "host_measured": _time_span(store, used_keys),
        "tool_versions": tool_versions(),
        "published": {
            "file": _display_path(published),
            "sha256": _sha256(published),
            "field": target_field(target_profile["name"]),
            "targets_ms": targets,
        },
        "transfer": transfer,
    }
    dev = _device_facts(target_profile)
    luts = [transfer_lut(h, fit, dev, provenance) for h in host_luts]
    return EstimateResult(target_profile["name"], host, fit, samples, luts, provenance)


def _at_fit_reference(host_lut: Lut, transfer: dict, check: dict) -> Lut:
    """``host_lut`` expressed at the host speed the reused transfer model was fitted at: its
    entries times (the fit's reference time / today's). Refused when the fit recorded no
    reference (it predates guarded measurements) or another host set-up."""
    then = transfer.get("host_reference") or {}
    if not then.get("reference_ms") or not check["reference_ms"]:
        raise TransferError(
            "the shipped transfer model records no host reference time (or today's "
            "measurements have none), so host measurements of today cannot be matched to it: "
            "refit all spaces together (estimate without --reuse-fit)"
        )
    if then.get("conditions") != check["conditions"]:
        raise TransferError(
            f"the shipped transfer model was fitted on another host set-up (conditions "
            f"{then.get('conditions')}, today {check['conditions']}): refit all spaces together "
            "(estimate without --reuse-fit)"
        )
    ratio = float(then["reference_ms"]) / float(check["reference_ms"])
    data = host_lut.to_dict()
    data["entries"] = {k: scaled_entry(e, ratio) for k, e in data["entries"].items()}
    data["provenance"] = {**host_lut.provenance, "rescaled_to_fit_reference": round(ratio, 6)}
    return Lut.from_dict(data)


def _time_span(store: MeasurementStore, keys) -> dict:
    """When the host measurements used were taken (first and last record, their count)."""
    times = sorted(r["time"] for k, r in store.records().items() if k in keys and "time" in r)
    if not times:
        return {}
    return {"first": times[0], "last": times[-1], "records": len(times)}


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        return str(path)


# ---- writing the bundle into a device profile ----------------------------------------------


def dump_luts(luts: list[Lut]) -> str:
    """The ``luts`` list as JSON text for a profile's top level (indent 1), with one line per
    entry so a few hundred entries stay readable and diffable."""
    items = []
    for lut in luts:
        d = lut.to_dict()
        entries = d.pop("entries")
        inner = json.dumps(d, indent=1, ensure_ascii=False).splitlines()[1:-1]
        lines = ["  {", *("  " + line for line in inner)]
        lines[-1] += ","
        lines.append('   "entries": {')
        lines.append(
            ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items())
        )
        lines += ["   }", "  }"]
        items.append("\n".join(lines))
    return "[\n" + ",\n".join(items) + "\n ]"


def _lut_slot(lut: Lut) -> tuple:
    return (lut.family, lut.resolution, lut.width_mult, lut.precision)


def update_profile(path: str | Path, luts: list[Lut]) -> None:
    """Put ``luts`` into a device profile's ``luts``, replacing those of the same space,
    resolution and width and keeping the others, and leave every other field (and its
    formatting) exactly as it is: the device part belongs to whoever maintains the device."""
    path = Path(path)
    data = read_json(path, fix="fix the device profile")
    text = path.read_text(encoding="utf-8")
    if not isinstance(data, dict):
        raise TransferError(f"{path}: not a device profile (a JSON object)")
    new_slots = {_lut_slot(lut) for lut in luts}
    kept_luts = []
    for i, item in enumerate(data.get("luts") or []):
        if isinstance(item, dict) and "device" not in item:
            item = {**item, "device": {"name": data.get("name", path.stem)}}
        old = Lut.from_dict(item, f"{path} luts[{i}]")
        if _lut_slot(old) not in new_slots:
            kept_luts.append(old)
    luts = sorted([*kept_luts, *luts], key=_lut_slot)
    marker = '\n "luts": '
    if "luts" in data:
        cut = text.find(marker)
        if cut < 0:
            raise TransferError(f"{path}: cannot find its top-level 'luts' to replace")
        head = text[:cut].rstrip().rstrip(",")
    else:
        head = text.rstrip()
        if not head.endswith("}"):
            raise TransferError(f"{path}: does not end with a JSON object")
        head = head[:-1].rstrip()
    new = f"{head},{marker}{dump_luts(luts)}\n}}\n"
    parsed = parse_json(new, str(path))
    kept = {k: v for k, v in parsed.items() if k != "luts"}
    if kept != {k: v for k, v in data.items() if k != "luts"}:
        raise TransferError(f"{path}: refusing to write, the profile's other fields would change")
    atomic_write_text(path, new)
