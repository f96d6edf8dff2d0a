"""Which phones can be reached, for ``padnas-latency devices``.

Without an adb server there is no device list to ask: adb-shell can only connect to a serial it
is given. So TCP phones are *probed* (the serials passed with ``--serial`` or in
``$ANDROID_SERIAL``: connect, read a few properties, say whether the phone is ready,
unauthorized, offline or absent), and USB phones are enumerated through libusb when the optional
``usb`` extra is installed. The caller prints what was and was not checked.
"""

from __future__ import annotations

import shlex

from latency.backends.adb.transport import (
    AdbError,
    AdbLink,
    AdbNoDevice,
    AdbOffline,
    AdbUnauthorized,
    AdbUsbBusy,
)

PROPS = {
    "model": "ro.product.model",
    "board": "ro.board.platform",
    "android": "ro.build.version.release",
    "abi": "ro.product.cpu.abi",
}


def probe(serial: str, *, adb_key=None, timeout_s: float = 3.0) -> dict:
    """``{"serial", "state", ...}``; state is device, unauthorized, offline, absent or error."""
    info: dict = {"serial": serial}
    try:
        link = AdbLink(
            serial, adb_key=adb_key, connect_timeout_s=timeout_s, auth_timeout_s=timeout_s
        )
        link.connect()
    except AdbUnauthorized:
        return {**info, "state": "unauthorized", "detail": "accept the prompt on the phone"}
    except AdbOffline as exc:
        return {**info, "state": "offline", "detail": str(exc)}
    except AdbUsbBusy as exc:
        return {**info, "state": "busy", "detail": str(exc)}
    except AdbNoDevice as exc:
        return {**info, "state": "absent", "detail": str(exc)}
    except AdbError as exc:
        return {**info, "state": "error", "detail": str(exc)}
    try:
        for name, prop in PROPS.items():
            out, rc = link.shell(f"getprop {shlex.quote(prop)}", timeout_s)
            if rc == 0 and out.strip():
                info[name] = out.strip()
        out, rc = link.shell("cat /sys/devices/system/cpu/possible", timeout_s)
        if rc == 0:
            info["cpus"] = out.strip()
        info["state"] = "device"
    except AdbError as exc:
        info.update(state="error", detail=str(exc))
    finally:
        link.close()
    return info


def usb_devices() -> list[dict] | None:
    """ADB interfaces on USB (``serial``, ``port_path``); None when libusb support is missing."""
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except (ImportError, OSError):
        return None
    found = []
    try:
        for dev in UsbTransport.find_all_adb_devices():
            entry = {"port_path": "-".join(str(p) for p in dev.port_path)}
            try:
                entry["serial"] = dev.serial_number
            except Exception as exc:  # opening may need udev permissions
                entry["serial"] = f"? ({type(exc).__name__})"
            found.append(entry)
    except Exception as exc:
        return [{"serial": "?", "error": f"{type(exc).__name__}: {exc}"}]
    return found
