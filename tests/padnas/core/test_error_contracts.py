"""The redesign's contracts: exit codes by error type, declared backend capabilities, one
vocabulary with deprecated spellings that still work, one-line usage errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from latency.backends.base import Backend, LatencyStats
from latency.backends.mock import MockBackend
from latency.errors import BackendError, ExportError, LatencyError
from latency.lut.table import LutError, source_line
from latency.variants import Variant, VariantError
from padnas.cli.options import accelerator_option
from padnas.core.cli import handle_errors, renamed_option
from padnas.core.errors import PadnasError, UsageError, exit_code
from padnas.space import SpaceError


@pytest.mark.parametrize(
    "exc, code",
    [
        (VariantError("bad key"), 2),
        (LutError("bad lut"), 2),
        (SpaceError("bad space"), 2),
        (ExportError("onnx2tf failed"), 1),
        (BackendError("phone gone"), 1),
        (RuntimeError("a bug"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_code_follows_the_error_type(exc, code):
    assert exit_code(exc) == code


def test_every_latency_error_is_a_padnas_error():
    for cls in (VariantError, LutError, ExportError, BackendError):
        assert issubclass(cls, LatencyError) and issubclass(cls, PadnasError)
    assert issubclass(VariantError, UsageError) and not issubclass(ExportError, UsageError)


class _FileOnly(Backend):
    name = "files"

    def _measure(self, path: Path) -> LatencyStats:
        return LatencyStats(1.0, 1.0, 1.0, 1, "measured")


def test_backend_capabilities_have_defaults():
    b = _FileOnly()
    assert (b.needs_files, b.runs_on_host, b.cpu, b.passes, b.serial) == (
        True,
        False,
        None,
        1,
        None,
    )
    assert b.label == "files"
    with pytest.raises(NotImplementedError):
        b.measure_variant(Variant.from_key("head-i7x7x320-f1280-c1000"))
    mock = MockBackend({"name": "mock"})
    assert mock.needs_files is False


def test_source_line_largest_share_first():
    parts = [("estimate", 2.0), ("regression", 0.5), ("estimate", 3.0)]
    assert source_line(parts) == "5.00 ms estimate (2 units), 0.50 ms regression (1 unit)"


@click.command()
@accelerator_option
@renamed_option("--width-mult", "--width", "width", type=float, default=None)
@click.option("--verbose", is_flag=True)
@handle_errors
def _cmd(device, width, verbose):
    click.echo(f"{device} {width}")


@pytest.mark.parametrize(
    "args, out, note",
    [
        ([], "auto None", None),
        (["--accelerator", "cpu", "--width-mult", "0.5"], "cpu 0.5", None),
        (["--device", "cpu"], "cpu None", "--device is deprecated; use --accelerator"),
        (["--width", "0.5"], "auto 0.5", "--width is deprecated; use --width-mult"),
    ],
)
def test_old_spellings_work_with_one_note(args, out, note):
    r = CliRunner().invoke(_cmd, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == out
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert notes == ([f"note: {note}"] if note else [])


def test_unknown_space_is_one_line_in_the_latency_cli(expect_error):
    from latency.cli import main

    r = CliRunner().invoke(main, ["profile", "--device", "mock", "--space", "huge"])
    expect_error(r, 2, "basic, large")
