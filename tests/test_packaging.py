"""The project as a user installs it: a wheel built from the source, installed into a fresh
virtual environment, used from a directory outside the checkout.

The wheel is built from a copy of the source tree, so the build leaves no ``build/`` or
``*.egg-info`` in the checkout, and without build isolation, so it needs no index. The fresh
environment is made with the interpreter running the tests; a ``venv`` made from a virtual
environment's interpreter inherits the base interpreter's packages, not that environment's, so the
dependencies (torch, TensorFlow, ...) are added with a ``.pth`` file naming the running
environment's ``site-packages`` — written after the wheel is installed, so pip never sees the
editable install there. A ``.pth`` line only adds a path: the editable install's import hook is
not run, and the test checks that ``padnas`` and ``latency`` are imported from the new
environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from repo_support import REPO

PROFILES = ("host", "host-builtin", "mock", "pixel3")
SKIP = (
    ".git",
    ".venv",
    "runs",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".cache",
    "*.tflite",
    "*.onnx",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv folder, environment for its commands, a working folder outside)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=shutil.ignore_patterns(*SKIP))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            ".",
        ],
        cwd=src,
        check=True,
        timeout=600,
    )
    (wheel,) = (tmp / "dist").glob("padnas-*.whl")
    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=300,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(purelib) / "zz_padnas_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PADNAS_DEVICE_PROFILES", "VIRTUAL_ENV")
    }
    env.update(PADNAS_CACHE=str(tmp / "cache"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    work = tmp / "elsewhere"
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "purelib": Path(purelib), "env": env, "cwd": work}


def _run(installed, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_the_wheel_holds_the_packages_and_the_device_profiles(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert {
        "padnas/__init__.py",
        "latency/__init__.py",
        "latency/profile_paths.py",
        "latency/data/pixel3_published.json",
    } <= names
    for name in PROFILES:
        packed = zipfile.ZipFile(installed["wheel"]).read(f"latency/device_profiles/{name}.json")
        # the files users edit, as they are: one source
        assert packed == (REPO / "device_profiles" / f"{name}.json").read_bytes()
    assert not [n for n in names if n.split("/")[0] in ("device_profiles", "tests", "docs")]


@pytest.mark.slow
def test_the_installed_package_is_the_one_imported(installed):
    code = "import padnas, latency; print(padnas.__file__); print(latency.__file__)"
    out = _run(installed, installed["venv"] / "bin" / "python", "-c", code)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.split():
        assert Path(line).is_relative_to(installed["purelib"]), line


@pytest.mark.slow
def test_devices_lists_the_shipped_profiles(installed):
    out = _run(installed, "padnas-latency", "devices", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    shipped = installed["purelib"] / "latency" / "device_profiles"
    assert doc["profile_dirs"] == [str(shipped)]
    listed = {p["name"]: p for p in doc["profiles"]}
    assert set(PROFILES) <= set(listed)
    assert all(listed[name]["valid"] for name in PROFILES)
    assert listed["pixel3"]["luts"] and listed["pixel3"]["path"] == str(shipped / "pixel3.json")
    text = _run(installed, "padnas-latency", "devices")
    assert text.returncode == 0, text.stderr
    for name in ("host", "mock", "pixel3"):
        assert f"\n  {name} " in text.stdout, text.stdout


@pytest.mark.slow
def test_predict_with_the_shipped_pixel3_lut(installed, latency_cli):
    nets = installed["purelib"] / "latency" / "data" / "pixel3_published.json"
    out = _run(installed, "padnas-latency", "predict", nets, "--lut", "pixel3", "--json")
    assert out.returncode == 0, out.stderr
    got = {p["name"]: p["ms"] for p in json.loads(out.stdout)["predictions"]}
    # the same numbers as the checkout's own table gives
    here = latency_cli(
        "predict",
        REPO / "latency" / "data" / "pixel3_published.json",
        "--lut",
        REPO / "device_profiles" / "pixel3.json",
        "--json",
    )
    want = {p["name"]: p["ms"] for p in json.loads(here.stdout)["predictions"]}
    assert got == want and len(got) == 4


@pytest.mark.slow
def test_search_with_the_shipped_pixel3_lut_starts(installed):
    """Started = the LUT, window and data are set up and the first stage's training begins; the
    run is then stopped with Ctrl-C (the search itself is tested elsewhere)."""
    out = installed["cwd"] / "run"
    proc = subprocess.Popen(
        [
            "padnas",
            "search",
            "--lut",
            "pixel3",
            "--stages",
            "2",
            "--preset",
            "quick",
            "--data",
            "digits",
            "--out",
            str(out),
        ],
        cwd=installed["cwd"],
        env=installed["env"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(600, proc.kill)  # a hung start fails the test instead of the suite
    guard.start()
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line.rstrip())
            if line.startswith("stage 1/2:"):
                proc.send_signal(signal.SIGINT)
                break
        proc.communicate(timeout=300)
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
    assert seen and seen[-1].startswith("stage 1/2: train the initial supernet"), seen
    assert any(s.startswith("latency: pixel3 basic@224 LUT") for s in seen), seen
    assert any(s.startswith("latency window: 60:70 ms") for s in seen), seen
    assert out.is_dir()
