"""A phone's int8 table without the phone, and what it can and cannot say.

The float estimate maps host timings to the phone through a transfer fitted on the phone's
published whole-network latencies (:mod:`latency.transfer.estimate`). An int8 estimate needs the
same: published whole-network int8 latencies of the phone. For the Pixel 3 none were found (the
TF-Slim MobileNet release and the MobileNetV3, MnasNet and PAD-NAS papers give float Pixel 3
figures; their quantised figures are on the Pixel 1), so the int8 table of such a phone is the
host's own int8 timings, with ``source: host-int8`` on every entry and a warning that says what
that means: a search under it compares int8 architectures by the host's int8 kernels, and its
milliseconds are the host's, not the phone's. A published file that does carry the phone's int8
latencies (``<device>_int8_latency_ms``) is refused until an int8 transfer is fitted on them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from latency.devices import load_profile, make_backend
from latency.errors import LatencyRuntimeError
from latency.export.convert import tool_versions
from latency.lut.table import HOST_INT8, Lut
from latency.networks.checks import load_networks
from latency.profiling.profile import build_lut, profile_space
from latency.profiling.store import MeasurementStore
from latency.transfer.estimate import DEFAULT_HOST, DEFAULT_PUBLISHED, _device_facts, _display_path
from latency.transfer.fit import TransferError
from padnas.space import DEPLOY_RESOLUTION, get_space


def int8_field(device: str) -> str:
    """The network field that would hold a device's published int8 latency."""
    return f"{device}_int8_latency_ms"


def host_int8_warning(device: str, host: str) -> str:
    """What a ``host-int8`` table means, in one line."""
    return (
        f"the {device} int8 table holds int8 timings of the host ({host}), not of {device}: no "
        f"published whole-network int8 latencies of {device} were found to transfer them with; "
        "use it to compare int8 architectures, never read its milliseconds as the phone's"
    )


def run_int8_estimate(
    device: str,
    *,
    published: str | Path = DEFAULT_PUBLISHED,
    host_device: str = DEFAULT_HOST,
    spaces: tuple[str, ...] = ("basic",),
    resolution: int = DEPLOY_RESOLUTION,
    store_dir=None,
    force: bool = False,
    progress: bool = True,
    command: str = "",
) -> list[Lut]:
    """The int8 LUTs of ``device`` for ``spaces``: host int8 timings (``source: host-int8``)."""
    target = load_profile(device)
    published = Path(published)
    nets = load_networks(published)
    field = int8_field(target["name"])
    carrying = [name for name, net in nets.items() if net.meta.get(field) is not None]
    if carrying:
        raise TransferError(
            f"{published} carries {field} for {', '.join(carrying)}: fitting an int8 transfer "
            "on published int8 latencies is not built yet; remove the field to get the "
            "host-int8 table"
        )
    host_profile = load_profile(host_device)
    store = MeasurementStore(host_profile["name"], store_dir, precision="int8")
    luts = []
    with make_backend(host_profile) as backend:
        host = backend.describe()
        for name in spaces:
            space = get_space(name)
            report = profile_space(
                space, backend, store, resolution=resolution, force=force, progress=progress
            )
            if report.failed:
                raise LatencyRuntimeError(
                    f"{len(report.failed)} {name} int8 variant(s) failed on the host; first: "
                    f"{report.failed[0]}"
                )
            luts.append(build_lut(space, store, host, resolution=resolution))
    cpu = host.get("cpu_model", host_profile["name"])
    provenance = {
        "method": (
            f"host-int8: int8 op variants measured on the host ({host_profile['name']}, {cpu}) "
            f"and kept as they are; no {device} measurement is involved and no transfer is "
            f"applied (the published file {_display_path(published)} holds no {field})"
        ),
        "warning": host_int8_warning(target["name"], cpu),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "host": host,
        "tool_versions": tool_versions(),
    }
    out = []
    for lut in luts:
        entries = {
            k: {**e, "source": HOST_INT8 if e["source"] == "measured" else e["source"]}
            for k, e in lut.entries.items()
        }
        host_prov = {
            k: lut.provenance[k] for k in ("conditions", "reference_ms") if k in lut.provenance
        }
        out.append(
            replace(
                lut,
                device=_device_facts(target),
                entries=entries,
                provenance={**provenance, "host_lut": host_prov},
            )
        )
    return out
