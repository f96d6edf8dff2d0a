"""LatencyModel: vectorised sums equal per-architecture sums of LUT entries, pruned spaces,
calibration and reachable range."""

from __future__ import annotations

import numpy as np
import pytest
import search_support

from latency.lut.model import LatencyModel
from latency.lut.table import Lut, LutError
from latency.variants import arch_keys
from padnas.space import SpaceError, get_space


@pytest.fixture(scope="module")
def mock_lut() -> Lut:
    return search_support.mock_lut("large")


def test_vectorised_equals_per_arch_sum(mock_lut):
    space = get_space("large")
    model = LatencyModel.from_lut(mock_lut, space)
    genomes = space.sample_genomes(np.random.default_rng(1), 100_000)
    fast = model.predict(genomes)
    for i in range(0, 100_000, 9_973):
        keys = arch_keys(space, space.decode(genomes[i]))
        assert fast[i] == pytest.approx(sum(mock_lut.ms(k) for k in keys), rel=1e-12)
    assert model.predict(genomes[7])[0] == fast[7]  # one genome, 1-D, is one architecture
    archs = [space.decode(g) for g in genomes[:20]]
    np.testing.assert_allclose(model.predict(archs), fast[:20])
    np.testing.assert_allclose(model.predict([str(a) for a in archs]), fast[:20])


def test_pruned_space_calibration_and_range(mock_lut):
    space = get_space("large")
    pruned = space.with_layer_ops([ops[-2:] for ops in space.layer_ops])
    lut = Lut(**{**mock_lut.__dict__, "calibration": {"scale": 1.1, "offset_ms": 0.5}})
    model = LatencyModel.from_lut(lut, pruned)
    raw = LatencyModel.from_lut(mock_lut, pruned)
    g = pruned.sample_genomes(np.random.default_rng(2), 500)
    np.testing.assert_allclose(model.predict(g), 1.1 * raw.predict(g) + 0.5)
    lo, hi = model.reachable_range()
    every = model.predict(g)
    assert lo <= every.min() and every.max() <= hi
    fastest = np.nanargmin(model.per_layer_table, axis=1)
    assert model.predict(fastest[None, :])[0] == pytest.approx(lo)
    assert model.sources == {"mock"}


def test_errors(mock_lut):
    space = get_space("large")
    model = LatencyModel.from_lut(mock_lut, space)
    bad = np.zeros((3, space.num_layers), dtype=np.int64)
    bad[2, 0] = 5
    with pytest.raises(SpaceError) as err:
        model.predict(bad)
    assert str(err.value) == "genome 2: gene 5 of layer 0 is out of range 0..2"
    with pytest.raises(LutError, match="not basic"):
        LatencyModel.from_lut(mock_lut, get_space("basic"))
    holes = Lut(**{**mock_lut.__dict__, "entries": dict(list(mock_lut.entries.items())[:150])})
    with pytest.raises(LutError, match="lacks 53"):
        LatencyModel.from_lut(holes, space)
    filled = LatencyModel.from_lut(holes, space, fill_missing=True)
    assert filled.sources == {"mock", "regression"}


def test_describe_names_the_lut_its_sources_and_range(mock_lut):
    space = get_space("large")
    raw = LatencyModel.from_lut(mock_lut, space)
    lo, hi = raw.reachable_range()
    assert raw.describe() == (
        f"mock large@224 LUT (raw; sources: mock); reachable {lo:.2f}..{hi:.2f} ms"
    )
    lut = Lut(**{**mock_lut.__dict__, "calibration": {"scale": 2.0, "offset_ms": 1.0}})
    assert LatencyModel.from_lut(lut, space).describe() == (
        f"mock large@224 LUT (calibrated; sources: mock); reachable "
        f"{2 * lo + 1:.2f}..{2 * hi + 1:.2f} ms"
    )
