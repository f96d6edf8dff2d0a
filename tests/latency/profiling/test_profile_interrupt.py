"""Killing a real host `profile` mid-run: one-line message, exit 130, every stored measurement
intact, no converter process left behind; the next run skips what was stored. Slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.slow


def test_sigterm_mid_profile_keeps_measurements(tmp_path):
    env = {**os.environ, "PADNAS_CACHE": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "latency.cli",
        "profile",
        "--device",
        "host",
        "--space",
        "basic",
        "--resolution",
        "32",
        "-q",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = tmp_path / "measurements" / "host.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if store.is_file() and len(store.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children  # the export worker(s)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"left running: {alive}"

    lines = store.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: nothing torn
    assert len(records) >= 3 and all(r["source"] == "measured" for r in records)

    # the next run starts from what was stored: new keys only, none measured twice
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(store.read_text().splitlines()) >= len(records) + 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    keys = [json.loads(line)["key"] for line in store.read_text().splitlines()]
    assert len(keys) >= len(records) + 2 and len(set(keys)) == len(keys)
    assert keys[: len(records)] == [r["key"] for r in records]
