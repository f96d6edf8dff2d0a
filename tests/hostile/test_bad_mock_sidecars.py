"""The sidecar JSON the mock device times an exported model by: every field is checked for its
type and range by one reader before a latency is computed, and a bad sidecar is one line naming
it, exit 2, with nothing written."""

from __future__ import annotations

import json

import pytest

ARCH = "-".join(["K3E1", *(["K3E3"] * 21)])
GOOD = {"arch": ARCH, "family": "basic", "resolution": 64}


@pytest.mark.parametrize(
    ("sidecar", "fragments"),
    [
        ({"arch": ARCH, "resolution": 64}, ["needs 'family'"]),
        ({"arch": ARCH, "family": "basic"}, ["needs 'resolution'"]),
        ({"arch": ARCH}, ["needs 'family' and 'resolution'"]),
        ({**GOOD, "resolution": "224"}, ["'resolution' must be an integer, not '224'"]),
        ({**GOOD, "resolution": True}, ["'resolution' must be an integer, not True"]),
        ({**GOOD, "resolution": 64.0}, ["'resolution' must be an integer, not 64.0"]),
        # a million pixels a side once "measured" 917,462,779 ms
        ({**GOOD, "resolution": 1_000_000}, ["'resolution' 1000000 is not supported", "1024"]),
        ({**GOOD, "resolution": 1056}, ["'resolution' 1056 is not supported"]),
        ({**GOOD, "resolution": 100}, ["'resolution' 100 is not supported", "multiple of 32"]),
        ({**GOOD, "resolution": 0}, ["'resolution' 0 is not supported"]),
        ({**GOOD, "width_mult": 1e9}, ["'width_mult' must be a number from 0.05 to 4"]),
        ({**GOOD, "num_classes": -3}, ["'num_classes' must be an integer from 1 to 100000"]),
        ({**GOOD, "family": ["basic"]}, ["'family' and 'arch' must be strings"]),
        ({**GOOD, "family": "huge"}, ["unknown space 'huge'"]),
        ({**GOOD, "arch": "K3E1"}, ["architecture has 1 layers, the basic space has 22"]),
        ({"variant": 7}, ["'variant' must be a block key, not 7"]),
        ({"variant": "nonsense"}, ["not a variant key: 'nonsense'"]),
        ({"name": "x"}, ["names neither a variant nor an arch"]),
        ({**GOOD, "precision": "int4"}, ["'precision' must be one of fp32, int8, not 'int4'"]),
    ],
)
def test_bad_sidecar_is_refused_naming_it(
    tmp_path, latency_cli, expect_error, frozen, sidecar, fragments
):
    model = tmp_path / "net.tflite"
    model.write_bytes(b"stands in for the exported model")
    side = tmp_path / "net.json"
    side.write_text(json.dumps(sidecar))
    before = frozen(tmp_path)
    r = latency_cli("measure", model, "--device", "mock")
    expect_error(r, 2, f"{side}: ", "re-export the model", *fragments, unchanged=before)


@pytest.mark.parametrize("resolution", [32, 1024])
def test_sidecar_resolutions_at_the_bounds_are_timed(tmp_path, latency_cli, resolution):
    model = tmp_path / "net.tflite"
    model.write_bytes(b"stands in for the exported model")
    (tmp_path / "net.json").write_text(json.dumps({**GOOD, "resolution": resolution}))
    r = latency_cli("measure", model, "--device", "mock", "--json")
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.stdout)["measurements"]
    assert 0 < m["ms"] < 10_000 and m["source"] == "mock"


@pytest.mark.parametrize(
    "sidecar, what",
    [({"unit": "maxpool-k3-s2"}, "a network unit"), ({"network": "n"}, "a described network")],
)
def test_a_unit_or_network_file_is_sent_to_its_description(
    tmp_path, latency_cli, expect_error, sidecar, what
):
    """padnas's own unit and network files need no re-export: the mock prices their layer list."""
    model = tmp_path / "unit.tflite"
    model.write_bytes(b"stands in for the exported unit")
    (tmp_path / "unit.json").write_text(json.dumps(sidecar))
    r = latency_cli("measure", model, "--device", "mock")
    msg = expect_error(
        r, 2, f"the mock prices {what} from its layer list", "NET.json or MODEL.onnx"
    )
    assert "re-export" not in msg


def test_an_int8_sidecar_is_timed_as_int8(tmp_path, latency_cli):
    model = tmp_path / "net.tflite"
    model.write_bytes(b"stands in for the exported model")
    ms = {}
    for precision in ("fp32", "int8"):
        (tmp_path / "net.json").write_text(json.dumps({**GOOD, "precision": precision}))
        r = latency_cli("measure", model, "--device", "mock", "--json")
        assert r.exit_code == 0, r.output
        ms[precision] = json.loads(r.stdout)["measurements"][0]["ms"]
    assert ms["int8"] < ms["fp32"]
