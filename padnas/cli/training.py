"""``padnas supernet train`` and ``padnas train``: train a supernet or one architecture."""

from __future__ import annotations

import json
from pathlib import Path

import click

from padnas.cli.options import (
    accelerator_option,
    check_deterministic,
    data_option,
    deterministic_option,
    dropped_strides_option,
    enter_deterministic,
    precision_option,
    sampler_option,
    set_threads,
    threads_option,
    verbose_option,
    with_precision,
)
from padnas.core.cli import handle_errors, path_option, renamed_option
from padnas.core.errors import UsageError
from padnas.run.rundir import refuse_inside_run
from padnas.space import get_space
from padnas.space.choice import space_option


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _training_setup(threads, config_args, precision, device, family, data, seed, deterministic):
    """What ``supernet train`` and ``train`` both start with: the deterministic mode if asked,
    threads, process group, the preset with the command's overrides and precision, the space
    and the data; and the device to train on."""
    from padnas.data.datasets import load_data
    from padnas.train.distributed import init_distributed

    device = check_deterministic(deterministic, threads, device)
    enter_deterministic(deterministic)
    set_threads(threads)
    ctx = init_distributed()
    cfg = with_precision(_config(*config_args), precision, device, ctx)
    bundle = load_data(data, cfg.resolution, seed, cfg.train_per_class)
    return ctx, cfg, get_space(family), bundle, device


def _training_options(func):
    for opt in reversed(
        [
            space_option("family", default="basic", show_default=True),
            data_option,
            click.option(
                "--preset",
                default="quick",
                show_default=True,
                help="Training preset: quick (minutes on a CPU) or paper (Section 4.1).",
            ),
            click.option("--epochs", type=int, default=None, help="Override the preset's epochs."),
            click.option("--lr", type=float, default=None, help="Override the initial LR."),
            click.option(
                "--batch-size", type=int, default=None, help="Override the global batch size."
            ),
            click.option(
                "--resolution", type=int, default=None, help="Override the proxy resolution."
            ),
            dropped_strides_option,
            renamed_option(
                "--width-mult",
                "--width",
                "width",
                type=float,
                default=None,
                help="Override the width multiplier.",
            ),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option(
                "--resume/--no-resume",
                default=True,
                show_default=True,
                help="Continue the checkpoint in --out if there is one.",
            ),
            accelerator_option,
            click.option(
                "--workers", type=int, default=None, help="Data loader processes (image folders)."
            ),
            precision_option,
            threads_option,
            deterministic_option,
            verbose_option,
        ]
    ):
        func = opt(func)
    return func


def _config(preset, epochs, lr, batch_size, resolution, dropped, width, workers):
    from padnas.run.settings import get_preset

    cfg = get_preset(preset).train
    changes = {}
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if resolution is not None:
        changes["resolution"] = resolution
    if dropped is not None:
        changes["dropped_strides"] = dropped
    if width is not None:
        changes["width_mult"] = width
    if workers is not None:
        changes["num_workers"] = workers
    if epochs is not None and epochs < 0:
        raise UsageError(f"--epochs must be >= 0, got {epochs}")
    if lr is not None and lr <= 0:
        raise UsageError(f"--lr must be > 0, got {lr}")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    cfg = cfg.replace(**changes)
    cfg.proxy()  # validates resolution, strides and width (SpaceError names the valid range)
    return cfg


@click.group()
def supernet() -> None:
    """Train single-path supernets."""


@supernet.command(
    "train",
    epilog="""\b
Examples:
  padnas supernet train --out runs/supernet                     # quick preset, fashion
  padnas supernet train --space large --epochs 5 --out runs/large
  torchrun --nproc_per_node 8 -m padnas.cli supernet train --preset paper \\
      --data imagefolder:/data/imagenet --out runs/imagenet   # DDP, one path per step
Interrupted runs continue from the last checkpoint when run again (--no-resume starts over).""",
)
@_training_options
@path_option(
    "--out",
    folder=True,
    default=Path("runs/supernet"),
    show_default=True,
    help="Checkpoint directory.",
)
@click.option(
    "--stage",
    type=int,
    default=0,
    show_default=True,
    help="Which schedule of the preset: 0 = initial, 1.. = finetune after pruning.",
)
@sampler_option
@click.option(
    "--warmup-epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Override the preset's warm-up: epochs in which the transition layers train only "
    "their smallest op, which every other op of the layer then starts from (exact copies).",
)
@handle_errors
def supernet_train(
    family,
    data,
    preset,
    epochs,
    lr,
    batch_size,
    resolution,
    dropped_strides,
    width,
    seed,
    resume,
    device,
    workers,
    precision,
    threads,
    deterministic,
    verbose,
    out,
    stage,
    sampler,
    warmup_epochs,
) -> None:
    """Train a supernet with SPOS single-path sampling (checkpoint every epoch)."""
    from padnas.train.loop import build_supernet, train_supernet

    refuse_inside_run(out, "--out")
    ctx, cfg, sp, bundle, device = _training_setup(
        threads,
        (preset, epochs, lr, batch_size, resolution, dropped_strides, width, workers),
        precision,
        device,
        family,
        data,
        seed,
        deterministic,
    )
    if sampler is not None:
        cfg = cfg.replace(sampler=sampler)
    if warmup_epochs is not None:
        cfg = cfg.replace(warmup_epochs=warmup_epochs)
    sched = cfg.supernet_stage(stage)
    epochs = sched.epochs if epochs is None else epochs
    lr = sched.lr if lr is None else lr
    if ctx.is_main:
        _echo(
            f"supernet {sp.family} ({float(sp.size):.3g} archs) on {bundle.describe()}; "
            f"{cfg.name} preset: {epochs} epochs, lr {lr:g}, batch {cfg.batch_size}, "
            f"width {cfg.width_mult:g}, {cfg.dropped_strides} dropped strides, "
            f"{cfg.sampler} paths, {cfg.precision}, "
            f"{ctx.world_size} process(es) -> {out}"
        )
    net = build_supernet(sp, cfg, bundle.num_classes, seed)
    train_supernet(
        net, bundle, cfg, out, seed=seed, resume=resume, epochs=epochs, lr=lr, device=device
    )
    if ctx.is_main:
        click.echo(str(out / "checkpoint.pt"))


@click.command(
    epilog="""\b
Examples:
  padnas train --arch K3E1-K5E3-ID-... --out runs/standalone/a
  padnas train --arch ARCH --preset paper --data imagefolder:/data/imagenet --out runs/a"""
)
@click.option("--arch", required=True, help="Architecture string (22 ops joined by '-').")
@_training_options
@path_option(
    "--out",
    folder=True,
    help="Checkpoint directory [default: runs/standalone/<arch>].",
)
@handle_errors
def train(
    arch,
    family,
    data,
    preset,
    epochs,
    lr,
    batch_size,
    resolution,
    dropped_strides,
    width,
    seed,
    resume,
    device,
    workers,
    precision,
    threads,
    deterministic,
    verbose,
    out,
) -> None:
    """Train one architecture from scratch (stand-alone) and report its accuracy."""
    from padnas.nn.complexity import macs_params
    from padnas.search.oneshot import evaluate_model
    from padnas.train.loop import train_arch

    a = get_space(family).validate(arch)  # before the data is loaded
    out = out or Path("runs/standalone") / str(a)
    refuse_inside_run(out, "--out")
    ctx, cfg, sp, bundle, device = _training_setup(
        threads,
        (preset, epochs, lr, batch_size, resolution, dropped_strides, width, workers),
        precision,
        device,
        family,
        data,
        seed,
        deterministic,
    )
    if ctx.is_main:
        _echo(f"stand-alone {a} on {bundle.describe()}; {cfg.name} preset -> {out}")
    net = train_arch(
        sp, a, bundle, cfg, out, seed=seed, resume=resume, epochs=epochs, lr=lr, device=device
    )
    if not ctx.is_main:
        return
    kw = {"batch_size": cfg.eval_batch_size, "precision": cfg.precision}
    val = evaluate_model(net, bundle.val, **kw)
    test = evaluate_model(net, bundle.test, **kw)
    macs, params = macs_params(sp, a)
    click.echo(
        json.dumps(
            {
                "arch": str(a),
                "val_accuracy": val,
                "test_accuracy": test,
                "macs_224": macs,
                "params_224": params,
                "precision": cfg.precision,
                "checkpoint": str(out / "checkpoint.pt"),
            }
        )
    )
