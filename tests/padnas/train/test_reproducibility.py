"""The deterministic mode sets what it should: the entry point re-executes itself in the pinned
environment, a pinned process runs torch's portable kernels on one thread with deterministic
algorithms, an unpinned one is refused; the platform record names what a run computes with.
(That the mode makes a search identical under other CPU kernels: test_deterministic_search.py,
slow.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from padnas.core.errors import UsageError
from padnas.train import reproducibility as rep

REPO = Path(__file__).resolve().parents[3]


def test_pinned_environment_overrides_caps_and_keeps_the_rest():
    caller = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "HOME": "/h"}
    env = rep.pinned_environment(caller)
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["ONEDNN_MAX_CPU_ISA"] == "SSE41"
    assert env["MKL_CBWR"] == "COMPATIBLE"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["HOME"] == "/h" and caller["ATEN_CPU_CAPABILITY"] == "avx2"  # a copy
    assert rep.is_pinned(env) and not rep.is_pinned(caller)


class _Exec(Exception):
    pass


@pytest.fixture
def execs(monkeypatch):
    """os.execve replaced by a recorder that stops the command where the exec would happen."""
    calls = []

    def execve(path, argv, env):
        calls.append((path, argv, env))
        raise _Exec

    monkeypatch.setattr(os, "execve", execve)
    for key in rep.PINNED_ENV:
        monkeypatch.delenv(key, raising=False)
    return calls


def test_entry_point_reexecutes_a_deterministic_command_pinned(execs, monkeypatch):
    from padnas.cli.main import main

    argv = ["search", "--lut", "x.json", "--deterministic", "--out", "r"]
    monkeypatch.setattr(sys, "argv", ["padnas", *argv])
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(_Exec):
        main()
    [(path, command, env)] = execs
    assert path == sys.executable
    assert command == [sys.executable, "-m", "padnas.cli", *argv]
    assert rep.is_pinned(env) and env["ONEDNN_MAX_CPU_ISA"] == "SSE41"


def test_entry_point_runs_in_place_when_pinned_or_not_asked(execs, monkeypatch):
    from padnas.cli.main import main

    monkeypatch.setattr(sys, "argv", ["padnas", "search", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0 and not execs  # no --deterministic: nothing re-executed
    for key, value in rep.PINNED_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["padnas", "search", "--deterministic", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0 and not execs  # already pinned: no second exec
    # arguments handed in by a caller are parsed in this process, never re-executed
    for key in rep.PINNED_ENV:
        monkeypatch.delenv(key)
    with pytest.raises(SystemExit):
        main(["search", "--deterministic", "--help"])
    assert not execs


def test_a_pinned_process_runs_portable_kernels_on_one_thread():
    code = (
        "import json; from padnas.train import reproducibility as r\n"
        "r.enter_deterministic_mode()\n"
        "import torch\n"
        "print(json.dumps({'capability': torch.backends.cpu.get_cpu_capability(),\n"
        "  'threads': torch.get_num_threads(),\n"
        "  'deterministic': torch.are_deterministic_algorithms_enabled(),\n"
        "  'mode': r.deterministic_mode(), 'record': r.platform_record()}))\n"
    )
    env = rep.pinned_environment({**os.environ, "ATEN_CPU_CAPABILITY": "avx2"})
    env["PYTHONPATH"] = str(REPO)
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert (got["capability"], got["threads"], got["deterministic"], got["mode"]) == (
        "DEFAULT",
        1,
        True,
        True,
    )
    record = got["record"]
    assert record["cpu_capability"] == "DEFAULT" and record["deterministic"] is True
    assert record["env"]["ATEN_CPU_CAPABILITY"] == "default"
    assert record["env"]["ONEDNN_MAX_CPU_ISA"] == "SSE41"


def test_an_unpinned_process_is_refused(monkeypatch):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    with pytest.raises(UsageError, match=r"ATEN_CPU_CAPABILITY=default.*python -m padnas\.cli"):
        rep.enter_deterministic_mode()
    assert not rep.deterministic_mode()


def test_platform_record_names_cpu_kernels_libraries_and_threads(monkeypatch):
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    record = rep.platform_record()
    assert record["cpu"] and record["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["torch"] == torch.__version__
    assert record["threads"] == torch.get_num_threads()
    assert set(record["env"]) == set(rep.RECORDED_ENV)
    assert record["env"]["OMP_NUM_THREADS"] == "1" and record["deterministic"] is False
    json.dumps(record)  # plain JSON, for config.json
    shown = (
        "  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for ...\n"
        "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)\n"
    )
    assert rep._library_versions(shown) == {"onednn": "3.12.0", "mkl": "2024.2"}
    assert rep._library_versions("no libraries") == {"onednn": None, "mkl": None}


def test_platform_change_names_what_moved():
    now = {"cpu": "B", "cpu_capability": "AVX2", "torch": "2.13.0", "threads": 1, "env": {}}
    saved = {**now, "cpu": "A", "cpu_capability": "AVX512"}
    assert rep.platform_change(saved, now) == ["cpu: A -> B", "cpu_capability: AVX512 -> AVX2"]
    assert rep.platform_change(now, now) == [] and rep.platform_change(None, now) == []
