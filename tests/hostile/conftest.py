"""Fixtures of the hostile suites: the shrunk quick preset for a whole module, one real finished
search run per module (never changed), and a fresh copy of it for each test to damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from search_support import invoke, search_args, tiny_quick


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The quick preset shrunk to seconds, a private cache and one torch thread."""
    with tiny_quick(tmp_path_factory.mktemp("cache")):
        yield


@pytest.fixture(scope="module")
def finished(tiny, lut_file, tmp_path_factory) -> Path:
    """A real finished run made through the CLI (digits, two stages), never changed."""
    from padnas.cli.search import search

    run = tmp_path_factory.mktemp("runs") / "done"
    r = invoke(search, search_args(lut_file, run))
    assert r.exit_code == 0, r.output
    return run


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    """A copy of :func:`finished` for one test to damage."""
    dst = tmp_path / "run"
    shutil.copytree(finished, dst)
    return dst
