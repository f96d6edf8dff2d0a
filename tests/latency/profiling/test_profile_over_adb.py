"""Profiling a space on phones end to end, against loopback ADB peers: blocks exported by the
project's exporter, pushed, timed by the stand-in benchmark_model, stored, resumed."""

from __future__ import annotations

import copy
import json

import pytest
from adb_peer import AdbPeer, Faults
from repo_support import STANDIN

from latency.backends.adb.backend import DeviceLost
from latency.devices import load_profile, make_backend
from latency.profiling.fleet import profile_fleet
from latency.profiling.guard import GUARD_ENV, REFERENCE_KEY, reference_ratio
from latency.profiling.store import MeasurementStore
from latency.variants import space_variants
from padnas.space import get_space

STANDIN = STANDIN
LIMIT = 6


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: blocks are converted once and reused by every test."""
    return tmp_path_factory.mktemp("adb-profile-cache")


@pytest.fixture
def env(tmp_path, cache, monkeypatch, adb_key):
    monkeypatch.setenv("PADNAS_CACHE", str(cache))
    # the stand-in phones time on this (shared, loaded) host: the guard brackets every batch,
    # but only a phone whose reference time nearly doubles counts as drifting here
    monkeypatch.setenv(GUARD_ENV, json.dumps({"busy_cores": 64, "tolerance": 0.9}))
    return {"key": adb_key[0], "pub": adb_key[1], "tmp": tmp_path}


def phone_profile(retries: int = 2) -> dict:
    prof = copy.deepcopy(load_profile("pixel3"))
    prof["benchmark"].update({"num_runs": 10, "warmup_runs": 2, "max_secs": 2})
    prof["cooldown_s"] = 0
    prof["adb"].update(
        {
            "timeout_margin_s": 10,
            "retries": retries,
            "backoff_s": 0.01,
            "connect_timeout_s": 3,
            "auth_timeout_s": 1,
        }
    )
    return prof


def phone(peer, env, retries=2, warn=None, batch_size=None):
    prof = phone_profile(retries)
    if batch_size:
        prof["guard"] = {"batch_size": batch_size}
    return make_backend(
        prof,
        serial=peer.serial,
        benchmark_model=STANDIN,
        adb_key=env["key"],
        warn=warn or (lambda m: None),
    )


def timed_runs(peer, since: int = 0) -> int:
    """benchmark_model runs on ``peer`` that timed a block, not the guard's reference op."""
    runs = peer.shell.bench_runs[since:]
    return sum(not any(REFERENCE_KEY in arg for arg in r["argv"]) for r in runs)


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
    assert report.measured == LIMIT and not report.failed
    assert sorted(store.records()) == sorted(first_keys())
    recs = store.records().values()
    assert {r["serial"] for r in recs} == {a.serial, b.serial}
    assert all(r["source"] == "measured" and r["n"] == 10 for r in recs)
    # every block was timed in a batch bracketed by the reference op on its own phone
    assert all(r["reference_ms"] > 0 and r["conditions"] for r in recs)
    assert len({r["conditions"] for r in recs}) == 1  # two phones of one model: one set-up


def test_a_lost_phone_hands_its_block_to_the_other(env):
    store = MeasurementStore("pixel3", env["tmp"] / "store")
    warned = []
    with (
        AdbPeer(env["tmp"] / "ok", allowed_keys=[env["pub"]]) as good,
        AdbPeer(env["tmp"] / "bad", allowed_keys=[env["pub"]], faults=Faults(drop="always")) as bad,
    ):
        # one block a batch: both phones wait for work from the start, so the failing one takes
        # a block before the good one has measured them all (cached blocks arrive at once, and a
        # batch of 16 would let one phone take every block)
        backends = [phone(good, env, batch_size=1), phone(bad, env, retries=1, batch_size=1)]
        report = profile_fleet(
            get_space("basic"), backends, store, limit=LIMIT, progress=False, warn=warned.append
        )
        for be in backends:
            be.close()
    assert report.measured == LIMIT and not report.failed
    assert sorted(store.records()) == sorted(first_keys())
    assert {r["serial"] for r in store.records().values()} == {good.serial}
    assert any("left the profile" in w for w in warned)


@pytest.mark.slow
def test_all_phones_lost_stops_and_resumes(env):
    store = MeasurementStore("pixel3", env["tmp"] / "store")
    # batches of two blocks, each bracketed by three reference runs: invocations 1-8 are the
    # first batch; 11 (a reference run of the second) drops, its one retry (12) too: give up
    with AdbPeer(env["tmp"] / "p", allowed_keys=[env["pub"]], faults=Faults(drop={11, 12})) as p:
        b = phone(p, env, retries=1, batch_size=2)
        with pytest.raises(DeviceLost, match="rerun the same command"):
            profile_fleet(get_space("basic"), [b], store, limit=LIMIT, progress=False)
        b.close()
        assert len(store) == 2  # the batch accepted before the phone was lost is kept
        kept = dict(store.records())
        p.faults = Faults()
        b = phone(p, env)
        report = profile_fleet(get_space("basic"), [b], store, limit=LIMIT, progress=False)
        b.close()
    assert report.reused == 2 and report.measured == LIMIT
    assert len(store) == 2 + LIMIT
    assert all(store.get(k) == r for k, r in kept.items())  # nothing measured twice


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli(env, monkeypatch):
    """padnas-latency with test copies of the shipped pixel3/host/mock profiles: pixel3 without
    its 2 s cool-down and with short time-outs, host with short runs. Benchmark flags as
    shipped."""
    import json
    import shutil

    from click.testing import CliRunner

    from latency.cli.app import main
    from latency.profile_paths import shipped_dir

    src, dst = shipped_dir(), env["tmp"] / "profiles"
    dst.mkdir()
    shutil.copy(src / "mock.json", dst)
    host = json.loads((src / "host.json").read_text())
    host["measure"].update({"min_s": 0.02, "max_s": 0.2})
    (dst / "host.json").write_text(json.dumps(host))
    pixel = json.loads((src / "pixel3.json").read_text())
    pixel.pop("luts", None)
    pixel["cooldown_s"] = 0
    pixel["adb"].update(
        {
            "retries": 1,
            "backoff_s": 0.01,
            "connect_timeout_s": 3,
            "auth_timeout_s": 1,
            "timeout_margin_s": 10,
        }
    )
    (dst / "pixel3.json").write_text(json.dumps(pixel))
    monkeypatch.setenv("PADNAS_DEVICE_PROFILES", str(dst))
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.mark.slow
def test_cli_profile_pixel3_resumes_matches_host_keys_and_exports_a_lut(env, cli, monkeypatch):
    from latency.lut.table import load_lut

    store_dir = env["tmp"] / "stores"
    common = ["--space", "basic", "--store", store_dir, "-q"]
    phone_args = ["--device", "pixel3", "--adb-key", env["key"], *common]
    full = [v.key for v in space_variants(get_space("basic"), 224)]

    # guarded batches of three blocks: 3 reference runs, 3 blocks, 3 reference runs; the phone
    # drops off after the first batch (invocation 10 on): the command stops, keeping it
    monkeypatch.setenv(GUARD_ENV, json.dumps({"busy_cores": 64, "tolerance": 0.9, "batch_size": 3}))
    faults = Faults(drop=set(range(10, 1000)))
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=faults) as peer:
        r = cli(
            "profile",
            *phone_args,
            "--serial",
            peer.serial,
            "--benchmark-model",
            STANDIN,
            "--limit",
            12,
        )
        assert r.exit_code == 1, r.output
        assert "rerun the same command to resume" in r.output
        store = MeasurementStore("pixel3", store_dir)
        assert len(store) == 3
        runs_before = peer.shell.runs

        # back online: the command resumes (benchmark_model remembered); 9 more make 12
        peer.faults = Faults()
        r = cli("profile", *phone_args, "--serial", peer.serial, "--limit", 9)
        assert r.exit_code == 0, r.output
        assert "71 variants, 3 already stored, 9 measured" in r.output
        assert "59 variants left for the next run (--limit 9)" in r.output
        assert timed_runs(peer, since=runs_before) == 9  # nothing measured twice
        argv = peer.shell.bench_runs[-1]["argv"]
        assert "--num_runs=50" in argv and "--min_secs=0" in argv
        assert peer.shell.bench_runs[-1]["mask"] == "80"

    phone_keys = set(MeasurementStore("pixel3", store_dir).records())
    assert phone_keys == set(full[:12])

    # the host profile of the same space/resolution stores the same keys
    r = cli("profile", "--device", "host", *common, "--limit", 12)
    assert r.exit_code == 0, r.output
    assert set(MeasurementStore("host", store_dir).records()) == phone_keys

    # ... and the full key list is the same for every device: the complete (mock) profile
    assert cli("profile", "--device", "mock", *common).exit_code == 0
    assert list(MeasurementStore("mock", store_dir).records()) == full

    out = env["tmp"] / "pixel3-basic.json"
    r = cli("export-lut", "--device", "pixel3", "--space", "basic", "--store", store_dir, "-o", out)
    assert r.exit_code == 0, r.output
    lut = load_lut(out, "basic", 224)
    assert sorted(lut.entries) == sorted(full)
    sources = [lut.entries[k]["source"] for k in full]
    assert sources == ["measured"] * 12 + ["regression"] * 59
    assert lut.device["model"] == "Pixel 3" and lut.device["cpu_mask"] == "80"
    stored = MeasurementStore("pixel3", store_dir).records()
    # batches whose reference time moved are brought to the common reference, nothing else
    factor = reference_ratio(list(stored.values()))["rescaled"]
    for k in phone_keys:
        assert lut.entries[k]["ms"] == pytest.approx(stored[k]["ms"] * factor.get(k, 1.0), rel=1e-3)


def test_cli_phone_options_are_checked(env, cli, expect_error):
    r = cli("profile", "--device", "host", "--serial", "127.0.0.1:5555", "-q")
    expect_error(r, 2, "for phones")
    r = cli(
        "profile",
        "--device",
        "pixel3",
        "--serial",
        "127.0.0.1:99999",
        "-q",
        "--benchmark-model",
        STANDIN,
    )
    expect_error(r, 2, "bad port")
    r = cli("measure", "x.tflite", "--device", "pixel3", "--serial", "a:1", "--serial", "b:2")
    expect_error(r, 2, "single --serial")


def test_cli_devices_lists_profiles_and_probes_phones(env, cli):
    with (
        AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as ok,
        AdbPeer(env["tmp"] / "other", allowed_keys=[]) as refused,
    ):
        r = cli(
            "devices",
            "--serial",
            ok.serial,
            "--serial",
            refused.serial,
            "--adb-key",
            env["key"],
            "--timeout",
            1,
        )
    assert r.exit_code == 0, r.output
    assert "pixel3" in r.output and "cpu_mask 80" in r.output
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.strip()}
    assert "device" in lines[ok.serial] and "Pixel 3" in lines[ok.serial]
    assert "unauthorized" in lines[refused.serial]
    assert "USB:" in r.output or "usb:" in r.output


@pytest.mark.slow
def test_ctrl_c_while_two_phones_measure_keeps_everything(env, cli, tmp_path, monkeypatch):
    """SIGINT to a real `profile` process while two phones (loopback peers in this process) are
    measuring: exit 130 with the one-line message, every stored line whole, and the same command
    afterwards measures only what is missing."""
    import json
    import signal
    import subprocess
    import sys
    import time

    # a cold cache of its own: with the module's warm one every block is already converted and
    # the run can finish before SIGINT arrives
    monkeypatch.setenv("PADNAS_CACHE", str(tmp_path / "cold-cache"))
    store_path = env["tmp"] / "stores" / "pixel3.jsonl"
    with (
        AdbPeer(env["tmp"] / "p1", allowed_keys=[env["pub"]]) as a,
        AdbPeer(env["tmp"] / "p2", allowed_keys=[env["pub"]]) as b,
    ):
        cmd = [
            sys.executable,
            "-m",
            "latency.cli",
            "profile",
            "--device",
            "pixel3",
            "--serial",
            a.serial,
            "--serial",
            b.serial,
            "--benchmark-model",
            STANDIN,
            "--adb-key",
            env["key"],
            "--space",
            "basic",
            "--store",
            env["tmp"] / "stores",
            "-q",
        ]
        cmd = [str(c) for c in cmd]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        limit = 40  # enough blocks left that SIGINT lands mid-run on a fast, idle machine
        proc = subprocess.Popen([*cmd, "--limit", str(limit)], **pipes)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if store_path.is_file() and len(store_path.read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err

        kept = [json.loads(line) for line in store_path.read_text().splitlines()]
        assert 2 <= len(kept) < limit and all(r["source"] == "measured" for r in kept)
        runs = timed_runs(a) + timed_runs(b)

        rest = str(limit - len(kept))  # --limit counts the blocks this run measures
        done = subprocess.run([*cmd, "--limit", rest], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert f"{len(kept)} already stored, {limit - len(kept)} measured" in done.stdout
        assert timed_runs(a) + timed_runs(b) == runs + limit - len(kept)  # none measured twice
    keys = [json.loads(line)["key"] for line in store_path.read_text().splitlines()]
    assert sorted(keys) == sorted(first_keys(limit))


@pytest.mark.slow
def test_int8_blocks_are_pushed_and_timed_on_a_phone(env):
    """An int8 profile over ADB: full-integer files exported, pushed and timed by the phone's
    benchmark_model, into the int8 store of the phone, guarded like the float ones."""
    store = MeasurementStore("pixel3", env["tmp"] / "store", precision="int8")
    with AdbPeer(env["tmp"] / "p1", allowed_keys=[env["pub"]]) as a:
        backend = phone(a, env)
        report = profile_fleet(get_space("basic"), [backend], store, limit=2, progress=False)
        backend.close()
    assert report.measured == 2 and not report.failed
    assert store.path.name == "pixel3.int8.jsonl" and sorted(store.records()) == first_keys(2)
    assert all(r["reference_ms"] > 0 for r in store.records().values())
    # the phone timed the int8 files of those blocks (the reference op stays the float one)
    import hashlib

    from latency.export.convert import cached_path

    timed = {r["graph_sha256"] for r in a.shell.bench_runs if REFERENCE_KEY not in str(r["argv"])}
    int8 = {
        hashlib.sha256(cached_path(k, precision="int8").read_bytes()).hexdigest()
        for k in first_keys(2)
    }
    assert timed == int8
