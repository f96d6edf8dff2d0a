"""How is a space measured on a device and stored (resumably)?

The one export -> measure -> store loop (``loop``), the append-only ``store``, a space's
``profile`` and the store -> LUT step, several phones at once (``fleet``) and whole-network
``validation`` with its calibration.
"""

from latency.profiling.fleet import profile_fleet
from latency.profiling.loop import MeasureLoop, export_cpus, pending_keys
from latency.profiling.profile import build_lut, profile_space
from latency.profiling.report import ProfileReport
from latency.profiling.store import MeasurementStore, StoreError
from latency.profiling.validation import (
    ValidationResult,
    fit_calibration,
    measure_arch,
    measure_archs,
    validate_lut,
)

__all__ = [
    "MeasureLoop",
    "MeasurementStore",
    "ProfileReport",
    "StoreError",
    "ValidationResult",
    "build_lut",
    "export_cpus",
    "fit_calibration",
    "measure_arch",
    "measure_archs",
    "pending_keys",
    "profile_fleet",
    "profile_space",
    "validate_lut",
]
