"""Mutation testing of the core modules: how many one-line bugs do the fast tests catch?

mutmut (2.x) makes the mutants: its parser lists every mutation of a module (operators, numbers,
strings, keywords, ...) and applies one at a time. A full run of every mutant against the whole
fast suite takes hours on a 2-core machine, so this script draws ``--max-mutants`` of each module
with a fixed seed and runs, per mutant, only the fast tests of that module (``MODULE_TESTS``; a
mutant they miss may still be caught elsewhere, so the rate is a lower bound). Mutants are applied
to a copy of the repository, never to the working tree, so an interrupted run leaves nothing
behind. Not in CI: the figure goes in the note of the change that moves it.

    python benchmarks/mutation.py --max-mutants 20 --seed 0
    python benchmarks/mutation.py --module padnas/search/prune.py --max-mutants 0   # every mutant
"""

from __future__ import annotations

import argparse
import difflib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutmut import ALL, Context, list_mutations, mutate

ROOT = Path(__file__).resolve().parents[1]

#: module -> the fast test files that exercise it
MODULE_TESTS = {
    "padnas/search/ces.py": ["tests/padnas/search/test_ces.py"],
    "padnas/search/prune.py": [
        "tests/padnas/search/test_prune.py",
        "tests/padnas/search/test_ces.py",
    ],
    "padnas/run/plan.py": [
        "tests/padnas/run/test_plan.py",
        "tests/padnas/cli/test_search_cli.py",
        "tests/padnas/run/test_pipeline.py::test_window_nobody_meets_fails_before_training",
        "tests/padnas/run/test_pipeline.py::test_lut_for_another_space_or_resolution",
        "tests/padnas/run/test_pipeline.py::test_default_window_rules",
    ],
    "latency/lut/table.py": [
        "tests/latency/lut/test_lut_table.py",
        "tests/latency/lut/test_lut_model.py",
    ],
    "latency/lut/model.py": [
        "tests/latency/lut/test_lut_model.py",
        "tests/latency/lut/test_lut_table.py",
    ],
}


def mutant_ids(path: Path) -> list:
    """Every mutation mutmut would make in ``path``, in source order."""
    return list_mutations(Context(source=path.read_text(), mutation_id=ALL, filename=str(path)))


def apply(path: Path, source: str, mutation_id) -> str:
    ctx = Context(source=source, mutation_id=mutation_id, filename=str(path))
    mutated, count = mutate(ctx)
    if count != 1:
        raise RuntimeError(f"mutmut applied {count} mutations for one id in {path}")
    return mutated


def changed_line(before: str, after: str) -> str:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    lines = [d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    return " | ".join(line.strip() for line in lines)


def killed(copy: Path, tests: list[str], timeout: float) -> bool:
    """True when the fast tests fail (or hang) on the mutant."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow and not device",
        *tests,
    ]
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": str(copy)}
    env["PADNAS_CACHE"] = str(copy / ".cache")
    try:
        r = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    return r.returncode != 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--module",
        action="append",
        choices=sorted(MODULE_TESTS),
        help="module to mutate (repeatable; default: all five)",
    )
    ap.add_argument(
        "--max-mutants", type=int, default=20, help="mutants drawn per module (0 = every one)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per test run")
    args = ap.parse_args()
    modules = args.module or list(MODULE_TESTS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="padnas-mutation-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
        for module in modules:
            tests = MODULE_TESTS[module]
            target = copy / module
            original = target.read_text()
            if killed(copy, tests, args.timeout):
                print(f"{module}: the tests fail without a mutant; fix them first", file=sys.stderr)
                return 1
            ids = mutant_ids(target)
            picked = ids
            if args.max_mutants and len(ids) > args.max_mutants:
                picked = sorted(
                    random.Random(args.seed).sample(ids, args.max_mutants),
                    key=lambda m: (m.line_number, m.index),
                )
            survivors = []
            t0 = time.perf_counter()
            for mid in picked:
                mutated = apply(target, original, mid)
                target.write_text(mutated)
                try:
                    if not killed(copy, tests, args.timeout):
                        survivors.append((mid.line_number + 1, changed_line(original, mutated)))
                finally:
                    target.write_text(original)
            n = len(picked)
            rate = (n - len(survivors)) / n if n else float("nan")
            rows.append((module, len(ids), n, n - len(survivors), rate))
            print(
                f"{module}: killed {n - len(survivors)}/{n} sampled of {len(ids)} mutants "
                f"({rate:.0%}) in {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            for line, change in survivors:
                print(f"  survived {module}:{line}: {change}", flush=True)
    print("\nmodule                 mutants  sampled  killed  rate")
    for module, total, n, k, rate in rows:
        print(f"{module:<22} {total:>7} {n:>8} {k:>7}  {rate:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
