"""Shared plumbing for the thin click layers of ``padnas`` and ``padnas-latency`` (CLI only).

Expected errors become one line on stderr and an exit code, never a traceback: the exit code
comes from the error's type (:func:`padnas.core.errors.exit_code`: 2 for bad usage or bad input,
1 for a runtime failure, 130 for Ctrl-C). ``--verbose`` keeps the traceback for bug reports.
Domain modules never import this module; they raise the errors of :mod:`padnas.core.errors`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import numbers
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click

from padnas.core.errors import (
    DEPRECATED_VERBOSE_ENV,
    INTERRUPTED_EXIT,
    USAGE_EXIT,
    VERBOSE_ENV,
    exit_code,
    set_verbose,
    verbose_enabled,
)


def quiet_tensorflow(verbose: bool = False) -> None:
    """Silence TensorFlow/absl chatter unless ``--verbose``; must run before TF is imported."""
    set_verbose(verbose)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def deprecated(old: str, new: str) -> None:
    """The one-line note for an old spelling that still works."""
    click.echo(f"note: {old} is deprecated; use {new}", err=True)


class CommandGroup(click.Group):
    """A click group whose usage errors (unknown option, bad choice) are one ``error:`` line
    and exit 2, like every other expected error of the two CLIs."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            click.echo(f"error: {exc.format_message()} (see --help)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def json_option(func: Callable) -> Callable:
    """``--json``, spelt and explained the same on every command that has it."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="One JSON document on stdout (fields: see docs/json-output.md).",
    )(func)


def echo_json(doc) -> None:
    """Print ``doc`` as the one document of a ``--json`` command. Strict JSON, so any parser
    reads it: an undefined figure (NaN, infinite) becomes ``null`` rather than the ``NaN``
    token Python would write, numpy numbers become plain ones, paths become strings."""
    click.echo(json.dumps(_strict(doc), indent=1, default=str, allow_nan=False))


def _strict(value):
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, bool | str | None):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def path_option(*decls: str, folder: bool = False, **kw):
    """An option naming a file (or, with ``folder``, a folder) as a :class:`~pathlib.Path`;
    ``None`` unless given."""
    kind = (
        click.Path(file_okay=False, path_type=Path)
        if folder
        else click.Path(dir_okay=False, path_type=Path)
    )
    kw.setdefault("default", None)
    return click.option(*decls, type=kind, **kw)


def profile_option(*decls: str, **kw):
    """An option naming a file or a device profile by name (``--lut pixel3``): a folder of that
    name in the working directory must not stop the name from reaching the profile lookup, so
    click checks nothing here and the lookup decides (a file wins, then a profile name)."""
    kw.setdefault("default", None)
    return click.option(*decls, type=click.Path(path_type=Path), **kw)


def renamed_option(new: str, old: str, dest: str, **kw):
    """Option ``new`` (stored as ``dest``); the former spelling ``old`` still works, hidden,
    with a one-line deprecation note on stderr."""
    hidden = f"{dest}_deprecated_spelling"

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            value = kwargs.pop(hidden, None)
            if value is not None:
                deprecated(old, new)
                kwargs[dest] = value
            return func(*args, **kwargs)

        wrapper = click.option(old, hidden, hidden=True, default=None, type=kw.get("type"))(wrapper)
        return click.option(new, dest, **kw)(wrapper)

    return decorate


def handle_errors(func: Callable) -> Callable:
    """Turn expected exceptions into a one-line message and an exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if os.environ.get(DEPRECATED_VERBOSE_ENV) == "1":
            deprecated(f"{DEPRECATED_VERBOSE_ENV}=1", f"{VERBOSE_ENV}=1 or --verbose")
        verbose = bool(kwargs.get("verbose")) or verbose_enabled()
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
            sys.exit(INTERRUPTED_EXIT)
        except FileNotFoundError as exc:
            if verbose:
                traceback.print_exc()
            name = exc.filename or str(exc)
            click.echo(f"error: file not found: {name}", err=True)
            sys.exit(USAGE_EXIT)
        except Exception as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"error: {describe(exc)}", err=True)
            sys.exit(exit_code(exc))

    return wrapper


def describe(exc: BaseException) -> str:
    """One line: our own errors speak for themselves (a parameter they name is shown as the
    option the user typed); anything else keeps its type name."""
    text = _as_option(exc) or str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    ours = type(exc).__module__.split(".")[0] in ("padnas", "latency")
    if ours or isinstance(exc, OSError):
        return first
    return f"{type(exc).__name__}: {first} (rerun with --verbose for the traceback)"


def _as_option(exc: BaseException) -> str | None:
    """``"--p-th must be ..."`` for an error about parameter ``p_th`` of the running command."""
    param = getattr(exc, "param", None)
    ctx = click.get_current_context(silent=True)
    if not param or ctx is None:
        return None
    for option in ctx.command.params:
        if option.name == param and option.opts:
            return f"{option.opts[0]} {exc.detail}".strip()
    return None
