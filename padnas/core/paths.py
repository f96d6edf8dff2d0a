"""Paths: output folders made and files checked writable before a long job starts, with one
:class:`~padnas.core.errors.PathError` that says which path and why; input files checked to be
regular files before anything reads them."""

from __future__ import annotations

import os
from pathlib import Path

from padnas.core.errors import PathError


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


def check_input_file(path: str | Path, fix: str, error: type[Exception] = PathError) -> Path:
    """``path`` if it is a regular file; else ``error`` saying it is missing, a directory or not
    a regular file (a FIFO or a device would block or never end), followed by ``fix`` (e.g.
    "give a MODEL.onnx file")."""
    path = Path(path)
    if not path.exists():
        raise error(f"model file not found: {path}")
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file (a FIFO or device)"
        raise error(f"{path} is {kind}: {fix}")
    return path
