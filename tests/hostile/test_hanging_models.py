"""A model that never finishes: a TFLite WHILE loop whose condition stays true hangs LiteRT's
``invoke()`` for good. The host backend times every model in a child process with a budget
derived from its settings (as the phone path does), so such a model is stopped and refused in
one line -- a runtime failure, exit 1 -- with nothing stored, and the next model is timed by a
fresh child. The models are converted by TensorFlow in a child process (a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_support import REPO

from latency.backends.host import HostBackend, HostTimeout
from latency.errors import ModelFileError
from padnas.core.errors import exit_code

BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf

def save(fn, name):
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    with open(os.path.join(sys.argv[1], name), "wb") as f:
        f.write(conv.convert())

@tf.function(input_signature=[tf.TensorSpec([1], tf.float32)])
def forever(x):
    # i only grows, so i > -1 stays true: the loop never ends
    _, y = tf.while_loop(lambda i, x: i > -1.0, lambda i, x: (i + 1.0, x), [tf.constant(0.0), x])
    return y

@tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
def add_one(x):
    return x + 1.0

save(forever, "forever.tflite")
save(add_one, "add_one.tflite")
"""

#: a budget of about two seconds: one attempt, a short loop, a small margin
FAST = {"max_s": 0.2, "min_s": 0.02, "warmup_s": 0.01, "retries": 0, "timeout_margin_s": 2.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """``forever.tflite`` (a WHILE loop that never ends) and ``add_one.tflite`` (a valid model),
    converted by TensorFlow in a child process so this one stays free of it."""
    out = tmp_path_factory.mktemp("hanging")
    subprocess.run(
        [sys.executable, "-c", BUILD, str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_a_model_that_never_ends_is_stopped_within_its_budget(models):
    backend = HostBackend({"name": "host", "transport": "host"}, **FAST)
    assert 2.0 < backend.timeout_s < 3.0
    try:
        t0 = time.monotonic()
        with pytest.raises(HostTimeout, match=r"forever\.tflite on the host did not end within"):
            backend.measure(models / "forever.tflite")
        assert time.monotonic() - t0 < 20
        assert backend._timer is None  # the child was killed, not left spinning
        # a hang is a runtime failure (exit 1), not a bad-input refusal
        assert exit_code(HostTimeout("x")) == 1
        # the next model is timed by a fresh child
        stats = backend.measure(models / "add_one.tflite")
        assert stats.source == "measured" and stats.ms > 0
    finally:
        backend.close()


def test_a_child_that_dies_is_reported_and_replaced(models):
    """A child that dies while timing (as a model that crashes LiteRT makes it) is a refused
    model file naming the signal, not a hang or a traceback; the next model gets a new child."""
    import os
    import signal

    backend = HostBackend({"name": "host", "transport": "host"}, **FAST)
    try:
        backend.measure(models / "add_one.tflite")
        os.kill(backend._timer.proc.pid, signal.SIGKILL)
        backend._timer.proc.wait(5)
        with pytest.raises(ModelFileError, match=r"LiteRT crashed on add_one\.tflite \(signal"):
            backend.measure(models / "add_one.tflite")
        assert backend.measure(models / "add_one.tflite").ms > 0
    finally:
        backend.close()


@pytest.mark.slow  # the measurement guard exports its reference op first (~10-20 s of TF)
def test_measure_on_the_host_refuses_a_model_that_never_ends(
    models, tmp_path, latency_cli, padnas_cache, expect_error, frozen
):
    profile = json.loads((REPO / "device_profiles" / "host.json").read_text())
    profile["measure"].update(FAST)
    path = tmp_path / "quick-host.json"
    path.write_text(json.dumps(profile))
    good = latency_cli("measure", models / "add_one.tflite", "--device", path)
    assert good.exit_code == 0, good.output
    before = frozen(padnas_cache / "measurements", models)
    t0 = time.monotonic()
    r = latency_cli("measure", models / "forever.tflite", "--device", path)
    assert time.monotonic() - t0 < 60
    expect_error(r, 1, "forever.tflite on the host did not end within", unchanged=before)
