"""Errors of the latency side, all under :class:`LatencyError` (itself a padnas error).

A usage error (a bad LUT file, an unknown variant key, a malformed device profile) exits 2; a
runtime error (a device that stops answering, a conversion that fails) exits 1 — decided by type
in :func:`padnas.core.errors.exit_code`. Domain modules import their base from here, never from a
CLI.
"""

from __future__ import annotations

from padnas.core.errors import PadnasError, RuntimeFailure, UsageError, verbose_enabled

__all__ = [
    "BackendError",
    "ExportError",
    "LatencyError",
    "LatencyRuntimeError",
    "LatencyUsageError",
    "ModelFileError",
    "verbose_enabled",
]


class LatencyError(PadnasError):
    """Base of every error the latency package raises on purpose."""


class LatencyUsageError(LatencyError, UsageError):
    """Bad input to the latency side: exit code 2."""


class LatencyRuntimeError(LatencyError, RuntimeFailure):
    """A latency job failed at run time: exit code 1."""


class BackendError(LatencyRuntimeError):
    """A device could not measure a model; the message says what failed and what to do.

    ``fatal`` is True when the device is gone for good (a profile stops and resumes later)
    rather than one model failing to run."""

    fatal: bool = False


class ModelFileError(BackendError, LatencyUsageError):
    """A model file the runtime cannot load (empty, truncated, not a TFLite model): bad input,
    exit 2; still a per-file :class:`BackendError` to a profile, which reports and skips it."""


class ExportError(LatencyRuntimeError):
    """A model could not be converted, or its TFLite output disagrees with PyTorch."""
