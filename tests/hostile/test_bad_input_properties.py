"""Property-based hostile input: arbitrary mutations of a valid arch string,
network description or LUT file give either the valid result or a one-line error with exit 2 --
never a traceback, a hang or a changed file. Examples are few and derandomized, so CI is quick
and reproducible; the run-directory property lives in test_damaged_run_properties.py beside
its finished run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_support import (
    ARCH,
    BOUNDED,
    NET,
    PIXEL3,
    set_somewhere,
    text_mutations,
)
from hypothesis import given
from hypothesis import strategies as st

from latency.cli.app import main


def _predict(args, cache: Path):
    return CliRunner().invoke(main, ["predict", *map(str, args)], env={"PADNAS_CACHE": str(cache)})


def _valid_or_refused(result, baseline: str, same_input: bool, expect_error, unchanged) -> None:
    """Exit 0 with the baseline answer when the input still means the same thing, else exit 0 or
    a one-line ``error:`` with exit 2 (the shared ``expect_error`` check, ``unchanged`` the
    input's bytes); a traceback or another exit code is a defect."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code == 0:
        if same_input:
            assert result.output == baseline
        assert unchanged.changed() == []
        return
    expect_error(result, 2, unchanged=unchanged)


def _same_json(text: str, original) -> bool:
    try:
        return json.loads(text) == original
    except ValueError:
        return False


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def baselines(cache, tmp_path_factory) -> dict:
    """What predict answers for the unmutated arch string, network file and LUT file."""
    root = tmp_path_factory.mktemp("valid")
    net = root / "net.json"
    net.write_text(json.dumps(NET))
    lut = _basic_lut_text()
    (root / "lut.json").write_text(lut)
    out = {
        "arch": _predict([ARCH, "--space", "basic", "--lut", PIXEL3], cache),
        "net": _predict([net, "--lut", PIXEL3], cache),
        "lut": _predict([ARCH, "--space", "basic", "--lut", root / "lut.json"], cache),
    }
    for res in out.values():
        assert res.exit_code == 0, res.output
    return {k: res.output.replace(str(root), "ROOT") for k, res in out.items()}


def _basic_lut_text() -> str:
    data = json.loads(PIXEL3.read_text())
    return json.dumps(next(x for x in data["luts"] if x["space"]["family"] == "basic"), indent=1)


@BOUNDED
@given(arch=text_mutations(ARCH))
def test_mutated_arch_strings(arch, cache, baselines, expect_error, frozen):
    with tempfile.TemporaryDirectory() as cwd:
        before = frozen(Path(cwd), PIXEL3)
        res = CliRunner().invoke(
            main,
            ["predict", arch, "--space", "basic", "--lut", str(PIXEL3)],
            env={"PADNAS_CACHE": str(cache)},
        )
        _valid_or_refused(res, baselines["arch"], arch == ARCH, expect_error, before)


def _check_file(text: str, original, args_for, baseline: str, cache: Path, checks) -> None:
    """Write ``text``, predict with it, and check the answer and that the file is unchanged
    (``checks``: the ``expect_error`` and ``frozen`` fixtures)."""
    expect_error, frozen = checks
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.json"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        before = frozen(path, PIXEL3)
        res = _predict(args_for(path), cache)
        baseline = baseline.replace("ROOT/lut.json", str(path))
        _valid_or_refused(res, baseline, _same_json(text, original), expect_error, before)


NET_TEXT = json.dumps(NET, indent=1)


@pytest.mark.slow  # each network predict fits the regression: seconds of CPU per example
@BOUNDED
@given(data=st.data())
def test_mutated_network_descriptions(data, cache, baselines, expect_error, frozen):
    if data.draw(st.booleans(), label="structural"):
        net = json.loads(NET_TEXT)
        set_somewhere(data.draw, net)
        text = json.dumps(net)  # NaN and Infinity come out as their (non-JSON) literals
    else:
        text = data.draw(text_mutations(NET_TEXT))
    baseline = baselines["net"]
    args = lambda p: [p, "--lut", PIXEL3]  # noqa: E731
    _check_file(text, NET, args, baseline, cache, (expect_error, frozen))


@pytest.mark.slow
@BOUNDED
@given(data=st.data())
def test_mutated_lut_files(data, cache, baselines, expect_error, frozen):
    lut_text = _basic_lut_text()
    original = json.loads(lut_text)
    if data.draw(st.booleans(), label="structural"):
        lut = json.loads(lut_text)
        set_somewhere(data.draw, lut)
        text = json.dumps(lut)
    else:
        text = data.draw(text_mutations(lut_text))
    args = lambda p: [ARCH, "--space", "basic", "--lut", p]  # noqa: E731
    _check_file(text, original, args, baselines["lut"], cache, (expect_error, frozen))
