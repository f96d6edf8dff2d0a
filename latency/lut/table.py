"""The latency lookup table (LUT): schema, validation, load and save.

A LUT is the hand-off between the latency side and the search: per op variant of one space at one
resolution, the latency on one device and where the number came from (``measured``, ``regression``,
``estimate``, ``mock``), plus an optional calibration ``measured ≈ scale · sum(LUT) + offset_ms``
fitted on whole networks. Users hand LUT files around, so loading trusts nothing: every field is
checked and the first problem is named with its location and a fix (:class:`LutError`, exit 2).

A file holds either one LUT object or a device profile with ``"luts": [LUT, ...]`` (how a device
ships its tables); :func:`load_lut` picks the one for the requested space and resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latency.errors import LatencyUsageError
from latency.profile_paths import find_profile, unknown_profile_message
from latency.variants import DEFAULT_PRECISION, PRECISIONS, Variant, VariantError
from padnas.core import atomic_write_json, check_schema, read_input_json
from padnas.core.errors import FileFormatError
from padnas.space import MACROS, SearchSpace

SCHEMA = 1
KIND = "padnas-lut"
#: an int8 entry timed on the host and kept for a phone that has no published int8 latencies to
#: transfer it with (:mod:`latency.transfer.int8`)
HOST_INT8 = "host-int8"
SOURCES = ("measured", "regression", "estimate", "mock", HOST_INT8)
#: sources that are timings (what a regression may be fitted on): of the device, its mock, or,
#: for host-int8, of the host standing in for it
OBSERVED = ("measured", "mock", HOST_INT8)


#: how far beyond its fitted range (a factor either way) an estimated LUT is trusted: the
#: published networks 40-80 ms on Pixel 3 are priced within 5 % by a fit on 61-105 ms, while
#: 11-35 ms networks come out 41-131 % slow (docs/pixel3-estimate.md)
EXTRAPOLATION = 1.5


class LutError(LatencyUsageError):
    """A LUT file or object that cannot be used; the message names what is wrong and the fix."""


@dataclass
class Lut:
    """One device's latency table for one space family at one resolution (and width)."""

    device: dict
    family: str
    space_signature: str
    resolution: int
    entries: dict[str, dict]
    width_mult: float = 1.0
    num_classes: int = 1000
    calibration: dict | None = None
    provenance: dict = field(default_factory=dict)
    #: the precision of the files its entries timed (``fp32``, ``int8``)
    precision: str = DEFAULT_PRECISION

    # ---- lookups ----------------------------------------------------------------------------
    @property
    def device_name(self) -> str:
        return str(self.device.get("name", "?"))

    @property
    def label(self) -> str:
        """``large@224`` (and ``x0.5`` when the width is not 1, `` int8`` when not float)."""
        w = "" if self.width_mult == 1.0 else f"x{self.width_mult:g}"
        p = "" if self.precision == DEFAULT_PRECISION else f" {self.precision}"
        return f"{self.family}@{self.resolution}{w}{p}"

    def ms(self, key: str) -> float:
        return float(self.entries[key]["ms"])

    def sources(self) -> set[str]:
        return {e["source"] for e in self.entries.values()}

    def observed(self) -> dict[str, dict]:
        """Entries that were timed on the device (or its mock), not predicted."""
        return {k: e for k, e in self.entries.items() if e["source"] in OBSERVED}

    def source_warning(self) -> str | None:
        """A one-line warning when the table's milliseconds are not the device's own: a
        host-int8 table (None otherwise; an estimate says so through its sources)."""
        if HOST_INT8 not in self.sources():
            return None
        said = self.provenance.get("warning")
        return "warning: " + (
            said
            if isinstance(said, str) and said
            else f"the {self.device_name} int8 table holds the host's int8 timings, not the "
            "device's"
        )

    def prediction_warning(self, ms: float) -> str | None:
        """What a user must read beside a prediction of ``ms`` from this table, if anything."""
        return self.extrapolation_note(ms) or self.source_warning()

    def calibrate(self, raw_ms):
        """``scale · raw + offset_ms`` when calibrated, else ``raw`` (works on numpy arrays)."""
        if not self.calibration:
            return raw_ms
        return self.calibration["scale"] * raw_ms + self.calibration["offset_ms"]

    # ---- (de)serialisation -------------------------------------------------------------------
    def fitted_range(self) -> tuple[float, float] | None:
        """The whole-network latencies an estimated LUT's transfer was fitted on (min, max ms),
        from its provenance; None for a measured LUT."""
        fit = ((self.provenance or {}).get("transfer") or {}).get("fit") or {}
        targets = [row.get("target_ms") for row in fit.values() if isinstance(row, dict)]
        targets = [t for t in targets if isinstance(t, int | float) and t > 0]
        return (min(targets), max(targets)) if targets else None

    def extrapolation_note(self, ms: float) -> str | None:
        """A one-line warning when ``ms`` lies beyond what the estimate can vouch for: more than
        :data:`EXTRAPOLATION` times outside its fitted range (None inside it, or when measured)."""
        span = self.fitted_range()
        if span is None:
            return None
        lo, hi = span[0] / EXTRAPOLATION, span[1] * EXTRAPOLATION
        if lo <= ms <= hi:
            return None
        offset = (self.calibration or {}).get("offset_ms", 0.0)
        why = (
            f"; its per-network offset ({offset:.1f} ms) makes smaller networks too slow"
            if ms < lo and offset
            else ""
        )
        return (
            f"warning: {ms:.1f} ms is outside what the {self.device_name} estimate was fitted on "
            f"({span[0]:g}-{span[1]:g} ms, trusted {lo:.0f}-{hi:.0f} ms){why}: see "
            "docs/pixel3-estimate.md (transfer across scale)"
        )

    def to_dict(self) -> dict:
        precision = {} if self.precision == DEFAULT_PRECISION else {"precision": self.precision}
        return {
            "schema": SCHEMA,
            "kind": KIND,
            "device": self.device,
            "space": {"family": self.family, "signature": self.space_signature},
            "resolution": self.resolution,
            "width_mult": self.width_mult,
            "num_classes": self.num_classes,
            **precision,
            "calibration": self.calibration,
            "provenance": self.provenance,
            "entries": {k: self.entries[k] for k in sorted(self.entries)},
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically (a killed writer never leaves a truncated LUT)."""
        validate_lut_dict(self.to_dict(), str(path))
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def from_dict(cls, data: Any, origin: str = "LUT") -> Lut:
        """Validate and build; every problem raises LutError naming ``origin`` and the field."""
        validate_lut_dict(data, origin)
        return cls(
            device=dict(data["device"]),
            family=data["space"]["family"],
            space_signature=data["space"]["signature"],
            resolution=int(data["resolution"]),
            entries={k: _clean_entry(v) for k, v in data["entries"].items()},
            width_mult=float(data.get("width_mult", 1.0)),
            num_classes=int(data.get("num_classes", 1000)),
            calibration=dict(data["calibration"]) if data.get("calibration") else None,
            provenance=dict(data.get("provenance") or {}),
            precision=data.get("precision", DEFAULT_PRECISION),
        )

    def check_space(self, space: SearchSpace, resolution: int | None = None) -> None:
        """Raise LutError unless this LUT was built for ``space``'s family (and ``resolution``)."""
        if space.family != self.family:
            raise LutError(
                f"the LUT is for the {self.family} space, not {space.family}: "
                f"build one with padnas-latency profile --space {space.family}"
            )
        if self.space_signature != space.family_signature:
            raise LutError(
                f"the LUT was built for another version of the {self.family} space (signature "
                f"{self.space_signature}, this code has {space.family_signature}): rebuild it"
            )
        if resolution is not None and resolution != self.resolution:
            raise LutError(
                f"the LUT is for resolution {self.resolution}, not {resolution}: build one with "
                f"padnas-latency profile --resolution {resolution}"
            )


#: the times of an entry (a rescaling changes these, never ``n`` or ``source``)
TIME_FIELDS = ("ms", "p10", "p90")


def scaled_entry(entry: dict, factor: float) -> dict:
    """``entry`` with its times multiplied by ``factor``."""
    return {**entry, **{f: entry[f] * factor for f in TIME_FIELDS}}


def _clean_entry(e: dict) -> dict:
    out = {"ms": float(e["ms"]), "source": e["source"]}
    for name in ("p10", "p90"):
        out[name] = float(e.get(name, e["ms"]))
    out["n"] = int(e.get("n", 0))
    return out


def _finite_nonneg(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def validate_lut_dict(data: Any, origin: str = "LUT") -> None:
    """Check a LUT object field by field; raise LutError at the first problem."""

    def fail(msg: str) -> None:
        raise LutError(f"{origin}: {msg}")

    if not isinstance(data, dict):
        fail(f"expected a JSON object, got {type(data).__name__}")
    if "schema" not in data:
        fail("no 'schema' field: not a padnas LUT (make one with padnas-latency export-lut)")
    try:
        check_schema(data["schema"], SCHEMA, "schema version", fix=_REEXPORT)
    except FileFormatError as exc:
        fail(str(exc).removeprefix("schema version: "))
    for name in ("device", "space", "resolution", "entries"):
        if name not in data:
            fail(f"missing field {name!r}")
    device = data["device"]
    if (
        not isinstance(device, dict)
        or not isinstance(device.get("name"), str)
        or not device["name"]
    ):
        fail("'device' must be an object with a non-empty 'name'")
    space = data["space"]
    if not isinstance(space, dict) or not {"family", "signature"} <= set(space):
        fail("'space' must be an object with 'family' and 'signature'")
    if space["family"] not in MACROS:
        fail(f"unknown space family {space['family']!r}; expected one of {', '.join(MACROS)}")
    res = data["resolution"]
    if isinstance(res, bool) or not isinstance(res, int) or res < 32 or res % 32:
        fail(f"resolution {res!r} must be a positive multiple of 32")
    width = data.get("width_mult", 1.0)
    if not _finite_nonneg(width) or width <= 0:
        fail(f"width_mult {width!r} must be a positive number")
    if data.get("precision", DEFAULT_PRECISION) not in PRECISIONS:
        fail(f"precision {data['precision']!r} is not one of {', '.join(PRECISIONS)}")
    classes = data.get("num_classes", 1000)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        fail(f"num_classes {classes!r} must be a positive integer")
    entries = data["entries"]
    if not isinstance(entries, dict) or not entries:
        fail("'entries' must be a non-empty object {variant key: {ms, p10, p90, n, source}}")
    for key, e in entries.items():
        try:
            v = Variant.from_key(key)
        except VariantError as exc:
            fail(f"entry {key!r}: {exc}")
        if not isinstance(e, dict):
            fail(f"entry {key!r} must be an object with ms and source")
        if "ms" not in e or not _finite_nonneg(e["ms"]):
            fail(
                f"entry {key!r}: ms={e.get('ms')!r} is not a finite non-negative number "
                "(NaN, negative or missing); re-measure it or delete the entry"
            )
        for name in ("p10", "p90"):
            if name in e and not _finite_nonneg(e[name]):
                fail(f"entry {key!r}: {name}={e[name]!r} is not a finite non-negative number")
        n = e.get("n", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            fail(f"entry {key!r}: n={n!r} must be a non-negative integer")
        if e.get("source") not in SOURCES:
            fail(f"entry {key!r}: source {e.get('source')!r} is not one of {', '.join(SOURCES)}")
        if v.kind == "stem" and v.in_h != res:
            fail(f"entry {key!r} has input {v.in_h}x{v.in_w} but the LUT says resolution {res}")
    cal = data.get("calibration")
    if cal is not None:
        if not isinstance(cal, dict):
            fail("'calibration' must be an object {scale, offset_ms} or null")
        for name in ("scale", "offset_ms"):
            value = cal.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                fail(f"calibration.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                fail(f"calibration.{name} is not finite ({value!r})")
        if cal["scale"] <= 0:
            fail(f"calibration.scale must be positive, got {cal['scale']!r}")


_REEXPORT = "re-export it with padnas-latency export-lut"
#: version of a device profile (a profile may bundle LUTs); latency.devices reads the same one
PROFILE_SCHEMA = 1
_PROFILE_FIX = "start from a profile in device_profiles/"


def load_lut(
    path: str | Path,
    family: str | None = None,
    resolution: int | None = None,
    width_mult: float | None = None,
    precision: str | None = None,
) -> Lut:
    """Load and validate a LUT file, or pick the matching LUT of a device profile's ``luts``.

    ``family`` / ``resolution`` / ``width_mult`` / ``precision`` (when given) must match; a
    mismatch, or a bundle holding no (or several) matching LUTs, raises LutError naming what the
    file holds. A bundle holding a float and an int8 table of one space gives the float one
    unless ``precision`` says otherwise.
    ``path`` may also name a device profile (``pixel3``) when no such file exists: see
    :mod:`latency.profile_paths`.
    """
    path, parsed, bundle = read_luts(path)
    if bundle:
        chosen = [lut for lut in parsed if _matches(lut, family, resolution, width_mult, precision)]
        if precision is None and len(chosen) > 1:
            chosen = [lut for lut in chosen if lut.precision == DEFAULT_PRECISION] or chosen
        held = ", ".join(lut.label for lut in parsed)
        if not chosen:
            want = _want(family, resolution, width_mult, precision)
            raise LutError(f"{path} holds no LUT for {want}; it holds: {held}")
        if len(chosen) > 1:
            raise LutError(
                f"{path} holds several LUTs ({held}); choose one with the space "
                "(--space) and resolution"
            )
        return chosen[0]
    (lut,) = parsed
    if not _matches(lut, family, resolution, width_mult, precision):
        raise LutError(
            f"{path} is a LUT for {lut.label} on {lut.device_name}, "
            f"not for {_want(family, resolution, width_mult, precision)}"
        )
    return lut


def _is_bare_profile(data: Any) -> bool:
    """A device profile that ships no table (``host``, ``mock``, a phone not profiled yet)."""
    return isinstance(data, dict) and "transport" in data and not {"luts", "entries"} & set(data)


def bare_profile(path: str | Path) -> dict | None:
    """The device profile ``path`` names (a file or a profile name) when it ships no LUT, so
    its table can only come from its measurement store; None for anything else (a LUT file, a
    profile with ``luts``: :func:`load_lut` reads and checks those)."""
    found = find_profile(path)
    if found is None:
        return None
    data = read_input_json(found, "LUT file", LutError, fix=_REEXPORT)
    return data if _is_bare_profile(data) else None


def read_luts(path: str | Path) -> tuple[Path, list[Lut], bool]:
    """Every LUT of a LUT file or a device profile's ``luts``, validated: (the resolved path,
    the LUTs, whether the file is a bundle). ``path`` may name a shipped profile (``pixel3``)."""
    found = find_profile(path)
    if found is None:
        raise LutError(unknown_profile_message(str(path), "--lut"))
    named = found != Path(path)  # a profile name (``--lut mock``), resolved to its file
    path = found
    data = read_input_json(path, "LUT file", LutError, fix=_REEXPORT)
    if _is_bare_profile(data):
        # a device profile that ships no table: say so, not that a LUT lacks its 'device'
        what = f"--lut {found.stem}: device profile {path}" if named else f"{path}: device profile"
        raise LutError(
            f"{what} has no 'luts' field: it holds no LUT to price with (give a LUT JSON, or "
            "a profile with 'luts': padnas-latency profile, then export-lut)"
        )
    if not (isinstance(data, dict) and "luts" in data and "entries" not in data):
        return path, [Lut.from_dict(data, str(path))], False
    try:
        check_schema(
            data.get("schema", PROFILE_SCHEMA), PROFILE_SCHEMA, str(path), fix=_PROFILE_FIX
        )
    except FileFormatError as exc:
        raise LutError(str(exc)) from None
    luts = data["luts"]
    if not isinstance(luts, list) or not luts:
        raise LutError(f"{path}: 'luts' must be a non-empty list of LUT objects")
    parsed = []
    for i, item in enumerate(luts):
        if isinstance(item, dict) and "device" not in item:
            # a LUT inside a device profile may leave its device to the profile
            item = {**item, "device": _profile_device(data)}
        parsed.append(Lut.from_dict(item, f"{path} luts[{i}]"))
    return path, parsed, True


def _profile_device(profile: dict) -> dict:
    keep = ("name", "description", "transport", "soc", "cpu_mask", "threads")
    return {k: profile[k] for k in keep if k in profile}


def _matches(lut: Lut, family, resolution, width_mult, precision=None) -> bool:
    return (
        (family is None or lut.family == family)
        and (resolution is None or lut.resolution == resolution)
        and (width_mult is None or lut.width_mult == width_mult)
        and (precision is None or lut.precision == precision)
    )


def _want(family, resolution, width_mult, precision=None) -> str:
    parts = [family or "any space"]
    if resolution is not None:
        parts.append(f"@{resolution}")
    if width_mult not in (None, 1.0):
        parts.append(f"x{width_mult:g}")
    if precision not in (None, DEFAULT_PRECISION):
        parts.append(f" {precision}")
    return "".join(parts)


def source_line(parts) -> str:
    """``52.10 ms estimate (20 units), 1.20 ms regression (1 unit)`` from ``(source, ms)``
    pairs, largest share first: how much of a prediction is measured and how much is not."""
    totals: dict[str, list] = {}
    for src, ms in parts:
        t = totals.setdefault(src, [0.0, 0])
        t[0] += ms
        t[1] += 1
    return ", ".join(
        f"{ms:.2f} ms {src} ({n} unit{'s' if n != 1 else ''})"
        for src, (ms, n) in sorted(totals.items(), key=lambda kv: -kv[1][0])
    )
