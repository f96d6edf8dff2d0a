"""Hostile and damaged input files: every file is read by one strict JSON reader and
checked against its schema and physical bounds; a bad file is one line naming it, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_support import ARCH, NET, PIXEL3

from latency.networks.checks import load_networks, network_from_dict
from latency.networks.description import NetDescError
from padnas.core import parse_json, read_json, read_jsonl
from padnas.core.errors import FileFormatError


def _basic_lut(tmp_path) -> tuple[dict, Path]:
    """The Pixel 3 basic LUT as a stand-alone LUT file (text, so a test can damage it)."""
    data = json.loads(PIXEL3.read_text())
    lut = next(lut for lut in data["luts"] if lut["space"]["family"] == "basic")
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(lut, indent=1))
    return lut, path


# ---- 1. the one reader ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expect",
    [
        ('{"a": 1, "a": 2}', "key 'a' appears twice"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e999}', "out of range"),
        ('{"a": ' + "9" * 40 + "}", "more than 30 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
        ("[" * 70 + "]" * 70, "nested deeper than"),
        ('{"a": [1, 2', "truncated"),
        ('{"a" 1}', "not valid JSON"),
    ],
)
def test_parser_refuses_with_the_origin(text, expect):
    with pytest.raises(FileFormatError) as err:
        parse_json(text, "some.json")
    assert str(err.value).startswith("some.json: ")
    assert expect in str(err.value)


def test_reader_refuses_bytes_directories_and_wrong_top_level(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(FileFormatError, match=r"latin1.json: not UTF-8 text \(byte 13, line 1\)"):
        read_json(bad)
    with pytest.raises(FileFormatError, match="is a directory"):
        read_json(tmp_path)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(FileFormatError, match="must hold an object, not list"):
        read_json(tmp_path / "list.json", expect=dict)
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert read_json(tmp_path / "bom.json") == {"a": 1}


def test_store_lines_go_through_the_same_reader(tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text('{"k": 1}\n{"k": 2, "k": 3}\n{"k": 4}\n')
    with pytest.raises(FileFormatError, match=r"m.jsonl:2: corrupt record"):
        list(read_jsonl(log))
    log.write_text('{"k": 1}\n{"k": 4')  # a torn last line is a killed writer: skipped
    assert list(read_jsonl(log)) == [{"k": 1}]


def test_deep_network_file_is_refused_naming_it(tmp_path, latency_cli, expect_error, frozen):
    net = tmp_path / "deep.json"
    net.write_text("[" * 50_000 + "]" * 50_000)
    before = frozen(net, PIXEL3)
    r = latency_cli("predict", net, "--lut", PIXEL3)
    expect_error(r, 2, str(net), "nested deeper than", unchanged=before)


def test_non_utf8_lut_is_refused_naming_it(tmp_path, latency_cli, expect_error, frozen):
    lut = tmp_path / "lut.json"
    lut.write_bytes(b'{"schema": 1, "name": "\xff\xfe"}')
    before = frozen(lut)
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", lut)
    expect_error(r, 2, str(lut), "not UTF-8", unchanged=before)


def test_duplicate_lut_entry_is_refused_not_last_wins(tmp_path, latency_cli, expect_error, frozen):
    lut, path = _basic_lut(tmp_path)
    key = next(iter(lut["entries"]))
    text = path.read_text()
    entry = json.dumps(lut["entries"][key])
    dup = f'"entries": {{\n  "{key}": {{"ms": 999.0, "source": "measured"}},'
    path.write_text(text.replace('"entries": {', dup, 1))
    assert entry  # the original entry is still in the file, after the duplicate
    before = frozen(path)
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", path)
    expect_error(r, 2, str(path), f"key '{key}' appears twice", unchanged=before)


# ---- 2. schema versions and variant keys ------------------------------------------------------
def test_profile_of_a_newer_schema_is_refused_by_predict(
    tmp_path, latency_cli, expect_error, frozen
):
    prof = json.loads(PIXEL3.read_text())
    prof["schema"] = 999
    path = tmp_path / "future.json"
    path.write_text(json.dumps(prof))
    before = frozen(path)
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", path)
    expect_error(r, 2, str(path), "written by a newer padnas", unchanged=before)
    before = frozen(path)
    r = latency_cli("profile", "--device", path, "--space", "basic")
    expect_error(r, 2, "written by a newer padnas", unchanged=before)


def test_lut_of_a_newer_schema_is_refused(tmp_path, latency_cli, expect_error, frozen):
    lut, path = _basic_lut(tmp_path)
    path.write_text(json.dumps({**lut, "schema": 7}))
    before = frozen(path)
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", path)
    expect_error(r, 2, str(path), "written by a newer padnas", unchanged=before)


@pytest.mark.parametrize(
    "key, expect",
    [
        ("ibconv-k9-e9-s1-i28x28x40-o28x28x40", "no space has this op"),
        ("ibconv-k3-e3-s3-i28x28x40-o10x10x40", "stride must be 1 or 2"),
        ("ibconv-k3-e3-s2-i28x28x40-o28x28x40", "makes 28x28 into 14x14"),
        ("ibconv-k3-e3-s1-i9999x9999x40-o9999x9999x40", "spatial sizes"),
        ("stem-k5-s2-i224x224x3-o112x112x32", "the stem is a 3x3 conv"),
        ("head-i7x7x320-f1280-c0", "classes must be"),
    ],
)
def test_lut_keys_outside_the_grammar_are_refused(
    tmp_path, latency_cli, key, expect, expect_error, frozen
):
    lut, path = _basic_lut(tmp_path)
    lut["entries"][key] = {"ms": 1.0, "source": "measured"}
    path.write_text(json.dumps(lut))
    before = frozen(path)
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", path)
    expect_error(r, 2, str(path), key, expect, unchanged=before)


# ---- 3. physical bounds of network descriptions -----------------------------------------------
@pytest.mark.parametrize(
    "layer, field, value, expect",
    [
        (1, "expansion", "NaN", "NaN is not a JSON number"),
        (1, "expansion", "Infinity", "Infinity is not a JSON number"),
        (1, "expansion", "1e999", "out of range"),
        (0, "cout", "1000000000", "'cout' must be <= 65536"),
        (0, "kernel", "99", "'kernel' must be <= 15"),
    ],
)
def test_network_numbers_out_of_bounds_are_refused(
    tmp_path, latency_cli, layer, field, value, expect, expect_error, frozen
):
    net = json.loads(json.dumps(NET))
    net["layers"][layer][field] = "@@"
    path = tmp_path / "net.json"
    path.write_text(json.dumps(net).replace('"@@"', value))
    before = frozen(path, PIXEL3)
    r = latency_cli("predict", path, "--lut", PIXEL3)
    expect_error(r, 2, expect, unchanged=before)


def test_network_values_are_bounded_naming_layer_and_field():
    bad_exp = json.loads(json.dumps(NET))
    bad_exp["layers"][1]["expansion"] = float("nan")
    with pytest.raises(NetDescError, match=r"layer 1 \(ibconv\): 'expansion' must be a finite"):
        network_from_dict("n", bad_exp)
    big = {**NET, "input": 1_000_000}
    with pytest.raises(NetDescError, match=r"'input' must be 1..4096"):
        network_from_dict("n", big)


def test_network_file_top_level_must_be_an_object(tmp_path):
    path = tmp_path / "n.json"
    path.write_text("[1, 2]")
    with pytest.raises(NetDescError, match="must hold a JSON object"):
        load_networks(path)


# ---- 4. a profile where a LUT belongs, a LUT where a profile belongs ----------------------------
def test_a_profile_without_luts_given_as_the_lut_names_the_file_and_the_field(
    tmp_path, latency_cli, expect_error, frozen
):
    """A user's profile with no 'luts' (and no 'device' block) is named as the profile it is,
    with the field it lacks, not as a LUT missing its 'device'; a shipped profile given by name
    is named by the name the user typed."""
    prof = {k: v for k, v in json.loads(PIXEL3.read_text()).items() if k not in ("luts", "device")}
    path = tmp_path / "my-phone.json"
    path.write_text(json.dumps(prof))
    before = frozen(path)
    for args in (
        ["predict", ARCH, "--space", "basic", "--lut", path],
        ["measure", ARCH, "--space", "basic", "--device", "mock", "--lut", path],
        ["validate", path],
    ):
        r = latency_cli(*args)
        msg = expect_error(r, 2, f"{path}: device profile has no 'luts' field", unchanged=before)
        assert "missing field 'device'" not in msg
    r = latency_cli("predict", ARCH, "--space", "basic", "--lut", "mock")
    expect_error(r, 2, "--lut mock: device profile ", "mock.json has no 'luts' field")


def test_a_lut_given_as_the_device_is_named_as_a_lut(tmp_path, latency_cli, expect_error, frozen):
    _lut, path = _basic_lut(tmp_path)
    before = frozen(path)
    r = latency_cli("measure", ARCH, "--space", "basic", "--device", path)
    expect_error(r, 2, f"{path} is a LUT, not a device profile", "--lut", unchanged=before)
