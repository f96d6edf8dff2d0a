"""The user's Android ``benchmark_model`` binary: checked once, remembered in the cache.

The user downloads the arm64 build once and passes ``--benchmark-model PATH``; a copy is kept in
``$PADNAS_CACHE/adb/benchmark_model`` so later runs (and other phones) need no flag and do not
break when the download folder is cleaned. An x86 or 32-bit ARM build is refused here, before
anything is pushed, because on the phone it would only fail with "not executable".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from latency.cache import cache_root
from latency.errors import LatencyUsageError
from padnas.core import atomic_write_bytes, atomic_write_json, read_json

DOWNLOAD_HINT = (
    "download the Android arm64 benchmark_model (TFLite/LiteRT nightly prebuilt, e.g. "
    "'android_aarch64_benchmark_model' from the TensorFlow Lite performance-measurement page) "
    "and pass --benchmark-model PATH once"
)

_ELF_MACHINES = {0x03: "x86", 0x28: "32-bit ARM", 0x3E: "x86-64", 0xB7: "arm64"}


class BenchmarkBinaryError(LatencyUsageError):
    """No usable benchmark_model binary (exit 2)."""


def binary_dir() -> Path:
    return cache_root() / "adb"


def md5_of(path: Path) -> str:
    return _digest(path, hashlib.md5())


def sha256_of(path: Path) -> str:
    return _digest(path, hashlib.sha256())


def _digest(path: Path, h) -> str:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_binary(path: Path) -> str:
    """``arm64``, ``x86-64``... for an ELF file, ``script`` for ``#!``, else ``unknown``."""
    head = Path(path).read_bytes()[:20]
    if head.startswith(b"#!"):
        return "script"
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        little = head[5] == 1
        machine = int.from_bytes(head[18:20], "little" if little else "big")
        return _ELF_MACHINES.get(machine, f"ELF machine {machine:#x}")
    return "unknown"


def remember(path: str | Path) -> dict:
    """Check ``path`` and copy it into the cache; returns its record (path, md5, size...)."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise BenchmarkBinaryError(f"--benchmark-model {src}: no such file; {DOWNLOAD_HINT}")
    kind = describe_binary(src)
    if kind not in ("arm64", "script"):
        raise BenchmarkBinaryError(
            f"--benchmark-model {src} is a {kind} file, not an Android arm64 executable; "
            f"{DOWNLOAD_HINT}"
        )
    data = src.read_bytes()
    dest = binary_dir() / "benchmark_model"
    atomic_write_bytes(dest, data)
    os.chmod(dest, 0o755)
    record = {
        "path": str(dest),
        "source": str(src.resolve()),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "kind": kind,
    }
    atomic_write_json(binary_dir() / "benchmark_model.json", record)
    return record


def remembered() -> dict | None:
    """The record of the binary kept in the cache, or None when none was remembered yet.

    The record is only a note: what is pushed to the phone is always the cache's own copy,
    ``binary_dir()/benchmark_model`` (a regular file, not a link), and only when its SHA-256 is
    the one recorded when it was copied in. A record naming any other file, or a copy that
    changed since, is refused: padnas never pushes a file from outside its cache as
    benchmark_model.
    """
    meta = binary_dir() / "benchmark_model.json"
    if not meta.is_file():
        return None
    again = f"pass --benchmark-model PATH again to replace the remembered copy ({meta})"
    try:
        record = read_json(meta, expect=dict)
    except (OSError, ValueError) as exc:
        raise BenchmarkBinaryError(f"{exc}; {again}") from None
    cached = binary_dir() / "benchmark_model"
    if record.get("path") != str(cached):
        raise BenchmarkBinaryError(
            f"{meta} names {record.get('path')!r} as benchmark_model, a file outside the cache "
            f"(only {cached} is ever pushed); {again}"
        )
    if cached.is_symlink() or not cached.is_file():
        raise BenchmarkBinaryError(f"{cached} is missing or not a regular file; {again}")
    sha = record.get("sha256")
    if not isinstance(sha, str) or sha256_of(cached) != sha:
        raise BenchmarkBinaryError(
            f"{cached} does not match the SHA-256 recorded in {meta} (changed since it was "
            f"copied in, or recorded by an older padnas); {again}"
        )
    return {
        **record,
        "md5": md5_of(cached),
        "size": cached.stat().st_size,
        "kind": describe_binary(cached),
    }


def resolve(path: str | Path | None) -> dict:
    """The binary to use: ``path`` (remembered from now on) or the one remembered earlier."""
    if path is not None:
        return remember(path)
    record = remembered()
    if record is None:
        raise BenchmarkBinaryError(f"no benchmark_model binary known yet: {DOWNLOAD_HINT}")
    return record
