"""``padnas search --deterministic`` gives the same result whatever CPU kernels the machine would
pick: a tiny real search (digits, two stages, the quick preset shrunk as in search_support.py)
runs in child processes whose environment caps every kernel dispatcher at AVX2 (as on a CPU
without AVX-512) or leaves them free, as the entry point starts them (the pinned environment
laid over the caller's). The normal mode is the control: there the caps change the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from padnas.train.reproducibility import pinned_environment

REPO = Path(__file__).resolve().parents[3]
#: a CPU with AVX2 and no AVX-512, as each of torch's kernel dispatchers sees one
AVX2_CAPS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
CHILD = """
import sys
from pathlib import Path
from search_support import invoke, search_args, tiny_quick
from padnas.cli.search import search
lut, out, cache, *extra = sys.argv[1:]
with tiny_quick(Path(cache)):
    r = invoke(search, [*search_args(lut, Path(out)), *extra])
print(r.output)
sys.exit(r.exit_code)
"""


def _search(lut_file, tmp: Path, name: str, caps: dict, deterministic: bool, *more: str) -> Path:
    """Run the tiny search in a child process with ``caps`` in its environment and ``more``
    options; its run dir."""
    env = {k: v for k, v in os.environ.items() if k not in AVX2_CAPS}
    env |= caps
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    if deterministic:
        env = pinned_environment(env)  # what the padnas entry point re-executes itself with
    out = tmp / name
    extra = [*(["--deterministic"] if deterministic else []), *more]
    cmd = [sys.executable, "-c", CHILD, str(lut_file), str(out), str(tmp / "cache"), *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def _result(run: Path) -> dict:
    """Everything a run found (final.json and every evaluated architecture), no wall times."""
    return {
        "final": json.loads((run / "final.json").read_text()),
        "evaluated": (run / "evaluated.jsonl").read_text(),
    }


@pytest.mark.slow
def test_deterministic_search_is_identical_under_other_cpu_kernels(lut_file, tmp_path):
    free = _search(lut_file, tmp_path, "det-free", {}, True)
    # ...and with a helper process sharing the evaluations (it inherits the pinned environment)
    capped = _search(lut_file, tmp_path, "det-avx2", AVX2_CAPS, True, "--eval-processes", "2")
    assert _result(free) == _result(capped)
    stages = json.loads((capped / "summary.json").read_text())["stages"]
    assert stages[1]["eval_processes"] == 2
    configs = [json.loads((run / "config.json").read_text()) for run in (free, capped)]
    assert all(c["deterministic"] is True for c in configs)
    for c in configs:
        assert c["platform"]["cpu_capability"] == "DEFAULT"
        assert c["platform"]["deterministic"] is True and c["platform"]["threads"] == 1
    # the record keeps what the caller's environment held where the mode did not override it
    assert configs[1]["platform"]["env"]["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    # the control: without the mode the same caps change what the search finds
    normal = _search(lut_file, tmp_path, "free", {}, deterministic=False)
    normal_capped = _search(lut_file, tmp_path, "avx2", AVX2_CAPS, deterministic=False)
    platform = json.loads((normal / "config.json").read_text())["platform"]
    if platform["cpu_capability"] == "AVX512":  # elsewhere the caps change nothing to compare
        assert _result(normal) != _result(normal_capped)
