"""The noise ceiling's figures from constructed accuracies: tau is scipy's, the seed noise is
the std of the differences over sqrt(2), a step is within the noise below two std of a difference,
the stored file round-trips and a forged one is refused, the architectures spread by latency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from padnas.search.ceiling import (
    NoiseCeiling,
    Step,
    describe,
    measure_ceiling,
    spread_by_latency,
    twin_seed,
)
from padnas.search.ces import StoredRecordError
from padnas.space import SearchSpace

FIX = "start again"


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_family("basic")


def _ceiling(space, acc, twin, seeds=(0, 5)) -> NoiseCeiling:
    rng = np.random.default_rng(0)
    archs = [str(space.decode(g)) for g in space.sample_genomes(rng, len(acc))]
    lat = list(np.linspace(40, 90, len(acc)))
    return measure_ceiling(archs, lat, acc, twin, seeds=seeds, recal_seed=seeds[0])


def test_figures_are_scipys_tau_and_the_std_of_differences(space):
    rng = np.random.default_rng(1)
    acc = rng.uniform(0.5, 0.7, 30)
    twin = acc + rng.normal(0, 0.02, 30)
    c = _ceiling(space, acc, twin)
    ref = kendalltau(acc, twin)
    assert c.n == 30 and -1 <= c.tau <= 1
    assert c.tau == pytest.approx(ref.statistic) and c.p_value == pytest.approx(ref.pvalue)
    sd = np.std(acc - twin, ddof=1)
    assert c.step_noise == pytest.approx(sd)
    assert c.accuracy_noise == pytest.approx(sd / math.sqrt(2))
    assert c.mean_difference == pytest.approx(np.mean(acc - twin))
    block = c.summary()
    assert block["archs"] == 30 and block["seeds"] == [0, 5] and block["tau"] == c.tau
    assert block["acc_difference_std"] == pytest.approx(sd)


def test_an_offset_between_the_supernets_is_no_noise(space):
    acc = np.linspace(0.5, 0.7, 10)
    c = _ceiling(space, acc, acc - 0.03)  # the twin scores every arch 3 points lower
    assert c.tau == pytest.approx(1.0)
    assert c.step_noise == pytest.approx(0.0, abs=1e-12)
    assert c.mean_difference == pytest.approx(0.03)


def test_a_supernet_scoring_all_alike_has_no_tau(space):
    c = _ceiling(space, [0.1, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.2])
    assert c.tau is None and c.p_value is None
    assert "undefined" in describe(c.summary())


def _models(*accs):
    return [
        {"label": label, "one_shot_accuracy": a} for label, a in zip("ABCDE", accs, strict=False)
    ]


def test_steps_within_the_noise_say_so_and_the_others_do_not(space):
    # differences with std 0.01 (1 point): band = 2 points
    acc = np.array([0.60, 0.62, 0.64, 0.66])
    twin = acc + np.array([0.01, -0.01, 0.01, -0.01])
    c = _ceiling(space, acc, twin)
    band = 200 * c.step_noise
    steps = c.steps(_models(0.600, 0.612, 0.660))  # A->B 1.2, B->C 4.8, A->C 6.0
    assert [(s.lower, s.upper) for s in steps] == [("A", "B"), ("B", "C"), ("A", "C")]
    assert [round(s.change, 6) for s in steps] == [1.2, 4.8, 6.0]
    assert all(s.band == pytest.approx(band) for s in steps)
    assert [s.within_noise for s in steps] == [True, False, False]
    assert steps[0].sentence() == (
        f"A → B rises 1.2 points, within the ranking noise (±{band:.1f}): these models are not "
        "distinguishable by one-shot accuracy"
    )
    assert steps[2].sentence() == f"A → C rises 6.0 points, beyond the ranking noise (±{band:.1f})"
    assert c.summary(_models(0.6, 0.612))["steps"] == [
        {
            "from": "A",
            "to": "B",
            "points": 1.2,
            "band_points": round(band, 4),
            "within_noise": True,
        }
    ]


def test_step_edges():
    assert not Step("A", "B", 2.0, 2.0).within_noise  # |step| < band, strictly
    assert Step("A", "B", -1.9, 2.0).within_noise
    assert "falls 1.9 points" in Step("A", "B", -1.9, 2.0).sentence()
    assert "stays level" in Step("A", "B", 0.0, 2.0).sentence()


def test_one_model_has_no_step_and_two_have_one(space):
    c = _ceiling(space, [0.5, 0.6, 0.7], [0.52, 0.58, 0.7])
    assert c.steps(_models(0.6)) == []
    assert len(c.steps(_models(0.6, 0.7))) == 1
    assert len(c.steps(_models(0.6, 0.7, 0.8, 0.9))) == 4  # A-B, B-C, C-D, A-D


def test_stored_file_round_trips_and_forgeries_are_refused(space):
    c = _ceiling(space, [0.5, 0.6, 0.7], [0.52, 0.58, 0.7], seeds=(3, 9))
    data = c.to_json()
    again = NoiseCeiling.from_json(data, space, (3, 9), 3, where="f", fix=FIX)
    assert again == c and again.tau == c.tau
    with pytest.raises(StoredRecordError, match=r"seeds \[3, 9\].*not this run's \[3, 8\]"):
        NoiseCeiling.from_json(data, space, (3, 8), 3, where="f", fix=FIX)
    forged = [
        {**data, "format": 2},
        {**data, "records": data["records"][:1]},
        {**data, "records": [{**data["records"][0], "accuracy": 1.5}, *data["records"][1:]]},
        {**data, "records": [{**data["records"][0], "arch": "K3E1"}, *data["records"][1:]]},
        {**data, "records": [data["records"][0], *data["records"][:2]]},
        {**data, "stage": True},
    ]
    for bad in forged:
        with pytest.raises(StoredRecordError, match=FIX):
            NoiseCeiling.from_json(bad, space, (3, 9), 3, where="f", fix=FIX)


def test_spread_by_latency_covers_the_window():
    lat = [5.0, 1.0, 3.0, 2.0, 4.0]
    names = list("edcba")
    assert spread_by_latency(lat, names, 10) == [1, 3, 2, 4, 0]  # all, fastest first
    assert spread_by_latency(lat, names, 3) == [1, 2, 0]  # fastest, middle, slowest
    assert spread_by_latency([1.0, 1.0], ["b", "a"], 1) == [1]  # ties go by name


def test_twin_seed_is_derived_and_distinct():
    seeds = [twin_seed(s) for s in range(50)]
    assert seeds == [twin_seed(s) for s in range(50)]  # a function of the run's seed
    assert len(set(seeds)) == 50
    assert all(0 <= t < 2**32 and t != s and (t - s) % 1000 for s, t in enumerate(seeds))


def _ll_ceiling(space, acc, twin, ll, twin_ll) -> NoiseCeiling:
    rng = np.random.default_rng(0)
    archs = [str(space.decode(g)) for g in space.sample_genomes(rng, len(acc))]
    lat = list(np.linspace(40, 90, len(acc)))
    return measure_ceiling(
        archs,
        lat,
        acc,
        twin,
        seeds=(0, 5),
        recal_seed=0,
        log_likelihood=ll,
        twin_log_likelihood=twin_ll,
        rank_by="log_likelihood",
    )


def test_a_log_likelihood_search_is_judged_in_log_likelihood(space):
    rng = np.random.default_rng(2)
    acc, twin = rng.uniform(0.7, 0.8, 12), rng.uniform(0.7, 0.8, 12)  # unrelated rankings
    ll = np.linspace(-0.7, -0.5, 12)
    twin_ll = ll + rng.normal(0, 0.005, 12)
    c = _ll_ceiling(space, acc, twin, ll, twin_ll)
    assert c.tau == pytest.approx(kendalltau(ll, twin_ll).statistic)
    assert c.accuracy_tau == pytest.approx(kendalltau(acc, twin).statistic)
    block = c.summary()
    assert block["rank_by"] == "log_likelihood" and block["tau"] == c.tau
    sd = np.std(ll - twin_ll, ddof=1)
    assert block["ll_step_noise"] == pytest.approx(sd)
    assert block["log_likelihood_noise"] == pytest.approx(sd / math.sqrt(2))
    assert block["accuracy_tau"] == c.accuracy_tau  # the accuracy's figures kept beside
    models = [
        {"label": "A", "one_shot_accuracy": 0.8, "one_shot_log_likelihood": -0.60},
        {"label": "B", "one_shot_accuracy": 0.7, "one_shot_log_likelihood": -0.50},
    ]
    (step,) = c.steps(models)
    assert step.unit == "nats" and step.change == pytest.approx(0.10)  # rises, though acc fell
    assert step.band == pytest.approx(2 * sd)
    assert step.to_json() == {
        "from": "A",
        "to": "B",
        "nats": 0.1,
        "band_nats": round(2 * sd, 4),
        "within_noise": False,
    }
    assert Step.from_json(step.to_json()) == Step("A", "B", 0.1, round(2 * sd, 4), "nats")
    assert step.sentence().startswith("A → B rises 0.100 nats, beyond the ranking noise")
    line = describe(block)
    assert "by log-likelihood (by accuracy" in line and "nats per model" in line


def test_a_stored_log_likelihood_ceiling_round_trips_for_its_own_ranking_only(space):
    c = _ll_ceiling(space, [0.5, 0.6, 0.7], [0.5, 0.7, 0.6], [-1.0, -0.9, -0.8], [-1.1, -0.8, -0.9])
    data = c.to_json()

    def load(records=None, rank_by="log_likelihood"):
        doc = data if records is None else {**data, "records": records}
        return NoiseCeiling.from_json(doc, space, (0, 5), 0, where="f", fix=FIX, rank_by=rank_by)

    assert load() == c
    with pytest.raises(StoredRecordError, match="not measured for a search ranked by accuracy"):
        load(rank_by="accuracy")
    records = [dict(r) for r in data["records"]]
    del records[1]["twin_log_likelihood"]
    with pytest.raises(StoredRecordError, match="twin_log_likelihood must be a finite number"):
        load(records)
    bare = [{k: v for k, v in r.items() if "log_likelihood" not in k} for r in data["records"]]
    with pytest.raises(StoredRecordError, match="a record has no log-likelihoods"):
        load(bare)
