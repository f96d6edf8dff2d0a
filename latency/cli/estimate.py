"""``padnas-latency estimate``: a device's LUTs estimated from host measurements through the
transfer model fitted on networks with published device latencies (:mod:`latency.transfer`).

Registered on the ``padnas-latency`` group by :mod:`latency.cli.app`.
"""

from __future__ import annotations

import shlex

import click

from latency.cli.options import (
    SPACE,
    check_outputs,
    precision_option,
    quiet_option,
    resolution_option,
    setup,
    store_option,
    verbose_option,
)
from latency.lut.model import LatencyModel
from padnas.core import atomic_write_json
from padnas.core.cli import handle_errors, path_option
from padnas.core.errors import UsageError
from padnas.space import get_space


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
@click.option(
    "--reuse-fit",
    is_flag=True,
    help="Apply the transfer model the device profile's LUTs already carry, unchanged (no "
    "refit): estimates a new space with the very model of the shipped ones.",
)
@store_option
@click.option("--force", is_flag=True, help="Re-measure what the host store already has.")
@precision_option
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
    reuse_fit,
    store_dir,
    force,
    precision,
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
      padnas-latency estimate --device pixel3 --space v3 --reuse-fit \\
          --resolution 224 --update device_profiles/pixel3.json
      padnas-latency estimate --device pixel3 --space basic --precision int8 \\
          --resolution 224 --update device_profiles/pixel3.json   # source host-int8
    """
    from latency.transfer.fit import parse_terms  # torch: only for this command

    setup(verbose)
    from latency.transfer.estimate import (
        DEFAULT_HOST,
        DEFAULT_PUBLISHED,
        run_estimate,
    )

    if spaces and not (update or output):
        raise UsageError("--space builds LUTs: say where they go with --update or -o")
    if (update or output) and not spaces:
        raise UsageError("--update/-o need the space(s) to estimate: add --space basic ...")
    if update is not None and not update.is_file():
        raise UsageError(f"--update {update}: no such device profile (give an existing one)")
    check_outputs(("--update", update), ("-o", output), store=store_dir)
    command = _estimate_command(
        device, spaces, resolution, published, host_device, terms, update, output, store_dir
    )
    # what both kinds of estimate take: the networks, the host, the spaces, the store
    common = dict(
        published=published or DEFAULT_PUBLISHED,
        host_device=host_device or DEFAULT_HOST,
        spaces=tuple(dict.fromkeys(spaces)),
        resolution=resolution,
        store_dir=store_dir,
        force=force,
        progress=not quiet,
    )
    if precision != "fp32":
        if reuse_fit:
            raise UsageError("--reuse-fit reuses a float transfer: drop it with --precision int8")
        from latency.transfer.int8 import run_int8_estimate

        luts = run_int8_estimate(device, **common, command=f"{command} --precision {precision}")
        _report(luts, "host-int8")
        click.echo(luts[0].source_warning(), err=True)
        _write(luts, output, update)
        return
    reuse = None
    if reuse_fit:
        from latency.devices import load_profile
        from latency.transfer.estimate import shipped_transfer

        reuse = shipped_transfer(load_profile(device))
        command += " --reuse-fit"
    res = run_estimate(device, **common, terms=parse_terms(terms), command=command, reuse=reuse)
    fit = res.fit
    click.echo(f"host: {res.host.get('cpu_model', '?')} ({res.host.get('kernels', '?')} kernels)")
    fitted_on = len(fit.model.fitted_on or res.samples)
    reused = ", reused unchanged" if reuse else ""
    click.echo(f"transfer: {fit.model.formula()} (fitted on {fitted_on} networks{reused})")
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
    if fit.loo:
        click.echo(f"leave-one-out MAPE: {fit.loo_mape:.2f}%")
    _report(res.luts, "estimate")
    _write(res.luts, output, update)


def _write(luts, output, update) -> None:
    """The estimated LUTs to ``-o`` (one LUT, or a bundle) and into ``--update``'s profile."""
    from latency.transfer.estimate import update_profile

    if output:
        if len(luts) == 1:
            luts[0].save(output)
        else:
            atomic_write_json(output, {"luts": [lut.to_dict() for lut in luts]})
        click.echo(f"wrote {output}")
    if update:
        update_profile(update, luts)
        click.echo(f"updated {update} (luts: {', '.join(t.label for t in luts)})")


def _report(luts, source: str) -> None:
    for lut in luts:
        lo, hi = LatencyModel.from_lut(lut, get_space(lut.family)).reachable_range()
        click.echo(
            f"{lut.label}: {len(lut.entries)} entries (source {source}), reachable "
            f"{lo:.1f}..{hi:.1f} ms"
        )
