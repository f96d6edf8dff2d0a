"""An Android phone as a device: push the ``.tflite``, run ``benchmark_model`` pinned with
``taskset``, parse its output (transport ``adb`` in a device profile).

One measurement: (cool down) -> push the model to ``<remote_dir>/models/`` -> ``taskset MASK
benchmark_model --graph=... --num_threads=1 --use_xnnpack=true --num_runs=N --warmup_runs=W
--min_secs=0 --warmup_min_secs=0 --max_secs=S`` -> remove the model -> read the pinned core's
frequency. ``min_secs=0`` matters: benchmark_model otherwise keeps running a tiny block for a
whole second (thousands of runs), so the configured run count would mean nothing. Clean-up
removes only the models this backend pushed (a manifest it keeps, also on the host: see
:mod:`latency.backends.adb.manifest`, so the next run removes what a killed one left, and
nothing else), and the models folder only when that leaves it empty: the remote folder may hold
the user's own files.

Robustness, because a profile runs for hours over Wi-Fi:

- every call has explicit timeouts (see :mod:`latency.backends.adb.transport`);
- a dropped connection, a silent phone or unparsable output is retried after reconnecting,
  with exponential backoff; after ``retries`` attempts :class:`DeviceLost` (a BackendError,
  ``fatal``) ends the profile — everything measured so far is already in the store and the
  same command resumes;
- thermal throttling: the pinned core's ``scaling_max_freq`` (the cap thermal management
  lowers; ``scaling_cur_freq`` where that is unreadable) is read before profiling and after
  each run; a drop of more than ``throttle.tolerance`` warns, cools down and re-measures;
- every remote argument goes through ``shlex.quote``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from latency.backends.adb import binary as benchmark_binary
from latency.backends.adb.cpus import AdbProfileError, parse_cpu_list, parse_mask
from latency.backends.adb.manifest import PushManifest, forget
from latency.backends.adb.output import BenchmarkOutputError, parse_benchmark_output
from latency.backends.adb.transport import AdbError, AdbLink, AdbNoDevice
from latency.backends.base import Backend, BackendError, LatencyStats

BENCHMARK_DEFAULTS = {
    "num_runs": 50,
    "warmup_runs": 5,
    "min_secs": 0,
    "warmup_min_secs": 0,
    "max_secs": 20,
    "use_xnnpack": True,
    "extra_flags": [],
}
ADB_DEFAULTS = {
    "remote_dir": "/data/local/tmp/padnas",
    "command_timeout_s": 30.0,
    "connect_timeout_s": 10.0,
    "auth_timeout_s": 30.0,
    "timeout_margin_s": 60.0,
    "retries": 4,
    "backoff_s": 2.0,
}
THROTTLE_DEFAULTS = {"tolerance": 0.05, "max_remeasure": 2, "cooldown_s": 30.0}
CPU_SYSFS = "/sys/devices/system/cpu"


class DeviceLost(BackendError):
    """The phone stopped answering and reconnecting did not help; stop profiling (resumable)."""

    fatal = True


class DeviceThrottled(BackendError):
    """The pinned core stays throttled after cooling down; stop profiling (resumable)."""

    fatal = True


def _warn_stderr(msg: str) -> None:
    try:
        from tqdm import tqdm

        tqdm.write(f"warning: {msg}", file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(f"warning: {msg}", file=sys.stderr)


class AdbBackend(Backend):
    """Times ``.tflite`` files on a phone over ADB (source ``measured``)."""

    def __init__(
        self,
        profile: dict,
        serial: str | None = None,
        *,
        benchmark_model: str | Path | None = None,
        adb_key: str | Path | None = None,
        warn: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **overrides,
    ):
        self.profile = profile
        self.name = profile["name"]
        self.serial = (
            serial or profile.get("adb", {}).get("serial") or os.environ.get("ANDROID_SERIAL")
        )
        if not self.serial:
            raise AdbProfileError(
                f"device {self.name!r} is reached over ADB: pass --serial HOST:PORT (after "
                "`adb tcpip 5555`) or --serial usb"
            )
        self.bench = {**BENCHMARK_DEFAULTS, **profile.get("benchmark", {})}
        self.adb = {**ADB_DEFAULTS, **profile.get("adb", {})}
        self.throttle = {**THROTTLE_DEFAULTS, **profile.get("throttle", {})}
        self.cooldown_s = float(profile.get("cooldown_s", 0.0))
        for key, value in overrides.items():  # e.g. backoff_s=0.01 in tests
            if value is None:
                continue
            if key in self.adb:
                self.adb[key] = value
            elif key in self.throttle:
                self.throttle[key] = value
            elif key == "cooldown_s":
                self.cooldown_s = float(value)
            else:
                raise TypeError(f"AdbBackend got an unknown option {key!r}")
        self.mask = str(profile.get("cpu_mask", "80"))
        self.cores = parse_mask(self.mask)
        self.threads = int(profile.get("threads", 1))
        self.binary = benchmark_binary.resolve(benchmark_model)
        self.remote_dir = self.adb["remote_dir"].rstrip("/")
        self.remote_bin = f"{self.remote_dir}/benchmark_model"
        self.remote_models = f"{self.remote_dir}/models"
        self.warn = warn or _warn_stderr
        self.sleep = sleep
        self.link = AdbLink(
            self.serial,
            adb_key=adb_key,
            connect_timeout_s=float(self.adb["connect_timeout_s"]),
            auth_timeout_s=float(self.adb["auth_timeout_s"]),
            on_prompt=self.warn,
        )
        self._ready = self._ever_ready = False
        self._facts: dict = {}
        self._baseline_khz: int | None = None
        self._freq_file: str | None = None
        self._count = 0
        self._warned: set[str] = set()
        # the manifest of models this backend pushed and has not removed yet: clean-up deletes
        # these and nothing else, so files of the user's beside them on the phone survive; it is
        # kept on the host too, for the next run to clean up after a killed one
        self._pushed: list[str] = []
        self._manifest = PushManifest(self.serial, self.remote_models)
        self._leftovers_checked = False

    # -- set-up -----------------------------------------------------------------------------

    def _sh(self, command: str, timeout_s: float | None = None) -> tuple[str, int]:
        return self.link.shell(command, timeout_s or float(self.adb["command_timeout_s"]))

    def _ensure_ready(self) -> None:
        if self._ready and self.link.connected:
            return
        self.link.connect()
        if not self._facts:
            self._facts = self._read_facts()
        q = shlex.quote
        self._remove_pushed()  # models left behind by a connection that dropped mid-measurement
        if not self._leftovers_checked:  # models left behind by a run that was killed
            self._remove_leftovers()
            self._leftovers_checked = True
        out, rc = self._sh(f"mkdir -p {q(self.remote_models)}")
        if rc != 0:
            raise AdbError(f"{self.serial}: cannot create {self.remote_models}: {out.strip()}")
        self._install_binary()
        if self._baseline_khz is None:
            self._baseline_khz, self._freq_file = self._first_frequency()
        self._ready = self._ever_ready = True

    def _read_facts(self) -> dict:
        props = {
            "model": "ro.product.model",
            "manufacturer": "ro.product.manufacturer",
            "board": "ro.board.platform",
            "abi": "ro.product.cpu.abi",
            "android": "ro.build.version.release",
        }
        facts = {}
        for name, prop in props.items():
            out, rc = self._sh(f"getprop {shlex.quote(prop)}")
            if rc == 0 and out.strip():
                facts[name] = out.strip()
        out, rc = self._sh(f"cat {CPU_SYSFS}/possible")
        if rc == 0 and out.strip():
            try:
                possible = parse_cpu_list(out)
            except ValueError:
                possible = set()
            missing = [c for c in self.cores if possible and c not in possible]
            if missing:
                raise AdbProfileError(
                    f"cpu_mask {self.mask} selects CPU{missing[0]}, but {self.serial} has CPUs "
                    f"{out.strip()}: fix cpu_mask in the device profile"
                )
            facts["cpus"] = out.strip()
        abi = facts.get("abi", "")
        if self.binary["kind"] == "arm64" and abi and not abi.startswith("arm64"):
            raise AdbProfileError(
                f"{self.serial} is an {abi} phone; the arm64 benchmark_model cannot run on it"
            )
        return facts

    def _install_binary(self) -> None:
        """Push benchmark_model unless the phone already has this exact build; then check it."""
        q = shlex.quote
        out, rc = self._sh(f"md5sum {q(self.remote_bin)}")
        if rc != 0 or out.split()[:1] != [self.binary["md5"]]:
            timeout = float(self.adb["command_timeout_s"]) + self.binary["size"] / 1e6
            self.link.push(self.binary["path"], self.remote_bin, timeout, mode=0o755)
            out, rc = self._sh(f"chmod 755 {q(self.remote_bin)} && md5sum {q(self.remote_bin)}")
            if rc != 0 or out.split()[:1] != [self.binary["md5"]]:
                raise AdbError(f"{self.serial}: benchmark_model did not arrive intact: {out[:200]}")
        out, rc = self._sh(f"{q(self.remote_bin)} --help 2>&1")
        if "num_runs" not in out:
            hint = " (is it the Android arm64 build?)" if rc in (126, 127) or "ELF" in out else ""
            tail = " | ".join(out.strip().splitlines()[-2:])[:200]
            raise benchmark_binary.BenchmarkBinaryError(
                f"benchmark_model does not run on {self.serial}{hint}: rc={rc}: {tail}"
            )

    def _read_khz(self, core: int, leaf: str) -> int | None:
        out, rc = self._sh(f"cat {CPU_SYSFS}/cpu{core}/cpufreq/{leaf} 2>/dev/null")
        text = out.strip()
        return int(text) if rc == 0 and text.isdigit() else None

    def _first_frequency(self) -> tuple[int | None, str | None]:
        core = self.cores[0]
        gov, rc = self._sh(f"cat {CPU_SYSFS}/cpu{core}/cpufreq/scaling_governor 2>/dev/null")
        if rc == 0 and gov.strip():
            self._facts["governor"] = gov.strip()
        top = self._read_khz(core, "cpuinfo_max_freq")
        if top:
            self._facts["cpuinfo_max_freq_khz"] = top
        cap = self._read_khz(core, "scaling_max_freq")
        if cap:
            if top and cap < top * (1.0 - float(self.throttle["tolerance"])):
                self.warn_once(
                    f"{self.serial}: CPU{core} is capped at {cap} of {top} kHz before profiling "
                    "starts (a hot phone, or battery saver): timings will be slow until it is "
                    "lifted"
                )
            return cap, "scaling_max_freq"
        cur = self._read_khz(core, "scaling_cur_freq")
        if cur:
            return cur, "scaling_cur_freq"
        self.warn_once(
            f"{self.serial}: CPU{core}'s frequency is unreadable; thermal throttling will go "
            "unnoticed"
        )
        return None, None

    def warn_once(self, msg: str) -> None:
        if msg not in self._warned:
            self._warned.add(msg)
            self.warn(msg)

    # -- measuring --------------------------------------------------------------------------

    def _measure(self, path: Path) -> LatencyStats:
        remeasures = 0
        while True:
            stats = self._with_retries(path)
            if not stats.extra.get("throttled"):
                if remeasures:
                    stats.extra["remeasured_after_throttling"] = remeasures
                return stats
            if remeasures >= int(self.throttle["max_remeasure"]):
                raise DeviceThrottled(
                    f"{self.serial}: CPU{self.cores[0]} stays throttled "
                    f"({stats.extra['freq_khz']} < {self._baseline_khz} kHz) after "
                    f"{remeasures} cool-downs: let the phone cool (off the charger, out of the "
                    "sun) and rerun; everything measured so far is kept"
                )
            remeasures += 1
            self.warn(
                f"{self.serial}: CPU{self.cores[0]} throttled during {path.name} "
                f"({stats.extra['freq_khz']} vs {self._baseline_khz} kHz at start): cooling "
                f"down {self.throttle['cooldown_s']:g} s and measuring again"
            )
            self.sleep(float(self.throttle["cooldown_s"]))

    def _with_retries(self, path: Path) -> LatencyStats:
        retries = int(self.adb["retries"])
        last: Exception | None = None
        for attempt in range(retries + 1):
            if attempt:
                delay = min(float(self.adb["backoff_s"]) * 2 ** (attempt - 1), 60.0)
                why = str(last).removeprefix(f"{self.serial}: ")
                self.warn(f"{self.serial}: {why}; retrying in {delay:g} s ({attempt}/{retries})")
                self.sleep(delay)
            try:
                self._ensure_ready()
                return self._measure_once(path)
            except AdbError as exc:
                # a phone that answered before and is now unreachable may be back soon
                comeback = isinstance(exc, AdbNoDevice) and self._ever_ready
                if not (exc.transient or comeback):
                    raise
                last = exc
                self._ready = False
            except BenchmarkOutputError as exc:
                last = exc
        if isinstance(last, BenchmarkOutputError):
            raise BackendError(
                f"{self.serial}: benchmark_model output for {path.name} unusable "
                f"{retries + 1} times: {last}"
            )
        raise DeviceLost(
            f"{self.serial}: gave up after {retries + 1} attempts ({last}); everything "
            "measured so far is kept: reconnect the phone and rerun the same command to resume"
        )

    def flags(self, remote_model: str) -> list[str]:
        b = self.bench
        flags = [
            f"--graph={remote_model}",
            f"--num_threads={self.threads}",
            f"--use_xnnpack={'true' if b['use_xnnpack'] else 'false'}",
            f"--num_runs={int(b['num_runs'])}",
            f"--warmup_runs={int(b['warmup_runs'])}",
            f"--min_secs={b['min_secs']:g}",
            f"--warmup_min_secs={b['warmup_min_secs']:g}",
            f"--max_secs={b['max_secs']:g}",
        ]
        return flags + [str(f) for f in b.get("extra_flags", [])]

    def _measure_once(self, path: Path) -> LatencyStats:
        if self._count and self.cooldown_s > 0:
            self.sleep(self.cooldown_s)
        q = shlex.quote
        self._count += 1
        remote = f"{self.remote_models}/{self._count:06d}-{path.name}"
        size_timeout = float(self.adb["command_timeout_s"]) + path.stat().st_size / 1e6
        # listed before the push (a push cut short leaves a partial file), on the host as well
        self._pushed.append(remote)
        self._manifest.add(remote, benchmark_binary.md5_of(path))
        self.link.push(path, remote, size_timeout)
        argv = ["taskset", self.mask, self.remote_bin, *self.flags(remote)]
        run_timeout = 2 * float(self.bench["max_secs"]) + float(self.adb["timeout_margin_s"])
        try:
            out, rc = self._sh(" ".join(q(a) for a in argv) + " 2>&1", run_timeout)
        finally:
            if self.link.connected:
                with contextlib.suppress(AdbError):  # left in the manifest: removed later
                    self._remove_pushed()
        if rc != 0:
            tail = " | ".join(out.strip().splitlines()[-3:])[-300:]
            raise BackendError(
                f"{self.serial}: benchmark_model failed on {path.name} (rc={rc}): {tail}"
            )
        result = parse_benchmark_output(out)
        for w in result.warnings:
            self.warn_once(f"{self.serial}: {w}")
        extra = {
            "serial": self.serial,
            "cpu_mask": self.mask,
            "threads": self.threads,
            "governor": self._facts.get("governor"),
        }
        core = self.cores[0]
        cur = self._read_khz(core, "scaling_cur_freq")
        if cur is not None:
            extra["cur_freq_khz"] = cur
        if self._freq_file is not None:
            if self._freq_file == "scaling_cur_freq":
                now = cur
            else:
                now = self._read_khz(core, "scaling_max_freq")
            if now is not None:
                extra["freq_khz"] = now
                limit = self._baseline_khz * (1.0 - float(self.throttle["tolerance"]))
                if now < limit:
                    extra["throttled"] = True
        return result.to_latency_stats(requested_runs=int(self.bench["num_runs"]), extra=extra)

    # -- facts and clean-up -----------------------------------------------------------------

    def describe(self) -> dict:
        """Facts for the LUT header; connects first, so a phone that cannot be reached fails
        here, before anything is exported."""
        self._ensure_ready()
        return {
            "name": self.name,
            "transport": "adb",
            "serial": self.serial,
            **self._facts,
            "cpu_mask": self.mask,
            "cores": self.cores,
            "threads": self.threads,
            "baseline_freq_khz": self._baseline_khz,
            "benchmark_model": {k: self.binary[k] for k in ("md5", "size", "source", "kind")},
            "benchmark_flags": self.flags("MODEL")[1:],
        }

    def _remove_pushed(self) -> None:
        """Delete the models in the manifest (only those: never a whole folder)."""
        if not self._pushed:
            return
        _, rc = self._sh("rm -f " + " ".join(shlex.quote(p) for p in self._pushed))
        if rc == 0:
            self._pushed.clear()
            self._manifest.clear()

    def _remove_leftovers(self) -> None:
        """Models that runs of padnas which were killed left on this phone (their manifests on
        the host): removed when each is still exactly the file pushed (its MD5); a file that
        differs is named and kept, and nothing outside the manifests is touched."""
        found = self._manifest.leftovers(self.warn)
        recorded = {p: m for _, _, entries in found for p, m in entries.items()}
        removed = True
        if recorded:
            q = shlex.quote
            out, _ = self._sh("md5sum " + " ".join(q(p) for p in recorded) + " 2>/dev/null")
            on_phone = {}
            for line in out.splitlines():
                md5, _, path = line.strip().partition("  ")
                on_phone[path] = md5
            same = [p for p, m in recorded.items() if on_phone.get(p) == m]
            for p in recorded:
                if p in on_phone and p not in same:
                    self.warn_once(
                        f"{self.serial}: left {p} in place: a killed run of padnas pushed a "
                        "model there, but the file has changed since, so it is not padnas's"
                    )
            if same:
                _, rc = self._sh("rm -f " + " ".join(q(p) for p in same))
                removed = rc == 0
        for manifest, fd, _ in found:
            if removed:
                forget(manifest, fd)
            else:  # the next run tries again
                os.close(fd)

    def close(self) -> None:
        if self.link.connected:
            with contextlib.suppress(AdbError):
                self._remove_pushed()
                # the models folder goes only if nothing else is in it (rmdir refuses otherwise)
                self._sh(f"rmdir {shlex.quote(self.remote_models)} 2>/dev/null")
        self.link.close()
        self._ready = False
        self._manifest.close()  # kept on the host while it lists models left on the phone
