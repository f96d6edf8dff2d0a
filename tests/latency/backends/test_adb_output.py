# ruff: noqa: E501  (benchmark_model prints long lines; the samples keep them verbatim)
"""Parser for benchmark_model output: every known format, and refusal of anything else."""

from __future__ import annotations

import pytest

from latency.backends.adb.output import (
    BenchmarkOutputError,
    parse_benchmark_output,
    parse_stats_line,
)

# Current TFLite (2.x) on Android: INFO: prefix, warm-up then measured run, new summary.
CURRENT_INFO = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [30]
INFO: Min runs duration (seconds): [0]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/padnas/m/ibconv-k3-e3-s1-i28x28x40-o28x28x40.tflite]
INFO: #threads used for CPU inference: [1]
INFO: Use xnnpack: [1]
INFO: Loaded model /data/local/tmp/padnas/m/ibconv-k3-e3-s1-i28x28x40-o28x28x40.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
INFO: The input model file size (MB): 0.0234
INFO: Initialized session in 3.712ms.
INFO: Running benchmark for at least 5 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=5 first=912 curr=655 min=648 max=912 avg=707.4 std=103

INFO: Running benchmark for at least 30 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=30 first=651 curr=649 min=640 max=702 avg=655.233 std=12

INFO: Inference timings in us: Init: 3712, First inference: 912, Warmup (avg): 707.4, Inference (avg): 655.233
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=2.94141 overall=3.17969
rc=0
"""

# Same tool without the INFO: prefix (Linux build / older logging).
CURRENT_PLAIN = "\n".join(
    ln[len("INFO: ") :] if ln.startswith("INFO: ") else ln for ln in CURRENT_INFO.splitlines()
)

# LiteRT nightly: percentiles appended to every statistics line.
LITERT = """\
INFO: Initialized session in 2.05ms.
INFO: Running benchmark for at least 5 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=5 first=1410 curr=1222 min=1215 max=1410 avg=1259.6 std=75 p5=1215 median=1226 p95=1410

INFO: Running benchmark for at least 30 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=30 first=1230 curr=1219 min=1208 max=1388 avg=1231.5 std=33 p5=1210 median=1221 p95=1301

INFO: Inference timings in us: Init: 2050, First inference: 1410, Warmup (avg): 1259.6, Inference (avg): 1231.5
"""

# The 2018/2019 TFLite tool: fixed iteration headers and the "no stats" summary.
OLD_NO_STATS = """\
Num runs: [50]
Inter-run delay (seconds): [-1]
Num threads: [1]
Graph: [/data/local/tmp/mobilenet_v2_1.0_224.tflite]
Loaded model /data/local/tmp/mobilenet_v2_1.0_224.tflite
resolved reporter
Initialized session in 6.081ms
Running benchmark for 1 iterations
count=1 curr=98214

Running benchmark for 50 iterations
count=50 first=91544 curr=90987 min=90302 max=97121 avg=91230.4 std=1113

Average inference timings in us: Warmup: 98214, Init: 6081, no stats: 91230.4
"""

# Mid-2019: "Inference:" in the old-style summary.
OLD_INFERENCE = """\
Initialized session in 4.11ms
Running benchmark for at least 1 iterations and at least 0.5 seconds
count=6 first=95102 curr=88631 min=88012 max=95102 avg=89733.8 std=2514

Running benchmark for at least 50 iterations and at least 1 seconds
count=50 first=88411 curr=88203 min=87512 max=90950 avg=88376.1 std=602

Average inference timings in us: Warmup: 89733.8, Init: 4110, Inference: 88376.1
"""

# Android benchmark app: only the logcat summary line exists.
SUMMARY_ONLY = (
    "05-17 10:22:31.412  8123  8150 E tflite  : Average inference timings in us: "
    "Warmup: 91471, Init: 4108, Inference: 80660.1\n"
)

ALL_SAME = """\
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=1 curr=12

INFO: Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=10 curr=11(all same)

INFO: Inference timings in us: Init: 800, First inference: 12, Warmup (avg): 12, Inference (avg): 11
"""

ALL_SAME_LITERT = """\
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=1 curr=14 p5=14 median=14 p95=14

INFO: Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
INFO: count=10 curr=13(all same) p5=13 median=13 p95=13
"""

GLOG_PREFIX = """\
2024-03-02 11:04:18.101 I tflite/tools/benchmark/benchmark_model.cc:200] Running benchmark for at least 2 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
2024-03-02 11:04:18.190 I tflite/tools/benchmark/benchmark_model.cc:241] count=2 first=4402 curr=4310 min=4310 max=4402 avg=4356 std=46
2024-03-02 11:04:18.191 I tflite/tools/benchmark/benchmark_model.cc:200] Running benchmark for at least 20 iterations and at least 0 seconds but terminate if exceeding 20 seconds.
2024-03-02 11:04:18.290 I tflite/tools/benchmark/benchmark_model.cc:241] count=20 first=4300 curr=4299 min=4281 max=4420 avg=4311.45 std=30
"""


def test_current_format_with_info_prefix_takes_the_measured_run():
    r = parse_benchmark_output(CURRENT_INFO)
    assert r.count == 30
    assert r.measured.avg == pytest.approx(655.233)
    assert r.warmup.count == 5 and r.warmup.avg == pytest.approx(707.4)
    assert r.init_us == 3712
    assert r.warnings == ()
    s = r.to_latency_stats()
    assert s.source == "measured" and s.n == 30
    assert s.ms == pytest.approx(0.655233)
    assert 0.640 <= s.p10 <= s.ms <= s.p90 <= 0.702
    assert s.extra["spread"].startswith("normal")


def test_current_format_without_prefix_is_identical():
    a = parse_benchmark_output(CURRENT_INFO)
    b = parse_benchmark_output(CURRENT_PLAIN)
    assert a.measured == b.measured and a.warmup == b.warmup


def test_litert_percentiles_give_median_and_p5_p95():
    r = parse_benchmark_output(LITERT)
    assert r.measured.median == 1221 and r.measured.p5 == 1210 and r.measured.p95 == 1301
    s = r.to_latency_stats()
    assert (s.ms, s.p10, s.p90, s.n) == pytest.approx((1.221, 1.210, 1.301, 30))
    assert s.extra["spread"] == "p5-p95"
    assert s.extra["avg_ms"] == pytest.approx(1.2315)


def test_old_no_stats_summary():
    r = parse_benchmark_output(OLD_NO_STATS)
    assert r.count == 50 and r.measured.avg == pytest.approx(91230.4)
    assert r.warmup.count == 1 and r.warmup.avg == 98214
    assert r.format.endswith("old-summary")


def test_old_inference_summary_and_no_prefix():
    r = parse_benchmark_output(OLD_INFERENCE)
    assert r.count == 50 and r.measured.min == 87512
    assert r.warmup.count == 6


def test_summary_only_needs_the_requested_run_count():
    r = parse_benchmark_output(SUMMARY_ONLY)
    assert r.measured is None and r.inference_avg_us == pytest.approx(80660.1)
    with pytest.raises(BenchmarkOutputError, match="how many runs"):
        r.to_latency_stats()
    s = r.to_latency_stats(requested_runs=50)
    assert s.ms == pytest.approx(80.6601) and s.n == 50 and s.extra["n_from"] == "requested"


def test_all_same_forms():
    r = parse_benchmark_output(ALL_SAME)
    assert r.count == 10 and r.measured.avg == 11 and r.measured.std == 0
    s = r.to_latency_stats()
    assert s.ms == s.p10 == s.p90 == pytest.approx(0.011)
    r2 = parse_benchmark_output(ALL_SAME_LITERT)
    assert r2.count == 10 and r2.measured.median == 13 and r2.warmup.count == 1


def test_glog_prefix_and_no_summary_uses_headers():
    r = parse_benchmark_output(GLOG_PREFIX)
    assert r.count == 20 and r.measured.avg == pytest.approx(4311.45)
    assert r.warmup.count == 2


def test_scientific_notation_average():
    line = "count=3 first=1200000 curr=1180000 min=1180000 max=1200000 avg=1.19e+06 std=9428"
    st = parse_stats_line(line)
    assert st.avg == pytest.approx(1.19e6)


def test_unconsumed_flags_are_surfaced():
    text = "WARN: Unconsumed cmdline flags: --use_xnnpak=true --num_thread=1\n" + CURRENT_INFO
    r = parse_benchmark_output(text)
    assert r.unconsumed_flags == ("--use_xnnpak=true", "--num_thread=1")
    assert any("--use_xnnpak" in w for w in r.warnings)
    assert r.to_latency_stats().extra["warnings"] == list(r.warnings)


def test_only_warmup_is_never_taken_as_the_measurement():
    cut = CURRENT_INFO.split("INFO: Running benchmark for at least 30")[0]
    with pytest.raises(BenchmarkOutputError, match="warm-up"):
        parse_benchmark_output(cut)
    cut2 = CURRENT_INFO.split("INFO: count=30")[0]
    with pytest.raises(BenchmarkOutputError, match="no statistics"):
        parse_benchmark_output(cut2)


def test_summary_must_match_a_statistics_line():
    bad = CURRENT_INFO.replace("Inference (avg): 655.233", "Inference (avg): 9999")
    with pytest.raises(BenchmarkOutputError, match="matches no statistics line"):
        parse_benchmark_output(bad)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "printed nothing"),
        ("\x00\x13garbage \xff lines\nmore noise 12 34\n", "no benchmark_model timings"),
        ("/data/local/tmp/padnas/benchmark_model: not found\nrc=127\n", "failed"),
        ("ERROR: Failed to allocate tensors!\nrc=1\n", "failed"),
        ("INFO: count=0\n", "no runs"),
        ("INFO: count=30 first=5 curr=5 min=4 max=6 avg=5\n", "incomplete"),
        ("INFO: count=30 first=5 curr=5 min=4 max=6 avg=9 std=1\n", "inconsistent"),
        ("INFO: count=30 first=5 curr=5 min=4 max=6 avg=5 std=1 p5=4 median=7 p95=6\n", "incon"),
        ("INFO: count=30 first=5 curr=5 min=4 max=6 avg=nan std=1\n", "non-finite"),
        ("INFO: count=30 first=5 curr=5 min=-4 max=6 avg=5 std=1\n", "negative"),
        ("INFO: count=30 curr=5\n", "incomplete"),
        ("INFO: count=30 first=5 curr=5 min=4 max=6 avg=5 std=1 p5=4\n", "percentiles"),
        ("count=30 first=5 curr=5 min=4 max=6 avg=5 std=1\n", "cannot tell"),
        ("Inference timings in us: Init: 5, First inference: 7\n", "inference average"),
    ],
)
def test_garbage_is_an_error_never_a_number(text, match):
    with pytest.raises(BenchmarkOutputError, match=match):
        parse_benchmark_output(text)
