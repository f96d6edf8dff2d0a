"""Shared by the search tests: a LUT made the way a user makes one for a mock device
(``profile`` into a measurement store, then ``export-lut``), in-process and in under a second;
and a search shrunk to seconds (tiny preset, tiny CES, tiny data) that still runs the real
planner and pipeline, so every test that needs a finished run builds it the same way."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from latency.backends.mock import MockBackend
from latency.devices import load_profile
from latency.lut.table import Lut
from latency.profiling.profile import build_lut, profile_space
from latency.profiling.store import MeasurementStore
from padnas.data.datasets import DataBundle, TensorSplit
from padnas.run.pipeline import Pipeline
from padnas.run.plan import SearchPlan, plan_search
from padnas.run.rundir import RunDir
from padnas.run.settings import PRESETS, Preset
from padnas.search.ces import CESConfig
from padnas.space import get_space
from padnas.train.config import Stage

#: six architectures for two generations: enough for ranks, pruning and a final front
TINY_CES = CESConfig(pop_size=6, generations=2)
#: the quick preset shrunk to seconds (one supernet and one stand-alone epoch, 20 images a
#: class), for tests that run the real CLI with it swapped in for ``quick``
TINY_PRESET = replace(
    PRESETS["quick"].train,
    width_mult=0.1,
    batch_size=64,
    supernet_stages=(Stage(1, 0.05),),
    standalone=Stage(1, 0.05),
    recal_images=32,
    recal_batch_size=32,
    eval_batch_size=128,
    train_per_class=20,
    eval_images=0,  # the validation split; tests of held-out scoring ask for it
)


def mock_lut(family: str, device: str = "mock") -> Lut:
    """The mock device's LUT of ``family`` at 224, its device named ``device``."""
    space = get_space(family)
    with tempfile.TemporaryDirectory() as root:
        store = MeasurementStore("mock", root)
        profile_space(space, MockBackend(load_profile("mock")), store, progress=False)
        return build_lut(space, store, {"name": device})


def tiny_plan(
    lut_file: str | Path,
    stages: int,
    *,
    epochs: tuple[int, ...] = (1, 1),
    ces: CESConfig = TINY_CES,
    eval_batch_size: int = 48,
    noise_ceiling: bool = False,
    **plan_kw,
) -> SearchPlan:
    """The plan ``padnas search --preset quick`` makes, then shrunk to seconds: width 0.1, batches
    of 32, supernet stages of ``epochs`` epochs (lr 0.1 for the first, 0.05 after); without the
    noise ceiling unless ``noise_ceiling``."""
    plan = plan_search(
        str(lut_file), stages=stages, preset="quick", noise_ceiling=noise_ceiling, **plan_kw
    )
    schedule = tuple(Stage(n, 0.1 if i == 0 else 0.05) for i, n in enumerate(epochs))
    preset = replace(
        PRESETS["quick"].train,
        width_mult=0.1,
        batch_size=32,
        supernet_stages=schedule,
        recal_images=32,
        recal_batch_size=32,
        eval_batch_size=eval_batch_size,
    )
    plan.settings = replace(plan.settings, preset=preset, ces=ces)
    return plan


def tiny_data() -> DataBundle:
    """A tiny synthetic 4-class problem (class = brightest quadrant) at 32x32."""
    g = torch.Generator().manual_seed(0)

    def split(n: int, seed: int) -> TensorSplit:
        labels = np.random.default_rng(seed).integers(0, 4, n)
        x = torch.randint(0, 128, (n, 1, 32, 32), generator=g, dtype=torch.uint8)
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 2)
            x[i, 0, r * 16 : (r + 1) * 16, q * 16 : (q + 1) * 16] += 127
        return TensorSplit(x, labels, 0.37, 0.25)

    return DataBundle("tiny", split(96, 1), split(48, 2), split(48, 3), 4, 32, tuple("abcd"))


def run_pipeline(
    plan: SearchPlan, data: DataBundle, out: Path, *, resume=False, hooks=None, eval_processes=1
):
    """Run ``plan`` into the run directory ``out`` as ``padnas search`` does; its summary."""
    run = RunDir.open(out, plan.settings.to_config(), resume=resume)
    return Pipeline(
        plan.settings,
        plan.lut,
        data,
        run,
        hooks=hooks,
        progress=False,
        eval_processes=eval_processes,
    ).execute()


def search_args(lut_file: str | Path, out: Path) -> list:
    """``padnas search`` arguments of the smallest real run: digits, two stages, quiet."""
    return ["--lut", lut_file, "--data", "digits", "--stages", "2", "--out", out, "-q"]


@contextmanager
def tiny_quick(cache: Path) -> Iterator[None]:
    """While inside: the quick preset shrunk to :data:`TINY_PRESET` and :data:`TINY_CES` (so
    the real CLI runs in seconds), ``PADNAS_CACHE`` at ``cache`` and one torch thread."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "quick", Preset(TINY_PRESET, TINY_CES))
        mp.setenv("PADNAS_CACHE", str(cache))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def invoke(command, args):
    """Run a click command in-process; arguments become strings."""
    from click.testing import CliRunner

    return CliRunner().invoke(command, [str(a) for a in args])
