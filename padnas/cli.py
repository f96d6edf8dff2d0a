"""``padnas``: a thin click layer over the search-side functions.

Commands here: ``space``, ``supernet train``, ``evaluate``, ``train``. The search commands
(``search``, ``show``, ``export``) live in :mod:`padnas.search_cli` and are registered at the
bottom of this file. Heavy imports (torch, data) happen inside the commands, so ``--help`` and
``padnas space`` stay fast. Bad input is one line on stderr and exit code 2 (see clitools).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .clitools import (
    CommandGroup,
    accelerator_option,
    echo_json,
    handle_errors,
    json_option,
    path_option,
    precision_option,
    renamed_option,
    space_option,
)
from .errors import UsageError
from .space import get_space

DATA_HELP = (
    "fashion (default: Fashion-MNIST, Debian's dataset-fashion-mnist), fashion:DIR, mnist5k "
    "(embedded), digits, or imagefolder:PATH (PATH/train, PATH/val)."
)


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="padnas")
def main() -> None:
    """PAD-NAS: progressive search-space design for hardware-aware one-shot NAS."""


# ---- space ---------------------------------------------------------------------------------------
@main.command(
    epilog="""\b
Examples:
  padnas space --space basic
  padnas space --space large --json > large.json
  padnas space --space v3     # MobileNetV3-based (SE, h-swish; see padnas/space.py)"""
)
@space_option("family", default="basic", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the space as JSON.")
@handle_errors
def space(family: str, as_json: bool) -> None:
    """Show a search space: size, signature and the ops each layer may take."""

    sp = get_space(family)
    if as_json:
        data = {**sp.to_dict(), "num_layers": sp.num_layers, "stem_chs": sp.stem_chs,
                "stem_act": sp.stem_act, "head_act": sp.head_act}  # fmt: skip
        keys = ("index", "stage", "in_chs", "out_chs", "stride", "act")
        data["layers"] = [
            {**{k: getattr(s, k) for k in keys}, "ops": list(ops)}
            for s, ops in zip(sp.layers, sp.layer_ops, strict=True)
        ]
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"space      {sp.family}")
    click.echo(f"size       {sp.size} (~{float(sp.size):.3g})")
    click.echo(f"signature  {sp.signature}")
    click.echo(f"layers     {sp.num_layers} searchable (stem {sp.stem_chs} channels)")
    click.echo("layer stage  in -> out stride  ops")
    for s, ops in zip(sp.layers, sp.layer_ops, strict=True):
        click.echo(
            f"{s.index:5d} {s.stage:5d} {s.in_chs:4d} -> {s.out_chs:<4d}{s.stride:5d}   "
            + " ".join(ops)
        )


# ---- shared options ------------------------------------------------------------------------------
THREADS_OPTION = click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch intra-op threads (0 = torch's default). Proxy-sized nets gain nothing from more, "
    "and two threads stall on every op while another process holds one of two cores.",
)


def _training_setup(threads, config_args, precision, device, family, data, seed):
    """What ``supernet train`` and ``train`` both start with: threads, process group, the
    preset with the command's overrides and precision, the space and the data."""
    from .data import load_data
    from .distributed import init_distributed

    _set_threads(threads)
    ctx = init_distributed()
    cfg = _with_precision(_config(*config_args), precision, device, ctx)
    bundle = load_data(data, cfg.resolution, seed, cfg.train_per_class)
    return ctx, cfg, get_space(family), bundle


def _with_precision(cfg, precision: str, device: str, ctx=None):
    """``cfg`` with ``--precision`` resolved for the device (recorded in the checkpoint)."""
    from .distributed import resolve_device
    from .precision import resolve_precision

    return cfg.replace(precision=resolve_precision(precision, resolve_device(device, ctx)).name)


def _set_threads(threads: int) -> None:
    if threads < 0:
        raise UsageError(f"--threads must be >= 0, got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)


def _training_options(func):
    for opt in reversed(
        [
            space_option("family", default="basic", show_default=True),
            click.option("--data", default="fashion", show_default=True, help=DATA_HELP),
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
            THREADS_OPTION,
            click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors."),
        ]
    ):
        func = opt(func)
    return func


def _config(preset, epochs, lr, batch_size, resolution, width, workers):
    from .train import get_preset

    cfg = get_preset(preset)
    changes = {}
    if batch_size is not None:
        changes["batch_size"] = batch_size
    if resolution is not None:
        changes["resolution"] = resolution
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
    cfg.proxy()  # validates resolution and width (SpaceError names the valid range)
    return cfg


# ---- supernet train ------------------------------------------------------------------------------
@main.group()
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
@handle_errors
def supernet_train(
    family, data, preset, epochs, lr, batch_size, resolution, width, seed, resume, device,
    workers, precision, threads, verbose, out, stage,
) -> None:  # fmt: skip
    """Train a supernet with SPOS uniform single-path sampling (checkpoint every epoch)."""
    from .train import build_supernet, train_supernet

    ctx, cfg, sp, bundle = _training_setup(
        threads, (preset, epochs, lr, batch_size, resolution, width, workers), precision, device,
        family, data, seed,
    )  # fmt: skip
    sched = cfg.supernet_stage(stage)
    epochs = sched.epochs if epochs is None else epochs
    lr = sched.lr if lr is None else lr
    if ctx.is_main:
        _echo(
            f"supernet {sp.family} ({float(sp.size):.3g} archs) on {bundle.describe()}; "
            f"{cfg.name} preset: {epochs} epochs, lr {lr:g}, batch {cfg.batch_size}, "
            f"width {cfg.width_mult:g}, {cfg.precision}, {ctx.world_size} process(es) -> {out}"
        )
    net = build_supernet(sp, cfg, bundle.num_classes, seed)
    train_supernet(
        net, bundle, cfg, out, seed=seed, resume=resume, epochs=epochs, lr=lr, device=device
    )
    if ctx.is_main:
        click.echo(str(out / "checkpoint.pt"))


# ---- evaluate ------------------------------------------------------------------------------------
@main.command(
    epilog="""\b
Examples:
  padnas evaluate --supernet runs/supernet --arch K3E1-K5E3-ID-...   (22 ops joined by '-')
  padnas evaluate --supernet runs/supernet --random 20 --json
  padnas evaluate --supernet runs/supernet --arch ARCH --split test --no-recalibrate"""
)
@click.option(
    "--supernet",
    "ckpt",
    type=click.Path(path_type=Path),
    default=Path("runs/supernet"),
    show_default=True,
    help="Checkpoint file or directory from 'padnas supernet train'.",
)
@click.option("--arch", "archs", multiple=True, help="Architecture string (repeatable).")
@click.option("--random", "n_random", type=int, default=0, help="Also evaluate N random archs.")
@click.option("--data", default=None, help="Data spec [default: the one the supernet saw].")
@click.option("--split", type=click.Choice(["val", "test"]), default="val", show_default=True)
@click.option("--recal-images", type=int, default=None, help="BN recalibration images [preset's].")
@click.option("--recalibrate/--no-recalibrate", default=True, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Recalibration/random seed.")
@json_option
@accelerator_option
@precision_option
@THREADS_OPTION
@click.option("-v", "--verbose", is_flag=True)
@handle_errors
def evaluate(
    ckpt, archs, n_random, data, split, recal_images, recalibrate, seed, as_json, device,
    precision, threads, verbose,
) -> None:  # fmt: skip
    """One-shot accuracy of architectures on a trained supernet (BN recalibrated)."""
    import numpy as np

    from .checkpoint import load_supernet
    from .complexity import macs_params
    from .data import load_data
    from .distributed import resolve_device
    from .evaluate import OneShotEvaluator
    from .train import TrainConfig

    _set_threads(threads)
    if not archs and n_random <= 0:
        raise UsageError("give --arch ARCH (repeatable) or --random N")
    net, meta = load_supernet(ckpt)
    sp = net.space
    chosen = [sp.validate(a) for a in archs]
    rng = np.random.default_rng(seed)
    chosen += [sp.sample(rng) for _ in range(n_random)]
    cfg = _with_precision(TrainConfig.from_dict(meta["config"]), precision, device)
    if recal_images is not None:
        if recal_images < 1:
            raise UsageError(f"--recal-images must be >= 1, got {recal_images}")
        cfg = cfg.replace(recal_images=recal_images, recal_batch_size=min(250, recal_images))
    bundle = load_data(
        data or meta["data"], net.proxy.resolution, meta.get("data_seed", 0), cfg.train_per_class
    )
    if bundle.num_classes != net.num_classes:
        raise UsageError(
            f"data {bundle.spec} has {bundle.num_classes} classes, the supernet {net.num_classes}"
        )
    net.to(resolve_device(device))
    ev = OneShotEvaluator.from_config(net, bundle, cfg, seed=seed, split=split, progress=True)
    results = []
    for arch in chosen:
        acc = ev.evaluate(arch, recalibrate=recalibrate)
        macs, params = macs_params(sp, arch)
        results.append({"arch": str(arch), "accuracy": acc, "macs": macs, "params": params})
        if not as_json:  # each line as soon as it is known; the document once all are
            click.echo(f"{acc:.4f}  {macs / 1e6:6.1f}M MACs  {params / 1e6:5.2f}M params  {arch}")
    if as_json:
        doc = {"supernet": str(ckpt), "space": sp.family, "data": bundle.spec, "split": split,
               "recalibrated": recalibrate, "recal_images": cfg.recal_images if recalibrate
               else None, "precision": cfg.precision, "seed": seed}  # fmt: skip
        echo_json({**doc, "results": results})


# ---- train (stand-alone) ---------------------------------------------------------------------
@main.command(
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
    arch, family, data, preset, epochs, lr, batch_size, resolution, width, seed, resume, device,
    workers, precision, threads, verbose, out,
) -> None:  # fmt: skip
    """Train one architecture from scratch (stand-alone) and report its accuracy."""
    from .complexity import macs_params
    from .evaluate import evaluate_model
    from .train import train_arch

    a = get_space(family).validate(arch)  # before the data is loaded
    ctx, cfg, sp, bundle = _training_setup(
        threads, (preset, epochs, lr, batch_size, resolution, width, workers), precision, device,
        family, data, seed,
    )  # fmt: skip
    out = out or Path("runs/standalone") / str(a)
    if ctx.is_main:
        _echo(f"stand-alone {a} on {bundle.describe()}; {cfg.name} preset -> {out}")
    net = train_arch(sp, a, bundle, cfg, out, seed=seed, resume=resume, epochs=epochs, lr=lr,
                     device=device)  # fmt: skip
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


# ---- commands defined elsewhere ------------------------------------------------------------------
from .search_cli import export, search, show  # noqa: E402  (light: click only at import)

for _command in (search, show, export):
    main.add_command(_command)


if __name__ == "__main__":  # ``python -m padnas.cli`` (torchrun)
    sys.exit(main())
