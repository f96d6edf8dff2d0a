"""PrefixCache: the longest kept prefix, least recently used first out, within its budget."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from padnas.search.prefix_cache import PrefixCache, PrefixOutputs


def outputs(kib: int) -> PrefixOutputs:
    """Outputs holding ``kib`` KiB: one recalibration and one evaluation batch."""
    half = torch.zeros(kib * 128)  # float32: 512 bytes
    return PrefixOutputs([half], [half.clone()])


def test_longest_kept_prefix_and_its_depth():
    cache = PrefixCache(1 << 20)
    assert cache.longest(True, ("A", "B")) == (-1, None)
    stem, ab = outputs(1), outputs(1)
    cache.put(True, (), stem)
    cache.put(True, ("A", "B"), ab)
    assert cache.longest(True, ("A", "B", "C")) == (2, ab)
    assert cache.longest(True, ("A", "C", "B")) == (0, stem)
    assert cache.longest(False, ("A", "B")) == (-1, None)  # training statistics: other values
    assert cache.nbytes == 2 << 10 and len(cache) == 2


def test_least_recently_used_go_first_and_ancestors_count_as_used():
    cache = PrefixCache(3 << 10)
    for ops in [("A",), ("B",), ("A", "C")]:
        cache.put(True, ops, outputs(1))
    assert cache.longest(True, ("A", "C", "D"))[0] == 2  # uses ("A",) and ("A", "C")
    cache.put(True, ("E",), outputs(1))  # over budget: ("B",) is the least recently used
    assert cache.longest(True, ("B",)) == (-1, None)
    assert cache.longest(True, ("A",))[0] == 1
    assert cache.nbytes == 3 << 10


def test_an_entry_larger_than_the_budget_is_not_kept_and_budget_zero_keeps_nothing():
    cache = PrefixCache(1 << 10)
    cache.put(True, ("A",), outputs(2))
    assert len(cache) == 0 and cache.nbytes == 0
    none = PrefixCache(0)
    none.put(True, (), outputs(1))
    assert len(none) == 0
    with pytest.raises(ValueError, match="budget_bytes"):
        PrefixCache(-1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.sampled_from("ABC"), max_size=3), st.integers(1, 4)), max_size=30
    ),
    st.integers(0, 8),
)
def test_held_memory_is_the_sum_of_the_kept_entries_and_within_budget(puts, budget_kib):
    cache = PrefixCache(budget_kib << 10)
    for ops, kib in puts:
        cache.put(True, tuple(ops), outputs(kib))
        assert cache.nbytes == sum(e.nbytes for e in cache._entries.values())
        assert cache.nbytes <= cache.budget_bytes
