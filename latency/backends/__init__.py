"""Backends measure one ``.tflite`` file on one device and return :class:`LatencyStats`."""

from .base import Backend, BackendError, LatencyStats

__all__ = ["Backend", "BackendError", "LatencyStats"]
