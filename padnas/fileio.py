"""Crash-safe file I/O and the one strict JSON reader, shared by both packages.

Every JSON file the project reads (LUTs, device profiles, network descriptions, run-directory
files, store lines) goes through :func:`read_json` / :func:`parse_json`, so a hostile or damaged
file fails the same way everywhere: one :class:`~padnas.errors.FileFormatError` naming the file,
the place and a fix, never a ``RecursionError`` or a silently different value. The standard
library accepts duplicate keys (last wins: a duplicated LUT entry once changed a prediction 17x),
``NaN``/``Infinity`` tokens and ``1e999`` (infinite), and recurses without bound; we refuse all of
them.

Long jobs (profiling, supernet training, search) must lose nothing when killed: whole files are
written to a temporary sibling and renamed into place (atomic on POSIX), and record logs are
append-only JSON lines, flushed and fsync'ed per record, whose reader skips a torn last line
(and refuses, naming the line, any other damaged one).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import FileFormatError, PathError

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
    _seal(path)
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


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
    data = _read_bytes(path, MAX_JSON_BYTES)
    tail, last = _torn_tail(data, str(path))
    body = _decode(data[: len(data) - len(tail)], str(path))
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
MAX_JSON_BYTES = 64 * 2**20
#: the deepest nesting of objects/lists accepted (the project's own files nest < 8 levels)
MAX_JSON_DEPTH = 64
#: the longest integer literal accepted (a count or a size never needs more)
_MAX_INT_DIGITS = 30


class _Refused(Exception):
    """Raised inside the decoder hooks; turned into a FileFormatError with the origin."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"key {key!r} appears twice in one object (keep one of them)")
        out[key] = value
    return out


def _no_constant(token: str) -> Any:
    raise _Refused(f"{token} is not a JSON number (write a finite number or null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text} is out of range for a number (write a finite number)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"the integer {text[:12]}... has more than {_MAX_INT_DIGITS} digits")
    return int(text)


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed value (iterative: a deep value must not recurse here)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        value, level = todo.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            todo.extend((v, level + 1) for v in value)
    return deepest


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _text_depth(text: str) -> int:
    """Deepest bracket nesting of JSON text, counted before parsing: the C decoder recurses per
    level, and a hostile file nested 100,000 deep can crash it instead of raising."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def parse_json(text: str, origin: str, *, fix: str = "") -> Any:
    """Parse JSON text strictly; ``origin`` names it (a file, ``file:line``) in every error.

    Refused, with a :class:`FileFormatError`: malformed or truncated JSON (with line and column),
    duplicate keys, ``NaN``/``Infinity``/out-of-range numbers, integers of absurd length and
    nesting deeper than :data:`MAX_JSON_DEPTH`. ``fix`` ends the message (how to get a good file).
    """
    tail = f"; {fix}" if fix else ""
    if _text_depth(text) > MAX_JSON_DEPTH:
        raise FileFormatError(
            f"{origin}: nested deeper than {MAX_JSON_DEPTH} levels: not a padnas file{tail}"
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        hint = "truncated" if exc.pos >= len(text.rstrip()) else "broken"
        raise FileFormatError(
            f"{origin}: not valid JSON ({hint} at line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}){tail}"
        ) from None
    except _Refused as exc:
        raise FileFormatError(f"{origin}: {exc}{tail}") from None
    except RecursionError:
        raise FileFormatError(
            f"{origin}: nested deeper than {MAX_JSON_DEPTH} levels: not a padnas file{tail}"
        ) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise FileFormatError(
            f"{origin}: nested deeper than {MAX_JSON_DEPTH} levels: not a padnas file{tail}"
        )
    return value


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise FileFormatError(
                f"{path}: {size / 2**20:.1f} MiB is larger than the {limit / 2**20:.0f} MiB a "
                "padnas JSON file may be; is it the right file?"
            )
        return path.read_bytes()
    except IsADirectoryError:
        raise FileFormatError(f"{path} is a directory, not a JSON file") from None
    except PermissionError:
        raise FileFormatError(f"{path}: permission denied (make it readable)") from None


def _decode(data: bytes, origin: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(
            f"{origin}: not UTF-8 text (byte {exc.start}, line {line}): save it as UTF-8 JSON"
        ) from None
    return text.removeprefix("\ufeff")


def read_json(path: str | Path, *, fix: str = "", expect: type | None = None) -> Any:
    """Read a JSON file strictly (see :func:`parse_json`): also refuses files over
    :data:`MAX_JSON_BYTES`, non-UTF-8 bytes and, with ``expect`` (``dict`` or ``list``), a top
    level of another type. A missing file raises FileNotFoundError, for the caller to word."""
    path = Path(path)
    value = parse_json(_decode(_read_bytes(path, MAX_JSON_BYTES), str(path)), str(path), fix=fix)
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        tail = f"; {fix}" if fix else ""
        raise FileFormatError(f"{path}: must hold {kind}, not {type(value).__name__}{tail}")
    return value


def check_schema(found: Any, current: int, origin: str, *, field: str = "schema", fix: str) -> None:
    """Refuse a file whose format version this padnas cannot read: missing or not an integer,
    newer ("written by a newer padnas": upgrade) or older than ``current`` (``fix`` says how to
    remake it). Every file the project writes carries such a version."""
    if isinstance(found, bool) or not isinstance(found, int):
        raise FileFormatError(
            f"{origin}: '{field}' must be an integer version, got {found!r}; {fix}"
        )
    if found > current:
        raise FileFormatError(
            f"{origin}: written by a newer padnas ({field} {found}; this one reads {current}): "
            "upgrade padnas to read it"
        )
    if found < current:
        raise FileFormatError(
            f"{origin}: {field} {found} is too old (this padnas reads {current}); {fix}"
        )


# ---- paths that cannot be created -----------------------------------------------------------
def make_dir(path: str | Path, what: str) -> Path:
    """``mkdir -p`` that fails with a :class:`PathError` naming ``what`` and the reason."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError.cannot_create(path, exc, what) from None
    if not path.is_dir():
        raise PathError(f"cannot create {what} {path}: a file of that name is in the way")
    return path


def check_output(path: str | Path, what: str, *, folder: bool = False) -> Path:
    """Refuse, before any work is done, an output ``path`` (a file, or with ``folder`` a folder)
    that could not be written at the end: a directory where a file goes (or the reverse), a file
    where a folder of the path must be, a read-only file system, no permission, no space left.
    Nothing is created; the :class:`PathError` names ``what`` (the option), the path and why."""
    path = Path(path)
    if path.is_dir() and not folder:
        raise PathError(f"cannot write {what} {path}: it is a directory; name a file in it")
    if path.exists() and not path.is_dir() and folder:
        raise PathError(f"cannot create {what} {path}: a file of that name is in the way")
    nearest = path if folder else path.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise PathError(
            f"cannot create {what} {path}: {nearest} is a file, not a directory; "
            "choose another path"
        )
    why = _unwritable(nearest)
    if why:
        raise PathError(f"cannot create {what} {path}: {why}; choose another path")
    return path


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be written into the existing ``folder``, or None."""
    try:
        fs = os.statvfs(folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    if fs.f_flag & os.ST_RDONLY:
        return "the file system is read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"permission denied (no write access to {folder})"
    if fs.f_bavail == 0:
        return "no space left on the device"
    return None
