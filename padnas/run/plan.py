"""Planning a search: the LUT, the latency window and the settings, all checked before any
training, so bad input costs seconds rather than a training run.

The window defaults to the paper's on a Pixel 3 table; for any other device it is derived from the
table itself (percentiles of random architectures' latencies), because a fixed number of
milliseconds means nothing across devices. A window is refused when it misses the space's
reachable range or when too few random architectures meet it to seed a CES population.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from latency.lut.model import LatencyModel
from latency.lut.table import bare_profile, load_lut
from latency.profiling.profile import stored_lut
from latency.variants import DEFAULT_PRECISION
from padnas.core.errors import UsageError
from padnas.run.settings import FINAL_MODELS, SearchSettings, get_preset
from padnas.search.ceiling import CeilingConfig
from padnas.search.ces import CESConfig
from padnas.search.prune import check_p_th
from padnas.search.window import Gate, LatencyWindow, WindowError, sample_admissible
from padnas.space import DEPLOY_RESOLUTION, get_space

#: The paper's windows on Pixel 3 (TFLite), per space, and where each comes from. basic and large:
#: Section 4.1. v3: the paper states none; its Table 4 V3 models lie at 40.8-55.1 ms, hence 40-56.
#: On the shipped v3 estimate the space reaches 29.0..114.8 ms and 7 of 10,000 uniform random v3
#: architectures land in 40-56 ms (1st-99th percentile 61.5..90.2 ms): rare, but the CES's
#: rejection sampler seeds a population from them in a few thousand draws of the vectorised LUT.
PIXEL3_WINDOWS = {
    "basic": (60.0, 70.0, "the paper's window for Pixel 3, basic space"),
    "large": (50.0, 100.0, "the paper's window for Pixel 3, large space"),
    "v3": (40.0, 56.0, "the paper's Table 4 V3 models' range on Pixel 3 (40.8-55.1 ms)"),
}
#: other devices: these percentiles of the latencies of 10,000 uniform random architectures of the
#: full space (seed 0); the large space gets a wider window, as the paper's does on Pixel 3
RANDOM_ARCH_PERCENTILES = {"basic": (25.0, 75.0), "large": (10.0, 90.0), "v3": (25.0, 75.0)}
RANDOM_ARCH_SAMPLES = 10_000
_PIXEL3 = re.compile(r"^(google[\s_-]*)?pixel[\s_-]*3([\s_-]*xl)?\b(?![\s_-]*a)", re.IGNORECASE)


def is_pixel3(lut) -> bool:
    names = [lut.device.get(k) for k in ("name", "model", "description")]
    return any(isinstance(n, str) and _PIXEL3.match(n.strip()) for n in names[:2])


def default_window(lut, model) -> tuple[LatencyWindow, str]:
    """The window a search uses when none is given, and the rule that produced it."""
    family = model.space.family
    if is_pixel3(lut) and family in PIXEL3_WINDOWS and lut.precision == DEFAULT_PRECISION:
        lo, hi, source = PIXEL3_WINDOWS[family]
        return LatencyWindow(lo, hi), source
    q = RANDOM_ARCH_PERCENTILES[family]
    genomes = model.space.sample_genomes(np.random.default_rng(0), RANDOM_ARCH_SAMPLES)
    lo, hi = np.percentile(model.predict(genomes), q)
    lo, hi = float(np.floor(lo * 100) / 100), float(np.ceil(hi * 100) / 100)
    return LatencyWindow(lo, hi), (
        f"{q[0]:g}th-{q[1]:g}th percentile of {RANDOM_ARCH_SAMPLES} random {family} "
        f"architectures on {lut.device_name}"
    )


def check_window(window: LatencyWindow, model, config: CESConfig) -> None:
    """Fail unless CES can start: the window must overlap the reachable range and hold enough
    architectures for a first population (so a bad window never costs a training run)."""

    lo, hi = model.reachable_range()
    where = (
        f"the {model.space.family} space reaches {lo:.2f}..{hi:.2f} ms on {model.lut.device_name}"
    )
    if window.hi < lo or window.lo > hi:
        raise WindowError(f"no architecture meets the latency window {window}: {where}")
    rng = np.random.default_rng(0)
    try:
        found, _ = sample_admissible(
            Gate(model.predict, window),
            lambda k: model.space.sample_genomes(rng, k),
            config.pop_size,
            max_draws=config.max_sample_draws,
        )
    except WindowError:
        raise WindowError(
            f"the latency window {window} is too narrow or too close to the edge: "
            f"not one of {config.max_sample_draws} random architectures meets it; {where}"
        ) from None
    if len(found) < 2:
        raise WindowError(f"the latency window {window} holds almost no architectures; {where}")


def lut_identity(lut) -> dict:
    """What identifies a LUT in a run's config: its content hash, not the path it was read from."""
    canonical = json.dumps(lut.to_dict(), sort_keys=True, separators=(",", ":"))
    return {
        "sha256": hashlib.sha256(canonical.encode()).hexdigest()[:16],
        "device": lut.device_name,
        "label": lut.label,
        "sources": sorted(lut.sources()),
        "calibrated": bool(lut.calibration),
    }


@dataclass
class SearchPlan:
    settings: SearchSettings
    lut: object
    messages: list[str]
    warnings: list[str]


#: --stages bounds: M = 2 is I-Supernet; the paper finds M > 4 saturates, so 10 is generous
MIN_STAGES, MAX_STAGES = 2, 10
#: the largest seed numpy's and torch's generators both take
MAX_SEED = 2**32 - 1


def plan_search(
    lut_path: str,
    *,
    family: str = "basic",
    data: str = "fashion",
    stages: int = 4,
    window: str | None = None,
    p_th: float = 0.01,
    preset: str = "quick",
    seed: int = 0,
    resolution: int = DEPLOY_RESOLUTION,
    noise_ceiling: bool | None = None,
    lut_precision: str | None = None,
) -> SearchPlan:
    """Validate every input of ``padnas search`` and resolve the defaults, without training.

    ``noise_ceiling`` None takes the preset's choice (on for quick, off for paper).
    ``lut_precision`` picks the fp32 or int8 table of a profile (None: a LUT file's own, a
    profile's fp32 one)."""

    if not MIN_STAGES <= stages <= MAX_STAGES:
        raise UsageError(
            f"must be {MIN_STAGES}..{MAX_STAGES} (2 = I-Supernet, 3 = P-Supernet, "
            f"4 = PAD-NAS; the paper finds more than 4 saturates), got {stages}",
            param="stages",
        )
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"must be 0..{MAX_SEED} (numpy and torch seeds), got {seed}", param="seed")
    check_p_th(p_th)
    space = get_space(family)
    named = get_preset(preset)
    train_cfg, ces_cfg = named.train, named.ces
    ceiling = named.ceiling
    if noise_ceiling is not None:
        ceiling = (ceiling or CeilingConfig()) if noise_ceiling else None
    bare = bare_profile(lut_path)
    if bare is None:
        lut = load_lut(lut_path, family=family, resolution=resolution, precision=lut_precision)
    else:  # a profiled device without a shipped table (host): the one export-lut would write
        precision = lut_precision or DEFAULT_PRECISION
        lut = stored_lut(bare, space, resolution=resolution, precision=precision)
    model = LatencyModel.from_lut(lut, space)
    if window is None:
        win, rule = default_window(lut, model)
    else:
        win, rule = LatencyWindow.parse(window), "given (--latency-window)"
    check_window(win, model, ces_cfg)
    lo, hi = model.reachable_range()
    messages = [f"latency: {model.describe()}"]
    if bare is not None:
        messages.append(
            f"latency: {lut.device_name}'s LUT built from its measurements in "
            f"{lut.provenance['store']}"
        )
    messages.append(f"latency window: {win} ({rule}); the space reaches {lo:.2f}..{hi:.2f} ms")
    warnings = []
    unmeasured = sorted(model.sources - {"measured"})
    if lut.source_warning():
        warnings.append(lut.source_warning())
    elif unmeasured:
        warnings.append(
            f"warning: the LUT's latencies are {'/'.join(unmeasured)}, not all measured on the "
            "device; treat the found models' latencies accordingly"
        )
    beyond = lut.extrapolation_note(win.lo) or lut.extrapolation_note(win.hi)
    if beyond:
        warnings.append(f"warning: latency window {win}: " + beyond.removeprefix("warning: "))
    settings = SearchSettings(
        family=family,
        stages=stages,
        window=win,
        window_rule=rule,
        p_th=p_th,
        preset=train_cfg,
        ces=ces_cfg,
        data=data,
        seed=seed,
        lut=lut_identity(lut),
        final_models=FINAL_MODELS[family],
        ceiling=ceiling,
    )
    return SearchPlan(settings, lut, messages, warnings)
