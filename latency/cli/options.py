"""Options and set-up shared by every ``padnas-latency`` command (one spelling, one meaning).

``--device`` here is always a device profile (host, mock, a profile name or JSON path); the torch
device of ``padnas`` is ``--accelerator``. ``--space`` takes the one choice list of
:data:`padnas.space.choice.SPACE_CHOICE`.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

from latency.variants import DEFAULT_PRECISION, PRECISIONS
from padnas.core import check_output
from padnas.core.cli import quiet_tensorflow
from padnas.space import DEPLOY_RESOLUTION
from padnas.space.choice import SPACE_CHOICE

SPACE = SPACE_CHOICE


def setup(verbose: bool) -> None:
    quiet_tensorflow(verbose)  # also sets the one verbosity switch for export workers
    # `kill` (SIGTERM) ends a long job like Ctrl-C does: through the same clean-up path
    signal.signal(signal.SIGTERM, terminate)


def check_outputs(*files: tuple[str, Path | None], store: Path | None = None) -> None:
    """Refuse every given output path (``(option, path)`` pairs; ``store`` is the ``--store``
    folder) that could not be written, before the command measures anything: a profile that
    ran for an hour must not fail at its last write."""
    for what, path in files:
        if path is not None:
            check_output(path, what)
    if store is not None:
        check_output(store, "--store", folder=True)


def terminate(signum, frame):
    raise KeyboardInterrupt


DEVICE_HELP = "Device: host, mock, a profile name (see `padnas-latency devices`) or a JSON path."


def device_option(f=None, *, required: bool = True):
    """``--device``; ``@device_option(required=False)`` where another argument can stand in."""

    def decorate(func):
        return click.option("--device", "-d", required=required, help=DEVICE_HELP)(func)

    return decorate(f) if f is not None else decorate


def store_option(f):
    return click.option(
        "--store",
        "store_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of the measurement stores [default: $PADNAS_CACHE/measurements].",
    )(f)


def precision_option(f):
    return click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default=DEFAULT_PRECISION,
        show_default=True,
        help="Precision of the timed files: fp32, or int8 (full-integer, calibrated on the "
        "task's images); each precision has its own store and LUT.",
    )(f)


def verbose_option(f):
    return click.option("--verbose", "-v", is_flag=True, help="Show TF logs and tracebacks.")(f)


def resolution_option(f):
    return click.option(
        "--resolution",
        "-r",
        type=int,
        default=DEPLOY_RESOLUTION,
        show_default=True,
        help="Input resolution (multiple of 32).",
    )(f)


def width_option(f):
    return click.option(
        "--width-mult", type=float, default=1.0, show_default=True, help="Width multiplier."
    )(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(f)
