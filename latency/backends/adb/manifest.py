"""What padnas pushed to a phone and has not removed yet, kept on the host across runs.

A measurement pushes a model to ``<remote_dir>/models/`` and removes it after the run; a run
that is killed in between (SIGKILL, a lost laptop battery) leaves the model on the phone. Each
:class:`~latency.backends.adb.backend.AdbBackend` therefore writes what it pushed, before each
push, to its own manifest in ``$PADNAS_CACHE/adb/pushed/`` (``SERIAL-KEY.TOKEN.json``, replaced
atomically) and holds a lock on ``SERIAL-KEY.TOKEN.lock`` while it lives. The next backend for
the same phone adopts the manifests whose lock it can take -- their writer is gone -- and removes
their models, and only those:

- a manifest is read with the strict JSON reader; a damaged one is left alone (and named);
- only a manifest of this phone and of this remote folder is adopted;
- only paths directly inside that folder, with the names padnas gives models, are considered;
- a file is removed only when its MD5 on the phone is the one recorded when it was pushed: a
  file the user put there, or changed since, is never deleted.

A manifest whose lock is held belongs to a live run (another process measuring the same phone),
and is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
from pathlib import Path

from latency.cache import cache_root
from padnas.core import atomic_write_json, read_json

SCHEMA = 1
#: the name :meth:`AdbBackend._measure_once` gives a pushed model: a counter, a dash, the file
_MODEL_NAME = re.compile(r"\d{6}-[^/\x00\n]+")
_MD5 = re.compile(r"[0-9a-f]{32}")


def manifest_dir() -> Path:
    return cache_root() / "adb" / "pushed"


def serial_key(serial: str) -> str:
    """A file-name-safe key of a serial (``127.0.0.1:5555`` -> ``127.0.0.1_5555-1a2b3c4d``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial)[:40]
    return f"{safe}-{hashlib.sha256(serial.encode()).hexdigest()[:8]}"


class PushManifest:
    """The manifest of one backend: ``entries`` (path -> MD5 of what was pushed there), written
    whole on every change; locked from :meth:`open` to :meth:`close`."""

    def __init__(self, serial: str, remote_models: str) -> None:
        self.serial, self.remote_models = serial, remote_models
        self.entries: dict[str, str] = {}
        self.prefix = serial_key(serial)
        self.path: Path | None = None
        self._lock_fd: int | None = None

    # -- this backend's own manifest -------------------------------------------------------------

    def open(self) -> None:
        """Create this backend's lock (held until :meth:`close`); the manifest itself is only
        written once something is pushed."""
        if self._lock_fd is not None:
            return
        folder = manifest_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.prefix}.{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_fd = _lock(folder / f"{stem}.lock", wait=True)
        self.path = folder / f"{stem}.json"

    def add(self, remote: str, md5: str) -> None:
        self.entries[remote] = md5
        self._write()

    def clear(self) -> None:
        self.entries.clear()
        self._write()

    def _write(self) -> None:
        if self.path is None:
            self.open()
        assert self.path is not None
        if self.entries:
            atomic_write_json(
                self.path,
                {
                    "schema": SCHEMA,
                    "serial": self.serial,
                    "remote_models": self.remote_models,
                    "pushed": [{"path": p, "md5": m} for p, m in self.entries.items()],
                },
            )
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def close(self) -> None:
        """Release the lock; the manifest stays only if models are still listed in it."""
        if self._lock_fd is None:
            return
        assert self.path is not None
        if not self.entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.path.with_suffix(".lock").unlink()
        os.close(self._lock_fd)
        self._lock_fd = None

    # -- manifests left by runs that are gone ----------------------------------------------------

    def leftovers(self, warn) -> list[tuple[Path, int, dict[str, str]]]:
        """``(manifest, held lock, {path: md5})`` of every manifest of this phone and remote
        folder whose writer is gone; each lock stays held until :func:`forget` (``warn`` names a
        manifest that cannot be trusted, which is left alone)."""
        folder = manifest_dir()
        if not folder.is_dir():
            return []
        found = []
        for lock_path in sorted(folder.glob(f"{self.prefix}.*.lock")):
            if self.path is not None and lock_path == self.path.with_suffix(".lock"):
                continue
            fd = _lock(lock_path, wait=False)
            if fd is None:  # a live run's manifest
                continue
            manifest = lock_path.with_suffix(".json")
            entries = self._read(manifest, warn) if manifest.exists() else {}
            if entries is None:
                os.close(fd)
                continue
            found.append((manifest, fd, entries))
        return found

    def _read(self, manifest: Path, warn) -> dict[str, str] | None:
        """The entries of a manifest left behind, checked; None (and a warning) when it is not
        one of this phone and folder, or is damaged."""
        try:
            data = read_json(manifest, expect=dict)
        except (OSError, ValueError) as exc:
            warn(f"ignoring a damaged record of models pushed to {self.serial}: {exc}")
            return None
        if data.get("serial") != self.serial or data.get("remote_models") != self.remote_models:
            return None  # another folder: left for a run that uses it
        rows = data.get("pushed")
        entries: dict[str, str] = {}
        for row in rows if isinstance(rows, list) else [None]:
            path = row.get("path") if isinstance(row, dict) else None
            md5 = row.get("md5") if isinstance(row, dict) else None
            folder, _, name = path.rpartition("/") if isinstance(path, str) else ("", "", "")
            if (
                folder != self.remote_models
                or not _MODEL_NAME.fullmatch(name)
                or not isinstance(md5, str)
                or not _MD5.fullmatch(md5)
            ):
                warn(
                    f"ignoring {manifest}: it lists {str(path)[:80]!r}, which is not a model "
                    f"padnas pushes to {self.remote_models}"
                )
                return None
            entries[path] = md5
        return entries


def forget(manifest: Path, fd: int) -> None:
    """Delete a manifest left behind (its models are dealt with) and its lock."""
    for path in (manifest, manifest.with_suffix(".lock")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    os.close(fd)


def _lock(path: Path, *, wait: bool) -> int | None:
    """An open descriptor of ``path`` (created, never through a link) holding an exclusive
    ``flock``; None when another process holds it and ``wait`` is False."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
