"""Phone serials as ``adb`` spells them: ``HOST:PORT`` or ``HOST`` (TCP), ``usb[:SERIAL]`` (USB).

A malformed serial is bad input (exit 2) and is rejected before any connection is tried.
"""

from __future__ import annotations

import ipaddress
import re

from latency.errors import LatencyUsageError

DEFAULT_PORT = 5555


class AdbSerialError(LatencyUsageError):
    """A malformed ``--serial`` (exit 2)."""


# -- serials ----------------------------------------------------------------------------------


#: what a USB serial (as ``adb devices`` lists it) and a host name are made of
_USB_SERIAL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_FORMS = "expected HOST:PORT (e.g. 192.168.1.20:5555), usb or usb:SERIAL"


def parse_serial(serial: str) -> tuple[str, str, int | None]:
    """``("tcp", host, port)`` or ``("usb", usb_serial_or_empty, None)``; anything else, such as
    a shell fragment, is refused here, before it can reach a connection or a command line."""
    kind, name, port = _parse(serial)
    if kind == "usb" and name and not _USB_SERIAL.match(name):
        raise AdbSerialError(
            f"malformed --serial {serial!r}: a USB serial is letters, digits, '.', '_' or '-'; "
            f"{_FORMS}"
        )
    if kind == "tcp" and not _valid_host(name):
        raise AdbSerialError(f"malformed --serial {serial!r}: {name!r} is not a host; {_FORMS}")
    return kind, name, port


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.split(".")
        return len(host) <= 253 and all(_HOST_LABEL.match(x) for x in labels)


def _parse(serial: str) -> tuple[str, str, int | None]:
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
            raise AdbSerialError(
                f"bad port in --serial {serial!r}: expected HOST:PORT, e.g. 192.168.1.20:5555"
            )
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
