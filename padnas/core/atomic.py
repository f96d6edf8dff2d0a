"""Crash-safe files: whole files written to a temporary sibling and renamed into place (atomic
on POSIX), and append-only JSON-lines record logs, flushed and fsync'ed per record, whose reader
skips a torn last line (and refuses, naming the line, any other damaged one). Long jobs
(profiling, supernet training, search) lose nothing when killed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from padnas.core.errors import FileFormatError, PathError
from padnas.core.strict_json import MAX_JSON_BYTES, decode_text, parse_json, read_capped_bytes

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a path that cannot be written (not a directory,
    read-only, no space) raises a :class:`PathError` saying which and why."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PathError.cannot_create(path, exc, "the file") from exc
    try:
        # mkstemp makes the file 0600; a result file should get the usual umask-based mode
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PathError.cannot_create(path, exc, "the file") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def append_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Append records, one JSON object per line, durably (flush + fsync before returning).
    A torn last line left by a killed writer is dropped first (see :func:`_seal`), so the new
    records never run into it and a later read finds no damaged line in the middle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_own_file(path)
    _seal(path)
    try:  # O_NOFOLLOW: a link planted after the check is refused too, never written through
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise PathError.cannot_create(path, exc, "the record log") from exc
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _check_own_file(path: Path) -> None:
    """Refuse to append to anything but a regular file: a symbolic link planted in a log's place
    would have its target truncated or extended, a FIFO would block the job."""
    if path.is_symlink():
        raise PathError(
            f"{path} is a symbolic link: record logs are appended to only as regular files, "
            "never through a link; remove the link or choose another folder"
        )
    if path.exists() and not path.is_file():
        raise PathError(
            f"{path} is not a regular file (a directory, FIFO or device is in its place); "
            "remove it or choose another folder"
        )


def _torn_tail(data: bytes, origin: str) -> tuple[bytes, Any]:
    """``(tail, record)`` of the bytes after the last newline: ``record`` is the tail's JSON
    object when it is a whole one (only its newline was lost), else None (a torn write)."""
    tail = data[data.rfind(b"\n") + 1 :]
    if not tail.strip():
        return b"", None
    try:
        record = parse_json(tail.decode("utf-8"), origin)
    except (UnicodeDecodeError, FileFormatError):
        return tail, None
    return tail, record if isinstance(record, dict) else None


def _seal(path: Path) -> None:
    """Make ``path`` end with a newline before an append: a whole last record gets its newline
    back, a torn one (unparsable bytes after the last newline) is cut off -- it holds nothing
    that can be read, and the record it was is written again by the resumed job."""
    try:
        with open(path, "rb") as fh:
            if fh.seek(0, os.SEEK_END) == 0:
                return
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":  # the usual case: one byte read per append
                return
            fh.seek(0)
            data = fh.read()
    except FileNotFoundError:
        return
    tail, record = _torn_tail(data, str(path))
    if not tail:
        return
    if record is not None:
        with open(path, "ab") as fh:
            fh.write(b"\n")
    else:
        os.truncate(path, len(data) - len(tail))


def iter_jsonl(
    path: str | Path, *, on_torn: Callable[[str], None] | None = None
) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, record)`` of a JSON-lines file (none if it does not exist).

    Only the bytes after the last newline can be a torn write (each record is written with its
    newline in one call, so a killed writer leaves an unterminated fragment): a fragment that
    does not parse is skipped and ``on_torn`` hears of it. Every newline-terminated line must be
    a JSON object; a damaged one raises :class:`FileFormatError` naming the file and line --
    skipping it would silently lose or change data.
    """
    path = Path(path)
    if not path.exists():
        return
    data = read_capped_bytes(path, MAX_JSON_BYTES)
    tail, last = _torn_tail(data, str(path))
    body = decode_text(data[: len(data) - len(tail)], str(path))
    lines = body.split("\n")[:-1] if body else []
    fix = "delete the line to continue"
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = parse_json(line, f"{path}:{i}: corrupt record", fix=fix)
        if not isinstance(record, dict):
            raise FileFormatError(
                f"{path}:{i}: corrupt record: a record must be a JSON object; {fix}"
            )
        yield i, record
    n = len(lines) + 1
    if last is not None:
        yield n, last
    elif tail and on_torn is not None:
        on_torn(
            f"{path}:{n}: skipped a half-written last line ({len(tail)} bytes), left by a "
            "job that was stopped while writing it"
        )


def read_jsonl(path: str | Path, *, on_torn: Callable[[str], None] | None = None) -> list[dict]:
    """The records of a JSON-lines file (see :func:`iter_jsonl`)."""
    return [record for _, record in iter_jsonl(path, on_torn=on_torn)]


# ---- the strict JSON reader -----------------------------------------------------------------

#: the largest JSON file read (a LUT of the large space at every resolution is ~2 MB)
