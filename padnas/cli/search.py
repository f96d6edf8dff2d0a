"""``padnas search``: plan the search from the command line (:mod:`padnas.run.plan`), open or
resume the run directory and run Algorithm 1 (:mod:`padnas.run.pipeline`)."""

from __future__ import annotations

import time
from dataclasses import replace

import click

from latency.variants import PRECISIONS
from padnas.cli.options import (
    accelerator_option,
    check_deterministic,
    check_threads,
    data_option,
    deterministic_option,
    dropped_strides_option,
    enter_deterministic,
    precision_option,
    sampler_option,
    set_threads,
    threads_option,
)
from padnas.core.cli import handle_errors, path_option, profile_option, quiet_tensorflow
from padnas.core.errors import UsageError
from padnas.run.rundir import PLATFORM, SUMMARY_TEXT, LoadedRun, RunDir, saved_preset
from padnas.space import DEPLOY_RESOLUTION
from padnas.space.choice import space_option


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _saved_config(out) -> dict | None:
    """The config of the run in ``out`` (None: no readable run there; the run-directory checks
    say why later)."""
    try:
        return RunDir(out).config()
    except UsageError:  # a damaged config.json or a file in the way
        return None


def _saved_ceiling(saved: dict) -> bool:
    """Whether a saved run measures the noise ceiling (one from before it existed does not)."""
    return saved.get("noise_ceiling") is not None


def _saved_preset(saved: dict, key: str) -> object:
    """A saved run's preset field ``key`` (what a run from before the option ran with:
    :data:`~padnas.run.rundir.PRESET_BEFORE`); None without a preset."""
    preset = saved_preset(saved)
    return None if preset is None else preset[key]


def _can_verify_now(loaded: LoadedRun, lut) -> str | None:
    """Why a finished run's models should be measured now (they were not, and the LUT's device
    can be reached from here), or None."""
    from padnas.run.verify import MEASURED, reach_device

    block = loaded.final().get("verification")
    if isinstance(block, dict) and block.get("status") == MEASURED:
        return None
    backend, _ = reach_device(lut)
    if backend is None:
        return None
    backend.close()
    return f"the final models were not measured whole and {lut.device_name} can be reached"


@click.command(
    epilog="""\b
Examples:
  padnas search --lut pixel3 --preset quick --out runs/quick
  padnas search --lut my_phone.json --space large --latency-window 40:80 --stages 3
  padnas search --lut my_phone.json --out runs/quick --resume   # continue a killed run
  padnas search --lut pixel3 --out runs/same-anywhere --deterministic   # same result on any CPU
  padnas search --lut host --lut-precision int8 --out runs/int8   # after profile --precision int8

\b
--stages: 2 = I-Supernet (train + search), 3 = P-Supernet (prune once), 4 = PAD-NAS.
Default window: the paper's for a Pixel 3 table (60-70 ms basic, 50-100 ms large); for v3
and for other devices the 25th-75th (basic, v3) or 10th-90th (large) percentile of the
latencies of 10,000 random architectures of the space, printed at start."""
)
@profile_option(
    "--lut",
    "lut_path",
    required=True,
    help="Latency table: a LUT JSON, a device profile with 'luts', or a profile name (pixel3).",
)
@space_option("family", default="basic", show_default=True)
@data_option
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
    "--noise-ceiling/--no-noise-ceiling",
    default=None,
    help="Measure how far the one-shot ranking can be trusted: a second stage-1 supernet, the "
    "same but for its seed, ranks the first search's architectures too (Kendall tau, seed noise "
    "of an accuracy) [default: the preset's: on for quick (about 100 s of CPU on a second core, "
    "beside the first supernet, plus 40 evaluations), off for paper; with --resume: the run's].",
)
@click.option(
    "--eval-images",
    type=click.IntRange(min=0),
    default=None,
    help="Measure one-shot scores on this many held-out images (a multiple of the classes; "
    "training images no run of the proxy size sees, the same for every seed) instead of the "
    "validation split: a ranking that depends less on which images were drawn, for about 0.06 s "
    "per 1,000 images and evaluation on the quick proxy (one thread, evaluated prefixes kept) "
    "[default: the preset's, 5,000 for quick where the data keeps them; 0 = the validation split].",
)
@click.option(
    "--rank-by",
    type=click.Choice(["accuracy", "log-likelihood"]),
    default=None,
    help="The one-shot score CES ranks architectures by: top-1 accuracy, or the mean "
    "log-likelihood of the true class from the same pass (no extra cost; on 1,000 images two "
    "seeds' supernets agree with Kendall tau 0.37 by it, 0.13 by accuracy). Both are recorded "
    "[default: the preset's; with --resume: the run's].",
)
@sampler_option
@dropped_strides_option
@click.option(
    "--lut-precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Search under the fp32 or the int8 latency table of --lut (a profile may hold both; "
    "int8: padnas-latency profile --precision int8) [default: a LUT file's own, else fp32].",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Measure the final models whole on the LUT's device when it can be reached (the "
    "host, the mock, a phone named by the profile or $ANDROID_SERIAL) and show measured beside "
    "predicted latency; with --resume on a finished run: measure the models it could not.",
)
@threads_option
@click.option(
    "--eval-processes",
    type=int,
    default=0,
    show_default=True,
    envvar="PADNAS_EVAL_PROCESSES",
    help="Processes that share a CPU search's one-shot evaluations (this one and helpers, "
    "each with --threads threads; 0 = one per free core, at most 4; 1 = this one only; "
    "default from $PADNAS_EVAL_PROCESSES). The scores are the same whatever the count.",
)
@accelerator_option
@precision_option
@deterministic_option
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
    noise_ceiling,
    eval_images,
    rank_by,
    sampler,
    dropped_strides,
    lut_precision,
    verify,
    threads,
    eval_processes,
    device,
    precision,
    deterministic,
    quiet,
    verbose,
):
    """Run PAD-NAS (Algorithm 1) and write the found architectures to a run directory."""
    quiet_tensorflow(verbose)
    from padnas.run.pipeline import Pipeline
    from padnas.run.plan import plan_search
    from padnas.run.ranks import open_run
    from padnas.train.distributed import init_distributed, resolve_device
    from padnas.train.precision import resolve_precision

    check_threads(threads)
    if eval_processes < 0:
        raise UsageError(f"--eval-processes must be >= 0, got {eval_processes}")
    device = check_deterministic(deterministic, threads, device)
    t0 = time.perf_counter()
    saved = _saved_config(out) if resume else None
    if saved is not None:  # a run continues as it started
        if noise_ceiling is None:
            noise_ceiling = _saved_ceiling(saved)
        if eval_images is None:
            eval_images = _saved_preset(saved, "eval_images")
        if rank_by is None:
            rank_by = _saved_preset(saved, "rank_by")
        if sampler is None:
            sampler = _saved_preset(saved, "sampler")
        if dropped_strides is None:
            dropped_strides = _saved_preset(saved, "dropped_strides")
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
        noise_ceiling=noise_ceiling,
        lut_precision=lut_precision,
    )
    ctx = init_distributed()
    echo = _echo if ctx.is_main else (lambda msg: None)
    for line in plan.messages + plan.warnings:
        echo(line)
    device = resolve_device(device, ctx)
    prec = resolve_precision(precision, device).name
    changes = {"precision": prec}
    if eval_images is not None:
        changes["eval_images"] = eval_images
    if rank_by is not None:
        changes["rank_by"] = rank_by.replace("-", "_")
    if sampler is not None:
        changes["sampler"] = sampler
    if dropped_strides is not None:
        changes["dropped_strides"] = dropped_strides
    from padnas.data.datasets import load_data
    from padnas.search.oneshot import held_out_images

    preset = plan.settings.preset.replace(**changes)
    bundle = load_data(data, preset.resolution, seed, preset.train_per_class)
    if eval_images is None and preset.eval_images and not held_out_images(preset, bundle):
        # the preset's default, not a demand: the run records the split it really scores on
        echo(
            f"note: data {bundle.spec} keeps fewer than the preset's {preset.eval_images} "
            "held-out images: one-shot scores on its validation split"
        )
        preset = preset.replace(eval_images=0)
    settings = replace(plan.settings, preset=preset, deterministic=deterministic)
    # everything is checked before the first write: a refused command leaves --out as it was
    RunDir.check(out, settings.to_config(), resume=resume)
    enter_deterministic(deterministic)
    rebuild = False
    if resume and LoadedRun(out).finished:
        damage = LoadedRun(out).damage()
        unmeasured = verify and damage is None and _can_verify_now(LoadedRun(out), plan.lut)
        if unmeasured:
            echo(f"note: {unmeasured}: measuring them now")
            rebuild = True
        elif damage is None:
            if ctx.is_main:
                _echo(f"{out} is finished; its summary:")
                click.echo(LoadedRun(out).summary_text(), nl=False)
            return
        else:
            echo(f"note: {damage}: rebuilding the result from the stage files")
            rebuild = True
    if resume:  # the stage results the run continues from, checked before anything is written
        LoadedRun(out).check_stages()
    from padnas.train.reproducibility import platform_change, platform_record

    set_threads(threads)
    platform = platform_record()
    if resume and not deterministic:
        changed = platform_change((RunDir(out).config() or {}).get(PLATFORM), platform)
        if changed:
            echo(
                f"note: the run started on another platform ({'; '.join(changed[:3])}): its "
                "numbers can differ from an uninterrupted run's"
            )
    if preset.eval_images:  # an explicit size is refused here, before the first write
        bundle.holdout(preset.eval_images)
    run = open_run(out, settings.to_config(), resume=resume, ctx=ctx, platform=platform)
    if rebuild:
        run.unmark("final")
    mode = ", deterministic" if deterministic else ""
    scored = f", ranked by one-shot {preset.rank_by.replace('_', '-')}"
    if preset.eval_images:
        scored += f" on {preset.eval_images} held-out images"
    from padnas.run.pipeline import Hooks

    pipeline = Pipeline(
        settings,
        plan.lut,
        bundle,
        run,
        hooks=Hooks(echo=echo),
        progress=not quiet and ctx.is_main,
        device=device,
        verify=verify and ctx.is_main,
        eval_processes=eval_processes or _auto_processes(),
    )
    helpers = pipeline.eval_processes  # 1 off the CPU and under torchrun
    spread = f", one-shot evaluation in {helpers} processes" if helpers > 1 else ""
    echo(f"data: {bundle.describe()}{scored}, {prec}, {ctx.world_size} process(es){mode}{spread}")
    try:
        pipeline.execute()
    except KeyboardInterrupt:
        echo(f"stopped: {out} keeps everything so far; add --resume to the same command")
        raise
    if not ctx.is_main:
        return
    click.echo(run.file(SUMMARY_TEXT).read_text(encoding="utf-8"), nl=False)
    _echo(f"run directory: {out} ({time.perf_counter() - t0:.0f} s)")


def _auto_processes() -> int:
    """``--eval-processes 0``: one evaluation process per free core."""
    import torch

    from padnas.search.eval_pool import auto_processes
    from padnas.train.background import available_cores

    return auto_processes(torch.get_num_threads(), available_cores())
