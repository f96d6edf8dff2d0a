"""Proxy: the stride-2 downsamplings a small input runs at stride 1, and the maps it leaves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from padnas.space import SPACE_NAMES, STEM_STRIDE, Proxy, SpaceError, get_space


def _deployed(family: str) -> tuple[int, ...]:
    return tuple(s.stride for s in get_space(family).layers)


@pytest.mark.parametrize("family", SPACE_NAMES)
def test_no_dropped_stride_is_the_deployed_network(family):
    strides = _deployed(family)
    assert Proxy(224).strides(strides) == (STEM_STRIDE, strides)
    assert Proxy(224).map_sizes(strides)[-1] == 7


@pytest.mark.parametrize("family", SPACE_NAMES)
def test_two_dropped_strides_keep_every_32px_map_at_4x4(family):
    """The issue's rule: no searchable layer on a map smaller than its largest kernel's reach
    (a 7x7 kernel reaches 3 pixels each side). The 224-px strides leave 1x1 maps at 32 px."""
    strides = _deployed(family)
    assert min(Proxy(32, 0.25).map_sizes(strides)) == 1
    assert min(Proxy(32, 0.25, 1).map_sizes(strides)) == 2
    assert min(Proxy(32, 0.25, 2).map_sizes(strides)) == 4


@given(
    family=st.sampled_from(SPACE_NAMES),
    resolution=st.sampled_from([32, 64, 96, 128, 224]),
    dropped=st.integers(0, 5),
)
def test_the_first_downsamplings_are_the_dropped_ones(family, resolution, dropped):
    deployed = (STEM_STRIDE, *_deployed(family))
    stem, layers = Proxy(resolution, 1.0, dropped).strides(deployed[1:])
    proxy = (stem, *layers)
    changed = [i for i, (a, b) in enumerate(zip(deployed, proxy, strict=True)) if a != b]
    assert changed == [i for i, s in enumerate(deployed) if s > 1][:dropped]
    assert all(proxy[i] == 1 for i in changed)
    sizes = Proxy(resolution, 1.0, dropped).map_sizes(deployed[1:])
    assert sizes[-1] == resolution // 32 * 2**dropped


def test_bad_dropped_strides_are_refused_with_the_range():
    with pytest.raises(SpaceError, match=r"dropped strides 6 out of range: use 0\.\.5"):
        Proxy(32, 0.25, 6)
    with pytest.raises(SpaceError, match="downsamples only 2 times"):
        Proxy(32, 0.25, 3).strides([1, 2, 1])
