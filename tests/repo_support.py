"""Where things are, for every test wherever it sits in tests/: the repository, the test data,
the shipped Pixel 3 profile and the stand-in ``benchmark_model``."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEST_DATA = TESTS / "data"
PIXEL3 = REPO / "device_profiles" / "pixel3.json"
STANDIN = TESTS / "standin_benchmark_model.py"
