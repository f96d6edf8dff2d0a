"""Shared plumbing for the thin click layers of ``padnas`` and ``padnas-latency``.

Expected errors become one line on stderr and an exit code, never a traceback: 2 for bad usage
or bad input (wrong space, malformed arch, invalid file), 1 for a runtime failure (a device that
stops answering, a conversion that fails). ``--verbose`` keeps the traceback for bug reports.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable

import click


class UsageError(ValueError):
    """Bad input from the user: exit code 2."""


class RuntimeFailure(RuntimeError):
    """A job failed for reasons outside the user's input: exit code 1."""


# Exception types (by class name, so this module imports nothing heavy) that mean bad input.
USAGE_ERRORS = {
    "UsageError",
    "SpaceError",
    "LutError",
    "DataError",
    "ProfileError",
    "RunDirError",
    "PrecisionError",
}


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silence TensorFlow/absl chatter unless ``--verbose``; must run before TF is imported."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def handle_errors(func: Callable) -> Callable:
    """Turn expected exceptions into a one-line message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        verbose = bool(kwargs.get("verbose")) or os.environ.get("PADNAS_DEBUG") == "1"
        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo(
                "interrupted: everything measured or trained so far is kept; "
                "run the same command again to resume",
                err=True,
            )
            sys.exit(130)
        except FileNotFoundError as exc:
            if verbose:
                traceback.print_exc()
            name = exc.filename or str(exc)
            click.echo(f"error: file not found: {name}", err=True)
            sys.exit(2)
        except Exception as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"error: {describe(exc)}", err=True)
            sys.exit(exit_code(exc))

    return wrapper


def exit_code(exc: BaseException) -> int:
    """2 for bad input, 1 for anything else."""
    return 2 if any(c.__name__ in USAGE_ERRORS for c in type(exc).__mro__) else 1


def describe(exc: BaseException) -> str:
    """One line: our own errors speak for themselves; anything else keeps its type name."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    ours = type(exc).__module__.split(".")[0] in ("padnas", "latency")
    if ours or isinstance(exc, OSError):
        return first
    return f"{type(exc).__name__}: {first} (rerun with --verbose for the traceback)"
