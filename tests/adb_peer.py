"""A loopback ADB *device* for tests: a small threaded TCP server speaking the device side of the
ADB protocol, so the adb backend can be proven end to end without a phone.

It implements what a phone's adbd does for the host: the CNXN handshake, AUTH with a real RSA
signature check against allowed public keys (a key it does not know is refused, exactly like a
phone whose user has not tapped "Allow"), streams (OPEN/OKAY/WRTE/CLSE with per-packet flow
control), the ``sync:`` service that ``push`` uses (STAT, SEND/DATA/DONE, QUIT) and a ``shell:``
service backed by :mod:`tests.adb_peer_shell`, which maps ``/data/local/tmp`` into a sandbox
directory and really executes pushed programs (e.g. the stand-in benchmark_model).

It is written from the protocol (message = six little-endian uint32s + payload), not from the
client library, and a test drives it with Debian's real ``adb`` client too.

Fault injection (:class:`Faults`) makes the peer misbehave on chosen benchmark invocations:
drop the connection mid-run, hang, print garbage, report a throttled core; or never answer the
handshake (an "offline" device).
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import socket
import socketserver
import stat
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from adb_peer_shell import PeerShell  # sibling module: tests/ is on sys.path
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

VERSION = 0x01000000
MAXDATA = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
HEADER = struct.Struct("<6I")


def _cmd(name: bytes) -> int:
    return int.from_bytes(name, "little")


CNXN, AUTH, OPEN, OKAY, WRTE, CLSE = (
    _cmd(c) for c in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"WRTE", b"CLSE")
)


def pack(cmd: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    return HEADER.pack(cmd, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, cmd ^ 0xFFFFFFFF) + data


def parse_android_pubkey(text: str | bytes) -> rsa.RSAPublicKey:
    """The ``adbkey.pub`` format: base64 of {u32 words, u32 n0inv, u8 n[256] LE, u8 rr[256],
    u32 e}, optionally followed by `` user@host``."""
    if isinstance(text, str):
        text = text.encode()
    blob = base64.b64decode(text.strip().split(b"\0")[0].split()[0])
    words, _n0inv = struct.unpack_from("<II", blob)
    size = words * 4
    n = int.from_bytes(blob[8 : 8 + size], "little")
    (e,) = struct.unpack_from("<I", blob, 8 + 2 * size)
    return rsa.RSAPublicNumbers(e, n).public_key()


def _verify(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    # adb signs the 20-byte token as if it were a SHA-1 digest (PKCS#1 v1.5)
    try:
        key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
        return True
    except (InvalidSignature, ValueError):
        return False


@dataclass
class Faults:
    """Which benchmark invocations (1-based; "always" for all) misbehave, and how."""

    drop: set[int] | str = field(default_factory=set)  # close the TCP connection mid-run
    hang: set[int] | str = field(default_factory=set)  # never answer
    garbage: set[int] | str = field(default_factory=set)  # print noise instead of timings
    throttle: set[int] | str = field(default_factory=set)  # max_freq reads low after the run
    silent: bool = False  # accept TCP but never answer CNXN (an offline device)

    def hits(self, kind: str, n: int) -> bool:
        spec = getattr(self, kind)
        return spec == "always" or n in spec


class _Stream:
    def __init__(self, conn: _Connection, dev_id: int, host_id: int):
        self.conn, self.dev_id, self.host_id = conn, dev_id, host_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.acked = threading.Event()
        self.closed = threading.Event()
        self.clse_sent = False
        self._buf = b""

    def write(self, data: bytes) -> None:
        step = max(1, min(self.conn.host_maxdata, MAXDATA))
        for i in range(0, len(data), step):
            if self.closed.is_set():
                raise ConnectionError("stream closed by host")
            self.acked.clear()
            self.conn.send(WRTE, self.dev_id, self.host_id, data[i : i + step])
            while not self.acked.wait(0.2):
                if self.closed.is_set() or self.conn.dead.is_set():
                    raise ConnectionError("stream closed before the host acknowledged")

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.inbox.get()
            if chunk is None:
                raise ConnectionError("stream closed")
            self._buf += chunk
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        with self.conn.lock:
            if self.clse_sent:
                return
            self.clse_sent = True
        self.conn.send(CLSE, self.dev_id, self.host_id)


class _Connection(socketserver.BaseRequestHandler):
    """One host connection: handshake, then a reader loop dispatching packets to streams."""

    peer: AdbPeer  # set on the handler subclass by AdbPeer

    def setup(self) -> None:
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        self.dead = threading.Event()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1000
        self.host_maxdata = 4096
        self.online = False
        self.token = b""
        self.peer.connections.append(self)

    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        if self.dead.is_set():
            raise ConnectionError("connection dropped")
        with self.send_lock:
            try:
                self.request.sendall(pack(cmd, arg0, arg1, data))
            except OSError as exc:
                self.dead.set()
                raise ConnectionError(str(exc)) from exc

    def drop(self) -> None:
        """Fault: vanish like a phone that lost Wi-Fi (RST, no CLSE)."""
        self.dead.set()
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)  # wakes the reader; close alone would not
        with contextlib.suppress(OSError):
            self.request.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("host closed the connection")
            buf += chunk
        return buf

    def handle(self) -> None:
        try:
            while not self.dead.is_set():
                cmd, arg0, arg1, length, check, magic = HEADER.unpack(self._recv_exact(24))
                if magic != cmd ^ 0xFFFFFFFF:
                    return  # not ADB: drop the connection like adbd does
                data = self._recv_exact(length) if length else b""
                if check and (sum(data) & 0xFFFFFFFF) != check:
                    return
                self._dispatch(cmd, arg0, arg1, data)
        except (ConnectionError, OSError):
            pass
        finally:
            self.dead.set()
            for s in list(self.streams.values()):
                s.closed.set()
                s.inbox.put(None)

    def _dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        peer = self.peer
        if cmd == CNXN:
            if peer.faults.silent:
                return
            self.host_maxdata = arg1 or 4096
            if peer.allowed_keys is None:
                self._go_online()
            else:
                self._send_token()
        elif cmd == AUTH and arg0 == AUTH_SIGNATURE:
            if any(_verify(k, self.token, data) for k in peer.allowed_keys or ()):
                self._go_online()
            else:
                self._send_token()
        elif cmd == AUTH and arg0 == AUTH_RSAPUBLICKEY:
            # The phone would now ask its user. Our user never answers for an unknown key,
            # unless the test says the prompt was accepted.
            text = data.rstrip(b"\0")
            peer.offered_keys.append(text.decode(errors="replace"))
            if peer.accept_new_keys:
                peer.allowed_keys.append(parse_android_pubkey(text))
                self._go_online()
        elif not self.online:
            return
        elif cmd == OPEN:
            service = data.rstrip(b"\0").decode(errors="replace")
            with self.lock:
                self.next_id += 1
                dev_id = self.next_id
            stream = _Stream(self, dev_id, arg0)
            self.streams[dev_id] = stream
            target = peer.service_for(service)
            if target is None:
                self.send(CLSE, 0, arg0)
                return
            self.send(OKAY, dev_id, arg0)
            threading.Thread(target=self._run_service, args=(target, stream), daemon=True).start()
        elif cmd == OKAY:
            s = self.streams.get(arg1)
            if s:
                s.acked.set()
        elif cmd == WRTE:
            s = self.streams.get(arg1)
            if s:
                self.send(OKAY, s.dev_id, s.host_id)
                s.inbox.put(data)
        elif cmd == CLSE:
            s = self.streams.pop(arg1, None)
            if s:
                s.closed.set()
                s.inbox.put(None)
                s.close()

    def _send_token(self) -> None:
        self.token = os.urandom(20)
        self.send(AUTH, AUTH_TOKEN, 0, self.token)

    def _go_online(self) -> None:
        self.online = True
        props = self.peer.props
        banner = (
            f"device::ro.product.name={props['ro.product.name']};"
            f"ro.product.model={props['ro.product.model']};"
            f"ro.product.device={props['ro.product.device']};features=\0"
        )
        self.send(CNXN, VERSION, MAXDATA, banner.encode())

    def _run_service(self, target, stream: _Stream) -> None:
        try:
            target(self, stream)
            stream.close()
        except (ConnectionError, OSError):
            pass


class AdbPeer:
    """Start with ``with AdbPeer(tmp_path) as peer:``; connect to ``peer.serial``.

    ``allowed_keys``: adb public keys (``adbkey.pub`` text) that may connect; None turns
    authentication off. ``root``: the sandbox holding the phone's ``/data/local/tmp``.
    """

    def __init__(
        self,
        root: str | Path,
        allowed_keys: list[str] | None = None,
        faults: Faults | None = None,
        accept_new_keys: bool = False,
        port: int = 0,
    ):
        self.root = Path(root)
        (self.root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        self.allowed_keys = (
            None if allowed_keys is None else [parse_android_pubkey(k) for k in allowed_keys]
        )
        self.accept_new_keys = accept_new_keys
        self.faults = faults or Faults()
        self.offered_keys: list[str] = []
        self.pushed: list[str] = []  # phone paths received through sync SEND
        self.connections: list[_Connection] = []
        self.props = {
            "ro.product.name": "blueline",
            "ro.product.model": "Pixel 3",
            "ro.product.device": "blueline",
            "ro.product.manufacturer": "Google",
            "ro.board.platform": "sdm845",
            "ro.product.cpu.abi": "arm64-v8a",
            "ro.build.version.release": "12",
        }
        self.shell = PeerShell(self)
        handler = type("Handler", (_Connection,), {"peer": self})
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), handler, False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True  # a restarted peer may take the same port
        self._thread: threading.Thread | None = None

    def allow_key(self, pubkey_text: str) -> None:
        if self.allowed_keys is None:
            self.allowed_keys = []
        self.allowed_keys.append(parse_android_pubkey(pubkey_text))

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> AdbPeer:
        self._server.server_bind()
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for c in self.connections:
            c.drop()

    def __enter__(self) -> AdbPeer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- services -------------------------------------------------------------------------

    def service_for(self, name: str):
        if name.startswith("shell:"):
            command = name[len("shell:") :]
            return lambda conn, stream: self.shell.serve(conn, stream, command)
        if name == "sync:":
            return self._sync
        return None

    def remote_path(self, path: str) -> Path | None:
        """Sandbox path for a phone path under /data/local/tmp, else None (not writable)."""
        norm = os.path.normpath(path)
        if norm == "/data/local/tmp" or norm.startswith("/data/local/tmp/"):
            return self.root / norm.lstrip("/")
        return None

    def _sync(self, conn: _Connection, stream: _Stream) -> None:
        while True:
            ident, length = struct.unpack("<4sI", stream.read_exact(8))
            if ident == b"QUIT":
                return
            arg = stream.read_exact(length)
            if ident == b"STAT":
                local = self.remote_path(arg.decode())
                mode = size = mtime = 0
                if local is not None and local.exists():
                    st = local.stat()
                    mode, size, mtime = st.st_mode, st.st_size, int(st.st_mtime)
                stream.write(struct.pack("<4sIII", b"STAT", mode, size, mtime))
            elif ident == b"SEND":
                self._receive_file(stream, arg.decode())
            else:
                msg = f"sync {ident.decode(errors='replace')} not supported by the peer".encode()
                stream.write(struct.pack("<4sI", b"FAIL", len(msg)) + msg)
                return

    def _receive_file(self, stream: _Stream, spec: str) -> None:
        path, _, mode = spec.rpartition(",")
        chunks = []
        while True:
            ident, length = struct.unpack("<4sI", stream.read_exact(8))
            if ident == b"DATA":
                chunks.append(stream.read_exact(length))
            elif ident == b"DONE":
                break
            else:
                raise ConnectionError(f"unexpected sync packet {ident!r} during SEND")
        local = self.remote_path(path)
        if local is None:
            msg = f"couldn't create file: {path}: Permission denied".encode()
            stream.write(struct.pack("<4sI", b"FAIL", len(msg)) + msg)
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(b"".join(chunks))
        self.pushed.append(path)
        local.chmod(stat.S_IMODE(int(mode)) if mode.isdigit() else 0o644)
        stream.write(struct.pack("<4sI", b"OKAY", 0))
