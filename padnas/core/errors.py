"""The errors of padnas and latency, at the bottom of the import graph, and their exit codes.

Every error the project raises on purpose derives from :class:`PadnasError`; its type alone says
how a command ends: :class:`UsageError` (bad input the user can fix: wrong space, malformed arch,
invalid file) exits 2, anything else exits 1, Ctrl-C exits 130. The CLI layer maps types to codes
with :func:`exit_code` and never needs to know which module raised what.

Verbosity is one switch, ``PADNAS_VERBOSE=1`` (set by ``--verbose``): tracebacks, TensorFlow and
LiteRT logs. It is an environment variable so that export worker processes inherit it.
"""

from __future__ import annotations

import errno
import os
import pickle
from typing import ClassVar

#: the one verbosity switch (``--verbose`` sets it; spawned workers inherit it)
VERBOSE_ENV = "PADNAS_VERBOSE"
#: the former traceback switch, still honoured by :func:`verbose_enabled` (deprecated)
DEPRECATED_VERBOSE_ENV = "PADNAS_DEBUG"

USAGE_EXIT, RUNTIME_EXIT, INTERRUPTED_EXIT = 2, 1, 130


class PadnasError(Exception):
    """Base of every error padnas or latency raises on purpose.

    A domain error about one parameter names it by its Python name (``param="p_th"``) and says
    the rest in ``detail``; its text reads ``"p_th must be in [0, 1), got 2"``. The command
    line maps the parameter to the option the user typed (``--p-th must be ...``), so no domain
    module spells a flag.
    """

    def __init__(self, detail: str = "", *, param: str | None = None) -> None:
        super().__init__(detail if param is None else f"{param} {detail}")
        self.detail = detail
        self.param = param


class UsageError(PadnasError, ValueError):
    """Bad input from the user: exit code 2."""


class RuntimeFailure(PadnasError, RuntimeError):
    """A job failed for reasons outside the user's input: exit code 1."""


def exit_code(exc: BaseException) -> int:
    """130 for an interrupt, 2 for bad input (a :class:`UsageError`), 1 for anything else."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED_EXIT
    return USAGE_EXIT if isinstance(exc, UsageError) else RUNTIME_EXIT


def portable_error(exc: BaseException) -> BaseException:
    """``exc`` where it survives pickling (a child process's error sent to its parent), else a
    :class:`RuntimeFailure` with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeFailure(f"{type(exc).__name__}: {exc}")
    return exc


def verbose_enabled() -> bool:
    """True when ``PADNAS_VERBOSE=1`` (or the deprecated ``PADNAS_DEBUG=1``)."""
    return os.environ.get(VERBOSE_ENV) == "1" or os.environ.get(DEPRECATED_VERBOSE_ENV) == "1"


def set_verbose(verbose: bool) -> None:
    """Turn the switch on for this process and every worker it spawns."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


class FileFormatError(UsageError):
    """A file the project reads is unreadable as what it should be (bad JSON, wrong encoding,
    too large or deep, duplicate keys, a schema from a newer padnas): exit code 2. The message
    names the file, the place and a fix."""


class PathError(UsageError):
    """A path given by the user that cannot be created or written (read-only, not a directory,
    no space): exit code 2, the message says which path and why."""

    _WHY: ClassVar[dict[int, str]] = {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOTDIR: "a part of the path is a file, not a directory",
        errno.EEXIST: "a file of that name is in the way",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENAMETOOLONG: "the name is too long",
    }

    @classmethod
    def cannot_create(cls, path: object, exc: OSError, what: str) -> PathError:
        """The error for ``path`` (``what`` names the option or variable) and an OSError."""
        why = cls._WHY.get(exc.errno or 0, exc.strerror or str(exc))
        return cls(f"cannot create {what} {path}: {why}; choose another path")


class AcceleratorError(UsageError):
    """A torch device (``param="device"``) that is not one or not on this machine: exit 2."""
