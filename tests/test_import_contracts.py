"""The import contracts of pyproject.toml state the design: a forbidden edge breaks one.

Each probe edit is made in a copy of the two packages, and ``lint-imports`` runs on the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repo_support import REPO

LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess:
    for name in ("padnas", "latency"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    if edit is not None:
        path, line = edit
        target = tmp_path / path
        target.write_text(f"{line}\n" + target.read_text())
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True
    )


@pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")
@pytest.mark.parametrize(
    "edit, contract",
    [
        (None, None),
        (("latency/lut/table.py", "import padnas.data  # noqa"), "One stack"),
        (("padnas/space/spaces.py", "from latency.errors import LatencyError"), "One stack"),
        (("padnas/search/ces.py", "import latency.lut.model  # noqa"), "never know the latency"),
        (("padnas/space/arch.py", "import torch  # noqa"), "has no torch"),
        (("latency/backends/mock.py", "import latency.backends.host  # noqa"), "Backends"),
    ],
    ids=[
        "unchanged",
        "latency-imports-data",
        "space-imports-latency",
        "search-imports-latency",
        "space-imports-torch",
        "backend-imports-backend",
    ],
)
def test_a_forbidden_edge_breaks_a_contract(tmp_path, edit, contract):
    result = _lint(tmp_path, edit)
    out = result.stdout + result.stderr
    if edit is None:
        assert result.returncode == 0, out
        assert "0 broken" in out
        return
    assert result.returncode != 0, out
    broken = out[out.index("Broken contracts") :]
    assert contract in broken
