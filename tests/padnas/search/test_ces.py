"""CES and its baselines on a real pymoo run with synthetic, cheap objectives.

The latency of an architecture is a per-layer table sum (what a LUT gives); the accuracy is a
fixed random function of the genome, so runs are fast and exactly reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from padnas.core.errors import UsageError, exit_code
from padnas.experiments.baselines import random_search, spos_evolution
from padnas.search.ces import CESConfig, nondominated_ranks, run_ces
from padnas.search.window import LatencyWindow, WindowError
from padnas.space import Arch, SearchSpace

SMALL = CESConfig(pop_size=16, generations=6)


class Toy:
    """A LUT-like latency table and a deterministic accuracy landscape over one space."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.space = space
        self.table = rng.uniform(1.0, 5.0, (space.num_layers, max(space.num_ops)))
        self.weights = rng.normal(size=(space.num_layers, max(space.num_ops)))
        self.calls: list[int] = []

    def latency(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.int64)
        return self.table[np.arange(self.space.num_layers), X].sum(axis=1)

    def accuracy(self, archs) -> np.ndarray:
        self.calls.append(len(archs))
        X = np.stack([self.space.encode(a) for a in archs])
        s = self.weights[np.arange(self.space.num_layers), X].sum(axis=1)
        return 1.0 / (1.0 + np.exp(-s / 4.0))

    def window(self, lo_q: float = 30, hi_q: float = 50) -> LatencyWindow:
        lat = self.latency(self.space.sample_genomes(np.random.default_rng(99), 5000))
        return LatencyWindow(*np.percentile(lat, [lo_q, hi_q]))


@pytest.fixture
def basic() -> SearchSpace:
    return SearchSpace.from_family("basic")


@pytest.fixture
def pruned(basic) -> SearchSpace:
    # some layers pruned down to one op (genes PM must skip), some to two
    ops = []
    for j, layer in enumerate(basic.layer_ops):
        ops.append(layer[:1] if j % 3 == 0 else layer[:2] if j % 3 == 1 else layer)
    return basic.with_layer_ops(ops)


def test_ces_stays_inside_window_and_space(pruned):
    toy = Toy(pruned)
    window = toy.window()
    res = run_ces(pruned, toy.latency, toy.accuracy, window, SMALL, seed=3)
    assert res.evaluations == SMALL.budget  # every generation filled with new archs
    assert len({r.arch for r in res.records}) == res.evaluations
    for r in res.records:
        arch = pruned.validate(r.arch)  # raises if outside the layer-wise space
        assert tuple(pruned.encode(arch)) == r.genome
        assert window.lo <= r.latency_ms <= window.hi
        assert r.latency_ms == pytest.approx(toy.latency(np.array([r.genome]))[0])
    # only feasible archs reached the evaluator: it saw exactly the recorded ones
    assert sum(toy.calls) == res.evaluations


def test_ranks_match_pymoo_sorting(basic):
    toy = Toy(basic)
    res = run_ces(basic, toy.latency, toy.accuracy, toy.window(), SMALL, seed=0)
    F = np.array([[-r.accuracy, r.latency_ms] for r in res.records])
    fronts = NonDominatedSorting().do(F)
    expect = np.empty(len(F), dtype=int)
    for i, front in enumerate(fronts):
        expect[front] = i + 1
    assert [r.rank for r in res.records] == expect.tolist()
    # rank 1 really is non-dominated, and each rank-2 arch is dominated by some rank-1 arch
    front = F[expect == 1]
    for f in F[expect == 2]:
        assert np.any(np.all(front <= f, axis=1) & np.any(front < f, axis=1))
    assert nondominated_ranks(np.zeros((0, 2))).shape == (0,)


def test_ces_is_reproducible_and_seed_dependent(basic):
    toy = Toy(basic)
    w = toy.window()
    a = run_ces(basic, toy.latency, toy.accuracy, w, SMALL, seed=1)
    b = run_ces(basic, toy.latency, toy.accuracy, w, SMALL, seed=1)
    c = run_ces(basic, toy.latency, toy.accuracy, w, SMALL, seed=2)
    assert a.records == b.records
    assert a.records != c.records


def test_ces_improves_on_its_initial_population(basic):
    toy = Toy(basic)
    res = run_ces(basic, toy.latency, toy.accuracy, toy.window(), CESConfig(24, 12), seed=0)
    first = max(r.accuracy for r in res.records if r.generation == 1)
    assert max(r.accuracy for r in res.records) > first


def test_resume_from_known_accuracies_replays_exactly(basic):
    toy = Toy(basic)
    w = toy.window()
    full = run_ces(basic, toy.latency, toy.accuracy, w, SMALL, seed=5)
    known: dict[str, float] = {}

    class Killed(Exception):
        pass

    def hook(gen, batch, fresh):
        known.update({r.arch: r.accuracy for r in batch})
        if gen == 3:
            raise Killed

    with pytest.raises(Killed):
        run_ces(basic, toy.latency, toy.accuracy, w, SMALL, seed=5, on_generation=hook)
    toy.calls.clear()
    fresh_seen: list[set] = []
    resumed = run_ces(
        basic,
        toy.latency,
        toy.accuracy,
        w,
        SMALL,
        seed=5,
        known=known,
        on_generation=lambda g, b, f: fresh_seen.append(f),
    )
    assert resumed.records == full.records
    # generations 1-3 came from the memo; only 4-6 touched the evaluator
    assert [len(f) for f in fresh_seen] == [0, 0, 0, 16, 16, 16]
    assert sum(toy.calls) == 3 * 16


def test_window_that_no_arch_meets_fails(basic):
    toy = Toy(basic)
    lat = toy.latency(basic.sample_genomes(np.random.default_rng(0), 1000))
    window = LatencyWindow(lat.max() * 10, lat.max() * 11)
    cfg = CESConfig(pop_size=8, generations=2, max_sample_draws=20_000)
    with pytest.raises(WindowError, match="widen the window"):
        run_ces(basic, toy.latency, toy.accuracy, window, cfg, seed=0)
    assert toy.calls == []


@pytest.mark.parametrize("text", ["70:60", "abc", "60", "-1:5", "nan:5"])
def test_bad_window_text(text):
    with pytest.raises(WindowError) as err:
        LatencyWindow.parse(text)
    assert exit_code(err.value) == 2


def test_tiny_space_stops_when_exhausted(basic):
    # 2 * 2 = 4 architectures in total: CES evaluates each once and stops
    ops = [layer[:1] for layer in basic.layer_ops]
    ops[1], ops[2] = basic.layer_ops[1][:2], basic.layer_ops[2][:2]
    tiny = basic.with_layer_ops(ops)
    toy = Toy(tiny)
    res = run_ces(tiny, toy.latency, toy.accuracy, LatencyWindow(0, 1e9), SMALL, seed=0)
    expect = {
        str(tiny.decode([0, a, b] + [0] * (tiny.num_layers - 3))) for a in (0, 1) for b in (0, 1)
    }
    assert sorted(r.arch for r in res.records) == sorted(expect)
    assert res.notes == [
        "generation 1: only 4 admissible candidates",
        "stopped after generation 1: no admissible offspring left (space nearly exhausted inside "
        "the window)",
    ]


@pytest.mark.parametrize("method", ["spos", "random"])
def test_baselines_obey_budget_window_and_space(pruned, method):
    toy = Toy(pruned)
    w = toy.window()
    if method == "spos":
        res = spos_evolution(pruned, toy.latency, toy.accuracy, w, 130, seed=0)
    else:
        res = random_search(pruned, toy.latency, toy.accuracy, w, 130, seed=0)
    assert res.evaluations == 130 == sum(toy.calls)
    assert len({r.arch for r in res.records}) == 130
    for r in res.records:
        pruned.validate(Arch.parse(r.arch))
        assert w.lo <= r.latency_ms <= w.hi
    assert min(r.rank for r in res.records) == 1
    again = (spos_evolution if method == "spos" else random_search)(
        pruned, toy.latency, toy.accuracy, w, 130, seed=0
    )
    assert again.records == res.records


def test_spos_selects_on_accuracy(basic):
    toy = Toy(basic)
    res = spos_evolution(basic, toy.latency, toy.accuracy, toy.window(), 250, seed=0)
    gens = sorted({r.generation for r in res.records})
    assert len(gens) == 5  # 50 per generation
    best_first = max(r.accuracy for r in res.records if r.generation == 1)
    mean_last = np.mean([r.accuracy for r in res.records if r.generation == gens[-1]])
    mean_first = np.mean([r.accuracy for r in res.records if r.generation == 1])
    assert mean_last > mean_first
    # selection keeps improving the best: the last generation beats the first generation's best
    best_last = max(r.accuracy for r in res.records if r.generation == gens[-1])
    assert best_last > best_first


def test_window_admits_both_bounds_exactly():
    w = LatencyWindow(2.0, 3.0)
    ms = np.array([np.nextafter(2.0, 0), 2.0, 2.5, 3.0, np.nextafter(3.0, 4)])
    assert w.contains(ms).tolist() == [False, True, True, True, False]


def test_rank_cut_keeps_ranks_below_ten_only(basic):
    from padnas.search.ces import Evaluated, SearchResult
    from padnas.search.prune import MAX_RANK

    rng = np.random.default_rng(0)
    genomes = basic.sample_genomes(rng, 11)
    records = [
        Evaluated(str(basic.decode(g)), tuple(int(x) for x in g), 0.5, 1.0, 1, rank)
        for rank, g in enumerate(genomes, start=1)
    ]
    res = SearchResult("ces", basic, LatencyWindow(0, 10), records)
    kept = res.archs(max_rank=MAX_RANK)
    # the paper's cut: ranks 1..9 count, 10 and 11 do not
    assert [str(a) for a in kept] == [r.arch for r in records[:9]]
    assert len(res.archs()) == 11


def test_search_result_json_round_trip_and_foreign_space(basic, pruned):
    from padnas.search.ces import SearchResult

    toy = Toy(basic)
    window = toy.window()
    res = run_ces(
        basic, toy.latency, toy.accuracy, window, CESConfig(pop_size=6, generations=2), seed=0
    )
    res.notes.append("a note to keep")
    data = res.to_json(stage=2)
    assert data["stage"] == 2 and data["window_ms"] == window.to_list()
    back = SearchResult.from_json(data, basic, window, where="search.json", fix="start again")
    assert back == res
    assert [r.genome for r in back.records] == [r.genome for r in res.records]
    with pytest.raises(UsageError, match="belongs to another search space; start"):
        SearchResult.from_json(data, pruned, window, where="search.json", fix="start again")


def _log_likelihood(toy: Toy):
    """A second score over the same genomes that disagrees with the toy's accuracy: another
    random landscape, as a log-likelihood (<= 0)."""
    other = Toy(toy.space, seed=1)

    def score(archs) -> np.ndarray:
        return np.log(other.accuracy(archs))

    return score


def test_ranking_by_log_likelihood_puts_its_own_front_first(basic):
    from padnas.search.ces import objectives

    toy = Toy(basic)
    ll = _log_likelihood(toy)
    by_acc = run_ces(basic, toy.latency, toy.accuracy, toy.window(), SMALL, seed=3)
    by_ll = run_ces(
        basic,
        toy.latency,
        toy.accuracy,
        toy.window(),
        SMALL,
        seed=3,
        log_likelihood=ll,
        rank_by="log_likelihood",
    )
    assert by_ll.rank_by == "log_likelihood"
    # both scores recorded, each the function's value for that arch
    for r in by_ll.records:
        assert r.accuracy == pytest.approx(toy.accuracy([r.arch])[0])
        assert r.log_likelihood == pytest.approx(ll([r.arch])[0])
    # ranks are pymoo's non-dominated sorting of (-log-likelihood, latency), not of accuracy
    F = np.array([[-r.log_likelihood, r.latency_ms] for r in by_ll.records])
    assert [r.rank for r in by_ll.records] == list(nondominated_ranks(F))
    assert np.array_equal(by_ll.objectives(), objectives(by_ll.records, "log_likelihood"))
    # the two rankings breed different populations from the same seed
    assert [r.arch for r in by_ll.records] != [r.arch for r in by_acc.records]
    assert by_ll.best().log_likelihood == max(r.log_likelihood for r in by_ll.records)


def test_log_likelihood_ranking_needs_the_score_and_a_known_name(basic):
    toy = Toy(basic)
    with pytest.raises(ValueError, match="needs a log_likelihood function"):
        run_ces(
            basic, toy.latency, toy.accuracy, toy.window(), SMALL, seed=0, rank_by="log_likelihood"
        )
    with pytest.raises(UsageError, match="rank_by must be one of accuracy, log_likelihood"):
        run_ces(basic, toy.latency, toy.accuracy, toy.window(), SMALL, seed=0, rank_by="loss")


def test_resume_replays_a_log_likelihood_search_from_known_pairs(basic):
    toy = Toy(basic)
    ll = _log_likelihood(toy)
    kw = dict(seed=4, log_likelihood=ll, rank_by="log_likelihood")
    full = run_ces(basic, toy.latency, toy.accuracy, toy.window(), SMALL, **kw)
    known = {r.arch: (r.accuracy, r.log_likelihood) for r in full.records if r.generation <= 3}
    toy.calls.clear()
    again = run_ces(basic, toy.latency, toy.accuracy, toy.window(), SMALL, known=known, **kw)
    assert again.records == full.records
    assert sum(toy.calls) == 3 * SMALL.pop_size


def test_stored_log_likelihood_search_round_trips_and_refuses_forgeries(basic):
    from padnas.search.ces import SearchResult

    toy = Toy(basic)
    window = toy.window()
    res = run_ces(
        basic,
        toy.latency,
        toy.accuracy,
        window,
        CESConfig(pop_size=8, generations=2),
        seed=0,
        log_likelihood=_log_likelihood(toy),
        rank_by="log_likelihood",
    )
    data = res.to_json(stage=2)
    assert data["rank_by"] == "log_likelihood"
    back = SearchResult.from_json(data, basic, window, where="s.json", fix="start again")
    assert back == res

    def refused(change, match):
        forged = {**data, "records": [dict(r) for r in data["records"]]}
        change(forged)
        with pytest.raises(UsageError, match=match):
            SearchResult.from_json(forged, basic, window, where="s.json", fix="start again")

    # ranks kept but claimed to come from accuracy: they no longer match the objectives
    # (unless both rankings agree, which the toy's two landscapes do not)
    refused(lambda d: d.update(rank_by="accuracy"), "ranks do not match the objectives")
    refused(lambda d: d.update(rank_by="loss"), "rank_by must be one of")
    refused(lambda d: d["records"][0].pop("log_likelihood"), "a record has none")
    refused(lambda d: d["records"][0].update(log_likelihood=0.5), "must be a finite number <= 0")


@pytest.mark.parametrize("method", ["spos", "random"])
def test_baselines_rank_by_log_likelihood_as_ces_does(basic, method):
    """Given a log-likelihood and ``rank_by``, a baseline records both scores, ranks by
    pymoo's sorting of (-log-likelihood, latency), and SPOS breeds from the best by it."""
    toy = Toy(basic)
    ll = _log_likelihood(toy)
    search = spos_evolution if method == "spos" else random_search
    res = search(
        basic,
        toy.latency,
        toy.accuracy,
        toy.window(),
        150,
        seed=2,
        log_likelihood=ll,
        rank_by="log_likelihood",
    )
    assert res.rank_by == "log_likelihood" and res.evaluations == 150
    for r in res.records:
        assert r.log_likelihood == pytest.approx(ll([r.arch])[0])
        assert r.accuracy == pytest.approx(toy.accuracy([r.arch])[0])
    F = np.array([[-r.log_likelihood, r.latency_ms] for r in res.records])
    assert [r.rank for r in res.records] == list(nondominated_ranks(F))
    if method == "spos":  # selection follows the log-likelihood, not the accuracy
        by_acc = search(basic, toy.latency, toy.accuracy, toy.window(), 150, seed=2)
        assert [r.arch for r in res.records] != [r.arch for r in by_acc.records]
        gens = sorted({r.generation for r in res.records})
        first, last = (
            np.mean([r.log_likelihood for r in res.records if r.generation == g])
            for g in (gens[0], gens[-1])
        )
        assert last > first
    with pytest.raises(ValueError, match="needs a log_likelihood function"):
        search(basic, toy.latency, toy.accuracy, toy.window(), 10, seed=0, rank_by="log_likelihood")
