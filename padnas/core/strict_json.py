"""The one strict JSON reader, shared by both packages.

Every JSON file the project reads (LUTs, device profiles, network descriptions, run-directory
files, store lines) goes through :func:`read_json` / :func:`parse_json`, so a hostile or damaged
file fails the same way everywhere: one :class:`~padnas.core.errors.FileFormatError` naming the
file, the place and a fix, never a ``RecursionError`` or a silently different value. The standard
library accepts duplicate keys (last wins: a duplicated LUT entry once changed a prediction 17x),
``NaN``/``Infinity`` tokens and ``1e999`` (infinite), and recurses without bound; we refuse all of
them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from padnas.core.errors import FileFormatError

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


def read_capped_bytes(path: Path, limit: int) -> bytes:
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


def decode_text(data: bytes, origin: str) -> str:
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
    text = decode_text(read_capped_bytes(path, MAX_JSON_BYTES), str(path))
    value = parse_json(text, str(path), fix=fix)
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        tail = f"; {fix}" if fix else ""
        raise FileFormatError(f"{path}: must hold {kind}, not {type(value).__name__}{tail}")
    return value


def read_input_json(path: str | Path, what: str, error: type[Exception], *, fix: str) -> Any:
    """A JSON file the user named (a LUT, a device profile, a network), read as :func:`read_json`
    does, with every failure raised as the reader's own ``error`` (so its callers catch one type):
    a missing file as ``"{what} not found: PATH"``, a damaged one with :func:`read_json`'s words."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return read_json(path, fix=fix)
    except FileFormatError as exc:
        raise error(str(exc)) from None


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
