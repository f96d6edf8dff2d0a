"""``--device NAME`` and ``--lut NAME``: a file in the working directory wins, then
``$PADNAS_DEVICE_PROFILES``, then the profiles shipped in the package; an unknown name is one
error line listing the known profiles (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_support import REPO

from latency.devices import ProfileError, known_devices, load_profile
from latency.lut.table import LutError, load_lut
from latency.profile_paths import find_profile, shipped_dir
from padnas.space import get_space


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """An empty working directory outside the checkout, with no user profile folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("PADNAS_DEVICE_PROFILES", raising=False)
    return cwd


def test_shipped_profiles_are_the_top_level_folder_in_a_checkout():
    # one source: the package's device_profiles is the folder users edit, not a copy of it
    assert shipped_dir() == (REPO / "device_profiles").resolve()
    assert (REPO / "latency" / "device_profiles").resolve() == shipped_dir()


def test_a_name_resolves_to_the_shipped_profile(elsewhere):
    assert find_profile("pixel3") == shipped_dir() / "pixel3.json"
    assert load_profile("pixel3")["transport"] == "adb"
    lut = load_lut("pixel3", "basic")
    assert (lut.device_name, lut.family, lut.resolution) == ("pixel3", "basic", 224)
    assert {"host", "mock", "pixel3"} <= set(known_devices())


def test_a_file_in_the_working_directory_wins(elsewhere):
    shipped = json.loads((shipped_dir() / "pixel3.json").read_text())
    for lut in shipped["luts"]:
        lut["calibration"] = {"scale": 1.0, "offset_ms": 99.0}
    (elsewhere / "pixel3").write_text(json.dumps(shipped))
    assert load_lut("pixel3", "basic").calibration["offset_ms"] == 99.0
    assert load_lut(shipped_dir() / "pixel3.json", "basic").calibration["offset_ms"] != 99.0
    mock = json.loads((shipped_dir() / "mock.json").read_text())
    (elsewhere / "mock").write_text(json.dumps({**mock, "name": "my-mock"}))
    assert load_profile("mock")["name"] == "my-mock"


def test_a_users_folder_is_searched_first_and_the_shipped_profiles_stay(
    elsewhere, tmp_path, monkeypatch
):
    own = tmp_path / "own"
    own.mkdir()
    mock = json.loads((shipped_dir() / "mock.json").read_text())
    (own / "myphone.json").write_text(json.dumps({**mock, "name": "myphone"}))
    (own / "mock.json").write_text(json.dumps({**mock, "name": "shadowing-mock"}))
    monkeypatch.setenv("PADNAS_DEVICE_PROFILES", str(own))
    assert load_profile("myphone")["name"] == "myphone"
    assert load_profile("mock")["name"] == "shadowing-mock"
    assert load_profile("pixel3")["name"] == "pixel3"
    assert {"myphone", "mock", "pixel3", "host"} <= set(known_devices())


def test_a_path_is_never_taken_for_a_name(elsewhere):
    with pytest.raises(LutError, match=r"LUT file not found: pixel3\.json"):
        load_lut("pixel3.json")
    with pytest.raises(ProfileError, match=r"device profile not found: sub/pixel3"):
        load_profile("sub/pixel3")


@pytest.mark.parametrize(
    "args",
    [
        ["predict", str(get_space("basic").decode([0] * 22)), "-s", "basic", "--lut", "pixel4"],
        ["profile", "--device", "pixel4"],
    ],
)
def test_an_unknown_name_is_one_error_listing_the_known_profiles(
    elsewhere, latency_cli, expect_error, args
):
    line = expect_error(latency_cli(*args), 2, "'pixel4'", "host", "mock", "pixel3")
    assert "known devices are" in line


def test_search_with_an_unknown_lut_name_writes_nothing(elsewhere, cli, expect_error):
    from padnas.cli import main

    out = elsewhere / "run"
    result = cli(main, "search", "--lut", "pixel4", "--data", "digits", "--out", out)
    expect_error(result, 2, "--lut 'pixel4' is neither a file nor a device profile", "pixel3")
    assert not out.exists()


def test_a_folder_named_like_a_profile_does_not_shadow_it(elsewhere, cli, latency_cli):
    """A folder called ``pixel3`` in the working directory (a run directory, say) is not the
    profile: ``--lut pixel3`` still finds the shipped one, in predict and in search."""
    from padnas.cli import main

    (elsewhere / "pixel3").mkdir()
    net = REPO / "latency" / "data" / "pixel3_published.json"
    r = latency_cli("predict", net, "--lut", "pixel3", "--net", "MobileNetV2_1.0")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("MobileNetV2_1.0: ") and "on pixel3" in r.output
    plan_only = cli(main, "search", "--lut", "pixel3", "--stages", "11", "--out", elsewhere / "r")
    assert plan_only.exit_code == 2 and "--stages must be 2..10" in plan_only.output


def test_validate_does_not_update_a_named_profile_in_place(elsewhere, latency_cli, expect_error):
    result = latency_cli("validate", "--lut", "pixel3", "--device", "pixel3", "--space", "basic")
    expect_error(result, 2, "-o FILE.json")
    assert list(elsewhere.iterdir()) == []


def test_devices_lists_where_each_name_resolves(elsewhere, latency_cli):
    doc = json.loads(latency_cli("devices", "--json").stdout)
    paths = {p["name"]: p["path"] for p in doc["profiles"]}
    assert paths["pixel3"] == str(shipped_dir() / "pixel3.json")
    assert doc["profile_dirs"] == [str(shipped_dir())]
