"""Property-based hostile run directories: arbitrary mutations of the files of
a small finished run -- truncation, byte flips, deleted files, garbage JSON, values of the wrong
type -- make ``padnas show``, ``padnas export RUN:A`` and ``padnas search --resume`` give the
valid result or a one-line error with exit 2: never a traceback, a hang, or a changed file.

The run is made once per module through the real CLI (``--data digits``, the mock device's LUT,
``--stages 2``, the quick preset shrunk as in search_support.py); each example mutates a fresh
copy. Examples are few and derandomized, so the test is reproducible; it is marked slow (each
example exports a network and a few rebuild a stage: minutes on a shared 2-core machine)."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from hostile_support import JSON_VALUES, set_somewhere
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from search_support import TINY_CES, TINY_PRESET

from padnas.cli.runs import export, show
from padnas.cli.search import search
from padnas.run.settings import PRESETS, Preset

#: the longest a command may take before it counts as a hang (a resume may retrain a stage)
HANG_S = 300


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The shrunk quick preset, a private cache and one torch thread, for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "quick", Preset(TINY_PRESET, TINY_CES))
        mp.setenv("PADNAS_CACHE", str(tmp_path_factory.mktemp("cache")))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


def _search_args(lut: Path, out: Path) -> list:
    return ["--lut", lut, "--data", "digits", "--stages", "2", "--out", out, "-q"]


def _commands(run: Path, lut: Path, out: Path) -> dict[str, tuple]:
    """The three commands that read a run directory, as (click command, arguments)."""
    return {
        "show": (show, [run]),
        "export": (
            export,
            [f"{run}:A", "--format", "onnx", "--resolution", "32", "-o", out / "a.onnx"],
        ),
        "resume": (search, [*_search_args(lut, run), "--resume"]),
    }


def _invoke(command, args) -> Result:
    """Run in-process with an alarm: a command still running after HANG_S seconds fails."""

    def hang(signum, frame):
        raise TimeoutError(f"hung for {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    try:
        return CliRunner().invoke(command, [str(a) for a in args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def finished(tiny, lut_file, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "done"
    r = _invoke(search, _search_args(lut_file, run))
    assert r.exit_code == 0, r.output
    return run


@pytest.fixture(scope="module")
def baselines(finished, lut_file, tmp_path_factory) -> dict[str, str]:
    """Each command's output on an undamaged copy, with the copy's paths written RUN and OUT."""
    root = tmp_path_factory.mktemp("baseline")
    run, out = root / "run", root / "out"
    shutil.copytree(finished, run)
    answers = {}
    for name, (command, args) in _commands(run, lut_file, out).items():
        r = _invoke(command, args)
        assert r.exit_code == 0, (name, r.output)
        answers[name] = _normalised(r.output, run, out)
    return answers


def _normalised(text: str, run: Path, out: Path) -> str:
    return text.replace(str(run), "RUN").replace(str(out), "OUT")


# ---- mutations ----------------------------------------------------------------------------------
def _json_of(path: Path):
    """The file's JSON value(s) (a list of records for .jsonl), or None when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except (OSError, ValueError):
        return None


KINDS = ["delete", "truncate", "flip", "garbage", "retype"]
#: the files the three commands read (two edits in three hit one of them; the rest hit any file)
READ = [  # the first are drawn most often: the bookkeeping a finished run stands on
    "final.json",
    "state.json",
    "summary.json",
    "stage-2/search.json",
    "summary.txt",
    "config.json",
    "evaluated.jsonl",
    "stage-1/space.json",
    "stage-2/ces.jsonl",
]


def _mutate(draw, run: Path) -> list[str]:
    """One to three drawn edits of the run's files; returns them, for the failure report."""
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    edits = []
    for _ in range(draw(st.integers(1, 3), label="edits")):
        pool = READ if draw(st.integers(0, 2), label="read first") else files
        name = draw(st.sampled_from(pool), label="file")
        kind = draw(st.sampled_from(KINDS), label="kind")
        path = run / name
        if not path.is_file():
            continue  # deleted by an earlier edit
        data = path.read_bytes()
        if kind == "delete":
            path.unlink()
        elif kind == "truncate":
            path.write_bytes(data[: draw(st.integers(0, max(len(data) - 1, 0)))])
        elif kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            bit = draw(st.integers(1, 255))
            path.write_bytes(data[:i] + bytes([data[i] ^ bit]) + data[i + 1 :])
        elif kind == "garbage":
            path.write_text(json.dumps(draw(JSON_VALUES)))  # NaN/Infinity come out as literals
        elif kind == "retype":
            value = _json_of(path)
            if not (isinstance(value, (dict, list)) and value):
                continue
            set_somewhere(draw, value)
            records = path.suffix == ".jsonl" and all(isinstance(r, dict) for r in value)
            text = "".join(json.dumps(r) + "\n" for r in value) if records else json.dumps(value)
            path.write_text(text)
        edits.append(f"{kind} {name}")
    return edits


def _same_meaning(run: Path, original: Path) -> bool:
    """True when every file is still there and reads as the same value (JSON files) or the same
    bytes (others): then each command must answer exactly as on the undamaged run."""
    for p in original.rglob("*"):
        if not p.is_file():
            continue
        q = run / p.relative_to(original)
        if not q.is_file():
            return False
        if p.suffix in (".json", ".jsonl"):
            if _json_of(q) is None or _json_of(q) != _json_of(p):
                return False
        elif q.read_bytes() != p.read_bytes():
            return False
    return True


def _check(
    name: str, r: Result, run: Path, out: Path, before, baseline: str, same: bool, expect_error
) -> None:
    """The property: no traceback, no exception but the exit; exit 0 with the baseline answer
    when the run still means the same, or exit 0 (a damaged-but-usable run: a resume that
    rebuilds) or a one-line ``error:`` with exit 2 that changed nothing (``before``: the run's
    bytes before the command; checked by the shared ``expect_error``)."""
    assert "Traceback" not in r.output, (name, r.output)
    assert r.exception is None or isinstance(r.exception, SystemExit), (name, repr(r.exception))
    if r.exit_code == 0:
        if same:
            assert _normalised(r.output, run, out) == baseline, (name, r.output)
        if name != "resume":  # show and export only read the run directory
            assert before.changed() == [], name
        return
    expect_error(r, 2, alone=name != "resume", unchanged=before)


# few examples (each may run a resume), no per-example deadline (the machine is shared), the
# same examples on every run
BOUNDED = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow  # a minute or more: each example exports a network, a few rebuild a stage
@BOUNDED
@given(data=st.data())
def test_mutated_run_directories(data, finished, baselines, lut_file, expect_error, frozen):
    with tempfile.TemporaryDirectory() as tmp:
        run, out = Path(tmp) / "run", Path(tmp) / "out"
        shutil.copytree(finished, run)
        edits = _mutate(data.draw, run)
        note(f"edits: {edits}")
        same = _same_meaning(run, finished)
        for name, (command, args) in _commands(run, lut_file, out).items():
            before = frozen(run)
            r = _invoke(command, args)
            _check(name, r, run, out, before, baselines[name], same, expect_error)
