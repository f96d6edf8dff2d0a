"""``padnas search``, ``padnas show`` and ``padnas export``: thin click commands over
:mod:`padnas.pipeline`, :mod:`padnas.report` and the latency exporter (registered on the
``padnas`` group in :mod:`padnas.cli`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import click

from .clitools import (
    accelerator_option,
    echo_json,
    handle_errors,
    json_option,
    path_option,
    precision_option,
    quiet_tensorflow,
    space_option,
)
from .errors import UsageError
from .fileio import make_dir
from .rundir import LoadedRun, RunDir
from .space import DEPLOY_RESOLUTION, get_space


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


@click.command(
    epilog="""\b
Examples:
  padnas search --lut pixel3 --preset quick --out runs/quick
  padnas search --lut my_phone.json --space large --latency-window 40:80 --stages 3
  padnas search --lut my_phone.json --out runs/quick --resume   # continue a killed run

\b
--stages: 2 = I-Supernet (train + search), 3 = P-Supernet (prune once), 4 = PAD-NAS.
Default window: the paper's for a Pixel 3 table (60-70 ms basic, 50-100 ms large); for v3
and for other devices the 25th-75th (basic, v3) or 10th-90th (large) percentile of the
latencies of 10,000 random architectures of the space, printed at start."""
)
@click.option(
    "--lut",
    "lut_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Latency table: a LUT JSON, a device profile with 'luts', or a profile name (pixel3).",
)
@space_option("family", default="basic", show_default=True)
@click.option(
    "--data",
    default="fashion",
    show_default=True,
    help="fashion (Fashion-MNIST), fashion:DIR, mnist5k, digits or imagefolder:PATH.",
)
@click.option(
    "--stages", type=int, default=4, show_default=True, help="Progressive stages M (2..10)."
)
@click.option(
    "--latency-window",
    "window",
    metavar="MIN:MAX",
    default=None,
    help="Latency window in ms [default: see below].",
)
@click.option(
    "--p-th",
    type=float,
    default=0.01,
    show_default=True,
    help="Pruning threshold: ops with probability <= P_th are removed.",
)
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@path_option(
    "--out",
    folder=True,
    default="runs/search",
    show_default=True,
    help="Run directory.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resolution",
    type=int,
    default=DEPLOY_RESOLUTION,
    show_default=True,
    help="Deployment resolution the LUT must be built for.",
)
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch intra-op threads (0 = torch's default). The quick preset's 32x32 proxy nets are "
    "too small to gain from more, and on a busy 2-core machine 2 threads ran 4x slower.",
)
@accelerator_option
@precision_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks and TensorFlow logs.")
@handle_errors
def search(
    lut_path,
    family,
    data,
    stages,
    window,
    p_th,
    preset,
    out,
    resume,
    seed,
    resolution,
    threads,
    device,
    precision,
    quiet,
    verbose,
):
    """Run PAD-NAS (Algorithm 1) and write the found architectures to a run directory."""
    quiet_tensorflow(verbose)
    from .distributed import init_distributed, resolve_device
    from .pipeline import Pipeline
    from .plan import plan_search
    from .precision import resolve_precision
    from .sharding import open_run

    if threads < 0:
        raise UsageError(f"--threads must be >= 0, got {threads}")
    t0 = time.perf_counter()
    plan = plan_search(
        str(lut_path),
        family=family,
        data=data,
        stages=stages,
        window=window,
        p_th=p_th,
        preset=preset,
        seed=seed,
        resolution=resolution,
    )
    ctx = init_distributed()
    echo = _echo if ctx.is_main else (lambda msg: None)
    for line in plan.messages + plan.warnings:
        echo(line)
    device = resolve_device(device, ctx)
    prec = resolve_precision(precision, device).name
    settings = replace(plan.settings, preset=plan.settings.preset.replace(precision=prec))
    # everything is checked before the first write: a refused command leaves --out as it was
    RunDir.check(out, settings.to_config(), resume=resume)
    rebuild = False
    if resume and LoadedRun(out).finished:
        damage = LoadedRun(out).damage()
        if damage is None:
            if ctx.is_main:
                _echo(f"{out} is finished; its summary:")
                click.echo(LoadedRun(out).summary_text(), nl=False)
            return
        echo(f"note: {damage}: rebuilding the result from the stage files")
        rebuild = True
    import torch

    from .data import load_data

    if threads:
        torch.set_num_threads(threads)
    preset = plan.settings.preset
    bundle = load_data(data, preset.resolution, seed, preset.train_per_class)
    run = open_run(out, settings.to_config(), resume=resume, ctx=ctx)
    if rebuild:
        run.unmark("final")
    echo(f"data: {bundle.describe()}, {prec}, {ctx.world_size} process(es)")
    from .pipeline import Hooks

    pipeline = Pipeline(
        settings,
        plan.lut,
        bundle,
        run,
        hooks=Hooks(echo=echo),
        progress=not quiet and ctx.is_main,
        device=device,
    )
    try:
        pipeline.execute()
    except KeyboardInterrupt:
        echo(f"stopped: {out} keeps everything so far; add --resume to the same command")
        raise
    if not ctx.is_main:
        return
    click.echo((run.path / "summary.txt").read_text(encoding="utf-8"), nl=False)
    _echo(f"run directory: {out} ({time.perf_counter() - t0:.0f} s)")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@json_option
@click.option("--verbose", "-v", is_flag=True)
@handle_errors
def show(run_dir, as_json, verbose):
    """Print the summary of a search run (or the progress of an unfinished one)."""
    from .report import show as show_run
    from .report import show_document

    if as_json:
        echo_json(show_document(run_dir))
        return
    click.echo(show_run(run_dir), nl=False)


def _resolve_arch(text: str, family: str | None) -> tuple[str, str]:
    """(family, arch string) from an arch string or RUN_DIR[:LABEL] (default label A)."""
    if not text.strip():
        raise UsageError("ARCH is empty: give an arch string (K3E1-K5E3-...) or RUN_DIR[:LABEL]")
    run_dir, _, label = text.partition(":")
    path = Path(run_dir)
    try:
        is_dir = path.is_dir()
    except OSError:  # an arch string longer than a file name may be: not a run directory
        is_dir = False
    if is_dir:
        data = LoadedRun(path).final()
        models = {m["label"]: m["arch"] for m in data["models"]}
        label = label or "A"
        if label not in models:
            raise UsageError(f"{path} has models {', '.join(models) or 'none'}, not {label!r}")
        run_family = data["space"]["family"]
        if family and family != run_family:
            raise UsageError(f"{path} searched the {run_family} space, not {family}")
        return run_family, models[label]
    if "/" in run_dir:
        raise UsageError(
            f"no run directory at {run_dir} (ARCH is an arch string or RUN_DIR[:LABEL])"
        )
    return family or "basic", text


@click.command(
    epilog="""\b
Examples:
  padnas export K3E1-K5E3-ID-... --format tflite -o model.tflite
  padnas export runs/quick:B --format onnx      # model B of a finished search"""
)
@click.argument("arch")
@click.option(
    "--format", "fmt", type=click.Choice(["onnx", "tflite"]), default="tflite", show_default=True
)
@space_option("family", default=None, help="Space of ARCH [default: basic, or the run's].")
@click.option("--resolution", type=int, default=DEPLOY_RESOLUTION, show_default=True)
@path_option(
    "-o",
    "--output",
    help="Output file [default: <arch>.<format> in the current directory].",
)
@click.option("--verbose", "-v", is_flag=True)
@handle_errors
def export(arch, fmt, family, resolution, output, verbose):
    """Export ARCH (an arch string, or RUN_DIR[:LABEL]) as a whole network for deployment.

    Weights are seeded random: the file is for latency measurement and conversion checks;
    train the architecture (padnas train) for a deployable model."""
    quiet_tensorflow(verbose)
    from latency.export.convert import export_arch

    family, text = _resolve_arch(arch, family)
    space = get_space(family)
    parsed = space.validate(text)
    if output is None:
        output = Path(f"{family}-{str(parsed).lower()}.{fmt}")
    if output.suffix.lower() != f".{fmt}":
        raise UsageError(f"output {output} must end in .{fmt} for --format {fmt}")
    make_dir(output.parent, "the folder of -o")
    path = export_arch(space, parsed, resolution, output, fmt)
    click.echo(str(path))
