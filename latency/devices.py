"""Device profiles (``device_profiles/<name>.json``) and the backend each one asks for.

A profile says how to reach and pin a device (transport ``host``, ``mock`` or ``adb``, CPU mask,
threads, benchmark flags, cool-down) and may ship LUTs. ``--device`` takes a profile name or a path
to a profile JSON, resolved by :mod:`latency.profile_paths` (an existing file first, then
``$PADNAS_DEVICE_PROFILES``, then the profiles shipped in the package); an unknown name raises
:class:`ProfileError` listing the known devices.
"""

from __future__ import annotations

from pathlib import Path

from latency.backends.base import Backend
from latency.errors import LatencyUsageError
from latency.lut.table import PROFILE_SCHEMA
from latency.profile_paths import find_profile, known_profiles, unknown_profile_message
from padnas.core import check_schema, read_input_json
from padnas.core.errors import FileFormatError

TRANSPORTS = ("host", "mock", "adb")
PROFILE_FIX = "start from a profile in device_profiles/"


class ProfileError(LatencyUsageError):
    """An unknown device or an invalid profile file (exit 2)."""


def known_devices() -> list[str]:
    """Names ``--device`` accepts without a path (see :mod:`latency.profile_paths`)."""
    return list(known_profiles())


def load_profile(name_or_path: str | Path | dict) -> dict:
    """The profile dict of a device name (``host``, ``mock``, ``pixel3``...) or a JSON path."""
    if isinstance(name_or_path, dict):
        return _validate(dict(name_or_path), "profile")
    path = find_profile(name_or_path)
    if path is None:
        raise ProfileError(unknown_profile_message(str(name_or_path), "--device"))
    fix = "fix the device profile or start from one in device_profiles/"
    data = read_input_json(path, "device profile", ProfileError, fix=fix)
    profile = _validate(data, str(path))
    profile.setdefault("_path", str(path))
    return profile


def _validate(data, origin: str) -> dict:
    if not isinstance(data, dict):
        raise ProfileError(f"{origin}: a device profile must be a JSON object")
    try:
        check_schema(data.get("schema", PROFILE_SCHEMA), PROFILE_SCHEMA, origin, fix=PROFILE_FIX)
    except FileFormatError as exc:
        raise ProfileError(str(exc)) from None
    if "transport" not in data and "entries" in data:
        raise ProfileError(
            f"{origin} is a LUT, not a device profile (no 'transport' field): give it with --lut, "
            "and name the device with --device"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{origin}: the profile needs a non-empty 'name'")
    if data.get("transport") not in TRANSPORTS:
        raise ProfileError(
            f"{origin}: transport {data.get('transport')!r} is not one of {', '.join(TRANSPORTS)}"
        )
    return data


def make_backend(profile: dict | str, **opts) -> Backend:
    """A ready backend for a profile (dict, name or path); ``opts`` override profile settings."""
    if not isinstance(profile, dict):
        profile = load_profile(profile)
    transport = profile["transport"]
    if transport == "mock":
        from latency.backends.mock import MockBackend

        return MockBackend(profile)
    if transport == "host":
        from latency.backends.host import HostBackend

        return HostBackend(profile, **opts)
    try:
        from latency.backends.adb.backend import AdbBackend
    except ImportError as exc:
        raise ProfileError(
            f"device {profile['name']!r} needs the adb backend, which is unavailable: {exc}"
        ) from None
    return AdbBackend(profile, **opts)
