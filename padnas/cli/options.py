"""Options shared by the ``padnas`` commands, each declared once (one spelling, one help), and
the set-up they imply (threads, precision, the deterministic mode)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import click

from padnas.core.cli import renamed_option
from padnas.core.errors import UsageError
from padnas.train.config import SAMPLERS


def accelerator_option(func: Callable) -> Callable:
    """``--accelerator`` (as PyTorch Lightning calls it): the torch device that trains and
    evaluates. ``--device`` means a device profile in ``padnas-latency``; here it is the old
    spelling of this option."""
    return renamed_option(
        "--accelerator",
        "--device",
        "device",
        default="auto",
        show_default=True,
        help="Torch device: auto, cpu, cuda, cuda:1...",
    )(func)


precision_option = click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16", "auto"], case_sensitive=False),
    default="auto",
    show_default=True,
    help="Autocast precision: auto = bf16 on GPUs that support it, fp32 elsewhere; fp16 uses a "
    "loss scaler and needs a GPU; bf16 runs on CPUs too (correct, but slow without native bf16). "
    "Recorded in the checkpoint and config.json.",
)


sampler_option = click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    default=None,
    help="Override the preset's supernet path sampler: uniform (SPOS, one path a step), fair "
    "(FairNAS: every op of every layer once a step), sandwich (BigNAS: the largest, the smallest "
    "and two random paths) or transitions (a path and two that redraw only the transition "
    "layers); a step's gradients are summed and it costs one pass per path.",
)

dropped_strides_option = click.option(
    "--dropped-strides",
    type=click.IntRange(0, 5),
    default=None,
    help="Override how many of the network's first stride-2 downsamplings (the stem's first) "
    "the proxy runs at stride 1: 2 keeps a 32-px proxy's searchable layers on 4x4 maps or "
    "larger, where kernels 3, 5 and 7 differ (about 8x the training CPU).",
)


DATA_HELP = (
    "fashion (default: Fashion-MNIST, Debian's dataset-fashion-mnist), fashion:DIR, mnist5k "
    "(embedded), digits, or imagefolder:PATH (PATH/train, PATH/val)."
)

data_option = click.option("--data", default="fashion", show_default=True, help=DATA_HELP)

threads_option = click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch intra-op threads (0 = torch's default). The proxy-sized nets gain nothing from "
    "more, and two threads stall on every op while another process holds one of two cores.",
)

verbose_option = click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")

DETERMINISTIC_FLAG = "--deterministic"

deterministic_option = click.option(
    DETERMINISTIC_FLAG,
    is_flag=True,
    help="The same result on any CPU: portable kernels (ATen default, oneDNN SSE4.1, MKL "
    "CBWR=COMPATIBLE), one thread, deterministic algorithms; CPU only, slower. Recorded; a "
    "resumed run keeps its mode.",
)


def relaunch_deterministic(argv: Sequence[str]) -> None:
    """Re-execute ``padnas ARGV`` in the pinned environment when ``--deterministic`` is among
    the arguments and this process's environment is not pinned yet (its variables are read
    when torch loads). The entry point calls this before parsing; returns when nothing is to
    be done."""
    from padnas.train.reproducibility import is_pinned, pinned_environment

    if DETERMINISTIC_FLAG not in argv or is_pinned():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "padnas.cli", *argv]
    os.execve(sys.executable, command, pinned_environment(os.environ))


def check_deterministic(deterministic: bool, threads: int, device: str) -> str:
    """``--accelerator`` for the run: with ``--deterministic`` a CPU run on one thread (auto
    means cpu; another device or thread count is refused before any work starts)."""
    if not deterministic:
        return device
    if threads != 1:
        raise UsageError(f"{DETERMINISTIC_FLAG} runs one thread; drop --threads {threads}")
    if device not in ("auto", "cpu"):
        raise UsageError(
            f"{DETERMINISTIC_FLAG} pins CPU kernels; it runs on the CPU, not --accelerator {device}"
        )
    return "cpu"


def enter_deterministic(deterministic: bool) -> None:
    """Start the deterministic mode in this process (see
    :mod:`padnas.train.reproducibility`); nothing without ``--deterministic``."""
    if deterministic:
        from padnas.train.reproducibility import enter_deterministic_mode

        enter_deterministic_mode()


def check_threads(threads: int) -> int:
    """``--threads`` as given, refused when negative (before any work starts)."""
    if threads < 0:
        raise UsageError(f"--threads must be >= 0, got {threads}")
    return threads


def set_threads(threads: int) -> None:
    """Apply ``--threads`` to torch (0 keeps torch's default)."""
    if check_threads(threads):
        import torch

        torch.set_num_threads(threads)


def with_precision(cfg, precision: str, device: str, ctx=None):
    """``cfg`` with ``--precision`` resolved for the device (recorded in the checkpoint)."""
    from padnas.train.distributed import resolve_device
    from padnas.train.precision import resolve_precision

    return cfg.replace(precision=resolve_precision(precision, resolve_device(device, ctx)).name)
