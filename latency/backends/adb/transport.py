"""One ADB connection to a phone through the pure-Python ``adb-shell`` package (no adb server).

What this module adds to adb-shell, and why:

- **Serials** name the transport: ``HOST:PORT`` (or ``HOST``, port 5555) is TCP, e.g. after
  ``adb tcpip 5555``; ``usb`` or ``usb:SERIAL`` (or a bare USB serial as ``adb devices`` prints
  it) is USB through libusb (the optional ``usb`` extra).
- **Keys**: the host key is the standard ``~/.android/adbkey`` (``$ANDROID_USER_HOME/adbkey``
  or ``$ANDROID_SDK_HOME/.android/adbkey`` where set), created with mode 0600 if missing so the
  phone asks once and remembers it; extra keys come from ``$ADB_VENDOR_KEYS`` as adb does.
- **Exit status**: adb-shell speaks shell protocol v1, which merges stdout and stderr and drops
  the exit code, so every command is sent as ``CMD; echo padnas-rc=$?`` and the marker parsed.
- **Timeouts**: adb-shell clamps transport <= read <= total timeout and defaults the read
  timeout to 10 s, which kills a silent 20 s benchmark. Every call here passes all three.
- **Dropped connections**: adb-shell's TCP transport returns ``b""`` on EOF and its reader spins
  until the read timeout; ours raises at once, so a phone that vanishes is noticed immediately.
- **Errors** become :class:`AdbError` subclasses with one-line messages that say what to do:
  no device, unauthorized (accept the prompt on the phone), offline, USB held by an adb server.
  :attr:`AdbError.transient` tells the backend whether reconnecting may help.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from latency.backends.adb.serials import AdbSerialError, parse_serial
from latency.backends.base import BackendError

RC_MARK = "padnas-rc="


class AdbError(BackendError):
    """An ADB failure; ``transient`` if reconnecting may fix it. ``fatal``: the phone cannot
    measure anything else either, so a profile stops (and resumes later) instead of marking
    every remaining block as failed."""

    transient = False
    fatal = True


class AdbConnectionLost(AdbError):
    """The connection dropped or a command got no answer in time."""

    transient = True


class AdbNoDevice(AdbError):
    """Nothing answers at the serial."""


class AdbOffline(AdbError):
    """Something accepted the connection but never completed the ADB handshake."""

    transient = True


class AdbUnauthorized(AdbError):
    """The phone does not (yet) trust this computer's key."""


class AdbUsbBusy(AdbError):
    """Another program (an adb server) holds the phone's USB interface."""


# -- keys ---------------------------------------------------------------------------------------


def default_key_path() -> Path:
    """Where adb keeps its private key (``adbkey``), following adb's own environment variables."""
    if os.environ.get("ANDROID_USER_HOME"):
        return Path(os.environ["ANDROID_USER_HOME"]) / "adbkey"
    if os.environ.get("ANDROID_SDK_HOME"):
        return Path(os.environ["ANDROID_SDK_HOME"]) / ".android" / "adbkey"
    return Path.home() / ".android" / "adbkey"


def ensure_key(path: Path) -> Path:
    """Create an adb key pair at ``path`` (+ ``.pub``) if missing; the private key is 0600.

    The file is created empty with mode 0600 *before* the key is written, so the private key
    is never world-readable, not even for an instant."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    from adb_shell.auth.keygen import keygen

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        keygen(str(path))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
    return path


def key_paths(explicit: str | Path | None = None) -> list[Path]:
    """Keys to offer: the explicit one, or the user's key (created if missing), then any
    ``$ADB_VENDOR_KEYS`` (files, or directories of ``*.adb_key`` / ``adbkey`` files)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise AdbSerialError(
                f"--adb-key {p}: no such file (an adb private key, e.g. ~/.android/adbkey)"
            )
        paths = [p]
    else:
        paths = [ensure_key(default_key_path())]
    for item in filter(None, os.environ.get("ADB_VENDOR_KEYS", "").split(os.pathsep)):
        p = Path(item).expanduser()
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix == ".adb_key" or q.name == "adbkey")
        elif p.is_file():
            paths.append(p)
    return paths


def load_signers(paths: list[Path]) -> list:
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    signers = []
    for p in paths:
        pub = Path(str(p) + ".pub")
        try:
            signers.append(PythonRSASigner(pub.read_text() if pub.is_file() else "", p.read_text()))
        except (OSError, ValueError) as exc:
            raise AdbSerialError(f"cannot use adb key {p}: {exc}") from None
    return signers


# -- the connection ----------------------------------------------------------------------------


def _eof_aware_tcp_transport(host: str, port: int):
    from adb_shell.transport.tcp_transport import TcpTransport

    class EofAwareTcpTransport(TcpTransport):
        def bulk_read(self, numbytes, transport_timeout_s):
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return data

    return EofAwareTcpTransport(host, port)


class AdbLink:
    """A connected phone: ``shell`` (with exit status) and ``push``, every call with timeouts.

    ``auth_timeout_s`` is how long to wait for the user to accept the "Allow USB debugging?"
    prompt when the phone does not know the key yet. ``on_prompt`` is called when that wait
    starts (the CLI tells the user to look at the phone).
    """

    def __init__(
        self,
        serial: str,
        *,
        adb_key: str | Path | None = None,
        connect_timeout_s: float = 10.0,
        auth_timeout_s: float = 30.0,
        on_prompt: Callable[[str], None] | None = None,
    ):
        self.serial = serial
        self.kind, self.address, self.port = parse_serial(serial)
        self.keys = key_paths(adb_key)
        self.connect_timeout_s = connect_timeout_s
        self.auth_timeout_s = auth_timeout_s
        self.on_prompt = on_prompt
        self._device = None

    # -- connect ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._device is not None and self._device.available

    def connect(self) -> None:
        self.close()
        device = self._make_device()
        prompted = []

        def auth_callback(_manager) -> None:
            prompted.append(True)
            if self.on_prompt:
                self.on_prompt(
                    f"{self.serial}: the phone does not know this computer's key yet: unlock it "
                    f"and accept 'Allow USB debugging?' (waiting {self.auth_timeout_s:g} s)"
                )

        t = self.connect_timeout_s
        try:
            device.connect(
                rsa_keys=load_signers(self.keys),
                transport_timeout_s=t,
                auth_timeout_s=self.auth_timeout_s,
                read_timeout_s=t,
                auth_callback=auth_callback,
            )
        except Exception as exc:
            _close_quietly(device)
            raise self._connect_error(exc, bool(prompted)) from None
        self._device = device

    def _make_device(self):
        from adb_shell.adb_device import AdbDevice

        if self.kind == "tcp":
            transport = _eof_aware_tcp_transport(self.address, self.port)
            return AdbDevice(transport, default_transport_timeout_s=self.connect_timeout_s)
        try:
            from adb_shell.adb_device import AdbDeviceUsb

            return AdbDeviceUsb(
                serial=self.address or None, default_transport_timeout_s=self.connect_timeout_s
            )
        except Exception as exc:
            raise self._usb_error(exc) from None

    def _connect_error(self, exc: Exception, prompted: bool) -> AdbError:
        where = self.serial
        if self.kind == "usb" and _is_usb_error(exc):
            return self._usb_error(exc)
        if type(exc).__name__ == "DeviceAuthError" or (prompted and _is_timeout_or_drop(exc)):
            keys = ", ".join(str(k) for k in self.keys)
            return AdbUnauthorized(
                f"{where}: unauthorized: the phone refused the key {keys}. Unlock the phone, "
                "accept the 'Allow USB debugging?' prompt (tick 'Always allow from this "
                "computer') and rerun; if no prompt appears, revoke USB debugging "
                "authorisations in Developer options and reconnect"
            )
        if isinstance(exc, ConnectionRefusedError):
            return AdbNoDevice(
                f"no device at {where}: connection refused. Is the phone on the same network "
                "and was `adb tcpip 5555` run over USB since its last reboot?"
            )
        if isinstance(exc, socket.gaierror):
            return AdbNoDevice(f"no device at {where}: unknown host {self.address!r}")
        if type(exc) is TimeoutError:  # socket.create_connection: nothing answered at all
            return AdbNoDevice(
                f"no device at {where}: connection timed out after {self.connect_timeout_s:g} s"
            )
        if _is_timeout_or_drop(exc) or type(exc).__name__ in (
            "InvalidResponseError",
            "InvalidCommandError",
        ):
            return AdbOffline(
                f"{where} is offline: it accepted the connection but did not complete the ADB "
                f"handshake within {self.connect_timeout_s:g} s ({_short(exc)}). Reconnect the "
                "phone or toggle USB debugging"
            )
        if isinstance(exc, OSError) and exc.errno is not None:
            return AdbNoDevice(f"no device at {where}: {exc.strerror or exc}")
        return AdbConnectionLost(f"{where}: connecting failed: {_short(exc)}")

    def _usb_error(self, exc: Exception) -> AdbError:
        name, text = type(exc).__name__, str(exc)
        if name == "InvalidTransportError":
            return AdbError(
                "USB needs the optional libusb support: pip install 'padnas[usb]' "
                "(or use TCP: `adb tcpip 5555`, then --serial PHONE_IP:5555)"
            )
        if name == "UsbDeviceNotFoundError":
            which = f" with serial {self.address!r}" if self.address else ""
            return AdbNoDevice(
                f"no USB phone{which} found: plug it in, enable USB debugging, and check "
                "the cable carries data"
            )
        if "Busy" in name or "BUSY" in text or "Resource busy" in text:
            return AdbUsbBusy(
                "the phone's USB interface is held by another program, most likely a running "
                "adb server: run `adb kill-server` and retry (or profile over TCP)"
            )
        if "Access" in name or "ACCESS" in text:
            return AdbNoDevice(
                "no permission to open the USB phone: add a udev rule for it (e.g. the "
                "android-sdk-platform-tools-common package) or run as a user in 'plugdev'"
            )
        return AdbConnectionLost(f"USB error: {_short(exc)}")

    # -- commands -----------------------------------------------------------------------------

    def shell(self, command: str, timeout_s: float) -> tuple[str, int]:
        """Run ``command`` (already quoted) on the phone; return (merged output, exit status).

        Raises AdbConnectionLost if the connection drops, the command stays silent for
        ``timeout_s``, or the output ends without the exit-status marker."""
        device = self._require()
        full = f"{command}; echo {RC_MARK}$?"
        try:
            raw = device.shell(
                full,
                transport_timeout_s=timeout_s,
                read_timeout_s=timeout_s,
                timeout_s=timeout_s,
                decode=False,
            )
        except Exception as exc:
            raise self._command_error(exc, command, timeout_s) from None
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
        m = re.search(rf"{re.escape(RC_MARK)}(\d+)\s*\Z", text)
        if m is None:
            self.close()
            raise AdbConnectionLost(
                f"{self.serial}: the output of `{_clip(command)}` ended without its exit status "
                "(connection cut?)"
            )
        return text[: m.start()], int(m.group(1))

    def push(self, local: str | Path, remote: str, timeout_s: float, mode: int = 0o644) -> None:
        device = self._require()
        try:
            device.push(
                str(local),
                remote,
                st_mode=0o100000 | mode,
                transport_timeout_s=timeout_s,
                read_timeout_s=timeout_s,
            )
        except Exception as exc:
            name = type(exc).__name__
            if name in ("PushFailedError", "AdbCommandFailureException"):
                raise AdbError(f"{self.serial}: push to {remote} failed: {_short(exc)}") from None
            raise self._command_error(exc, f"push {remote}", timeout_s) from None

    def _require(self):
        if not self.connected:
            self.connect()
        return self._device

    def _command_error(self, exc: Exception, what: str, timeout_s: float) -> AdbError:
        self.close()
        if self.kind == "usb" and _is_usb_error(exc):
            return self._usb_error(exc)
        if _is_timeout(exc):
            return AdbConnectionLost(
                f"{self.serial}: no answer to `{_clip(what)}` within {timeout_s:g} s"
            )
        return AdbConnectionLost(
            f"{self.serial}: connection lost during `{_clip(what)}`: {_short(exc)}"
        )

    def close(self) -> None:
        if self._device is not None:
            _close_quietly(self._device)
            self._device = None


def _close_quietly(device) -> None:
    with contextlib.suppress(Exception):
        device.close()


def _is_timeout(exc: Exception) -> bool:
    return isinstance(exc, TimeoutError | socket.timeout) or type(exc).__name__ in (
        "TcpTimeoutException",
        "AdbTimeoutError",
        "UsbReadFailedError",
    )


def _is_timeout_or_drop(exc: Exception) -> bool:
    return (
        _is_timeout(exc)
        or isinstance(exc, ConnectionError | EOFError)
        or (type(exc).__name__ in ("AdbConnectionError", "InvalidChecksumError"))
    )


def _is_usb_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith("usb1") or type(exc).__name__.startswith("Usb")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
