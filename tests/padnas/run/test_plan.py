"""Planning a search (padnas/run/plan.py) at its edges: the default window of each rule to the last
hundredth, the stages/seed/p_th bounds, the unmeasured-LUT warning, the LUT's identity in
a run's config and a window of one architecture: what mutants of plan.py showed no test held."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from search_support import mock_lut

from latency.lut.model import LatencyModel
from latency.lut.table import load_lut
from padnas.core.errors import UsageError
from padnas.run.plan import MAX_SEED, check_window, lut_identity, plan_search
from padnas.search.ces import CESConfig
from padnas.search.window import LatencyWindow, WindowError
from padnas.space import get_space


@pytest.mark.parametrize("family, q", [("basic", (25, 75)), ("large", (10, 90))])
def test_default_window_off_pixel3_is_percentiles_to_the_hundredth(tmp_path, family, q):
    path = mock_lut(family).save(tmp_path / f"{family}.json")
    plan = plan_search(str(path), family=family)
    model = LatencyModel.from_lut(load_lut(path), get_space(family))
    genomes = model.space.sample_genomes(np.random.default_rng(0), 10_000)
    lo, hi = np.percentile(model.predict(genomes), q)
    win = plan.settings.window
    assert (win.lo, win.hi) == (np.floor(lo * 100) / 100, np.ceil(hi * 100) / 100)
    assert plan.settings.window_rule == (
        f"{q[0]}th-{q[1]}th percentile of 10000 random {family} architectures on mock"
    )


def test_stage_seed_and_p_th_bounds_are_inclusive_where_documented(lut_file):
    lut = str(lut_file)
    assert plan_search(lut, stages=10).settings.stages == 10
    assert plan_search(lut, stages=2).settings.stages == 2
    with pytest.raises(UsageError, match=r"^stages must be 2\.\.10 .*got 11") as refused:
        plan_search(lut, stages=11)
    assert refused.value.param == "stages"  # the CLI shows it as --stages
    assert plan_search(lut, seed=MAX_SEED).settings.seed == MAX_SEED == 2**32 - 1
    for seed in (-1, MAX_SEED + 1):
        with pytest.raises(UsageError, match=f"^seed must be 0..{MAX_SEED}"):
            plan_search(lut, seed=seed)
    assert plan_search(lut, p_th=0.0).settings.p_th == 0.0  # 0: prune nothing
    with pytest.raises(UsageError, match=r"^p_th must be in \[0, 1\), got 1"):
        plan_search(lut, p_th=1.0)


def test_unmeasured_lut_warning_names_every_source(tmp_path):
    lut = mock_lut("basic")
    measured = lut_with_sources(lut, lambda i: "measured")
    path = measured.save(tmp_path / "measured.json")
    assert plan_search(str(path)).warnings == []
    mixed = lut_with_sources(lut, lambda i: "regression" if i % 2 else "mock")
    path = mixed.save(tmp_path / "mixed.json")
    assert plan_search(str(path)).warnings == [
        "warning: the LUT's latencies are mock/regression, not all measured on the device; "
        "treat the found models' latencies accordingly"
    ]


def lut_with_sources(lut, source_of):
    from latency.lut.table import Lut

    entries = {k: {**e, "source": source_of(i)} for i, (k, e) in enumerate(lut.entries.items())}
    return Lut(**{**lut.__dict__, "entries": entries})


def test_lut_identity_is_the_content_hash_a_run_records(lut_file, tmp_path):
    """The identity pins the run to the LUT's content, in the form existing run directories were
    written with (sha256 of compact, key-sorted JSON), so they stay resumable."""
    lut = load_lut(lut_file)
    canonical = json.dumps(lut.to_dict(), sort_keys=True, separators=(",", ":"))
    assert lut_identity(lut) == {
        "sha256": hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "device": "mock",
        "label": "basic@224",
        "sources": ["mock"],
        "calibrated": False,
    }
    moved = lut.save(tmp_path / "elsewhere.json")
    assert plan_search(str(moved)).settings.lut == lut_identity(lut)


def test_window_holding_a_single_architecture_is_refused(lut_file):
    lut = load_lut(lut_file)
    full = get_space("basic")
    one = full.with_layer_ops([ops[:1] for ops in full.layer_ops])  # a space of one arch
    model = LatencyModel.from_lut(lut, one)
    (ms,) = model.predict(one.sample_genomes(np.random.default_rng(0), 1))
    window = LatencyWindow(round(ms - 1, 2), round(ms + 1, 2))
    config = CESConfig(pop_size=6, max_sample_draws=4096)
    with pytest.raises(WindowError) as err:
        check_window(window, model, config)
    assert str(err.value) == (
        f"the latency window {window} holds almost no architectures; the basic space reaches "
        f"{ms:.2f}..{ms:.2f} ms on mock"
    )
    two = full.with_layer_ops(
        [ops[:2] if j == 1 else ops[:1] for j, ops in enumerate(full.layer_ops)]
    )
    lo, hi = LatencyModel.from_lut(lut, two).reachable_range()
    check_window(
        LatencyWindow(round(lo - 1, 2), round(hi + 1, 2)), LatencyModel.from_lut(lut, two), config
    )


def test_a_profiled_device_without_a_shipped_table_is_priced_from_its_store(padnas_cache):
    """``--lut host`` (a profile that ships no LUT) prices with the table export-lut would
    write from the device's measurement store; with nothing measured, one line names the
    command that measures it."""
    from latency.backends.mock import MockBackend
    from latency.devices import load_profile
    from latency.lut.table import LutError
    from latency.profiling.profile import build_lut, profile_space
    from latency.profiling.store import MeasurementStore

    with pytest.raises(LutError, match="run padnas-latency profile --device mock --space basic"):
        plan_search("mock")
    store = MeasurementStore("mock")
    profile_space(get_space("basic"), MockBackend(load_profile("mock")), store, progress=False)
    plan = plan_search("mock")
    assert plan.lut.device_name == "mock" and plan.lut.sources() == {"mock"}
    assert plan.lut.entries == build_lut(get_space("basic"), store, {"name": "mock"}).entries
    assert any(f"built from its measurements in {store.path}" in m for m in plan.messages)
    assert plan.settings.lut["device"] == "mock"
