"""Fixtures shared by several test modules: a private cache, the mock device's LUT, an in-process
CLI runner, and the one strict check every bad-input test uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result


@pytest.fixture
def padnas_cache(tmp_path, monkeypatch) -> Path:
    """A private ``PADNAS_CACHE``, so tests never share (or pollute) a measurement store."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PADNAS_CACHE", str(path))
    return path


@pytest.fixture
def latency_cli(padnas_cache):
    """Invoke ``padnas-latency`` in-process with a private cache."""
    from latency.cli.app import main

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def cli():
    """Invoke any click command in-process: ``cli(command, *args)``; arguments become strings."""

    def invoke(command, *args) -> Result:
        return CliRunner().invoke(command, [str(a) for a in args])

    return invoke


@pytest.fixture(scope="session")
def lut_file(tmp_path_factory) -> Path:
    """The mock device's LUT of the basic space at 224, made as a user makes one."""
    from search_support import mock_lut

    path = tmp_path_factory.mktemp("lut") / "mock-basic.json"
    mock_lut("basic").save(path)
    return path


def one_line_error(result: Result, code: int, *fragments: str, alone: bool = True) -> str:
    """The strict form of a refused command: exit ``code`` exactly, no traceback, exactly one
    ``error: `` line, last on stderr, holding every fragment. With ``alone`` (the default) it is
    the only line the command printed at all; without, earlier progress lines are allowed."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert result.stderr.strip().splitlines()[-1] == errors[0], result.stderr
    if alone:
        assert lines == errors, result.output
    for f in fragments:
        assert f in errors[0], (f, errors[0])
    return errors[0]


@pytest.fixture(scope="session")
def expect_error():
    """:func:`one_line_error` as a fixture, for test modules (conftest is not importable)."""
    return one_line_error


@pytest.fixture
def adb_key(tmp_path) -> tuple[Path, str]:
    """A fresh adb RSA key pair: (private key path, public key text as adbkey.pub holds it)."""
    from latency.backends.adb.transport import ensure_key

    key = ensure_key(tmp_path / "keys" / "adbkey")
    return key, Path(str(key) + ".pub").read_text()


@pytest.fixture
def free_port() -> int:
    """A local TCP port nothing listens on (bound once to pick it, then closed again)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
