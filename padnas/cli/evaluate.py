"""``padnas evaluate``: one-shot accuracy of architectures on a trained supernet."""

from __future__ import annotations

from pathlib import Path

import click

from padnas.cli.options import (
    accelerator_option,
    check_deterministic,
    deterministic_option,
    enter_deterministic,
    precision_option,
    set_threads,
    threads_option,
    verbose_option,
    with_precision,
)
from padnas.core.cli import echo_json, handle_errors, json_option
from padnas.core.errors import UsageError


@click.command(
    epilog="""\b
Examples:
  padnas evaluate --supernet runs/supernet --arch K3E1-K5E3-ID-...   (22 ops joined by '-')
  padnas evaluate --supernet runs/supernet --random 20 --json
  padnas evaluate --supernet runs/supernet --arch ARCH --split test --no-recalibrate
  padnas evaluate --supernet runs/s1 --random 40 --seed 7 --split holdout --holdout-images 20000"""
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
@click.option(
    "--split",
    type=click.Choice(["search", "val", "test", "holdout"]),
    default="search",
    show_default=True,
    help="search: the images a search with the supernet's preset scores on (the quick "
    "preset's 5,000 held-out images, the same for every seed; the validation split where the "
    "preset names none or the data keeps too few); val: the run's validation split (carved with "
    "its seed); test: the test set; holdout: --holdout-images training images no run of this "
    "proxy size trains or validates on, the same for every seed.",
)
@click.option(
    "--holdout-images",
    type=int,
    default=10000,
    show_default=True,
    help="Size of the holdout split (a multiple of the classes).",
)
@click.option("--recal-images", type=int, default=None, help="BN recalibration images [preset's].")
@click.option("--recalibrate/--no-recalibrate", default=True, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Recalibration/random seed.")
@json_option
@accelerator_option
@precision_option
@threads_option
@deterministic_option
@verbose_option
@handle_errors
def evaluate(
    ckpt,
    archs,
    n_random,
    data,
    split,
    holdout_images,
    recal_images,
    recalibrate,
    seed,
    as_json,
    device,
    precision,
    threads,
    deterministic,
    verbose,
) -> None:
    """One-shot accuracy of architectures on a trained supernet (BN recalibrated)."""
    from dataclasses import replace

    import numpy as np

    from padnas.data.datasets import load_data
    from padnas.nn.complexity import macs_params
    from padnas.search.oneshot import OneShotEvaluator, held_out_images
    from padnas.train.checkpoint import load_supernet
    from padnas.train.config import TrainConfig
    from padnas.train.distributed import resolve_device

    device = check_deterministic(deterministic, threads, device)
    enter_deterministic(deterministic)
    set_threads(threads)
    if not archs and n_random <= 0:
        raise UsageError("give --arch ARCH (repeatable) or --random N")
    net, meta = load_supernet(ckpt)
    sp = net.space
    chosen = [sp.validate(a) for a in archs]
    rng = np.random.default_rng(seed)
    chosen += [sp.sample(rng) for _ in range(n_random)]
    # --split says what is scored; "search" resolves to what the preset's search scores on
    cfg = with_precision(TrainConfig.from_dict(meta["config"]), precision, device)
    searched, cfg = cfg, cfg.replace(eval_images=0)
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
    if split == "search":
        images = held_out_images(searched, bundle)
        split, holdout_images = ("holdout", images) if images else ("val", 0)
    if split == "holdout":
        bundle = replace(bundle, val=bundle.holdout(holdout_images))
    net.to(resolve_device(device))
    ev_split = "val" if split == "holdout" else split
    ev = OneShotEvaluator.from_config(net, bundle, cfg, seed=seed, split=ev_split, progress=True)
    click.echo(
        f"scored on {len(getattr(bundle, ev_split))} {split} images of {bundle.spec}; "
        f"a search with this supernet's preset ranks by one-shot {cfg.rank_by.replace('_', '-')}",
        err=True,
    )
    results = []
    for arch in chosen:
        acc = ev.evaluate(arch, recalibrate=recalibrate)
        loglik = ev.log_likelihood(arch, recalibrate=recalibrate)
        macs, params = macs_params(sp, arch)
        results.append(
            {
                "arch": str(arch),
                "accuracy": acc,
                "log_likelihood": loglik,
                "macs": macs,
                "params": params,
            }
        )
        if not as_json:  # each line as soon as it is known; the document once all are
            click.echo(
                f"{acc:.4f}  loglik {loglik:+.4f}  {macs / 1e6:6.1f}M MACs  "
                f"{params / 1e6:5.2f}M params  {arch}"
            )
    if as_json:
        doc = {
            "supernet": str(ckpt),
            "space": sp.family,
            "data": bundle.spec,
            "split": split,
            "images": len(getattr(bundle, ev_split)),
            "rank_by": cfg.rank_by,
            "recalibrated": recalibrate,
            "recal_images": cfg.recal_images if recalibrate else None,
            "precision": cfg.precision,
            "seed": seed,
            "deterministic": deterministic,
        }
        echo_json({**doc, "results": results})
