"""``padnas-latency predict`` and ``estimate``, and ``measure`` of described networks.

Registered on the ``padnas-latency`` group by :mod:`latency.cli.app`; kept apart because they
work on layer-list networks (:mod:`latency.networks.description`) and on the device-transfer
estimate rather than on one space's LUT.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from latency.cli.options import (
    SPACE,
    quiet_option,
    resolution_option,
    setup,
    store_option,
    verbose_option,
)
from latency.lut.model import LatencyModel
from latency.lut.table import LutError, load_lut, source_line
from padnas.clitools import handle_errors, path_option
from padnas.errors import UsageError
from padnas.fileio import atomic_write_json
from padnas.space import MACROS, get_space


def _estimate_command(
    device, spaces, resolution, published, host_device, terms, update, output, store_dir
) -> str:
    """The command that reproduces an estimate, rebuilt from its options (for provenance)."""
    args = ["padnas-latency", "estimate", "--device", device]
    for sp in dict.fromkeys(spaces):
        args += ["--space", sp]
    args += ["--resolution", str(resolution)]
    for flag, value in (
        ("--published", published),
        ("--host-device", host_device),
        ("--store", store_dir),
        ("--update", update),
        ("--output", output),
    ):
        if value is not None:
            args += [flag, str(value)]
    if terms != "scale,offset":
        args += ["--terms", terms]
    return shlex.join(args)


def _is_network_file(target: str) -> bool:
    """True for a NET.json; an existing directory or non-JSON file, or a path that does not
    exist, is refused here rather than parsed as an architecture string."""
    if target.endswith(".json"):
        return True
    try:
        exists = Path(target).exists()
    except OSError:  # e.g. an arch string too long for a file name: not a path
        exists = False
    if exists:
        kind = "a directory" if Path(target).is_dir() else "a file that is not .json"
        raise UsageError(f"{target} is {kind}: predict takes a NET.json or an ARCH string")
    if "/" in target or "\\" in target:
        raise UsageError(f"file not found: {target} (predict takes a NET.json or an ARCH string)")
    return False


def _networks(path: str, names: tuple[str, ...]):
    from latency.networks.checks import load_networks, select_networks

    return select_networks(load_networks(path), names)


def _choose_lut(path: Path, family: str | None, net):
    """The LUT of ``path`` to price a network: the given family's, or (for a bundle) the one
    whose entries cover most of the network's units. A LUT at the network's input resolution
    is preferred; without one, any LUT is used and its regression fallback prices what it lacks
    (the output shows that as regression)."""
    from latency.networks.units import network_units

    res = net.input_hw[0] if net.input_hw[0] == net.input_hw[1] else None
    keys = [u.key for u in network_units(net)]
    for want_res in (res, None):
        candidates = []
        for fam in (family,) if family else sorted(MACROS):
            try:
                candidates.append(load_lut(path, fam, want_res))
            except LutError:
                continue
        if candidates:
            return max(
                candidates, key=lambda t: (sum(k in t.entries for k in keys), len(t.entries))
            )
    return load_lut(path, family)  # raises, naming what the file holds


@click.command()
@click.argument("target")
@path_option(
    "--lut",
    "lut_path",
    required=True,
    help="LUT JSON, or a device profile holding LUTs (e.g. device_profiles/pixel3.json).",
)
@click.option(
    "--space",
    "-s",
    type=SPACE,
    default=None,
    help="Space of an ARCH [default: large], or the LUT family to use for a network "
    "[default: the one covering most of its layers].",
)
@click.option("--net", "names", multiple=True, help="Network(s) of NET.json [default: all].")
@click.option("--breakdown", is_flag=True, help="Print every unit's latency and source.")
@verbose_option
@handle_errors
def predict(target, lut_path, space, names, breakdown, verbose):
    """Predicted latency of a network (NET.json) or an architecture (ARCH) from a LUT.

    Sums the LUT entry of each layer; layers the LUT lacks are priced by the regression
    fallback fitted on the LUT's own entries. The output says how many ms came from which
    source (measured, estimate, regression, mock); the LUT's calibration applies to the total.
    A NET.json holds one network or {"networks": {...}} (see docs/network-format.md).

    \b
    Examples:
      padnas-latency predict latency/data/pixel3_published.json --lut device_profiles/pixel3.json
      padnas-latency predict K3E1-K5E3-ID-... --space basic --lut device_profiles/pixel3.json
    """
    setup(verbose)

    if not _is_network_file(target):
        if names:
            raise UsageError("--net selects networks of a NET.json, not of an ARCH")
        sp = get_space(space or "large")
        arch = sp.validate(target)
        lut = load_lut(lut_path, sp.family)
        model = LatencyModel.from_lut(lut, sp, fill_missing=True)
        ms = float(model.predict([arch])[0])
        line = source_line((model.entries[k]["source"], ms) for k, ms in model.breakdown(arch))
        click.echo(f"{arch}: {ms:.2f} ms on {lut.device_name} ({lut.label} LUT{_cal(lut)})")
        click.echo(f"  sources: {line}")
        if breakdown:
            for key, part in model.breakdown(arch):
                click.echo(f"    {part:9.4f} ms  {model.entries[key]['source']:<10} {key}")
        return
    for net in _networks(target, names):
        lut = _choose_lut(lut_path, space, net)
        pred = _predict(net, lut)
        click.echo(
            f"{net.name}: {pred.ms:.2f} ms on {lut.device_name} ({lut.label} LUT"
            f"{_cal(lut)})" + _published(net, lut.device_name, pred.ms)
        )
        click.echo(f"  sources: {pred.source_line()}")
        if breakdown:
            for kind, key, ms, src in pred.rows:
                click.echo(f"    {ms:9.4f} ms  {src:<10} {kind:<7} {key}")


def _predict(net, lut):
    from latency.networks.latency import predict_network

    return predict_network(net, lut)


def _cal(lut) -> str:
    c = lut.calibration
    if not c:
        return ""
    return f"; calibrated {c['scale']:.4g} · sum + {c['offset_ms']:.3f} ms"


def _published(net, device: str, ms: float) -> str:
    from latency.transfer.estimate import target_field

    value = net.meta.get(target_field(device))
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return ""
    return f"; published {value:g} ms ({(ms - value) / value * 100:+.1f}%)"


def measure_network_file(target: str, names: tuple[str, ...], backend, lut_path=None) -> None:
    """``padnas-latency measure NET.json``: export each network whole, check it against
    PyTorch, time it; with ``lut_path`` also print the LUT's prediction next to it."""
    from latency.networks.latency import measure_network

    for net in _networks(target, names):
        stats = measure_network(net, backend)
        click.echo(
            f"{net.name}: {stats.ms:.3f} ms (p10 {stats.p10:.3f}, p90 {stats.p90:.3f}, "
            f"n={stats.n}, source {stats.source}, device {backend.name})"
        )
        if lut_path is not None:
            pred = _predict(net, _choose_lut(lut_path, None, net))
            err = (pred.ms - stats.ms) / stats.ms * 100
            click.echo(
                f"  LUT {lut_path}: {pred.ms:.3f} ms ({err:+.1f}% vs measured; "
                f"{pred.source_line()})"
            )


@click.command()
@click.option(
    "--device",
    "-d",
    required=True,
    help="The device to estimate (its published latencies must be in --published).",
)
@click.option(
    "--space",
    "-s",
    "spaces",
    type=SPACE,
    multiple=True,
    help="Space(s) whose LUT to estimate (repeatable).",
)
@resolution_option
@path_option(
    "--published",
    help="Networks with published device latencies [default: latency/data/pixel3_published.json].",
)
@click.option(
    "--host-device",
    default=None,
    help="Host profile the layers are measured with [default: host-builtin].",
)
@click.option(
    "--terms",
    default="scale,offset",
    show_default=True,
    help="Transfer model terms: any of scale, per_unit, offset.",
)
@path_option(
    "--update",
    "update",
    help="Write the LUTs into this device profile's 'luts' (other fields untouched).",
)
@path_option(
    "--output",
    "-o",
    help="Write the LUT (one space) or a {'luts': [...]} bundle here.",
)
@store_option
@click.option("--force", is_flag=True, help="Re-measure what the host store already has.")
@quiet_option
@verbose_option
@handle_errors
def estimate(
    device,
    spaces,
    resolution,
    published,
    host_device,
    terms,
    update,
    output,
    store_dir,
    force,
    quiet,
    verbose,
):
    """Estimate a device's LUTs without the device, from host measurements.

    Measures every layer of the networks whose device latency is published on the host,
    fits a transfer model (a scale and a per-network offset by default) to the published
    whole-network latencies, reports its leave-one-out error, then (with --space and
    --update/-o) profiles the spaces on the host and maps every entry through the model
    (source: estimate). Everything measured is stored; a re-run resumes. Without --space only
    the fit is computed and reported.

    \b
    The shipped Pixel 3 estimate is reproduced by:
      padnas-latency estimate --device pixel3 --space basic --space large \\
          --resolution 224 --update device_profiles/pixel3.json
    """
    from latency.transfer.fit import parse_terms  # torch: only for this command

    setup(verbose)
    from latency.transfer.estimate import (
        DEFAULT_HOST,
        DEFAULT_PUBLISHED,
        run_estimate,
        update_profile,
    )

    if spaces and not (update or output):
        raise UsageError("--space builds LUTs: say where they go with --update or -o")
    if (update or output) and not spaces:
        raise UsageError("--update/-o need the space(s) to estimate: add --space basic ...")
    command = _estimate_command(
        device, spaces, resolution, published, host_device, terms, update, output, store_dir
    )
    res = run_estimate(
        device,
        published=published or DEFAULT_PUBLISHED,
        host_device=host_device or DEFAULT_HOST,
        spaces=tuple(dict.fromkeys(spaces)),
        resolution=resolution,
        terms=parse_terms(terms),
        store_dir=store_dir,
        force=force,
        progress=not quiet,
        command=command,
    )
    fit = res.fit
    click.echo(f"host: {res.host.get('cpu_model', '?')} ({res.host.get('kernels', '?')} kernels)")
    click.echo(f"transfer: {fit.model.formula()} (fitted on {len(res.samples)} networks)")
    for s, f, loo in zip(
        res.samples, fit.fitted, fit.loo or [None] * len(res.samples), strict=True
    ):
        extra = (
            f", leave-one-out {loo.predicted_ms:7.2f} ms ({loo.rel_err * 100:+.1f}%)" if loo else ""
        )
        click.echo(
            f"  {s.name:<22} host {s.host_ms:7.3f} ms  published {s.target_ms:7.2f} ms  "
            f"fit {f.predicted_ms:7.2f} ms ({f.rel_err * 100:+.1f}%){extra}"
        )
    click.echo(f"leave-one-out MAPE: {fit.loo_mape:.2f}%")
    for lut in res.luts:
        lo, hi = LatencyModel.from_lut(lut, get_space(lut.family)).reachable_range()
        click.echo(
            f"{lut.label}: {len(lut.entries)} entries (source estimate), reachable "
            f"{lo:.1f}..{hi:.1f} ms"
        )
    if output:
        if len(res.luts) == 1:
            res.luts[0].save(output)
        else:
            atomic_write_json(output, {"luts": [lut.to_dict() for lut in res.luts]})
        click.echo(f"wrote {output}")
    if update:
        update_profile(update, res.luts)
        click.echo(f"updated {update} (luts: {', '.join(t.label for t in res.luts)})")
