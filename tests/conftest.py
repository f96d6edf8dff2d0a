"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def latency_cli(tmp_path, monkeypatch):
    """Invoke ``padnas-latency`` in-process with a private cache, so tests never share stores."""
    from latency.cli.app import main

    monkeypatch.setenv("PADNAS_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke
