"""Fixtures shared by several test modules: a private cache, the mock device's LUT, an in-process
CLI runner, and the one strict check every bad-input test uses (with the input files it must leave
as they were); the run's summary counts the cases it checked."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result


def pytest_configure(config) -> None:
    """Let the Ctrl-C tests' children see SIGINT even when the suite runs in the background.

    A shell starts background jobs (``cmd &``, ``nohup``) with SIGINT ignored, children inherit
    an ignored signal across exec, and Python then installs no KeyboardInterrupt handler: every
    test that interrupts a command would see it run to the end. A handler in this process is
    reset to the default at exec, so the commands the tests start get Python's usual one.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # The suite times tiny blocks to check what the commands do, never to ship a table, and it
    # may share the machine with other jobs: the measurement guard's busy and drift limits are
    # relaxed for it (tests/latency/profiling/test_guard.py checks the guard itself).
    os.environ.setdefault("PADNAS_GUARD", json.dumps({"busy_cores": 64, "tolerance": 0.5}))
    # The suite's searches are tiny: a helper process's start (an interpreter importing torch)
    # costs more than the evaluations it would share. The tests of the pool and the searches
    # that exercise it ask for helpers explicitly.
    os.environ.setdefault("PADNAS_EVAL_PROCESSES", "1")


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


class Frozen:
    """The bytes of some paths (a file, or every file under a folder; a missing path counts as
    missing) taken before a command, to show that a refused command changed none of them."""

    def __init__(self, *paths: Path) -> None:
        self.paths = [Path(p) for p in paths]
        self.before = self._hashes()

    def _hashes(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for root in self.paths:
            for f in [root, *(sorted(root.rglob("*")) if root.is_dir() else [])]:
                if f.is_file():
                    out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
                else:  # a folder, made or removed, is a change too
                    out[str(f)] = "folder" if f.is_dir() else None
        return out

    def changed(self) -> list[str]:
        after = self._hashes()
        return sorted(
            k for k in self.before.keys() | after.keys() if self.before.get(k) != after.get(k)
        )


#: bad-input cases checked by :func:`one_line_error` in this session (the terminal summary)
CHECKED = {"cases": 0, "with_files": 0}


def one_line_error(
    result: Result, code: int, *fragments: str, alone: bool = True, unchanged: Frozen | None = None
) -> str:
    """The strict form of a refused command: exit ``code`` exactly, no traceback, exactly one
    ``error: `` line, last on stderr, holding every fragment. With ``alone`` (the default) it is
    the only line the command printed at all; without, earlier progress lines are allowed. With
    ``unchanged`` (a :class:`Frozen` taken before the command, see the ``frozen`` fixture), the
    command's input files and run directories must hold the same bytes as before."""
    CHECKED["cases"] += 1
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    if unchanged is not None:
        CHECKED["with_files"] += 1
        assert unchanged.changed() == [], ("a refused command changed", unchanged.changed())
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


@pytest.fixture(scope="session")
def frozen():
    """:class:`Frozen` as a fixture: ``before = frozen(path, ...)``, then
    ``expect_error(result, 2, ..., unchanged=before)``."""
    return Frozen


def pytest_terminal_summary(terminalreporter) -> None:
    if CHECKED["cases"]:
        terminalreporter.write_line(
            f"bad-input cases checked (one error line, the exit code, no traceback): "
            f"{CHECKED['cases']}, {CHECKED['with_files']} of them with their input files "
            "hashed before and after"
        )


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
