"""The ``shell:`` service of the loopback ADB peer: a tiny POSIX-ish shell that knows the few
commands an Android phone offers the adb backend (echo, mkdir, chmod, rm, rmdir, cat, md5sum,
getprop, taskset) plus executing pushed programs, with ``;``/``&&``/``||``, ``$?`` and the
``2>&1`` / ``2>/dev/null`` / ``>/dev/null`` redirections. Phone paths under ``/data/local/tmp``
live in the peer's sandbox; ``/sys/devices/system/cpu`` is a Pixel 3 (SD845: CPU0-3 little,
CPU4-7 big).

Like adbd's shell protocol v1 it returns stdout and stderr merged and no exit status.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

LITTLE_KHZ, BIG_KHZ, THROTTLED_KHZ = 1766400, 2803200, 1996800
SH = "/system/bin/sh"


class _Abort(Exception):
    """The connection is gone (dropped or hung up on purpose): stop without output."""


class PeerShell:
    def __init__(self, peer):
        self.peer = peer
        self.lock = threading.Lock()
        self.commands: list[str] = []  # every shell command line received
        self.bench_runs: list[dict] = []  # one per benchmark invocation: argv, mask
        self.runs = 0
        self.throttled = False

    # -- entry point ----------------------------------------------------------------------

    def serve(self, conn, stream, command: str) -> None:
        with self.lock:
            self.commands.append(command)
        if not command.strip():
            stream.write(b"interactive shells are not supported by the test peer\n")
            return
        try:
            out = self.run(command, conn)
        except _Abort:
            raise ConnectionError("fault injected") from None
        stream.write(out)

    def run(self, command: str, conn=None) -> bytes:
        try:
            lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError as exc:
            return f"{SH}: syntax error: {exc}\n".encode()
        out = bytearray()
        rc = 0
        op = ";"
        cmd: list[str] = []
        for tok in [*tokens, ";"]:
            if tok in (";", "&&", "||"):
                if cmd and (op == ";" or (op == "&&") == (rc == 0)):
                    chunk, rc = self._simple(cmd, rc, conn)
                    out += chunk
                op, cmd = tok, []
            elif tok in ("|", "&", "<"):
                return out + f"{SH}: '{tok}' is not supported by the test peer\n".encode()
            else:
                cmd.append(tok)
        return bytes(out)

    # -- one simple command -----------------------------------------------------------------

    def _simple(self, argv: list[str], last_rc: int, conn) -> tuple[bytes, int]:
        words, keep_out, keep_err = [], True, True
        i = 0
        while i < len(argv):
            tok = argv[i]
            if tok == "2" and argv[i + 1 : i + 3] == [">&", "1"]:
                i += 3  # 2>&1: merged anyway (shell protocol v1)
                continue
            if tok in ("2", "1") and i + 1 < len(argv) and argv[i + 1] == ">":
                target = argv[i + 2] if i + 2 < len(argv) else ""
                if target == "/dev/null":
                    if tok == "2":
                        keep_err = False
                    else:
                        keep_out = False
                i += 3
                continue
            if tok == ">":
                keep_out = argv[i + 1] != "/dev/null" if i + 1 < len(argv) else True
                i += 2
                continue
            words.append(tok.replace("$?", str(last_rc)))
            i += 1
        if not words:
            return b"", last_rc
        out, err, rc = self._dispatch(words, keep_err, conn)
        return (out if keep_out else b"") + (err if keep_err else b""), rc

    def _dispatch(self, words: list[str], keep_err: bool, conn) -> tuple[bytes, bytes, int]:
        name, args = words[0], words[1:]
        builtin = getattr(self, f"_cmd_{name}", None) if "/" not in name else None
        if builtin is not None:
            return builtin(args, conn)
        if "/" in name:
            return self._exec(name, args, conn)
        return b"", f"{SH}: {name}: not found\n".encode(), 127

    # -- builtins -----------------------------------------------------------------------------

    def _cmd_echo(self, args, conn):
        return (" ".join(args) + "\n").encode(), b"", 0

    def _local(self, path: str) -> Path | None:
        return self.peer.remote_path(path)

    def _cmd_mkdir(self, args, conn):
        err, rc = b"", 0
        for p in (a for a in args if not a.startswith("-")):
            local = self._local(p)
            if local is None:
                if p.rstrip("/") in ("/data", "/data/local") and "-p" in args:
                    continue
                err += f"mkdir: '{p}': Permission denied\n".encode()
                rc = 1
            else:
                local.mkdir(parents="-p" in args, exist_ok="-p" in args)
        return b"", err, rc

    def _cmd_chmod(self, args, conn):
        if len(args) < 2:
            return b"", b"chmod: Need 2 arguments\n", 1
        mode, paths = args[0], args[1:]
        err, rc = b"", 0
        for p in paths:
            local = self._local(p)
            if local is None or not local.exists():
                err += f"chmod: {p}: No such file or directory\n".encode()
                rc = 1
            elif mode == "+x":
                local.chmod(local.stat().st_mode | 0o111)
            else:
                local.chmod(int(mode, 8))
        return b"", err, rc

    def _cmd_rm(self, args, conn):
        force = any(a.startswith("-") and "f" in a for a in args)
        recursive = any(a.startswith("-") and "r" in a for a in args)
        err, rc = b"", 0
        for p in (a for a in args if not a.startswith("-")):
            local = self._local(p)
            if local is None:
                err += f"rm: {p}: Permission denied\n".encode()
                rc = 1
            elif local.is_dir() and recursive:
                for sub in sorted(local.rglob("*"), reverse=True):
                    if sub.is_dir():
                        sub.rmdir()
                    else:
                        sub.unlink()
                local.rmdir()
            elif local.is_file():
                local.unlink()
            elif not force:
                err += f"rm: {p}: No such file or directory\n".encode()
                rc = 1
        return b"", err, rc

    def _cmd_rmdir(self, args, conn):
        """Like toybox rmdir: removes empty folders only."""
        err, rc = b"", 0
        for p in (a for a in args if not a.startswith("-")):
            local = self._local(p)
            if local is None or not local.is_dir():
                err += f"rmdir: {p}: No such file or directory\n".encode()
                rc = 1
            elif any(local.iterdir()):
                err += f"rmdir: {p}: Directory not empty\n".encode()
                rc = 1
            else:
                local.rmdir()
        return b"", err, rc

    def _sysfs(self, path: str) -> str | None:
        cpu = "/sys/devices/system/cpu/"
        if path in (cpu + "possible", cpu + "present", cpu + "online"):
            return "0-7"
        if not path.startswith(cpu + "cpu"):
            return None
        head, _, leaf = path[len(cpu) + 3 :].partition("/cpufreq/")
        if not head.isdigit() or int(head) > 7:
            return None
        big = int(head) >= 4
        top = BIG_KHZ if big else LITTLE_KHZ
        now = THROTTLED_KHZ if (big and self.throttled) else top
        return {
            "scaling_governor": "schedutil",
            "cpuinfo_max_freq": str(top),
            "cpuinfo_min_freq": "825600" if big else "300000",
            "scaling_max_freq": str(now),
            "scaling_cur_freq": str(now),
        }.get(leaf)

    def _cmd_cat(self, args, conn):
        out, err, rc = b"", b"", 0
        for p in args:
            virtual = self._sysfs(p)
            local = self._local(p)
            if virtual is not None:
                out += (virtual + "\n").encode()
            elif local is not None and local.is_file():
                out += local.read_bytes()
            else:
                err += f"cat: {p}: No such file or directory\n".encode()
                rc = 1
        return out, err, rc

    def _cmd_md5sum(self, args, conn):
        out, err, rc = b"", b"", 0
        for p in args:
            local = self._local(p)
            if local is not None and local.is_file():
                out += f"{hashlib.md5(local.read_bytes()).hexdigest()}  {p}\n".encode()
            else:
                err += f"md5sum: {p}: No such file or directory\n".encode()
                rc = 1
        return out, err, rc

    def _cmd_getprop(self, args, conn):
        props = self.peer.props
        if not args:
            return "".join(f"[{k}]: [{v}]\n" for k, v in props.items()).encode(), b"", 0
        return (props.get(args[0], "") + "\n").encode(), b"", 0

    def _cmd_taskset(self, args, conn):
        if len(args) < 2:
            return b"", b"usage: taskset [-ap] [mask] [PID | cmd [args...]]\n", 1
        try:
            mask = int(args[0], 16)
        except ValueError:
            return b"", f"taskset: bad mask '{args[0]}'\n".encode(), 1
        if mask & 0xFF == 0:
            return b"", b"taskset: sched_setaffinity: Invalid argument\n", 1
        return self._exec(args[1], args[2:], conn, mask=args[0])

    # -- running a pushed program -------------------------------------------------------------

    def _exec(self, path: str, args: list[str], conn, mask: str | None = None):
        if "/" not in path:
            builtin = getattr(self, f"_cmd_{path}", None)
            if builtin is None:
                return b"", f"{SH}: {path}: not found\n".encode(), 127
            return builtin(args, conn)
        local = self._local(path)
        if local is None or not local.is_file():
            return b"", f"{SH}: {path}: not found\n".encode(), 127
        if not os.access(local, os.X_OK):
            return b"", f"{SH}: {path}: can't execute: Permission denied\n".encode(), 126
        sandbox = str(self.peer.root / "data/local/tmp")
        host_args = [a.replace("/data/local/tmp", sandbox) for a in args]
        head = local.read_bytes()[:128]
        if head.startswith(b"#!") and b"python" in head.split(b"\n")[0]:
            argv = [sys.executable, str(local), *host_args]
        elif head.startswith(b"#!"):
            argv = [str(local), *host_args]
        else:
            return b"", f"{SH}: {path}: not executable: 64-bit ELF file\n".encode(), 126
        is_bench = any(a.startswith("--graph=") for a in args)
        if is_bench:
            return self._benchmark(argv, args, conn, mask)
        return self._spawn(argv, conn)

    def _benchmark(self, argv, args, conn, mask):
        faults = self.peer.faults
        with self.lock:
            self.runs += 1
            n = self.runs
            self.throttled = False
            graph = next(a.removeprefix("--graph=") for a in args if a.startswith("--graph="))
            local = self._local(graph)
            digest = (
                hashlib.sha256(local.read_bytes()).hexdigest()
                if local is not None and local.is_file()
                else None
            )
            # what the phone timed: the pushed file's bytes, for tests to say which file it was
            self.bench_runs.append({"argv": list(args), "mask": mask, "graph_sha256": digest})
        if faults.hits("hang", n):
            while conn is not None and not conn.dead.is_set():
                time.sleep(0.05)
            raise _Abort
        if faults.hits("drop", n):
            time.sleep(0.1)
            conn.drop()
            raise _Abort
        if faults.hits("garbage", n):
            return b"\x1b[0m%%%% segfault?? count=abc first=\n\xff\xfe random 12 34\n", b"", 0
        out, err, rc = self._spawn(argv, conn)
        if faults.hits("throttle", n):
            self.throttled = True
        return out, err, rc

    def _spawn(self, argv, conn):
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.peer.root,
        )
        result: dict = {}
        reader = threading.Thread(target=lambda: result.update(out=proc.stdout.read()))
        reader.start()
        while proc.poll() is None:
            if conn is not None and conn.dead.is_set():
                proc.kill()
                proc.wait()
                reader.join()
                raise _Abort
            time.sleep(0.02)
        reader.join()
        return result.get("out", b""), b"", proc.returncode
