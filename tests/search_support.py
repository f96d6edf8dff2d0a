"""Shared by the search tests: a LUT made the way a user makes one for a mock device
(``profile`` into a measurement store, then ``export-lut``), in-process and in under a second."""

from __future__ import annotations

import tempfile

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.table import Lut
from latency.profiling.profile import build_lut, profile_space
from latency.profiling.store import MeasurementStore
from padnas.space import get_space


def mock_lut(family: str, device: str = "mock") -> Lut:
    """The mock device's LUT of ``family`` at 224, its device named ``device``."""
    space = get_space(family)
    with tempfile.TemporaryDirectory() as root:
        store = MeasurementStore("mock", root)
        profile_space(space, MockBackend(load_profile("mock")), store, progress=False)
        return build_lut(space, store, {"name": device})
