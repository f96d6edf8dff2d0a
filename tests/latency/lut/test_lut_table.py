"""LUT schema: round trip, and every kind of bad file gives a LutError naming the problem."""

from __future__ import annotations

import json
import math

import pytest

from latency.lut.table import SCHEMA, Lut, LutError, load_lut
from latency.variants import Variant, space_variants
from padnas.space import get_space

INF = "Infinity is not a JSON number"  # the JSON reader refuses the token itself


def _lut(family: str = "basic", resolution: int = 224) -> Lut:
    space = get_space(family)
    entries = {
        v.key: {
            "ms": 0.1 + i * 0.01,
            "p10": 0.1,
            "p90": 0.2 + i * 0.01,
            "n": 20,
            "source": "measured",
        }
        for i, v in enumerate(space_variants(space, resolution))
    }
    return Lut({"name": "host"}, family, space.family_signature, resolution, entries)


def _write(tmp_path, data, name="lut.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_round_trip(tmp_path):
    lut = _lut()
    path = lut.save(tmp_path / "a.json")
    back = load_lut(path, "basic", 224)
    assert back.entries == lut.entries
    assert back.to_dict() == lut.to_dict()
    assert back.label == "basic@224"


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: d.update(schema=SCHEMA + 1), f"written by a newer padnas (schema {SCHEMA + 1}"),
        (lambda d: d.update(schema=SCHEMA - 1), f"schema {SCHEMA - 1} is too old"),
        (lambda d: d.update(schema="1"), "'schema' must be an integer version"),
        (lambda d: d.pop("schema"), "no 'schema' field"),
        (lambda d: d.pop("entries"), "missing field 'entries'"),
        (lambda d: d["device"].pop("name"), "'device'"),
        (lambda d: d["space"].update(family="huge"), "unknown space family"),
        (lambda d: d.update(resolution=100), "resolution 100"),
        (lambda d: d.update(num_classes=None), "num_classes None must be a positive integer"),
        (lambda d: next(iter(d["entries"].values())).update(ms=-1.0), "not a finite"),
        (lambda d: next(iter(d["entries"].values())).update(ms=math.nan), "NaN"),
        (lambda d: next(iter(d["entries"].values())).update(ms=math.inf), INF),
        (lambda d: next(iter(d["entries"].values())).update(ms=-math.inf), "-" + INF),
        (lambda d: next(iter(d["entries"].values())).update(p10=math.inf), INF),
        (lambda d: next(iter(d["entries"].values())).update(p90=math.inf), INF),
        (lambda d: next(iter(d["entries"].values())).update(p90=-math.inf), "-" + INF),
        (lambda d: next(iter(d["entries"].values())).update(source="guess"), "source 'guess'"),
        (lambda d: d["entries"].update({"c3": {"ms": 1, "source": "measured"}}), "not a variant"),
        (lambda d: d.update(calibration={"scale": -1, "offset_ms": 0}), "calibration.scale"),
        (lambda d: d.update(width_mult=0), "width_mult 0 must be a positive number"),
        (lambda d: d.update(width_mult="1"), "width_mult '1' must be a positive number"),
    ],
)
def test_invalid_fields_are_named(tmp_path, mutate, expect):
    data = _lut().to_dict()
    mutate(data)
    path = _write(tmp_path, json.dumps(data))  # NaN is written as the JSON literal NaN
    with pytest.raises(LutError) as err:
        load_lut(path)
    assert expect in str(err.value)
    assert str(path) in str(err.value)


def test_truncated_and_corrupt_json(tmp_path):
    text = json.dumps(_lut().to_dict())
    with pytest.raises(LutError, match="truncated"):
        load_lut(_write(tmp_path, text[: len(text) // 2]))
    with pytest.raises(LutError, match="corrupt"):
        load_lut(_write(tmp_path, "{" + text[1:100] + "]]" + text[100:]))
    with pytest.raises(LutError, match="not found"):
        load_lut(tmp_path / "missing.json")


def test_other_space_or_resolution(tmp_path):
    path = _lut("basic", 224).save(tmp_path / "b.json")
    with pytest.raises(LutError, match=r"basic@224 .* not for large@224"):
        load_lut(path, "large", 224)
    with pytest.raises(LutError, match="not for basic@192"):
        load_lut(path, "basic", 192)
    lut = load_lut(path)
    with pytest.raises(LutError, match="not large"):
        lut.check_space(get_space("large"))
    with pytest.raises(LutError, match="resolution 224, not 160"):
        lut.check_space(get_space("basic"), 160)
    data = lut.to_dict()
    data["space"]["signature"] = "0" * 16
    with pytest.raises(LutError, match="another version"):
        load_lut(_write(tmp_path, data)).check_space(get_space("basic"))


def test_bundle_in_a_device_profile(tmp_path):
    basic, large = _lut("basic").to_dict(), _lut("large").to_dict()
    del large["device"]  # a LUT inside a profile may leave its device to the profile
    profile = {"schema": 1, "name": "phone", "transport": "adb", "luts": [basic, large]}
    path = _write(tmp_path, profile, "phone.json")
    assert load_lut(path, "large", 224).device_name == "phone"
    assert load_lut(path, "basic").family == "basic"
    with pytest.raises(LutError) as err:
        load_lut(path)
    assert str(err.value) == (
        f"{path} holds several LUTs (basic@224, large@224); choose one with the space (--space) "
        "and resolution"
    )
    with pytest.raises(LutError) as err:
        load_lut(path, "large", 192)
    assert str(err.value) == f"{path} holds no LUT for large@192; it holds: basic@224, large@224"
    # a LUT that names its own device keeps it; only one without takes the profile's
    assert load_lut(path, "basic").device_name == "host"
    for luts in ([], {"basic": basic}):
        empty = _write(tmp_path, {**profile, "luts": luts}, "empty.json")
        with pytest.raises(LutError) as err:
            load_lut(empty)
        assert str(err.value) == f"{empty}: 'luts' must be a non-empty list of LUT objects"
    bad = {**profile, "luts": [basic, {**large, "entries": {}}]}
    with pytest.raises(LutError, match=r"luts\[1\]"):
        load_lut(_write(tmp_path, bad, "bad.json"), "basic")


def test_variant_keys_round_trip():
    for family in ("basic", "large"):
        for v in space_variants(get_space(family), 224):
            assert Variant.from_key(v.key) == v
    assert len(space_variants(get_space("large"), 224)) == 203
    assert len(space_variants(get_space("basic"), 224)) == 71


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("p10", -1.0, "p10=-1.0 is not a finite non-negative number"),
        ("p90", math.inf, "p90=inf is not a finite non-negative number"),
        ("ms", -math.inf, "ms=-inf is not a finite non-negative number"),
    ],
)
def test_lut_objects_refuse_infinite_or_negative_figures_exactly(field, value, message):
    """A LUT built in Python (not read by the JSON reader, which refuses Infinity itself) is
    checked too, and the error is the whole message, not a fragment of it."""
    data = _lut().to_dict()
    key, entry = next(iter(data["entries"].items()))
    entry[field] = value
    with pytest.raises(LutError) as err:
        Lut.from_dict(data, "lut")
    text = str(err.value)
    if field == "ms":
        assert text.startswith(f"lut: entry {key!r}: {message} (NaN, negative or missing)")
    else:
        assert text == f"lut: entry {key!r}: {message}"


def test_missing_field_message_is_exact(tmp_path):
    data = _lut().to_dict()
    del data["resolution"]
    path = _write(tmp_path, data)
    with pytest.raises(LutError) as err:
        load_lut(path)
    assert str(err.value) == f"{path}: missing field 'resolution'"


def test_source_line_sums_each_source_largest_first():
    from latency.lut.table import source_line

    parts = [("estimate", 1.5), ("regression", 0.25), ("estimate", 2.0), ("measured", 3.0)]
    assert source_line(parts) == (
        "3.50 ms estimate (2 units), 3.00 ms measured (1 unit), 0.25 ms regression (1 unit)"
    )
