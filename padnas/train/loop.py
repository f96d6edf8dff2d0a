"""Supernet (SPOS) and stand-alone training: one loop, presets, checkpoints, DDP.

SPOS trains a supernet by sampling one path uniformly per step, independently per layer, from the
current (possibly pruned) layer-wise space. The path of step ``s`` in epoch ``e`` comes from a
generator seeded by ``(seed, e, s)`` and the data order of epoch ``e`` from one seeded by
``(seed, e)``. Nothing random is carried in process state, so

- every DDP rank samples the same path without communicating (each takes its slice of the same
  global batch), and
- a run resumed from a checkpoint (model, optimizer, position) ends with bit-identical weights to an
  uninterrupted one.

Optimiser as Section 4.1: momentum SGD 0.9, weight decay 4e-5 (on conv/linear weights, not on BN
or biases), learning rate decayed linearly to zero per step. Gradients are set to ``None`` each
step, so ops off the sampled path get neither momentum nor decay that step (SPOS's single-path
semantics). Stand-alone training of one architecture uses the same loop with a fixed path.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from padnas.core import append_jsonl
from padnas.core.errors import UsageError
from padnas.core.progress import progress_bar
from padnas.data.datasets import DataBundle
from padnas.data.loader import BatchFeeder
from padnas.nn.initialize import grow_op, init_weights
from padnas.nn.ops import IBConv
from padnas.nn.supernet import ChildNet, Supernet
from padnas.space import Arch, Proxy, SearchSpace, parse_op
from padnas.train.checkpoint import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from padnas.train.config import SAMPLERS, TrainConfig
from padnas.train.distributed import (
    all_reduce_sum,
    broadcast_buffers,
    dist_context,
    resolve_device,
)
from padnas.train.precision import precision_of
from padnas.train.reproducibility import deterministic_mode

TRAIN_LOG = "train_log.jsonl"
#: uniform paths beside the largest and the smallest in a sandwich step (BigNAS uses 2)
SANDWICH_RANDOM = 2
#: paths a "transitions" step adds that redraw only the transition layers
TRANSITION_EXTRA = 2


# ---- models ------------------------------------------------------------------------------------
def build_supernet(
    space: SearchSpace, config: TrainConfig, num_classes: int, seed: int
) -> Supernet:
    """A freshly initialised supernet for ``config`` (see :mod:`padnas.nn.initialize`)."""
    net = Supernet(space, config.proxy(), num_classes)
    return init_weights(
        net, seed, entangle=config.entangled_init, zero_residual=config.zero_init_residual
    )


def build_child(
    space: SearchSpace, arch: Arch | str, config: TrainConfig, num_classes: int, seed: int
) -> ChildNet:
    """A freshly initialised stand-alone network of ``arch``."""
    net = ChildNet(space, arch, config.proxy(), num_classes)
    return init_weights(net, seed, zero_residual=config.zero_init_residual)


# ---- training ----------------------------------------------------------------------------------
StepHook = Callable[[int, float], None]


def train_supernet(
    supernet: Supernet,
    data: DataBundle,
    config: TrainConfig,
    ckpt_dir: str | Path,
    *,
    seed: int,
    resume: bool = True,
    epochs: int | None = None,
    lr: float | None = None,
    stage: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> Supernet:
    """Train ``supernet`` in place with single-path sampling (``config.sampler``); return it.

    ``epochs``/``lr`` default to ``config.supernet_stage(stage)``. A checkpoint is written to
    ``ckpt_dir`` every epoch (and every ``config.ckpt_every_steps`` steps); with ``resume`` an
    existing one is continued, and a finished one just loaded. Pass a different ``seed`` per
    pipeline stage if the stages should not replay the same data order and paths.
    """
    sched = config.supernet_stage(stage)
    space = supernet.space
    rngs = np.random.default_rng  # paths depend on (seed, epoch, step) only
    if config.sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {config.sampler!r}: use one of {', '.join(SAMPLERS)}")

    # the warm-up belongs to the initial supernet: a finetune starts from trained ops
    warm = warmup_ops(space) if config.warmup_epochs > 0 and stage == 0 else {}

    def path(epoch: int, step: int) -> list[Arch]:
        rng = rngs([seed, epoch, step])
        genomes = {
            "uniform": lambda: space.sample_genomes(rng, 1),
            "fair": lambda: space.fair_genomes(rng),
            "sandwich": lambda: space.sandwich_genomes(rng, SANDWICH_RANDOM),
            "transitions": lambda: space.transition_genomes(rng, TRANSITION_EXTRA),
        }[config.sampler]()
        if warm and epoch < config.warmup_epochs:
            for j, op in warm.items():
                genomes[:, j] = op
        elif (epoch, step) == (config.warmup_epochs, 0) and warm:
            # the first step after the warm-up (also when a run resumes exactly there; a run
            # resumed later has the grown weights in its checkpoint)
            grow_transitions(supernet, warm)
        return [space.decode(g) for g in genomes]

    _fit(
        supernet,
        data,
        config,
        Path(ckpt_dir),
        kind="supernet",
        arch=None,
        path_fn=path,
        seed=seed,
        epochs=sched.epochs if epochs is None else epochs,
        lr=sched.lr if lr is None else lr,
        resume=resume,
        device=device,
        progress=progress,
        on_step=on_step,
    )
    return supernet


def train_arch(
    space: SearchSpace,
    arch: Arch | str,
    data: DataBundle,
    config: TrainConfig,
    ckpt_dir: str | Path,
    *,
    seed: int,
    resume: bool = True,
    epochs: int | None = None,
    lr: float | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: StepHook | None = None,
) -> ChildNet:
    """Train one architecture from scratch (stand-alone) with the same loop; return the net."""
    arch = space.validate(arch)
    model = build_child(space, arch, config, data.num_classes, seed)
    _fit(
        model,
        data,
        config,
        Path(ckpt_dir),
        kind="child",
        arch=arch,
        path_fn=None,
        seed=seed,
        epochs=config.standalone.epochs if epochs is None else epochs,
        lr=config.standalone.lr if lr is None else lr,
        resume=resume,
        device=device,
        progress=progress,
        on_step=on_step,
    )
    return model


def warmup_ops(space: SearchSpace) -> dict[int, int]:
    """``{layer: op index}``: each searchable transition layer's smallest op (lowest expansion,
    then kernel), the one a warm-up trains alone and every other op of the layer grows from."""
    return {
        j: min(range(len(ops)), key=lambda i, ops=ops: parse_op(ops[i])[::-1])
        for j in space.transition_layers
        if len(ops := space.layer_ops[j]) > 1
    }


def grow_transitions(supernet: Supernet, warm: dict[int, int]) -> None:
    """Every other op of each warmed-up layer becomes an exact copy of the warmed-up op (where
    its shape can hold it: :func:`padnas.nn.initialize.grow_op`)."""
    for j, i in warm.items():
        block = supernet.blocks[j]
        src = block[supernet.space.layer_ops[j][i]]
        for dst in block.values():
            if dst is not src and isinstance(dst, IBConv) and isinstance(src, IBConv):
                grow_op(src, dst)


def make_optimizer(model: nn.Module, lr: float, config: TrainConfig) -> torch.optim.SGD:
    """Momentum SGD with weight decay on conv/linear weights only; a supernet's transition
    layers take ``config.transition_lr_mult`` times the rate (each group's ``lr_mult``)."""
    slow = set()
    if isinstance(model, Supernet) and config.transition_lr_mult != 1.0:
        slow = {id(p) for j in model.space.transition_layers for p in model.blocks[j].parameters()}
    groups: dict[tuple[float, bool], list] = {}  # (lr factor, decayed) -> parameters
    for p in model.parameters():
        mult = config.transition_lr_mult if id(p) in slow else 1.0
        groups.setdefault((mult, p.ndim > 1), []).append(p)
    return torch.optim.SGD(
        [
            {
                "params": params,
                "weight_decay": config.weight_decay if decayed else 0.0,
                "lr": lr * mult,
                "lr_mult": mult,
            }
            for (mult, decayed), params in groups.items()
        ],
        lr=lr,
        momentum=config.momentum,
    )


def _meta(model, data, config, kind, arch, seed, epochs, lr, steps_per_epoch) -> dict:
    return {
        "kind": kind,
        "arch": None if arch is None else str(arch),
        "space": model.space.to_dict(),
        "proxy": dataclasses.asdict(model.proxy),
        "num_classes": model.num_classes,
        "data": data.spec,
        "data_seed": data.seed,
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "steps_per_epoch": steps_per_epoch,
        "config": config.to_dict(),
        "deterministic": deterministic_mode(),
    }


# Fields that must agree for a checkpoint to be continued.
_RESUME_KEYS = (
    "kind",
    "arch",
    "num_classes",
    "data",
    "data_seed",
    "seed",
    "epochs",
    "lr",
    "steps_per_epoch",
)


def _check_resumable(path: Path, saved: dict, wanted: dict) -> None:
    mode = bool(saved.get("deterministic", False))  # older checkpoints: the normal mode
    if mode != wanted["deterministic"]:
        how = "with" if mode else "without"
        raise CheckpointError(
            f"{path} was trained {how} --deterministic and a training cannot mix modes: "
            f"continue it {how} --deterministic, or use another output directory or --no-resume"
        )
    diffs = [k for k in _RESUME_KEYS if saved.get(k) != wanted.get(k)]
    if saved["space"]["signature"] != wanted["space"]["signature"]:
        diffs.append("space")
    if _proxy_of(saved) != Proxy(**wanted["proxy"]):
        diffs.append("proxy")
    old = {"precision": "fp32"}  # checkpoints from before --precision trained in fp32
    for k in ("batch_size", "momentum", "weight_decay", "label_smoothing", "precision"):
        if saved["config"].get(k, old.get(k)) != wanted["config"].get(k):
            diffs.append(k)
    if diffs:
        detail = ", ".join(f"{k}: {saved.get(k, '?')} vs {wanted.get(k, '?')}" for k in diffs[:3])
        raise CheckpointError(
            f"{path} belongs to another training ({detail}); "
            "use another output directory or --no-resume to start over"
        )


def _proxy_of(meta: dict) -> Proxy | None:
    """The proxy a checkpoint's metadata names (older ones name no dropped strides), or None."""
    try:
        return Proxy(**meta["proxy"])
    except (TypeError, ValueError):
        return None


def _fit(
    model: nn.Module,
    data: DataBundle,
    config: TrainConfig,
    ckpt_dir: Path,
    *,
    kind: str,
    arch: Arch | None,
    path_fn: Callable[[int, int], list[Arch]] | None,
    seed: int,
    epochs: int,
    lr: float,
    resume: bool,
    device,
    progress: bool,
    on_step: StepHook | None,
) -> None:
    ctx = dist_context()
    device = resolve_device(device, ctx)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt)
    precision = precision_of(config.precision, device)
    scaler = precision.grad_scaler()  # active for fp16 only
    n, batch = len(data.train), config.batch_size
    if batch % ctx.world_size:
        raise UsageError(f"batch size {batch} is not divisible by {ctx.world_size} processes")
    steps_per_epoch = max(1, n // batch)  # the incomplete last batch is dropped (reshuffled)
    total_steps = epochs * steps_per_epoch
    opt = make_optimizer(model, lr, config)
    meta = _meta(model, data, config, kind, arch, seed, epochs, lr, steps_per_epoch)
    ckpt_path = ckpt_dir / CHECKPOINT
    start = _resume(ckpt_path, meta, model, opt, scaler) if resume and ckpt_path.exists() else 0
    if start == 0 and ctx.is_main:
        (ckpt_dir / TRAIN_LOG).unlink(missing_ok=True)  # a fresh start: no stale epochs

    def checkpoint(step: int) -> None:
        if ctx.is_main:
            _save(ckpt_path, meta, model, opt, scaler, step, done=step >= total_steps)

    if start >= total_steps:
        if start == 0:
            checkpoint(0)  # zero epochs: record the untrained state all the same
        model.eval()
        return
    net = model
    if ctx.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=path_fn is not None,
        )
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    model.train()
    step = start
    with (
        progress_bar(
            total=total_steps,
            initial=start,
            desc=f"train {kind}",
            unit="step",
            disable=not (progress and ctx.is_main),
            dynamic_ncols=True,
        ) as bar,
        # persistent decoding workers for image folders, pinned batches for a GPU
        BatchFeeder(data.train, config.num_workers, pin_memory=device.type == "cuda") as feed,
    ):
        while step < total_steps:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            batches = _epoch_batches(seed, epoch, n, batch, in_epoch, steps_per_epoch, ctx)
            t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
            for x, y in feed(batches, epoch):
                for group in opt.param_groups:  # linear decay to 0
                    group["lr"] = lr * group.get("lr_mult", 1.0) * (1.0 - step / total_steps)
                x = x.to(device, non_blocking=True, memory_format=fmt)
                y = y.to(device, non_blocking=True)
                paths = path_fn(epoch, in_epoch) if path_fn else None
                out, loss = _sgd_step(net, criterion, opt, scaler, precision, x, y, paths)
                step, in_epoch = step + 1, in_epoch + 1
                seen += len(y)
                loss_value = float(loss.detach())
                loss_sum += loss_value * len(y)
                correct += int((out.argmax(1) == y).sum())
                bar.update(1)
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{loss_sum / seen:.3f}",
                    acc=f"{correct / seen:.3f}",
                    refresh=False,
                )
                if in_epoch == steps_per_epoch:
                    # DDP broadcasts rank 0's BN statistics before each forward; once more
                    # here so every rank holds exactly the checkpointed state.
                    broadcast_buffers(model, ctx)
                    checkpoint(step)
                    _log_epoch(
                        ckpt_dir, ctx, epoch, step, seen, loss_sum, correct, lr, t0, total_steps
                    )
                elif config.ckpt_every_steps and step % config.ckpt_every_steps == 0:
                    checkpoint(step)
                if on_step is not None:
                    on_step(step, loss_value)
    model.eval()


def _resume(ckpt_path: Path, meta: dict, model: nn.Module, opt, scaler) -> int:
    """Load a run's checkpoint into the model, optimiser and loss scaler; the step it reached."""
    ckpt = load_checkpoint(ckpt_path)
    _check_resumable(ckpt_path, ckpt["meta"], meta)
    try:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if "scaler" in ckpt:
            scaler.load_state_dict(ckpt["scaler"])
    except (KeyError, ValueError, TypeError, RuntimeError):
        raise CheckpointError(
            f"{ckpt_path}: the weights or optimiser state do not fit this run; it is damaged "
            "or was not written by padnas: delete it to start over"
        ) from None
    return ckpt["global_step"]


def _save(ckpt_path: Path, meta: dict, model: nn.Module, opt, scaler, step: int, *, done: bool):
    """Everything :func:`_resume` needs, written atomically (on CPU, whatever the device)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(
        ckpt_path,
        {
            "format": CHECKPOINT_FORMAT,
            "meta": meta,
            "model": state,
            "optimizer": _cpu(opt.state_dict()),
            "global_step": step,
            "done": done,
            **({"scaler": scaler.state_dict()} if scaler.is_enabled() else {}),
        },
    )


def _epoch_batches(seed, epoch, n, batch, first, steps_per_epoch, ctx) -> list[np.ndarray]:
    """This rank's image indices for steps ``first..`` of ``epoch``: a seeded permutation per
    epoch (so a resumed run sees the same batches), each global batch split across the ranks."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [
        np.array_split(perm[s * batch : (s + 1) * batch], ctx.world_size)[ctx.rank]
        for s in range(first, steps_per_epoch)
    ]


def _sgd_step(net, criterion, opt, scaler, precision, x, y, paths):
    """One optimisation step on batch ``(x, y)``: for a supernet along each of ``paths`` (their
    gradients summed, as FairNAS does), else the network itself; (logits, mean loss) of the
    last path."""
    opt.zero_grad(set_to_none=True)
    losses = []
    for path in paths or [None]:
        with precision.autocast():
            out = net(x, path) if path is not None else net(x)
            loss = criterion(out, y)
        scaler.scale(loss).backward()
        losses.append(loss.detach())
    scaler.step(opt)
    scaler.update()
    return out, torch.stack(losses).mean()


def _log_epoch(ckpt_dir, ctx, epoch, step, seen, loss_sum, correct, lr, t0, total_steps) -> None:
    seen, loss_sum, correct = all_reduce_sum([seen, loss_sum, correct], ctx)
    if ctx.is_main:
        record = {
            "epoch": epoch + 1,
            "step": step,
            "loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "lr_end": lr * (1.0 - step / total_steps),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        append_jsonl(ckpt_dir / TRAIN_LOG, [record])


def _cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj
