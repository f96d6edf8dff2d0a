"""Crash-safe file I/O shared by both packages.

Long jobs (profiling, supernet training, search) must lose nothing when killed: whole files are
written to a temporary sibling and renamed into place (atomic on POSIX), and record logs are
append-only JSON lines, flushed and fsync'ed per record, whose reader ignores a torn last line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a result file should get the usual umask-based mode
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def append_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Append records, one JSON object per line, durably (flush + fsync before returning)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the records of a JSON-lines file; a torn (unterminated or unparsable) *last* line,
    left by a killed writer, is skipped. A bad line in the middle is an error."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # the last non-empty line: a torn write
                return
            raise ValueError(
                f"{path}:{i + 1}: corrupt record; delete the line to continue"
            ) from None
