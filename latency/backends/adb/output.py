"""Parse the text that TFLite/LiteRT ``benchmark_model`` prints into timing statistics.

benchmark_model's output changed over the years and a latency table built from a misread line
is silently wrong, so this parser is strict: it accepts every format we know of, picks the
*measured* run (never the warm-up), checks the numbers against each other, and raises
:class:`BenchmarkOutputError` for anything else. It never guesses a number.

Formats handled (all timings are microseconds):

- a run header ``Running benchmark for at least N iterations ...`` (older:
  ``Running benchmark for N iterations``) followed by a statistics line. The warm-up run comes
  first and the measured (regular) run second.
- statistics lines ``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..``, older ones
  without ``first=``, LiteRT's ``p5=.. median=.. p95=..`` suffix, and the all-equal form
  ``count=N curr=X(all same)`` (``count=1 curr=X`` for a single run); with or without an
  ``INFO:`` or glog/logcat prefix.
- summary lines: ``Inference timings in us: Init: .., First inference: .., Warmup (avg): ..,
  Inference (avg): ..``; the older ``Average inference timings in us: Warmup: .., Init: ..,
  Inference: ..`` and the oldest ``.., no stats: ..``. When both a summary and statistics lines
  exist, the summary's inference average identifies the measured statistics line.
- ``Unconsumed cmdline flags: ..``: benchmark_model only warns about a mistyped or unknown flag
  and goes on with defaults, so the warning is kept for the caller to show.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from latency.backends.base import LatencyStats
from latency.errors import LatencyRuntimeError


class BenchmarkOutputError(LatencyRuntimeError):
    """benchmark_model's output holds no trustworthy timing of the measured run."""


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_KV = re.compile(rf"\b(count|first|curr|min|max|avg|std|p5|median|p95)=({_NUM})", re.IGNORECASE)
_ALL_SAME = re.compile(r"\(all same\)")
_STATS = re.compile(r"(?:^|[\s:\]])count=\d+\b")
_HEADER = re.compile(r"Running benchmark for (?:at least )?(\d+) iterations")
_SUMMARY_NEW = re.compile(r"Inference timings in us:(.*)$")
_SUMMARY_OLD = re.compile(r"Average inference timings in us:(.*)$")
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(.*\S)")
_SUMMARY_FIELD = re.compile(rf"([A-Za-z][A-Za-z ()]*?):\s*({_NUM})")
_FAILURE = re.compile(
    r"(Failed to [^\n]*|Segmentation fault[^\n]*|Aborted[^\n]*|not found[^\n]*|"
    r"Permission denied[^\n]*|ERROR: [^\n]*)"
)

#: z-score of the 10th/90th percentile of a normal distribution
_Z90 = 1.2815515655446004


@dataclass(frozen=True)
class RunStats:
    """One statistics line (one batch of runs: the warm-up or the measured one), in us."""

    count: int
    avg: float
    min: float
    max: float
    std: float
    first: float | None = None
    curr: float | None = None
    p5: float | None = None
    median: float | None = None
    p95: float | None = None
    line: str = field(default="", compare=False)

    @property
    def has_percentiles(self) -> bool:
        return self.median is not None


@dataclass(frozen=True)
class BenchmarkResult:
    """The measured run of one benchmark_model invocation (timings in microseconds)."""

    measured: RunStats | None
    inference_avg_us: float
    warmup: RunStats | None = None
    init_us: float | None = None
    warnings: tuple[str, ...] = ()
    format: str = ""
    unconsumed_flags: tuple[str, ...] = ()

    @property
    def count(self) -> int | None:
        return self.measured.count if self.measured else None

    def to_latency_stats(
        self, *, requested_runs: int | None = None, source: str = "measured", extra=None
    ) -> LatencyStats:
        """Milliseconds for the store: the median where benchmark_model printed percentiles,
        else the mean. benchmark_model prints p5/p95, not p10/p90, so those stand in for the
        spread (slightly wider); without percentiles the spread is a normal approximation from
        avg/std clipped to [min, max]. ``extra['spread']`` says which."""
        info = dict(extra or {})
        info["format"] = self.format
        if self.warnings:
            info["warnings"] = list(self.warnings)
        m = self.measured
        if m is None:
            # summary-only output: the mean is all there is
            if requested_runs is None:
                raise BenchmarkOutputError(
                    "benchmark_model printed only an average, not how many runs it made"
                )
            ms = self.inference_avg_us / 1000.0
            info["spread"] = "none (summary line only)"
            info["n_from"] = "requested"
            return LatencyStats(ms, ms, ms, int(requested_runs), source, info)
        if m.has_percentiles:
            center, lo, hi = m.median, m.p5, m.p95
            info["spread"] = "p5-p95"
            info["avg_ms"] = m.avg / 1000.0
        else:
            center = m.avg
            lo = max(m.min, m.avg - _Z90 * m.std)
            hi = min(m.max, m.avg + _Z90 * m.std)
            info["spread"] = "normal approx. from avg/std"
        info["min_ms"] = m.min / 1000.0
        info["max_ms"] = m.max / 1000.0
        return LatencyStats(center / 1000.0, lo / 1000.0, hi / 1000.0, m.count, source, info)


def parse_stats_line(line: str) -> RunStats:
    """One ``count=...`` line -> :class:`RunStats`; raises on an incomplete or absurd line."""
    values: dict[str, float] = {}
    for key, val in _KV.findall(line):
        key = key.lower()
        if key in values:
            raise BenchmarkOutputError(f"statistics line repeats {key}=: {line.strip()[:160]}")
        values[key] = float(val)
    if "count" not in values:
        raise BenchmarkOutputError(f"no count= in statistics line: {line.strip()[:160]}")
    count = int(values["count"])
    if count < 1:
        raise BenchmarkOutputError(f"benchmark_model made no runs: {line.strip()[:160]}")
    full = all(k in values for k in ("min", "max", "avg", "std"))
    if full:
        avg, lo, hi, std = values["avg"], values["min"], values["max"], values["std"]
    elif not any(k in values for k in ("min", "max", "avg", "std")) and "curr" in values:
        # every run took the same time: benchmark_model prints only count= and curr=
        if count > 1 and not _ALL_SAME.search(line):
            raise BenchmarkOutputError(f"incomplete statistics line: {line.strip()[:160]}")
        avg = lo = hi = values["curr"]
        std = 0.0
    else:
        raise BenchmarkOutputError(f"incomplete statistics line: {line.strip()[:160]}")
    pct = [values.get(k) for k in ("p5", "median", "p95")]
    if any(p is not None for p in pct) and not all(p is not None for p in pct):
        raise BenchmarkOutputError(f"incomplete percentiles: {line.strip()[:160]}")
    numbers = [avg, lo, hi, std] + [p for p in pct if p is not None]
    if not all(math.isfinite(x) and x >= 0 for x in numbers):
        raise BenchmarkOutputError(f"non-finite or negative timing: {line.strip()[:160]}")
    eps = 1e-6 * max(hi, 1.0) + 0.5  # avg is printed with 6 significant digits
    if not lo - eps <= avg <= hi + eps:
        raise BenchmarkOutputError(f"inconsistent statistics (avg outside min..max): {line[:160]}")
    if pct[0] is not None and not (
        lo - eps <= pct[0] <= pct[1] + eps and pct[1] <= pct[2] + eps and pct[2] <= hi + eps
    ):
        raise BenchmarkOutputError(f"inconsistent percentiles: {line.strip()[:160]}")
    return RunStats(
        count=count,
        avg=avg,
        min=lo,
        max=hi,
        std=std,
        first=values.get("first"),
        curr=values.get("curr"),
        p5=pct[0],
        median=pct[1],
        p95=pct[2],
        line=line.strip(),
    )


def _parse_summary(text: str, old: bool) -> dict[str, float]:
    fields = {}
    for name, val in _SUMMARY_FIELD.findall(text):
        fields[name.strip().lower()] = float(val)
    if old:
        # "Warmup: W, Init: I, Inference: X", "..., no stats: X", or the very first
        # "Average inference timings in us: X , Warmup: W"
        inference = fields.get("inference", fields.get("no stats"))
        lead = re.match(rf"\s*({_NUM})\s*,", text)
        if inference is None and lead:
            inference = float(lead.group(1))
    else:
        inference = fields.get("inference (avg)")
    if inference is None or not math.isfinite(inference) or inference < 0:
        raise BenchmarkOutputError(f"summary line without an inference average: {text[:160]}")
    return {"inference": inference, "init": fields.get("init", math.nan)}


def parse_benchmark_output(text: str) -> BenchmarkResult:
    """Parse a whole benchmark_model output; see the module docstring for what is accepted."""
    if not isinstance(text, str):
        raise BenchmarkOutputError("benchmark_model output is not text")
    warnings: list[str] = []
    unconsumed: list[str] = []
    headers: list[tuple[int, int]] = []  # (line index, iterations)
    stats: list[tuple[int, RunStats]] = []
    summary: dict[str, float] | None = None
    fmt_summary = ""
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        m = _UNCONSUMED.search(line)
        if m:
            unconsumed.extend(m.group(1).split())
            warnings.append(f"benchmark_model ignored unknown flags: {m.group(1)}")
            continue
        m = _HEADER.search(line)
        if m:
            headers.append((i, int(m.group(1))))
            continue
        m = _SUMMARY_OLD.search(line)
        if m:
            summary, fmt_summary = _parse_summary(m.group(1), old=True), "old-summary"
            continue
        m = _SUMMARY_NEW.search(line)
        if m:
            summary, fmt_summary = _parse_summary(m.group(1), old=False), "summary"
            continue
        if _STATS.search(line):
            stats.append((i, parse_stats_line(line)))

    measured, warmup = _pick_measured(headers, stats, summary, text)
    if measured is None and summary is None:
        raise BenchmarkOutputError(_no_timing_message(text))
    if measured is not None:
        fmt = "stats+percentiles" if measured.has_percentiles else "stats"
        if summary is not None:
            fmt += "+" + fmt_summary
        avg = measured.avg
    else:
        fmt = fmt_summary + "-only"
        avg = summary["inference"]
    init = summary.get("init") if summary else None
    return BenchmarkResult(
        measured=measured,
        inference_avg_us=avg,
        warmup=warmup,
        init_us=None if init is None or math.isnan(init) else init,
        warnings=tuple(warnings),
        format=fmt,
        unconsumed_flags=tuple(unconsumed),
    )


def _close(a: float, b: float) -> bool:
    # both sides print the same double with 6 significant digits
    return abs(a - b) <= 1e-5 * max(abs(a), abs(b)) + 0.51


def _pick_measured(headers, stats, summary, text):
    """Which statistics line belongs to the measured run (never the warm-up)."""
    if not stats:
        return None, None
    if summary is not None:
        target = summary["inference"]
        # benchmark_model prints the measured run last; search backwards for the match
        for idx in range(len(stats) - 1, -1, -1):
            if _close(stats[idx][1].avg, target):
                warm = stats[idx - 1][1] if idx > 0 else None
                return stats[idx][1], warm
        raise BenchmarkOutputError(
            f"the summary's inference average ({target:g} us) matches no statistics line"
        )
    # No summary: rely on the run headers. The first header is the warm-up run; a lone
    # statistics line after a lone header is the warm-up of a run that died before measuring.
    if len(headers) >= 2:
        start = headers[1][0]
        after = [s for i, s in stats if i > start]
        before = [s for i, s in stats if headers[0][0] < i < start]
        if after:
            return after[0], (before[0] if before else None)
        raise BenchmarkOutputError(
            "benchmark_model started the measured run but printed no statistics for it "
            "(killed or crashed?)" + _tail(text)
        )
    if len(headers) == 1:
        raise BenchmarkOutputError(
            "benchmark_model printed only the warm-up run; the measured run is missing"
            + _tail(text)
        )
    if len(stats) == 1:
        raise BenchmarkOutputError(
            "one statistics line without run headers or summary: cannot tell the warm-up "
            "from the measured run"
        )
    # headerless output with several lines: the last one is the measured run
    return stats[-1][1], stats[-2][1]


def _tail(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return (": ..." + " | ".join(lines[-n:])[-240:]) if lines else ""


def _no_timing_message(text: str) -> str:
    if not text.strip():
        return "benchmark_model printed nothing"
    m = _FAILURE.search(text)
    if m:
        return f"benchmark_model failed: {m.group(1).strip()[:200]}"
    return "no benchmark_model timings in the output" + _tail(text)
