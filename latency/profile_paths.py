"""Where a device profile named on the command line (``--device pixel3``, ``--lut pixel3``) lives.

The profiles users read and edit live in the top-level ``device_profiles/`` of the project. They
ship inside the installed package as ``latency/device_profiles/``, which in the source tree is a
symbolic link to that folder, so there is one set of files and no copy that can drift: the wheel
build (``package-data`` in ``pyproject.toml``) follows the link and stores real files, and a
checkout or an editable install reads the top-level folder through it. A checkout made where
symbolic links are not supported (``core.symlinks=false``) falls back to the top-level folder.

An argument that names an existing file is that file (a file in the working directory wins).
Otherwise a bare name — no folder part and no ``.json`` suffix — is looked up as ``NAME.json``
in ``$PADNAS_DEVICE_PROFILES`` (a user's own folder, searched first) and then in the shipped
profiles. Anything else stays a path, so a mistyped path is reported as a missing file.
"""

from __future__ import annotations

import os
from pathlib import Path

#: environment variable naming a user's own folder of device profiles (searched first)
ENV = "PADNAS_DEVICE_PROFILES"


def shipped_dir() -> Path:
    """The profiles that come with the package (in a checkout: the top-level folder)."""
    here = Path(__file__).resolve().parent
    packaged = here / "device_profiles"
    return packaged.resolve() if packaged.is_dir() else here.parent / "device_profiles"


def search_dirs() -> list[Path]:
    """The folders a profile name is looked up in, first match wins."""
    env = os.environ.get(ENV)
    return [Path(env), shipped_dir()] if env else [shipped_dir()]


def is_profile_name(text: str) -> bool:
    """True for ``pixel3`` or ``my-phone``; False for ``x.json``, ``dir/x`` or ``~/x``."""
    return bool(text) and not (text.endswith(".json") or "/" in text or os.sep in text)


def known_profiles() -> dict[str, Path]:
    """Every profile name reachable by name, with the file it resolves to (sorted by name)."""
    found: dict[str, Path] = {}
    for folder in search_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def find_profile(text: str | Path) -> Path | None:
    """The file ``text`` stands for: itself when it exists, else a named profile's file.

    ``None`` when ``text`` is a bare name that matches no profile; a path that does not exist
    is returned as given for the caller to report as missing.
    """
    path = Path(text)
    if path.is_file() or not is_profile_name(str(text)):
        return path
    for folder in search_dirs():
        candidate = folder / f"{text}.json"
        if candidate.is_file():
            return candidate
    return None


def unknown_profile_message(name: str, option: str) -> str:
    """One line for ``--device NAME`` / ``--lut NAME`` that matches no file and no profile:
    the known profiles and the folders they were looked for in."""
    known = ", ".join(known_profiles()) or "(none found)"
    where = ", ".join(str(d) for d in search_dirs())
    if option == "--device":
        head, tail = f"unknown device {name!r}", "a profile JSON path"
    else:
        head = f"{option} {name!r} is neither a file nor a device profile name"
        tail = "a LUT or profile JSON path"
    return f"{head}: known devices are {known} (profiles in {where}); or pass {tail}"
