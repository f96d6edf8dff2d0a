"""ADB transport: serials, keys, exit status over shell v1, and the connection errors a user
meets (no device, offline, unauthorized), against the loopback peer."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from adb_peer import AdbPeer, Faults

from latency.backends.adb.transport import (
    AdbConnectionLost,
    AdbLink,
    AdbNoDevice,
    AdbOffline,
    AdbSerialError,
    AdbUnauthorized,
    AdbUsbBusy,
    default_key_path,
    ensure_key,
    key_paths,
    parse_serial,
)
from padnas.core.errors import exit_code


@pytest.mark.parametrize(
    "serial, expected",
    [
        ("192.168.1.20:5555", ("tcp", "192.168.1.20", 5555)),
        ("192.168.1.20", ("tcp", "192.168.1.20", 5555)),
        ("phone.local:7000", ("tcp", "phone.local", 7000)),
        ("[::1]:5037", ("tcp", "::1", 5037)),
        ("usb", ("usb", "", None)),
        ("usb:8ABX0B1AA", ("usb", "8ABX0B1AA", None)),
        ("8ABX0B1AA", ("usb", "8ABX0B1AA", None)),
    ],
)
def test_parse_serial(serial, expected):
    assert parse_serial(serial) == expected


@pytest.mark.parametrize("bad", ["", "host:port", "1.2.3.4:0", "1.2.3.4:70000"])
def test_bad_serial_is_a_usage_error(bad):
    with pytest.raises(AdbSerialError) as info:
        parse_serial(bad)
    assert exit_code(info.value) == 2


def test_key_created_private_where_adb_keeps_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_USER_HOME", str(tmp_path / "android"))
    monkeypatch.delenv("ADB_VENDOR_KEYS", raising=False)
    assert default_key_path() == tmp_path / "android" / "adbkey"
    (path,) = key_paths()
    assert path == tmp_path / "android" / "adbkey"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Path(str(path) + ".pub").read_text().strip()
    before = path.read_bytes()
    assert key_paths() == [path] and path.read_bytes() == before  # reused, not regenerated


def test_sdk_home_and_vendor_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("ANDROID_USER_HOME", raising=False)
    monkeypatch.setenv("ANDROID_SDK_HOME", str(tmp_path / "sdk"))
    assert default_key_path() == tmp_path / "sdk" / ".android" / "adbkey"
    vendor = ensure_key(tmp_path / "vendor" / "lab.adb_key")
    monkeypatch.setenv("ADB_VENDOR_KEYS", str(tmp_path / "vendor"))
    assert key_paths()[1:] == [vendor]


def test_missing_explicit_key(tmp_path):
    with pytest.raises(AdbSerialError, match="no such file"):
        key_paths(tmp_path / "nope")


def test_shell_exit_status_and_merged_output(tmp_path, adb_key):
    with AdbPeer(tmp_path / "phone", allowed_keys=[adb_key[1]]) as peer:
        link = AdbLink(peer.serial, adb_key=adb_key[0], connect_timeout_s=3)
        assert link.shell("echo hi", 5) == ("hi\n", 0)
        out, rc = link.shell("cat /nope", 5)
        assert rc == 1 and "No such file" in out  # stderr arrives merged, as in shell v1
        assert link.shell("no_such_tool", 5)[1] == 127
        assert link.shell("cat /nope 2>/dev/null || echo fallback", 5) == ("fallback\n", 0)
        link.close()


def test_no_device(tmp_path, adb_key, free_port):
    link = AdbLink(f"127.0.0.1:{free_port}", adb_key=adb_key[0], connect_timeout_s=2)
    with pytest.raises(AdbNoDevice, match=r"connection refused.*adb tcpip 5555"):
        link.connect()


def test_offline_device(tmp_path, adb_key):
    with AdbPeer(tmp_path / "phone", faults=Faults(silent=True)) as peer:
        link = AdbLink(peer.serial, adb_key=adb_key[0], connect_timeout_s=1)
        with pytest.raises(AdbOffline, match="offline"):
            link.connect()


def test_unauthorized_then_accepted(tmp_path, adb_key):
    prompts = []
    with AdbPeer(tmp_path / "phone", allowed_keys=[]) as peer:
        link = AdbLink(
            peer.serial,
            adb_key=adb_key[0],
            connect_timeout_s=2,
            auth_timeout_s=1,
            on_prompt=prompts.append,
        )
        with pytest.raises(AdbUnauthorized, match="Allow USB debugging") as info:
            link.connect()
        assert exit_code(info.value) == 1
        assert prompts and "unlock it" in prompts[0]
        assert peer.offered_keys[0].split()[0] == adb_key[1].split()[0]
        # the user taps "Allow": the phone now trusts the key it was offered
        peer.accept_new_keys = True
        link.connect()
        assert link.shell("echo ok", 5) == ("ok\n", 0)
        link.close()
        # and it remembers it: the next connection signs the token, no prompt
        peer.accept_new_keys = False
        link.connect()
        assert link.connected
        link.close()


def test_peer_checks_signatures_not_just_keys(tmp_path, adb_key):
    """A client that offers a known public key but signs with another private key fails."""
    other = ensure_key(tmp_path / "other" / "adbkey")
    bogus = tmp_path / "bogus" / "adbkey"
    bogus.parent.mkdir()
    bogus.write_bytes(other.read_bytes())  # other's private key ...
    Path(str(bogus) + ".pub").write_text(adb_key[1])  # ... next to the trusted public key
    with AdbPeer(tmp_path / "phone", allowed_keys=[adb_key[1]]) as peer:
        link = AdbLink(peer.serial, adb_key=bogus, connect_timeout_s=2, auth_timeout_s=1)
        with pytest.raises(AdbUnauthorized):
            link.connect()


def test_dropped_connection_is_noticed_at_once(tmp_path, adb_key):
    with AdbPeer(tmp_path / "phone", allowed_keys=[adb_key[1]]) as peer:
        link = AdbLink(peer.serial, adb_key=adb_key[0], connect_timeout_s=2)
        link.connect()
        peer.connections[-1].drop()
        with pytest.raises(AdbConnectionLost, match=r"connection lost|closed"):
            link.shell("echo hi", 30)  # a 30 s time-out, yet it fails immediately
        assert not link.connected


def test_usb_without_libusb_extra(tmp_path, adb_key, monkeypatch):
    import adb_shell.adb_device as dev

    monkeypatch.setattr(dev, "UsbTransport", None)
    link = AdbLink("usb", adb_key=adb_key[0])
    with pytest.raises(Exception, match=r"padnas\[usb\]"):
        link.connect()


def test_usb_held_by_an_adb_server(tmp_path, adb_key, monkeypatch):
    """libusb's LIBUSB_ERROR_BUSY when claiming the interface means an adb server has it."""
    import adb_shell.adb_device as dev

    busy = type("USBErrorBusy", (Exception,), {"__module__": "usb1"})

    class FakeUsbDevice:
        available = False

        def __init__(self, **kw):
            pass

        def connect(self, **kw):
            raise busy("LIBUSB_ERROR_BUSY [-6]")

        def close(self):
            pass

    monkeypatch.setattr(dev, "AdbDeviceUsb", FakeUsbDevice)
    link = AdbLink("usb:8ABX0B1AA", adb_key=adb_key[0])
    with pytest.raises(AdbUsbBusy, match="adb kill-server"):
        link.connect()
