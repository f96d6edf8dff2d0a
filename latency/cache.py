"""Where the latency side keeps its files: ``$PADNAS_CACHE`` or ``~/.cache/padnas``.

One root for exported models, measurement stores and pushed device binaries, so that a user can
move or clear all of it with one variable; at the bottom of the package, imported by all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from padnas.core.errors import PathError


def cache_root() -> Path:
    """``$PADNAS_CACHE`` or ``~/.cache/padnas``: exported models, measurement stores."""
    env = os.environ.get("PADNAS_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "padnas"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError.cannot_create(root, exc, "$PADNAS_CACHE" if env else "the cache") from None
    return root


def is_checked(path: Path) -> bool:
    """True when an exported ``.tflite`` is usable: the file and its sidecar exist (the sidecar
    is written last, after the numerical check passed). The one cache test of every export."""
    return path.is_file() and path.with_suffix(".json").is_file()
