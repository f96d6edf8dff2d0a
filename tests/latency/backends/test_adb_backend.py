"""The adb backend against the loopback ADB peer: real protocol, real pushes, a stand-in
benchmark_model that really times the model with LiteRT; faults injected on purpose.

Every fault must end in a retry that yields a sound measurement or in a clear error, never in
a wrong number.
"""

from __future__ import annotations

import copy
import shutil
import stat
from pathlib import Path

import pytest
from adb_peer import AdbPeer, Faults
from repo_support import STANDIN

from latency.backends.adb import AdbBackend, AdbProfileError, DeviceLost, DeviceThrottled
from latency.backends.adb.binary import BenchmarkBinaryError
from latency.backends.adb.transport import AdbUnauthorized, ensure_key
from latency.backends.base import BackendError
from latency.devices import load_profile, make_backend

STANDIN = STANDIN


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """One real block of the search space, exported by the project's own exporter."""
    from latency.export.convert import export_variant
    from latency.variants import Variant

    cache = tmp_path_factory.getbasetemp() / "adb-tflite"
    variant = Variant.from_key("ibconv-k3-e1-s1-i14x14x16-o14x14x16")
    return export_variant(variant, cache)


@pytest.fixture
def env(tmp_path, padnas_cache, adb_key):
    return {"key": adb_key[0], "pub": adb_key[1], "tmp": tmp_path}


def fast_profile(margin_s: float = 10, **bench) -> dict:
    """pixel3 with short runs and short time-outs so faults resolve in seconds. A benchmark
    call times out after 2 * max_secs + margin_s (the stand-in needs about a second, more
    on a loaded machine)."""
    prof = copy.deepcopy(load_profile("pixel3"))
    prof["benchmark"].update({"num_runs": 12, "warmup_runs": 2, "max_secs": 1, **bench})
    prof["cooldown_s"] = 0
    prof["adb"].update(
        {
            "timeout_margin_s": margin_s,
            "command_timeout_s": 10,
            "connect_timeout_s": 3,
            "auth_timeout_s": 1,
            "retries": 2,
            "backoff_s": 0.01,
        }
    )
    prof["throttle"].update({"cooldown_s": 0, "max_remeasure": 1})
    return prof


def backend(peer, env, prof=None, **kw) -> AdbBackend:
    warnings: list[str] = []
    b = make_backend(
        prof or fast_profile(),
        serial=peer.serial,
        benchmark_model=kw.pop("benchmark_model", STANDIN),
        adb_key=env["key"],
        warn=warnings.append,
        **kw,
    )
    b.warnings = warnings
    return b


def assert_sound(stats, runs=12):
    assert stats.source == "measured"
    assert stats.n == runs
    assert 0 < stats.p10 <= stats.ms <= stats.p90
    assert stats.extra["min_ms"] <= stats.ms <= stats.extra["max_ms"]


def test_measures_pinned_and_cleans_up(env, tiny_model):
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        with backend(peer, env) as b:
            info = b.describe()
            stats = b.measure(tiny_model)
        assert_sound(stats)
        assert info["model"] == "Pixel 3" and info["cores"] == [7]
        assert info["governor"] == "schedutil" and info["baseline_freq_khz"] == 2803200
        run = peer.shell.bench_runs[-1]
        assert run["mask"] == "80"
        argv = run["argv"]
        for flag in (
            "--num_threads=1",
            "--use_xnnpack=true",
            "--num_runs=12",
            "--min_secs=0",
            "--warmup_runs=2",
            "--warmup_min_secs=0",
            "--max_secs=1",
        ):
            assert flag in argv
        assert stats.extra["cur_freq_khz"] == 2803200 and stats.extra["governor"] == "schedutil"
        # the model was pushed to the models folder and is gone; the binary stays for reuse
        assert any(p.startswith("/data/local/tmp/padnas/models/") for p in peer.pushed)
        remote = env["tmp"] / "phone/data/local/tmp/padnas"
        assert not (remote / "models").exists()
        assert (remote / "benchmark_model").is_file()


def test_binary_is_reused_and_remembered(env, tiny_model):
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        with backend(peer, env) as b:
            b.measure(tiny_model)
        bin_pushes = [p for p in peer.pushed if p.endswith("/benchmark_model")]
        assert len(bin_pushes) == 1
        # no --benchmark-model: the remembered copy is used, and the phone's copy is reused
        with backend(peer, env, benchmark_model=None) as b:
            b.measure(tiny_model)
        assert [p for p in peer.pushed if p.endswith("/benchmark_model")] == bin_pushes


def test_no_binary_known_is_a_usage_error(env):
    with pytest.raises(BenchmarkBinaryError, match="--benchmark-model PATH once"):
        make_backend(fast_profile(), serial="127.0.0.1:9", benchmark_model=None)


def test_wrong_architecture_binary_is_refused(env, tmp_path):
    fake = tmp_path / "benchmark_model"
    # an x86-64 ELF header (machine 0x3e)
    fake.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\x3e\x00" + b"\0" * 40)
    with pytest.raises(BenchmarkBinaryError, match="x86-64"):
        make_backend(fast_profile(), serial="127.0.0.1:9", benchmark_model=fake)


def test_binary_that_is_not_benchmark_model(env, tmp_path):
    fake = tmp_path / "not_bm.sh"
    fake.write_text("#!/bin/sh\necho hello\n")
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        b = backend(peer, env, benchmark_model=fake)
        with pytest.raises(BenchmarkBinaryError, match="does not run"):
            b.describe()
        b.close()


def test_hostile_file_names_are_quoted(env, tiny_model, tmp_path):
    odd = tmp_path / "we'ird $(touch pwned); name.tflite"
    shutil.copy(tiny_model, odd)
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        with backend(peer, env) as b:
            assert_sound(b.measure(odd))
        graph = next(a for a in peer.shell.bench_runs[-1]["argv"] if a.startswith("--graph="))
        assert graph.endswith("we'ird $(touch pwned); name.tflite")
    assert not list(env["tmp"].rglob("pwned"))


def test_unconsumed_flags_are_surfaced(env, tiny_model):
    prof = fast_profile(extra_flags=["--use_gpu_typo=true"])
    with (
        AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer,
        backend(peer, env, prof) as b,
    ):
        stats = b.measure(tiny_model)
    assert_sound(stats)
    assert any("--use_gpu_typo=true" in w for w in b.warnings)
    assert any("--use_gpu_typo" in w for w in stats.extra["warnings"])


def test_bad_mask_for_the_phone(env):
    prof = fast_profile()
    prof["cpu_mask"] = "100"  # CPU8: a Pixel 3 has 0-7
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        b = backend(peer, env, prof)
        with pytest.raises(AdbProfileError, match="CPU8"):
            b._ensure_ready()
        b.close()
    prof["cpu_mask"] = "zz"
    with pytest.raises(AdbProfileError, match="hex CPU mask"):
        make_backend(prof, serial="127.0.0.1:9", benchmark_model=STANDIN)


def test_missing_serial_is_a_usage_error(env, monkeypatch):
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    with pytest.raises(AdbProfileError, match="--serial"):
        make_backend(fast_profile(), benchmark_model=STANDIN)


# -- faults -------------------------------------------------------------------------------------


# a hang costs the read timeout (~10 s): slow
HANG = pytest.param("hang", marks=pytest.mark.slow)


@pytest.mark.parametrize("fault", ["drop", HANG, "garbage"])
def test_a_fault_once_is_retried(env, tiny_model, fault):
    faults = Faults(**{fault: {2}})
    prof = fast_profile(margin_s=4)  # a hang is noticed after 6 s
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=faults) as peer:
        with backend(peer, env, prof) as b:
            first = b.measure(tiny_model)
            second = b.measure(tiny_model)  # invocation 2 fails, 3 succeeds
        assert peer.shell.runs == 3
    assert_sound(first)
    assert_sound(second)
    assert any("retrying" in w for w in b.warnings)


@pytest.mark.parametrize("fault", ["drop", HANG])
def test_a_lost_phone_gives_up_clearly(env, tiny_model, fault):
    prof = fast_profile(margin_s=4)
    prof["adb"]["retries"] = 1
    peer = AdbPeer(
        env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(**{fault: "always"})
    )
    with peer, backend(peer, env, prof) as b:
        with pytest.raises(DeviceLost, match="rerun the same command"):
            b.measure(tiny_model)
        assert peer.shell.runs == 2  # 1 + retries


def test_garbage_every_time_is_an_error_not_a_number(env, tiny_model):
    peer = AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(garbage="always"))
    with peer, backend(peer, env) as b, pytest.raises(BackendError, match="unusable"):
        b.measure(tiny_model)


def test_throttling_warns_and_remeasures(env, tiny_model):
    with AdbPeer(
        env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(throttle={1})
    ) as peer:
        with backend(peer, env) as b:
            stats = b.measure(tiny_model)
        assert peer.shell.runs == 2
    assert_sound(stats)
    assert stats.extra["remeasured_after_throttling"] == 1
    assert stats.extra["freq_khz"] == 2803200
    assert any("throttled" in w for w in b.warnings)


def test_staying_throttled_stops(env, tiny_model):
    peer = AdbPeer(
        env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(throttle="always")
    )
    with peer, backend(peer, env) as b, pytest.raises(DeviceThrottled, match="cool"):
        b.measure(tiny_model)


def test_unauthorized_key_is_refused_with_advice(env, tiny_model, tmp_path):
    stranger = ensure_key(tmp_path / "other" / "adbkey")
    assert stat.S_IMODE(stranger.stat().st_mode) == 0o600
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        b = make_backend(
            fast_profile(),
            serial=peer.serial,
            benchmark_model=STANDIN,
            adb_key=stranger,
            warn=lambda m: None,
        )
        with pytest.raises(AdbUnauthorized, match="accept the 'Allow USB debugging"):
            b.measure(tiny_model)
        b.close()
        assert peer.offered_keys  # the phone was shown our key (the prompt)
        assert peer.shell.runs == 0


def test_a_phone_that_comes_back_is_picked_up_again(env, tiny_model):
    """Wi-Fi gone for a moment: the port refuses connections, then the phone is back."""
    import threading

    prof = fast_profile()
    prof["adb"].update({"retries": 4, "backoff_s": 0.3})
    phone = env["tmp"] / "phone"
    peer = AdbPeer(phone, allowed_keys=[env["pub"]]).start()
    port = peer.port
    with backend(peer, env, prof) as b:
        assert_sound(b.measure(tiny_model))
        peer.stop()  # refused from now on
        holder: list = []
        back = threading.Timer(
            0.5, lambda: holder.append(AdbPeer(phone, allowed_keys=[env["pub"]], port=port).start())
        )
        back.start()
        try:
            assert_sound(b.measure(tiny_model))
        finally:
            back.join()
            for p in holder:
                p.stop()
    assert any("retrying" in w for w in b.warnings)


def test_an_unreachable_phone_fails_before_anything_runs(env, free_port):
    b = make_backend(
        fast_profile(),
        serial=f"127.0.0.1:{free_port}",
        benchmark_model=STANDIN,
        adb_key=env["key"],
        warn=lambda m: None,
    )
    with pytest.raises(BackendError, match="connection refused") as info:
        b.describe()
    assert info.value.fatal


def test_a_core_capped_from_the_start_is_reported(env):
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        peer.shell.throttled = True  # hot before we even begin
        with backend(peer, env) as b:
            b.describe()
    assert any("capped at 1996800 of 2803200 kHz" in w for w in b.warnings)


def test_clean_up_deletes_only_the_models_it_pushed(env, tiny_model, frozen):
    """A remote folder shared with the user's own files: after measuring (twice, so that the
    per-model removal and the final clean-up both run) the user's file is untouched, the models
    padnas pushed are gone, and the folder stays because it is not empty."""
    prof = fast_profile()
    prof["adb"]["remote_dir"] = "/data/local/tmp"
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        models = env["tmp"] / "phone/data/local/tmp/models"
        models.mkdir(parents=True)
        (models / "keep_me.txt").write_text("the user's, not padnas's")
        (models / "000001-keep.tflite").write_bytes(b"named like ours, but not pushed by us")
        before = frozen(models / "keep_me.txt", models / "000001-keep.tflite")
        with backend(peer, env, prof) as b:
            assert_sound(b.measure(tiny_model))
            assert_sound(b.measure(tiny_model))
        pushed = [p for p in peer.pushed if p.startswith("/data/local/tmp/models/")]
        assert len(pushed) == 2
        assert before.changed() == []
        assert sorted(p.name for p in models.iterdir()) == ["000001-keep.tflite", "keep_me.txt"]
        # no command ever removed the folder or anything in it but the pushed models
        assert not [c for c in peer.shell.commands if "rm -rf" in c or "rm -r " in c]


def test_a_model_left_by_a_dropped_connection_is_removed_later(env, tiny_model):
    """The connection drops during the benchmark run, so the model cannot be removed then: the
    manifest still lists it, and the reconnect deletes exactly that file, nothing beside it."""
    prof = fast_profile()
    prof["adb"]["remote_dir"] = "/data/local/tmp"
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(drop={1})) as peer:
        models = env["tmp"] / "phone/data/local/tmp/models"
        models.mkdir(parents=True)
        (models / "keep_me.txt").write_text("the user's")
        with backend(peer, env, prof) as b:
            assert_sound(b.measure(tiny_model))  # invocation 1 drops, 2 succeeds
            assert peer.shell.runs == 2
            assert sorted(p.name for p in models.iterdir()) == ["keep_me.txt"]
        pushed = [p for p in peer.pushed if p.startswith("/data/local/tmp/models/")]
        assert len(pushed) == 2 and pushed[0] != pushed[1]
        assert (models / "keep_me.txt").read_text() == "the user's"


def _forge(record_path: Path, **changes) -> None:
    import json

    record = json.loads(record_path.read_text())
    record.update(changes)
    record_path.write_text(json.dumps(record))


@pytest.mark.parametrize("forgery", ["outside", "link", "changed", "no-sha256"])
def test_a_forged_remembered_binary_is_never_pushed(
    env, tiny_model, padnas_cache, latency_cli, expect_error, frozen, forgery
):
    """The cache's record of the remembered binary is edited to make padnas push another file
    as benchmark_model: each form is refused before anything is pushed, naming the fix."""
    import hashlib

    from latency.backends.adb.binary import md5_of, remember

    remember(STANDIN)
    record = padnas_cache / "adb" / "benchmark_model.json"
    cached = padnas_cache / "adb" / "benchmark_model"
    outside = env["tmp"] / "not-benchmark-model"
    outside.write_bytes(b"#!/bin/sh\necho a file from outside the cache\n")
    sha = hashlib.sha256(outside.read_bytes()).hexdigest()
    if forgery == "outside":  # every digest matches the outside file: only its place gives it away
        _forge(record, path=str(outside), md5=md5_of(outside), sha256=sha, size=1)
        fragments = [str(outside), "a file outside the cache"]
    elif forgery == "link":
        cached.unlink()
        cached.symlink_to(outside)
        _forge(record, md5=md5_of(outside), sha256=sha)
        fragments = [str(cached), "not a regular file"]
    elif forgery == "changed":  # the old md5-only check was satisfied by updating the md5
        cached.write_bytes(cached.read_bytes() + b"\n# appended\n")
        _forge(record, md5=md5_of(cached))
        fragments = [str(cached), "does not match the SHA-256"]
    else:
        _forge(record, sha256=None)
        fragments = ["does not match the SHA-256", "older padnas"]
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        before = frozen(padnas_cache / "adb", outside, env["tmp"] / "phone")
        r = latency_cli(
            "measure",
            tiny_model,
            "--device",
            "pixel3",
            "--serial",
            peer.serial,
            "--adb-key",
            env["key"],
        )
        expect_error(r, 2, *fragments, "pass --benchmark-model PATH again", unchanged=before)
        assert peer.pushed == []


KILLED_RUN = """
import json, sys
from latency.devices import make_backend
prof, serial, binary, key, model = sys.argv[1:]
backend = make_backend(json.loads(open(prof).read()), serial=serial, benchmark_model=binary,
                       adb_key=key, warn=lambda m: None)
backend.measure(model)  # the phone hangs in the benchmark: this process is killed here
"""


def test_a_model_left_by_a_killed_run_is_removed_by_the_next_run(
    env, tiny_model, padnas_cache, tmp_path
):
    """A run killed (SIGKILL) while its model runs on the phone cannot clean up: the model stays
    there. Its manifest on the host lets the next run remove exactly that file; the user's files
    beside it -- one named like a padnas model -- are kept."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from repo_support import REPO

    prof = fast_profile()
    prof["adb"]["remote_dir"] = "/data/local/tmp"
    prof_path = tmp_path / "phone.json"
    prof_path.write_text(json.dumps(prof))
    models = env["tmp"] / "phone/data/local/tmp/models"
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]], faults=Faults(hang={1})) as peer:
        args = [prof_path, peer.serial, STANDIN, env["key"], tiny_model]
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, *map(str, args)],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while peer.shell.runs < 1 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert peer.shell.runs == 1, child.communicate(timeout=10)[1]
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        (left,) = [p for p in peer.pushed if p.startswith("/data/local/tmp/models/")]
        name = left.rpartition("/")[2]
        assert (models / name).is_file()  # the killed run could not remove it
        assert list((padnas_cache / "adb" / "pushed").glob("*.json"))  # but it wrote it down
        (models / "keep_me.txt").write_text("the user's")
        (models / "000009-mine.tflite").write_bytes(b"the user's, named like padnas's")
        with backend(peer, env, prof) as b:
            b.describe()  # connecting cleans up after the killed run
            assert sorted(p.name for p in models.iterdir()) == ["000009-mine.tflite", "keep_me.txt"]
            assert_sound(b.measure(tiny_model))
        assert sorted(p.name for p in models.iterdir()) == ["000009-mine.tflite", "keep_me.txt"]
        assert not list((padnas_cache / "adb" / "pushed").glob("*.json"))


def _leave_manifest(cache: Path, serial: str, pushed: list[dict]) -> Path:
    """A manifest as a killed run leaves it (its lock file free), listing ``pushed``."""
    import json

    from latency.backends.adb.manifest import serial_key

    folder = cache / "adb" / "pushed"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{serial_key(serial)}.999999-dead"
    (folder / f"{stem}.lock").write_text("")
    doc = {"schema": 1, "serial": serial, "remote_models": "/data/local/tmp/models"}
    (folder / f"{stem}.json").write_text(json.dumps({**doc, "pushed": pushed}))
    return folder / f"{stem}.json"


@pytest.mark.parametrize("forgery", ["outside", "user-file", "changed", "damaged"], ids=lambda f: f)
def test_a_manifest_never_deletes_what_padnas_did_not_push(
    env, tiny_model, padnas_cache, frozen, forgery
):
    """Manifests left on the host are checked before anything is deleted: a path outside the
    models folder or not named as padnas names models, a file whose MD5 is not the one recorded,
    a damaged manifest -- each leaves every file on the phone as it was."""
    import hashlib

    prof = fast_profile()
    prof["adb"]["remote_dir"] = "/data/local/tmp"
    with AdbPeer(env["tmp"] / "phone", allowed_keys=[env["pub"]]) as peer:
        phone = env["tmp"] / "phone/data/local/tmp"
        models = phone / "models"
        models.mkdir(parents=True)
        (phone / "notes.txt").write_text("the user's")
        (models / "keep_me.txt").write_text("the user's")
        (models / "000001-x.tflite").write_bytes(b"the user's, changed after padnas pushed it")
        pushed_md5 = hashlib.md5(b"what padnas pushed").hexdigest()
        rows = {
            "outside": [{"path": "/data/local/tmp/notes.txt", "md5": pushed_md5}],
            "user-file": [{"path": "/data/local/tmp/models/keep_me.txt", "md5": pushed_md5}],
            "changed": [{"path": "/data/local/tmp/models/000001-x.tflite", "md5": pushed_md5}],
            "damaged": None,
        }[forgery]
        manifest = _leave_manifest(padnas_cache, peer.serial, rows or [])
        if forgery == "damaged":
            manifest.write_text('{"serial": "' + peer.serial + '", "pushed": [')
        before = frozen(phone / "notes.txt", models / "keep_me.txt", models / "000001-x.tflite")
        with backend(peer, env, prof) as b:
            b.describe()
        assert before.changed() == []
        assert not [c for c in peer.shell.commands if c.startswith("rm ") and "notes" in c]
        if forgery == "changed":
            assert any("has changed since" in w for w in b.warnings)
        elif forgery != "damaged":
            assert any("is not a model padnas pushes" in w for w in b.warnings)
        else:
            assert any("damaged record of models pushed" in w for w in b.warnings)
