"""Profiling a space on phones end to end, against loopback ADB peers: blocks exported by the
project's exporter, pushed, timed by the stand-in benchmark_model, stored, resumed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from adb_peer import AdbPeer, Faults

from latency.adb_transport import ensure_key
from latency.backends.adb import DeviceLost
from latency.devices import load_profile, make_backend
from latency.fleet import profile_fleet
from latency.store import MeasurementStore
from latency.variants import space_variants
from padnas.space import get_space

STANDIN = Path(__file__).with_name("standin_benchmark_model.py")
LIMIT = 6


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: blocks are converted once and reused by every test."""
    return tmp_path_factory.mktemp("adb-profile-cache")


@pytest.fixture
def env(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("PADNAS_CACHE", str(cache))
    key = ensure_key(tmp_path / "keys" / "adbkey")
    return {"key": key, "pub": Path(str(key) + ".pub").read_text(), "tmp": tmp_path}


def phone_profile(retries: int = 2) -> dict:
    prof = copy.deepcopy(load_profile("pixel3"))
    prof["benchmark"].update({"num_runs": 10, "warmup_runs": 2, "max_secs": 2})
    prof["cooldown_s"] = 0
    prof["adb"].update({"timeout_margin_s": 4, "retries": retries, "backoff_s": 0.01,
                        "connect_timeout_s": 3, "auth_timeout_s": 1})  # fmt: skip
    return prof


def phone(peer, env, retries=2, warn=None):
    return make_backend(phone_profile(retries), serial=peer.serial, benchmark_model=STANDIN,
                        adb_key=env["key"], warn=warn or (lambda m: None))  # fmt: skip


def first_keys(n=LIMIT):
    return [v.key for v in space_variants(get_space("basic"), 224)][:n]


def test_two_phones_share_the_work_and_the_store(env):
    store = MeasurementStore("pixel3", env["tmp"] / "store")
    with (
        AdbPeer(env["tmp"] / "p1", allowed_keys=[env["pub"]]) as a,
        AdbPeer(env["tmp"] / "p2", allowed_keys=[env["pub"]]) as b,
    ):
        backends = [phone(a, env), phone(b, env)]
        report = profile_fleet(get_space("basic"), backends, store, limit=LIMIT, progress=False)
        for be in backends:
            be.close()
        assert a.shell.runs + b.shell.runs == LIMIT
        assert a.shell.runs > 0 and b.shell.runs > 0
    assert report.measured == LIMIT and not report.failed
    assert sorted(store.records()) == sorted(first_keys())
    recs = store.records().values()
    assert {r["serial"] for r in recs} == {a.serial, b.serial}
    assert all(r["source"] == "measured" and r["n"] == 10 for r in recs)


def test_a_lost_phone_hands_its_block_to_the_other(env):
    store = MeasurementStore("pixel3", env["tmp"] / "store")
    warned = []
    with (
        AdbPeer(env["tmp"] / "ok", allowed_keys=[env["pub"]]) as good,
        AdbPeer(env["tmp"] / "bad", allowed_keys=[env["pub"]], faults=Faults(drop="always")) as bad,
    ):
        backends = [phone(good, env), phone(bad, env, retries=1)]
        report = profile_fleet(get_space("basic"), backends, store, limit=LIMIT, progress=False,
                               warn=warned.append)  # fmt: skip
        for be in backends:
            be.close()
    assert report.measured == LIMIT and not report.failed
    assert sorted(store.records()) == sorted(first_keys())
    assert {r["serial"] for r in store.records().values()} == {good.serial}
    assert any("left the profile" in w for w in warned)


def test_all_phones_lost_stops_and_resumes(env):
    store = MeasurementStore("pixel3", env["tmp"] / "store")
    with AdbPeer(env["tmp"] / "p", allowed_keys=[env["pub"]], faults=Faults(drop={3, 4})) as p:
        b = phone(p, env, retries=1)  # invocation 3 drops, its one retry (4) drops: give up
        with pytest.raises(DeviceLost, match="rerun the same command"):
            profile_fleet(get_space("basic"), [b], store, limit=LIMIT, progress=False)
        b.close()
        assert len(store) == 2  # the two blocks measured before the phone was lost are kept
        kept = dict(store.records())
        p.faults = Faults()
        b = phone(p, env)
        report = profile_fleet(get_space("basic"), [b], store, limit=LIMIT, progress=False)
        b.close()
    assert report.reused == 2 and report.measured == LIMIT
    assert len(store) == 2 + LIMIT
    assert all(store.get(k) == r for k, r in kept.items())  # nothing measured twice
