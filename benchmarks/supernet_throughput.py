"""Supernet and stand-alone training speed, one-shot evaluation speed, and what they project to.

Two modes, by ``--preset``:

* ``quick`` (default; CPU): the quick preset on mnist5k, as before: a supernet training step along
  a sampled path (forward, backward, SGD over the whole supernet's optimizer, as
  ``train_supernet`` does) against the stand-alone ChildNet of the same path on the same batch,
  interleaved path by path, alternating which goes first, so both see the same machine load
  (medians and their ratio; target <= 1.15); a real epoch of ``train_supernet`` and from it the
  quick preset's 4-stage supernet training time; one-shot evaluations per minute
  (``OneShotEvaluator``: BN recalibration, then validation accuracy).
* ``paper`` (meant for ``--accelerator cuda``): the paper preset's network (224x224, width 1.0,
  1,000 classes) on synthetic ImageNet-shaped batches, so no dataset is needed: img/s of supernet
  and stand-alone steps for each ``--precision``, one-shot evaluation speed, peak GPU memory, and
  the projected wall time of the paper preset's supernet training (240 epochs over ImageNet's
  1,231,167 training images left after holding out 50 per class) and of its three CES runs
  (64 x 40 evaluations each, every evaluation recalibrating BN on 2,000 images and measuring
  50,000 validation images). Projections assume the measured step rate and a loader that keeps
  up (see ``benchmarks/loader_throughput.py``); the 8-GPU line further assumes linear scaling.

On a GPU, cudnn autotuning makes the first run of every op shape slow, so every op of every
layer is run (forward and backward, in each precision) before anything is timed, and timed
regions are bracketed by ``torch.cuda.synchronize()``. Autocast and the fp16 loss scaler come from
:mod:`padnas.train.precision`, exactly as training uses them.

    python benchmarks/supernet_throughput.py [--space basic|large|v3] [--threads 1] [--rounds 6]
    python benchmarks/supernet_throughput.py --accelerator cuda --preset paper --precision fp32,bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from padnas.data.datasets import DataBundle, TensorSplit, load_data
from padnas.run.settings import PRESETS
from padnas.search.oneshot import OneShotEvaluator
from padnas.space import SPACE_NAMES, get_space
from padnas.train.loop import build_supernet, make_optimizer, train_supernet
from padnas.train.precision import resolve_precision

IMAGENET_TRAIN = 1_281_167 - 1000 * 50  # Section 4.1 holds 50 images per class out of training
IMAGENET_VAL_HELDOUT = 1000 * 50


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(model, opt, scaler, prec, x, y, *args) -> float:
    _sync(x.device)
    t = time.perf_counter()
    with prec.autocast():
        loss = nn.functional.cross_entropy(model(x, *args), y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    _sync(x.device)
    return time.perf_counter() - t


def covering_paths(sp):
    """Paths that together run every op of every layer (for warming up cudnn)."""
    width = max(len(ops) for ops in sp.layer_ops)
    return [sp.validate("-".join(ops[j % len(ops)] for ops in sp.layer_ops)) for j in range(width)]


def step_times(net, sp, cfg, x, y, prec, rounds: int, paths: int, warm: bool):
    """Medians of interleaved supernet and stand-alone steps (s) and their per-pair ratios."""
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    opt, scaler = make_optimizer(net, 0.005, cfg), prec.grad_scaler()
    if warm:
        for arch in covering_paths(sp):
            _step(net, opt, scaler, prec, x, y, arch)
    super_t, child_t = [], []
    for r in range(rounds + 1):  # round 0 warms up both
        for i in range(paths):
            arch = sp.sample(np.random.default_rng([r, i]))
            child = net.extract(arch).train().to(x.device, memory_format=fmt)
            copt, cscaler = make_optimizer(child, 0.005, cfg), prec.grad_scaler()
            _step(child, copt, cscaler, prec, x, y)  # first touch of fresh modules, not timed
            pair = [
                ("s", lambda a=arch: _step(net, opt, scaler, prec, x, y, a)),
                ("c", lambda c=child, o=copt, s=cscaler: _step(c, o, s, prec, x, y)),
            ]
            for name, fn in pair if i % 2 == 0 else pair[::-1]:
                dt = fn()
                if r > 0:
                    (super_t if name == "s" else child_t).append(dt)
    ratios = [s / c for s, c in zip(super_t, child_t, strict=True)]
    return statistics.median(super_t), statistics.median(child_t), ratios


def synthetic_bundle(n_train: int, n_val: int, resolution: int, classes: int) -> DataBundle:
    """ImageNet-shaped random images (timing only: accuracy is meaningless here)."""
    rng = np.random.default_rng(0)

    def split(n):
        images = torch.from_numpy(rng.integers(0, 256, (n, 1, resolution, resolution), np.uint8))
        return TensorSplit(images, rng.integers(0, classes, n), 0.45, 0.25)

    names = tuple(str(c) for c in range(classes))
    return DataBundle(
        "synthetic", split(n_train), split(n_val), split(8), classes, resolution, names
    )


def quick(args, device) -> None:
    cfg = PRESETS["quick"].train
    load_before = os.getloadavg()[0]
    data = load_data("mnist5k", cfg.resolution, seed=0)
    sp = get_space(args.space)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    x, y = data.train.fetch(np.random.default_rng(0).permutation(len(data.train))[: cfg.batch_size])
    x, y = x.to(device, memory_format=fmt), y.to(device)
    for name in args.precision:
        prec = resolve_precision(name, device)
        net = build_supernet(sp, cfg, data.num_classes, seed=0).train()
        net.to(device, memory_format=fmt)
        s_med, c_med, ratios = step_times(
            net, sp, cfg, x, y, prec, args.rounds, args.paths, warm=device.type == "cuda"
        )
        print(
            f"[{prec.name}] per-pair ratio p10/p90: {np.percentile(ratios, 10):.3f} / "
            f"{np.percentile(ratios, 90):.3f}"
        )
        print(f"[{prec.name}] supernet_step_ms: {s_med * 1e3:.1f}")
        print(f"[{prec.name}] childnet_step_ms: {c_med * 1e3:.1f}")
        print(f"[{prec.name}] supernet_vs_childnet_step_ratio: {s_med / c_med:.3f}")
    # a real epoch of train_supernet and the one-shot evaluation rate, in the first precision
    prec = resolve_precision(args.precision[0], device)
    qcfg = cfg.replace(precision=prec.name)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build_supernet(sp, qcfg, data.num_classes, seed=1)
        t = time.perf_counter()
        train_supernet(fresh, data, qcfg, tmp, seed=0, epochs=1, progress=False, device=device)
        epoch_s = time.perf_counter() - t
    net = build_supernet(sp, qcfg, data.num_classes, seed=0).to(device).eval()
    ev = OneShotEvaluator.from_config(net, data, qcfg, seed=0)
    archs = [sp.sample(np.random.default_rng([99, i])) for i in range(args.evals + 2)]
    ev.accuracy(archs[:2])  # warm-up
    _sync(device)
    t = time.perf_counter()
    ev.accuracy(archs[2:])
    _sync(device)
    eval_s = (time.perf_counter() - t) / args.evals
    print(
        f"space {sp.family}, quick preset (resolution {cfg.resolution}, width {cfg.width_mult}, "
        f"batch {cfg.batch_size}), {device}, {torch.get_num_threads()} thread(s); recalibration "
        f"{cfg.recal_images} images, validation {len(data.val)} images"
    )
    print(f"load_average_before: {load_before:.2f}")
    print(f"load_average_after: {os.getloadavg()[0]:.2f}")
    print(f"[{prec.name}] quick_epoch_s: {epoch_s:.1f}")
    print(
        f"[{prec.name}] quick_supernet_training_all_stages_s: "
        f"{epoch_s * cfg.supernet_epochs_total:.0f}"
    )
    print(f"[{prec.name}] oneshot_eval_ms: {eval_s * 1e3:.0f}")
    print(f"[{prec.name}] oneshot_evals_per_min: {60 / eval_s:.0f}")


def paper(args, device) -> None:
    cfg = PRESETS["paper"].train
    sp = get_space(args.space)
    batch = args.batch or (256 if device.type == "cuda" else 32)
    cfg = cfg.replace(batch_size=batch, recal_images=args.recal_images or cfg.recal_images)
    cfg = cfg.replace(recal_batch_size=min(cfg.recal_batch_size, cfg.recal_images))
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 3, cfg.resolution, cfg.resolution, generator=g)
    x = x.to(device, memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), generator=g).to(device)
    ces = PRESETS["paper"].ces
    searches = len(cfg.supernet_stages)  # M = 4: CES after each of the 3 training stages
    evals = ces.budget * searches
    per_eval_images = cfg.recal_images + IMAGENET_VAL_HELDOUT
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"space {sp.family}, paper preset: {cfg.resolution}x{cfg.resolution}, width "
        f"{cfg.width_mult}, batch {batch} per device, {device}{gpu}"
    )
    rates = {}
    for name in args.precision:
        prec = resolve_precision(name, device)
        net = build_supernet(sp, cfg.replace(precision=prec.name), 1000, seed=0).train()
        net.to(device, memory_format=fmt)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        s_med, c_med, _ = step_times(
            net, sp, cfg, x, y, prec, args.rounds, args.paths, warm=device.type == "cuda"
        )
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        # one-shot evaluation: forward-only rate (recalibration and validation), then the real
        # evaluator on a synthetic set to check the formula
        bundle = synthetic_bundle(cfg.recal_images, args.val_images, cfg.resolution, 1000)
        ev = OneShotEvaluator.from_config(net.eval(), bundle, cfg.replace(precision=prec.name))
        archs = [sp.sample(np.random.default_rng([99, i])) for i in range(args.evals + 1)]
        ev.accuracy(covering_paths(sp) if device.type == "cuda" else archs[:1])  # warm-up
        _sync(device)
        t = time.perf_counter()
        ev.accuracy(archs[1:])
        _sync(device)
        eval_s = (time.perf_counter() - t) / args.evals
        eval_full_s = eval_s * per_eval_images / (cfg.recal_images + args.val_images)
        train_h = cfg.supernet_epochs_total * IMAGENET_TRAIN / (batch / s_med) / 3600
        ces_h = evals * eval_full_s / 3600
        rates[prec.name] = batch / s_med
        p = f"[{prec.name}]"
        print(f"{p} supernet_step_img_per_s: {batch / s_med:.0f}  (step {s_med * 1e3:.1f} ms)")
        print(f"{p} childnet_step_img_per_s: {batch / c_med:.0f}  (step {c_med * 1e3:.1f} ms)")
        if peak is not None:
            print(f"{p} peak_gpu_memory_gib (supernet + stand-alone steps): {peak:.1f}")
        print(
            f"{p} oneshot_eval_s (recal {cfg.recal_images} + val {args.val_images} images): "
            f"{eval_s:.2f}"
        )
        print(
            f"{p} oneshot_evals_per_min at ImageNet size (recal {cfg.recal_images} + val "
            f"{IMAGENET_VAL_HELDOUT}), projected: {60 / eval_full_s:.1f}"
        )
        print(f"{p} projected_supernet_training_h (240 epochs, 1 device): {train_h:.1f}")
        print(
            f"{p} projected_ces_h ({searches} searches x {ces.budget} evaluations, 1 device): "
            f"{ces_h:.1f}"
        )
        print(
            f"{p} projected_total_h: 1 device {train_h + ces_h:.1f}; 8 devices if linear "
            f"{(train_h + ces_h) / 8:.1f}"
        )
        del net, ev, bundle
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "fp32" in rates and "bf16" in rates:
        print(f"bf16_vs_fp32_supernet_speedup: {rates['bf16'] / rates['fp32']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerator", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--preset", default="quick", choices=["quick", "paper"])
    ap.add_argument(
        "--precision", default=None, help="comma-separated [cuda: fp32,bf16; cpu: fp32]"
    )
    ap.add_argument("--space", default="basic", choices=SPACE_NAMES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paths", type=int, default=8, help="sampled paths per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--evals", type=int, default=40, help="architectures for eval/min")
    ap.add_argument("--batch", type=int, default=None, help="paper: batch per device [256 cuda]")
    ap.add_argument("--val-images", type=int, default=5000, help="paper: synthetic val images")
    ap.add_argument("--recal-images", type=int, default=None, help="paper: [preset's 2,000]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.accelerator)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: --accelerator cuda but torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
    default = "fp32,bf16" if device.type == "cuda" else "fp32"
    args.precision = (args.precision or default).split(",")
    (paper if args.preset == "paper" else quick)(args, device)


if __name__ == "__main__":
    main()
