"""On a real phone (marker ``device``, never in CI): one block timed end to end.

    PADNAS_TEST_SERIAL=192.168.1.20:5555 PADNAS_BENCHMARK_MODEL=~/android_aarch64_benchmark_model \\
        python -m pytest -m device tests/latency/backends/test_adb_on_phone.py

``PADNAS_TEST_DEVICE`` picks another profile than ``pixel3``; without
``PADNAS_BENCHMARK_MODEL`` the remembered binary is used.
"""

from __future__ import annotations

import os

import pytest

from latency.devices import load_profile, make_backend

SERIAL = os.environ.get("PADNAS_TEST_SERIAL") or os.environ.get("ANDROID_SERIAL")

pytestmark = [
    pytest.mark.device,
    pytest.mark.skipif(not SERIAL, reason="set PADNAS_TEST_SERIAL to a phone's serial"),
]


def test_a_block_on_the_phone(tmp_path):
    from latency.export.convert import export_variant
    from latency.variants import Variant

    model = export_variant(Variant.from_key("ibconv-k3-e3-s1-i28x28x40-o28x28x40"), tmp_path)
    prof = load_profile(os.environ.get("PADNAS_TEST_DEVICE", "pixel3"))
    binary = os.environ.get("PADNAS_BENCHMARK_MODEL")
    with make_backend(prof, serial=SERIAL, benchmark_model=binary) as phone:
        info = phone.describe()
        stats = phone.measure(model)
    assert info["abi"].startswith("arm64")
    assert stats.source == "measured" and stats.n == prof["benchmark"]["num_runs"]
    assert 0 < stats.p10 <= stats.ms <= stats.p90
    print(f"{info.get('model')}: {model.name} {stats.ms:.3f} ms ({stats.extra})")
