"""``padnas show`` and ``padnas export``: read a finished (or unfinished) search run, and export
an architecture, given as a string or as a model of a run, as a whole network."""

from __future__ import annotations

from pathlib import Path

import click

from padnas.core import make_dir
from padnas.core.cli import echo_json, handle_errors, json_option, path_option, quiet_tensorflow
from padnas.core.errors import UsageError
from padnas.run.rundir import LoadedRun
from padnas.space import DEPLOY_RESOLUTION, get_space
from padnas.space.choice import space_option


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@json_option
@click.option("--verbose", "-v", is_flag=True)
@handle_errors
def show(run_dir, as_json, verbose):
    """Print the summary of a search run (or the progress of an unfinished one)."""
    from padnas.run.report import show as show_run
    from padnas.run.report import show_document

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
    from latency.export.pool import export_arch_file

    family, text = _resolve_arch(arch, family)
    space = get_space(family)
    parsed = space.validate(text)
    if output is None:
        output = Path(f"{family}-{str(parsed).lower()}.{fmt}")
    if output.suffix.lower() != f".{fmt}":
        raise UsageError(f"output {output} must end in .{fmt} for --format {fmt}")
    make_dir(output.parent, "the folder of -o")
    path = export_arch_file(space, parsed, resolution, output, fmt)
    click.echo(str(path))
