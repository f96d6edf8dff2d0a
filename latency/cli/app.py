"""``padnas-latency``: profile a device, export its LUT, measure networks, validate the LUT.

A thin click layer: each command parses options, calls one function of the package and prints
its result. Bad input exits 2 with one line; a runtime failure exits 1; Ctrl-C keeps everything
measured so far (the store is append-only) and the same command resumes.
"""

from __future__ import annotations

from pathlib import Path

import click

from latency.cli.adb import adb_options, backends_for, close_all, describe_all, devices
from latency.cli.estimate import estimate
from latency.cli.networks import (
    describe,
    lut_check_doc,
    measure_network_file,
    measure_onnx_file,
    measurement_doc,
    predict,
)
from latency.cli.options import (
    SPACE,
    check_outputs,
    device_option,
    precision_option,
    quiet_option,
    resolution_option,
    setup,
    store_option,
    verbose_option,
    width_option,
)
from latency.devices import load_profile
from latency.lut.model import LatencyModel
from latency.lut.table import LutError, load_lut, read_luts
from latency.profiling.fleet import profile_fleet
from latency.profiling.guard import measure_guarded
from latency.profiling.profile import device_info_path, profile_space, stored_lut
from latency.profiling.store import MeasurementStore
from latency.profiling.validation import measure_arch, validate_lut
from padnas.core import atomic_write_json, read_json
from padnas.core.cli import (
    CommandGroup,
    echo_json,
    handle_errors,
    json_option,
    path_option,
    profile_option,
)
from padnas.core.errors import UsageError
from padnas.core.paths import check_input_file
from padnas.space import Proxy, get_space


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Latency tables for padnas: profile a device, export a LUT, validate it.

    \b
    Examples:
      padnas-latency profile --device host --space large
      padnas-latency export-lut --device host --space large -o host-large.json
      padnas-latency validate --lut host-large.json --device host --n 30
      padnas-latency measure K3E1-K5E3-ID-... --device host --space large
    """


@main.command()
@device_option
@click.option("--space", "-s", type=SPACE, default="large", show_default=True)
@resolution_option
@width_option
@click.option("--force", is_flag=True, help="Re-measure variants already in the store.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Export worker processes [default: one per core (per spare core with --overlap)].",
)
@click.option(
    "--overlap/--no-overlap",
    default=None,
    help="Time blocks while others convert [default: only when the device is not this machine].",
)
@store_option
@path_option(
    "--report",
    help="Also write the run's report (counts, export/measure time split) as JSON.",
)
@click.option(
    "--limit",
    type=int,
    default=None,
    help="Measure at most this many variants now (the rest next time).",
)
@precision_option
@adb_options
@quiet_option
@verbose_option
@handle_errors
def profile(
    device,
    space,
    resolution,
    width_mult,
    force,
    workers,
    overlap,
    store_dir,
    report,
    limit,
    precision,
    serials,
    benchmark_model,
    adb_key,
    quiet,
    verbose,
):
    """Measure every op variant of a space on a device (resumable).

    Each measurement is stored the moment it is taken; an interrupted run resumes where it
    stopped. Blocks are exported to .tflite (cached, checked against PyTorch) as needed.

    \b
    Examples:
      padnas-latency profile --device host --space large --resolution 224
      padnas-latency profile --device host --space basic --precision int8
      padnas-latency profile --device pixel3 --space large --serial 192.168.1.20:5555 \\
          --benchmark-model android_aarch64_benchmark_model
    """
    setup(verbose)
    check_outputs(("--report", report), store=store_dir)

    prof = load_profile(device)
    sp = get_space(space)
    _check_resolution(resolution, width_mult)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: use 1 or more")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit {limit}: use 1 or more")
    store = MeasurementStore(prof["name"], store_dir, precision=precision)
    backends = backends_for(prof, serials, benchmark_model, adb_key, many=True)
    try:
        info = device_info_path(store)
        if force or not info.is_file():
            atomic_write_json(info, describe_all(backends))
        opts = dict(
            resolution=resolution,
            width_mult=width_mult,
            force=force,
            limit=limit,
            workers=workers,
            progress=not quiet,
        )
        if prof["transport"] == "adb":  # one worker per phone (latency.profiling.fleet)
            result = profile_fleet(sp, backends, store, warn=backends[0].warn, **opts)
        else:
            result = profile_space(sp, backends[0], store, overlap=overlap, **opts)
    finally:
        close_all(backends)
    click.echo(result.summary())
    left = result.total - result.reused - result.measured - len(result.failed)
    if limit is not None and left > 0:
        click.echo(f"{left} variants left for the next run (--limit {limit})")
    click.echo(f"store: {store.path}")
    if report:
        atomic_write_json(report, result.to_dict())
    if result.failed:
        for key, msg in result.failed[:5]:
            click.echo(f"  failed {key}: {msg}", err=True)
        raise click.exceptions.Exit(1)


def _check_resolution(resolution: int, width_mult: float) -> None:

    Proxy(resolution, width_mult)  # raises SpaceError naming the valid values


@main.command("export-lut")
@device_option
@click.option("--space", "-s", type=SPACE, default="large", show_default=True)
@resolution_option
@width_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="LUT JSON to write.",
)
@click.option("--no-fill", is_flag=True, help="Fail on unmeasured variants instead of regressing.")
@store_option
@precision_option
@verbose_option
@handle_errors
def export_lut(
    device, space, resolution, width_mult, output, no_fill, store_dir, precision, verbose
):
    """Write the LUT JSON of a profiled space.

    Variants that were not measured are predicted by the regression fallback (fitted on the
    measured ones) and marked source=regression.

    \b
    Example:
      padnas-latency export-lut --device host --space large -o host-large.json
      padnas-latency export-lut --device host --space basic --precision int8 -o host-int8.json
    """
    setup(verbose)
    check_outputs(("-o", output))

    prof = load_profile(device)
    _check_resolution(resolution, width_mult)
    lut = stored_lut(
        prof,
        get_space(space),
        resolution=resolution,
        width_mult=width_mult,
        store_dir=store_dir,
        fill=not no_fill,
        precision=precision,
    )
    lut.save(output)
    counts = {}
    for e in lut.entries.values():
        counts[e["source"]] = counts.get(e["source"], 0) + 1
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    click.echo(
        f"wrote {output}: {lut.label} on {lut.device_name}, {len(lut.entries)} entries ({parts})"
    )
    reg = lut.provenance.get("regression")
    if reg:
        click.echo(
            f"regression fallback: k-fold MAPE {reg['kfold_mape_pct']}% on {reg['n_train']} entries"
        )


@main.command()
@click.argument("target")
@device_option
@click.option("--space", "-s", type=SPACE, default="large", show_default=True)
@resolution_option
@width_option
@profile_option("--lut", help="Also print this LUT's prediction for the architecture.")
@click.option("--net", "names", multiple=True, help="Network(s) of a NET.json [default: all].")
@precision_option
@json_option
@adb_options
@verbose_option
@handle_errors
def measure(
    target,
    device,
    space,
    resolution,
    width_mult,
    lut,
    names,
    precision,
    as_json,
    serials,
    benchmark_model,
    adb_key,
    verbose,
):
    """Whole-network latency of an architecture (ARCH string), a MODEL.tflite or MODEL.onnx
    file, or the networks of a NET.json layer list (docs/network-format.md; exported whole and
    checked). A MODEL.onnx goes through the LUT's own conversion (onnx2tf, checked against ONNX
    Runtime, cached); the timing set-up is the device profile's, as for every LUT entry.

    \b
    Examples:
      padnas-latency measure K3E1-K3E3-ID-... --device host --space large
      padnas-latency measure model.tflite --device host --json
      padnas-latency measure model.onnx --device pixel3 --lut device_profiles/pixel3.json
      padnas-latency measure latency/data/pixel3_published.json --device host
      padnas-latency measure model.onnx --device host --precision int8 --lut host-int8.json
    """
    setup(verbose)

    prof = load_profile(device)
    _check_resolution(resolution, width_mult)
    is_model = target.endswith(".tflite")
    if is_model and lut is not None:
        raise UsageError(
            f"--lut prices an ARCH, a NET.json or a MODEL.onnx, not a .tflite: drop it for {target}"
        )
    if precision != "fp32" and (is_model or target.endswith(".json")):
        raise UsageError(
            f"--precision {precision} exports an ARCH or a MODEL.onnx; a .tflite is timed as it "
            "is, and a NET.json is exported as fp32: export the network as ONNX to time it int8"
        )
    table = model = None
    if lut is not None and not target.endswith((".json", ".onnx")):  # fails before measuring
        table = load_lut(lut, space, resolution, precision=precision)
        model = LatencyModel.from_lut(table, get_space(space))
    with backends_for(prof, serials, benchmark_model, adb_key)[0] as backend:
        if target.endswith(".json"):
            docs = measure_network_file(target, names, backend, lut, as_json=as_json)
            if as_json:
                echo_json({"device": backend.name, "target": target, "measurements": docs})
            return
        if target.endswith(".onnx"):
            doc = measure_onnx_file(target, backend, lut, as_json=as_json, precision=precision)
            if as_json:
                echo_json({"device": backend.name, "target": target, "measurements": [doc]})
            return
        if is_model:
            path = check_input_file(target, "measure takes a MODEL.tflite file", UsageError)
            stats = measure_guarded(backend, path)
            label = target
        else:
            sp = get_space(space)
            arch = sp.validate(target)
            stats = measure_arch(backend, sp, arch, resolution, width_mult, precision)
            label = str(arch)
    doc = measurement_doc(label, stats)
    if model is not None:
        pred = float(model.predict([arch])[0])
        rows = [
            (k.split("-", 1)[0], k, part, model.entries[k]["source"])
            for k, part in model.breakdown(arch)
        ]
        doc["lut_check"] = lut_check_doc(lut, table, pred, stats.ms, rows)
    if as_json:
        echo_json({"device": backend.name, "target": target, "measurements": [doc]})
        return
    click.echo(
        f"{label}: {stats.ms:.3f} ms (p10 {stats.p10:.3f}, p90 {stats.p90:.3f}, n={stats.n}, "
        f"source {stats.source}, device {backend.name})"
    )
    if model is not None:
        err = (pred - stats.ms) / stats.ms * 100
        click.echo(f"LUT {lut}: {pred:.3f} ms ({err:+.1f}% vs measured)")


@main.command()
@click.argument("profile_path", metavar="[PROFILE]", required=False, default=None)
@profile_option("--lut", "lut_path", help="The LUT to measure and calibrate.")
@device_option(required=False)
@click.option("--space", "-s", type=SPACE, default=None, help="Space [default: the LUT's].")
@click.option("--n", "n", type=int, default=30, show_default=True, help="Architectures.")
@click.option(
    "--fit-frac",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of the architectures the calibration is fitted on.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--rounds",
    type=int,
    default=2,
    show_default=True,
    help="Passes over all networks; each keeps its lowest median.",
)
@path_option(
    "--output",
    "-o",
    default=None,
    help="Write the calibrated LUT here [default: update --lut in place].",
)
@path_option("--report", default=None, help="Also write per-architecture results (JSON).")
@json_option
@adb_options
@quiet_option
@verbose_option
@handle_errors
def validate(
    profile_path,
    lut_path,
    device,
    space,
    n,
    fit_frac,
    seed,
    rounds,
    output,
    report,
    as_json,
    serials,
    benchmark_model,
    adb_key,
    quiet,
    verbose,
):
    """Check a device profile's tables against each other (PROFILE), or measure N random
    architectures whole, compare with LUT sums, fit and store a calibration (--lut, --device).

    With PROFILE: every pair of its LUTs at one resolution is compared on the shapes both hold
    (ReLU and ReLU6 entries of one shape count as one); the check fails (exit 1) when two
    families differ by more than 3 % on any shared shape, which is what pooling them for
    networks needs. With --lut: the calibration (measured ≈ scale · LUT + offset) is fitted on
    --fit-frac of the architectures; errors before and after are reported on the others.

    \b
    Examples:
      padnas-latency validate device_profiles/pixel3.json
      padnas-latency validate --lut host-large.json --device host --n 30
      padnas-latency validate --lut host-large.json --device host -o calibrated.json --json
    """
    setup(verbose)
    if profile_path is not None:
        if lut_path is not None:
            raise UsageError(
                "give a PROFILE to check its tables, or --lut to measure one, not both"
            )
        _check_families(profile_path, as_json)
        return
    if lut_path is None or device is None:
        raise UsageError(
            "validate needs a PROFILE (checks its tables against each other) or --lut LUT.json "
            "with --device (measures networks and calibrates)"
        )
    check_outputs(("-o" if output else "--lut", output or lut_path), ("--report", report))
    if output is None and _is_bundle(lut_path):  # known before measuring, so said before it
        raise UsageError(f"{lut_path} holds several LUTs; write the calibrated one with -o")

    prof = load_profile(device)
    table = load_lut(lut_path, space)
    if output is None and not lut_path.is_file():  # a profile name, resolved to shipped data
        raise UsageError(
            f"--lut {lut_path} names a device profile, which is not updated in place: "
            "write the calibrated LUT with -o FILE.json"
        )
    if table.device_name != prof["name"]:
        raise LutError(
            f"{lut_path} was built on device {table.device_name!r}, not {prof['name']!r}: "
            f"validate it with --device {table.device_name}"
        )
    sp = get_space(table.family)
    with backends_for(prof, serials, benchmark_model, adb_key)[0] as backend:
        res = validate_lut(
            table, sp, backend, n=n, fit_frac=fit_frac, seed=seed, progress=not quiet, rounds=rounds
        )
    table.calibration = res.calibration
    dest = output or lut_path
    table.save(dest)
    if report:
        atomic_write_json(
            report, {**res.summary(), "calibration": res.calibration, "archs": res.records}
        )
    if as_json:
        echo_json(
            {
                "device": backend.name,
                "lut": table.label,
                "lut_file": lut_path,
                "saved_to": dest,
                "seconds": round(res.seconds, 3),
                **res.summary(),
                "calibration": res.calibration,
                "archs": [{**rec, "unit": "ms"} for rec in res.records],
            }
        )
        return
    c = res.calibration
    click.echo(f"{n} architectures on {backend.name} ({res.seconds:.0f} s)")
    click.echo(f"raw LUT, all {n}:        {res.raw_all.line()}")
    click.echo(f"raw LUT, held-out:      {res.raw_test.line()}")
    click.echo(f"calibrated, held-out:   {res.calibrated_test.line()}")
    click.echo(
        f"calibration: measured ≈ {c['scale']:.4f} · LUT + {c['offset_ms']:.3f} ms "
        f"(fitted on {c['n_fit']}); saved to {dest}"
    )


def _check_families(path: str, as_json: bool) -> None:
    """``validate PROFILE``: its LUTs compared pairwise on shared shapes; exit 1 on a
    disagreement beyond the pool's tolerance."""
    from latency.lut.pool import AGREEMENT_TOLERANCE, LutDisagreement, agreements

    resolved, luts, _ = read_luts(path)
    found = agreements(luts)
    bad = [a for a in found if not a.holds()]
    if as_json:
        echo_json(
            {
                "file": str(resolved),
                "tolerance": AGREEMENT_TOLERANCE,
                "luts": [lut.label for lut in luts],
                "pairs": [a.to_dict() for a in found],
                "agree": not bad,
            }
        )
    else:
        click.echo(f"{resolved}: {len(luts)} LUTs ({', '.join(lut.label for lut in luts)})")
        for a in found:
            click.echo(f"  {a.line()}")
    if bad:
        raise LutDisagreement(
            f"{len(bad)} pair(s) of tables disagree by more than {AGREEMENT_TOLERANCE:.0%} on a "
            "shared shape: re-measure the odd one out on this device under the same conditions"
        )
    if not as_json:
        click.echo(f"  all pairs agree within {AGREEMENT_TOLERANCE:.0%}")


def _is_bundle(path: Path) -> bool:
    try:
        return "luts" in read_json(path, expect=dict)
    except (OSError, ValueError):
        return False


main.add_command(predict)
main.add_command(describe)  # MODEL.onnx -> layer list (latency/cli/networks.py)
main.add_command(estimate)
main.add_command(devices)  # device profiles and reachable phones (latency/cli/adb.py)

if __name__ == "__main__":
    main()
