"""Phone serials as ``adb`` spells them: ``HOST:PORT`` or ``HOST`` (TCP), ``usb[:SERIAL]`` (USB).

A malformed serial is bad input (exit 2) and is rejected before any connection is tried.
"""

from __future__ import annotations

import ipaddress

from latency.errors import LatencyUsageError

DEFAULT_PORT = 5555


class AdbSerialError(LatencyUsageError):
    """A malformed ``--serial`` (exit 2)."""


# -- serials ----------------------------------------------------------------------------------


def parse_serial(serial: str) -> tuple[str, str, int | None]:
    """``("tcp", host, port)`` or ``("usb", usb_serial_or_empty, None)``."""
    s = serial.strip()
    if not s:
        raise AdbSerialError("empty --serial: give HOST:PORT (TCP) or usb[:SERIAL]")
    if s == "usb" or s.startswith("usb:"):
        return "usb", s[4:], None
    host, sep, port = s.rpartition(":")
    if sep and not host.endswith("]") and ":" in host:  # bare IPv6 without brackets
        host, port = s, ""
    if sep and host:
        host = host.strip("[]")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise AdbSerialError(f"bad port in --serial {serial!r}: expected HOST:PORT, e.g. "
                                 f"192.168.1.20:5555")  # fmt: skip
        return "tcp", host, int(port)
    if _looks_like_host(s):
        return "tcp", s, DEFAULT_PORT
    return "usb", s, None


def _looks_like_host(s: str) -> bool:
    try:
        ipaddress.ip_address(s.strip("[]"))
        return True
    except ValueError:
        return "." in s or s == "localhost"
