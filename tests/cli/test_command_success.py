"""Success paths of the commands: ``estimate --update``, ``devices`` without a serial,
``padnas export`` to its default format (.tflite) and ``padnas-latency measure MODEL.tflite``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from repo_support import REPO

from latency.lut.table import load_lut
from latency.profile_paths import known_profiles, search_dirs

PIXEL3 = REPO / "device_profiles" / "pixel3.json"
ARCH = "-".join(["K3E1", *(["K3E3"] * 21)])


def test_estimate_update_replaces_only_the_estimated_lut(latency_cli, tmp_path):
    prof = tmp_path / "pixel3.json"
    shutil.copy(PIXEL3, prof)
    r = latency_cli(
        "estimate",
        "--device",
        "pixel3",
        "--host-device",
        "mock",
        "--space",
        "basic",
        "--update",
        prof,
        "-q",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.endswith(f"updated {prof} (luts: basic@224)\n")
    new, shipped = load_lut(prof, "basic", 224), load_lut(PIXEL3, "basic", 224)
    assert new.sources() == {"estimate"} and new.device_name == "pixel3"
    assert new.provenance["host"]["name"] == "mock"  # measured on the stand-in host this time
    assert f"--update {prof}" in new.provenance["command"]
    assert new.entries != shipped.entries
    # the other spaces' LUTs and the whole device part are kept as they were
    for family in ("large", "v3"):
        assert load_lut(prof, family, 224).entries == load_lut(PIXEL3, family, 224).entries
    before, after = json.loads(PIXEL3.read_text()), json.loads(prof.read_text())
    assert {k: v for k, v in after.items() if k != "luts"} == {
        k: v for k, v in before.items() if k != "luts"
    }
    assert len(after["luts"]) == len(before["luts"])


def test_devices_without_a_serial(latency_cli, monkeypatch):
    import latency.backends.adb.discovery as discovery

    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    usb_lines = {
        None: "  USB: not checked: libusb support missing (pip install 'padnas[usb]')",
        (): "  USB: no ADB interface found",
        ("ABC123",): "  usb:ABC123             connect with --serial usb:ABC123",
    }
    for found, usb_line in usb_lines.items():
        usb = None if found is None else [{"serial": s, "port_path": "1-2"} for s in found]
        monkeypatch.setattr(discovery, "usb_devices", lambda usb=usb: usb)
        r = latency_cli("devices")
        assert r.exit_code == 0, r.output
        lines = r.stdout.splitlines()
        assert lines[0] == f"Device profiles ({', '.join(str(d) for d in search_dirs())}):"
        phones = lines.index("Phones:")
        assert [line.split()[0] for line in lines[1:phones]] == list(known_profiles())
        assert lines[phones + 1 :] == [
            "  TCP: none probed (give --serial HOST:PORT after `adb tcpip 5555`; network phones "
            "cannot be discovered without an adb server)",
            usb_line,
        ]


@pytest.mark.slow
def test_export_to_the_default_tflite_then_measure_the_file(
    cli, latency_cli, tmp_path, monkeypatch
):
    from padnas.cli.runs import export

    monkeypatch.chdir(tmp_path)
    r = cli(export, ARCH, "--resolution", 64)  # default: --format tflite, <space>-<arch>.tflite
    assert r.exit_code == 0, r.output
    model = Path(f"basic-{ARCH.lower()}.tflite")
    assert r.stdout.strip() == str(model)
    assert model.read_bytes()[4:8] == b"TFL3"  # the TFLite flatbuffer's file identifier
    sidecar = json.loads(model.with_suffix(".json").read_text())
    assert (sidecar["arch"], sidecar["family"], sidecar["resolution"]) == (ARCH, "basic", 64)

    r = latency_cli("measure", model, "--device", "host", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (m,) = doc["measurements"]
    assert doc["device"] == "host" and m["name"] == str(model) and m["source"] == "measured"
    assert 0 < m["p10"] <= m["ms"] <= m["p90"] and m["n"] >= 1
    r = latency_cli("measure", model, "--device", "host")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"{model}: ") and "source measured, device host" in r.stdout
    # the mock prices the file through its sidecar exactly as it prices the arch at 64 x 64
    by_file = json.loads(latency_cli("measure", model, "--device", "mock", "--json").stdout)
    by_arch = latency_cli(
        "measure", ARCH, "--device", "mock", "--space", "basic", "--resolution", 64, "--json"
    )
    assert by_file["measurements"][0]["ms"] == json.loads(by_arch.stdout)["measurements"][0]["ms"]


@pytest.mark.slow
def test_export_to_tflite_is_quiet(tmp_path):
    """TensorFlow's start-up logs (cuDNN/cuBLAS factory errors, absl warnings) are written by C++
    before logging is set up; the conversion runs in a worker whose stderr is closed, so the
    command prints its path and nothing else (they are shown with --verbose)."""
    import subprocess
    import sys

    arch = "-".join(["K3E1"] + ["K3E3"] * 21)
    out = tmp_path / "m.tflite"
    env = {k: v for k, v in os.environ.items() if k not in ("PADNAS_VERBOSE", "PADNAS_DEBUG")}
    env["PADNAS_CACHE"] = str(tmp_path / "cache")
    res = subprocess.run(
        [sys.executable, "-m", "padnas.cli", "export", arch, "--resolution", "64", "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out) and out.is_file()
    assert res.stderr.strip() == "", res.stderr
