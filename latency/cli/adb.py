"""The phone side of ``padnas-latency``: ``--serial``/``--benchmark-model``/``--adb-key`` for the
commands that measure, parallel profiling over several serials, and ``devices``.

Kept apart from :mod:`latency.cli.app` so the host/mock commands stay readable; ``latency.cli.app``
decorates its measuring commands with :func:`adb_options` and registers :data:`devices`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from latency.devices import load_profile, make_backend
from latency.profile_paths import known_profiles, search_dirs
from padnas.core.cli import echo_json, handle_errors, json_option, path_option
from padnas.core.errors import UsageError


def adb_options(f):
    """Options of a phone profile (transport ``adb``); rejected for other devices."""
    f = click.option(
        "--adb-key",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="adb private key to offer [default: ~/.android/adbkey, created if missing].",
    )(f)
    f = click.option(
        "--benchmark-model",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Android arm64 benchmark_model binary; needed once, then remembered.",
    )(f)
    return click.option(
        "--serial",
        "serials",
        multiple=True,
        metavar="HOST:PORT|usb[:SERIAL]",
        help="Phone to use (adb devices only; repeat to profile on several phones in "
        "parallel) [default: $ANDROID_SERIAL].",
    )(f)


def backends_for(prof: dict, serials, benchmark_model, adb_key, *, many: bool = False) -> list:
    """One backend per serial for an adb profile; ``[make_backend(prof)]`` otherwise."""

    serials = list(serials or ())
    if prof["transport"] != "adb":
        if serials or benchmark_model or adb_key:
            raise UsageError(
                f"--serial/--benchmark-model/--adb-key are for phones; device "
                f"{prof['name']!r} has transport {prof['transport']!r}"
            )
        return [make_backend(prof)]
    if len(serials) > 1 and not many:
        raise UsageError("this command uses one phone: give a single --serial")
    if len(set(serials)) != len(serials):
        raise UsageError("the same --serial is given twice")
    opts = {"benchmark_model": benchmark_model, "adb_key": adb_key}
    backends = [make_backend(prof, serial=s, **opts) for s in serials or [None]]
    return backends


def close_all(backends) -> None:
    for b in backends:
        b.close()


def describe_all(backends) -> dict:
    """Device facts for the LUT header; with several phones, the first one's plus all serials."""
    info = backends[0].describe()
    if len(backends) > 1:
        info["serials"] = [b.serial for b in backends]
    return info


@click.command()
@click.option(
    "--serial",
    "serials",
    multiple=True,
    metavar="HOST:PORT|usb[:SERIAL]",
    help="Phone to probe (repeatable) [default: $ANDROID_SERIAL].",
)
@path_option(
    "--adb-key", default=None, help="adb private key to offer [default: ~/.android/adbkey]."
)
@click.option(
    "--timeout", type=float, default=3.0, show_default=True, help="Seconds to wait for each phone."
)
@json_option
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks.")
@handle_errors
def devices(serials, adb_key, timeout, as_json, verbose):
    """List device profiles and the phones that can be reached.

    Without an adb server, phones on the network cannot be discovered: the serials given
    with --serial (or $ANDROID_SERIAL) are probed, and USB phones are listed when libusb
    support is installed (pip install 'padnas[usb]').

    \b
    Example:
      padnas-latency devices --serial 192.168.1.20:5555
    """
    from latency.backends.adb.discovery import probe, usb_devices

    profiles = []
    for name, path in known_profiles().items():
        try:
            p = load_profile(path)
        except Exception as exc:  # a broken profile is listed, not fatal
            profiles.append({"name": name, "path": str(path), "valid": False, "error": str(exc)})
            continue
        entry = {
            "name": name,
            "path": str(path),
            "valid": True,
            "transport": p["transport"],
            "description": p.get("description", ""),
            "luts": [_lut_label(lut) for lut in p.get("luts") or []],
        }
        if p["transport"] == "adb":
            entry["cpu_mask"] = p["cpu_mask"]
        profiles.append(entry)
    serials = list(serials) or (
        [os.environ["ANDROID_SERIAL"]] if "ANDROID_SERIAL" in os.environ else []
    )
    phones = [
        {"serial": serial, **probe(serial, adb_key=adb_key, timeout_s=timeout)}
        for serial in serials
    ]
    usb = usb_devices()
    if as_json:
        doc = {
            "profiles_dir": str(search_dirs()[0]),
            "profile_dirs": [str(d) for d in search_dirs()],
            "profiles": profiles,
            "phones": phones,
            "usb": usb,  # null: libusb support missing
        }
        echo_json(doc)
        return
    click.echo(f"Device profiles ({', '.join(str(d) for d in search_dirs())}):")
    width = max((len(p["name"]) for p in profiles), default=0)
    for p in profiles:
        if not p["valid"]:
            click.echo(f"  {p['name']:<{width}}  INVALID: {p['error']}")
            continue
        pin = f", cpu_mask {p['cpu_mask']}" if p["transport"] == "adb" else ""
        click.echo(f"  {p['name']:<{width}}  {p['transport']:<5} {p['description']}{pin}")
    click.echo("Phones:")
    for info in phones:
        facts = ", ".join(
            f"{k} {info[k]}" for k in ("model", "board", "android", "abi", "cpus") if k in info
        )
        detail = info.get("detail", "")
        click.echo(f"  {info['serial']:<22} {info['state']:<12} {facts or detail}")
    if not serials:
        click.echo(
            "  TCP: none probed (give --serial HOST:PORT after `adb tcpip 5555`; "
            "network phones cannot be discovered without an adb server)"
        )
    if usb is None:
        click.echo("  USB: not checked: libusb support missing (pip install 'padnas[usb]')")
    elif not usb:
        click.echo("  USB: no ADB interface found")
    for entry in usb or []:
        state = entry.get("error", "connect with --serial usb:" + str(entry.get("serial")))
        click.echo(f"  usb:{entry.get('serial')!s:<18} {state}")


def _lut_label(lut) -> str:
    """``basic@224`` for a shipped LUT object (read loosely: listing must not fail on it)."""
    if not isinstance(lut, dict):
        return "?"
    space = lut.get("space") or {}
    family = space.get("family", "?") if isinstance(space, dict) else "?"
    return f"{family}@{lut.get('resolution', '?')}"
