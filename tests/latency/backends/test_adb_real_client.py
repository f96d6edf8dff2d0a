"""The loopback peer against Debian's real ``adb`` client, so the peer is not shaped only to
adb-shell: ``adb connect`` (AUTH with adb's own key), ``adb shell``, ``adb push`` and the
unauthorized state. Skipped only when no ``adb`` binary is installed (``apt-get install adb``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

import pytest
from adb_peer import AdbPeer

pytestmark = pytest.mark.skipif(shutil.which("adb") is None, reason="no adb binary installed")


@pytest.fixture
def adb(tmp_path, free_port):
    """An isolated adb server (own HOME, own port) that is killed afterwards."""
    port = free_port
    env = {**os.environ, "HOME": str(tmp_path), "ANDROID_ADB_SERVER_PORT": str(port)}
    for var in ("ANDROID_USER_HOME", "ANDROID_SDK_HOME", "ADB_VENDOR_KEYS", "ANDROID_SERIAL"):
        env.pop(var, None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["adb", *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    run("start-server")
    run.home = tmp_path
    yield run
    run("kill-server")


def _wait_state(adb, serial: str, want: str) -> str:
    state = ""
    for _ in range(50):
        out = adb("devices").stdout
        state = next((ln.split()[1] for ln in out.splitlines() if ln.startswith(serial)), "")
        if state == want:
            break
        time.sleep(0.1)
    return state


def test_real_adb_connects_shells_and_pushes(adb, tmp_path):
    pub = (adb.home / ".android" / "adbkey.pub").read_text()
    with AdbPeer(tmp_path / "phone", allowed_keys=[pub]) as peer:
        r = adb("connect", peer.serial)
        assert "connected to" in r.stdout, r.stdout + r.stderr
        assert _wait_state(adb, peer.serial, "device") == "device"
        assert "model:Pixel_3" in adb("devices", "-l").stdout

        r = adb("-s", peer.serial, "shell", "echo hello; getprop ro.board.platform")
        assert r.stdout.splitlines() == ["hello", "sdm845"]

        blob = tmp_path / "blob.bin"
        blob.write_bytes(os.urandom(300_000))  # several sync DATA chunks
        r = adb("-s", peer.serial, "push", str(blob), "/data/local/tmp/padnas/blob.bin")
        assert r.returncode == 0, r.stderr
        landed = tmp_path / "phone" / "data/local/tmp/padnas/blob.bin"
        assert landed.read_bytes() == blob.read_bytes()
        r = adb("-s", peer.serial, "shell", "md5sum /data/local/tmp/padnas/blob.bin")
        assert r.stdout.split()[0] == hashlib.md5(blob.read_bytes()).hexdigest()

        r = adb("-s", peer.serial, "push", str(blob), "/system/blob.bin")
        assert r.returncode != 0 and "Permission denied" in r.stdout + r.stderr


def test_real_adb_sees_an_unknown_key_as_unauthorized(adb, tmp_path):
    with AdbPeer(tmp_path / "phone", allowed_keys=[]) as peer:
        adb("connect", peer.serial)
        assert _wait_state(adb, peer.serial, "unauthorized") == "unauthorized"
        r = adb("-s", peer.serial, "shell", "echo hi")
        assert r.returncode != 0 and "unauthorized" in r.stderr
        assert peer.shell.commands == []
        # adb offered its public key for the user to accept, as with a real phone
        own = (adb.home / ".android" / "adbkey.pub").read_text().split()[0]
        assert any(k.split()[0] == own for k in peer.offered_keys)
