"""The settings of a search, in one place: the named presets (training schedule and CES size
together), the models returned per space family, the method names of the paper's ablation, the
training schedule of an M-stage search, and :class:`SearchSettings`, everything that determines a
search's result (the run's ``config.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from padnas.core.errors import UsageError
from padnas.search.ceiling import CeilingConfig, twin_seed
from padnas.search.ces import CESConfig
from padnas.search.prune import MAX_RANK
from padnas.search.window import LatencyWindow
from padnas.train.config import Stage, TrainConfig


@dataclass(frozen=True)
class Preset:
    """A named way to run: how supernets and stand-alone networks train, the CES size (the
    paper's population 64 x 40 generations, or a CPU-sized one) and whether a search measures
    its noise ceiling by default (``ceiling``; None = off unless ``--noise-ceiling``)."""

    train: TrainConfig
    ces: CESConfig
    ceiling: CeilingConfig | None = None


PRESETS: dict[str, Preset] = {
    # Section 4.1: batch 1024, lr 0.5 for 120 epochs (initial supernet), then 80 and 40 epochs of
    # finetuning at lr 0.1 after each pruning; stand-alone training 240 epochs at lr 0.5.
    "paper": Preset(
        TrainConfig(
            name="paper",
            resolution=224,
            width_mult=1.0,
            batch_size=1024,
            supernet_stages=(Stage(120, 0.5), Stage(80, 0.1), Stage(40, 0.1)),
            standalone=Stage(240, 0.5),
            recal_images=2000,
            recal_batch_size=250,
            eval_batch_size=500,
            ckpt_every_steps=500,
            num_workers=8,
        ),
        CESConfig(pop_size=64, generations=40),
    ),
    # Minutes on a 2-core CPU. Data: Fashion-MNIST, 500 training images per class (5,000; 39
    # steps of 128 an epoch) and 100 per class for one-shot validation: on mnist5k every window
    # architecture scores about the same, so the search has nothing to find. Proxy resolution 32
    # and width 0.25 (channels rounded to multiples of 8, head kept at 1280). Supernet lr 0.005:
    # at 0.02 and 0.05 the sampled supernet's loss rises above chance while one fixed path of the
    # same space learns at every rate (benchmarks/supernet_lr.py, docs/reproduction.md).
    # Size: the README's 4-stage search must fit 5 minutes on 2 cores; an epoch costs ~5 s and a
    # one-shot evaluation ~0.3 s, so 20 + 10 + 5 supernet epochs (the paper's 3:2:1 shape,
    # shortened) and three CES runs of 16 x 7 take ~4.5 minutes (how the size was chosen:
    # docs/reproduction.md). Stand-alone: 8 epochs at lr 0.05 with zero-initialised residual BN
    # and label smoothing 0.1; over 3 seeds an architecture's test accuracy varies by ~0.5 points.
    # Noise ceiling on (padnas.search.ceiling): a second stage-1 supernet (20 epochs, ~100 s of
    # CPU at ~5 s an epoch, on the second core beside the first when one is free) and 40 more
    # one-shot evaluations (~12 s at ~0.3 s each): estimates from the figures above, not
    # measured with the ceiling. The paper preset leaves it off: it doubles the initial training.
    "quick": Preset(
        TrainConfig(
            name="quick",
            resolution=32,
            width_mult=0.25,
            batch_size=128,
            supernet_stages=(Stage(20, 0.005), Stage(10, 0.002), Stage(5, 0.002)),
            standalone=Stage(8, 0.05),
            label_smoothing=0.1,
            recal_images=500,
            recal_batch_size=250,
            eval_batch_size=500,
            entangled_init=True,
            zero_init_residual=True,
            train_per_class=500,
            # the deployed topology has seven searchable layers without a residual (basic):
            # sampled from the start they keep the supernet near chance (one-shot accuracy 0.25
            # after 20 epochs); two epochs on each one's smallest op, then every op grown from it,
            # train to 0.79 (benchmarks/proxy_candidates.py, docs/reproduction.md)
            warmup_epochs=2,
            # on the 1,000 images a CPU search scores, two seeds' supernets order 40 random
            # architectures with tau 0.37 by log-likelihood and 0.13 by accuracy; against
            # stand-alone accuracy neither is better beyond the noise (docs/reproduction.md,
            # "Ranking by log-likelihood")
            rank_by="log_likelihood",
            # scored on 5,000 held-out images (the same for every seed) instead of the 1,000 of
            # the validation split: two seeds' supernets then order 40 random architectures
            # with tau 0.52 +- 0.12 by log-likelihood over four draws (0.37 +- 0.12 at 1,000,
            # 0.45 +- 0.02 at 2,000; 0.54 at 20,000, the supernets' own noise). Keeping the
            # outputs of evaluated path prefixes fits them in the main job's 5 minutes (251 s;
            # 288 s without); data without that many spare images falls back to its
            # validation split (docs/reproduction.md, "How many images")
            eval_images=5000,
        ),
        CESConfig(pop_size=16, generations=7),
        CeilingConfig(archs=40),
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name names the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None


#: models returned per family, as the paper does (PAD-NAS-S-A..C, PAD-NAS-L-A..E, PAD-NAS-V3-A..C)
FINAL_MODELS = {"basic": 3, "large": 5, "v3": 3}
METHOD_NAMES = {2: "I-Supernet", 3: "P-Supernet", 4: "PAD-NAS"}


def method_name(stages: int) -> str:
    return METHOD_NAMES.get(stages, f"PAD-NAS (M={stages})")


def stage_schedule(preset: TrainConfig, stages: int) -> list[Stage]:
    """Training runs of an M-stage search: [initial, finetune 1, ..., finetune M-2].

    The total epochs are the preset's whatever M is (Section 4.1: the variants differ only in M).
    With M = 4 the preset's schedule is used as is (paper 120/80/40 at lr 0.5/0.1/0.1); M = 2 trains
    the initial supernet for all of them at the initial lr; otherwise the initial run keeps its
    epochs and the rest is split evenly over the finetunes at the finetune lr.
    """
    if stages < 2:
        raise ValueError("a search needs at least 2 stages (train, search)")
    base = list(preset.supernet_stages)
    runs = stages - 1
    total = sum(s.epochs for s in base)
    if runs == len(base):
        return base
    if runs == 1:
        return [Stage(total, base[0].lr)]
    first = base[0]
    rest, n = total - first.epochs, runs - 1
    lr = base[1].lr if len(base) > 1 else first.lr
    return [first] + [Stage(rest // n + (1 if i < rest % n else 0), lr) for i in range(n)]


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines a search's result (stored as the run's config.json)."""

    family: str
    stages: int
    window: LatencyWindow
    window_rule: str
    p_th: float
    preset: TrainConfig
    ces: CESConfig
    data: str
    seed: int
    lut: dict  # sha256, device, label, sources, calibrated (identifies the table, not its path)
    final_models: int = 3
    ceiling: CeilingConfig | None = None  # the noise ceiling (None: not measured)
    #: portable CPU kernels, one thread: the same result on any CPU (--deterministic)
    deterministic: bool = False

    @property
    def schedule(self) -> list[Stage]:
        return stage_schedule(self.preset, self.stages)

    def to_config(self) -> dict:
        return {
            "method": method_name(self.stages),
            "space": self.family,
            "stages": self.stages,
            "latency_window_ms": self.window.to_list(),
            "window_rule": self.window_rule,
            "p_th": self.p_th,
            "max_rank": MAX_RANK,
            "preset": self.preset.to_dict(),
            "schedule": [[s.epochs, s.lr] for s in self.schedule],
            "ces": self.ces.to_dict(),
            "data": self.data,
            "seed": self.seed,
            "lut": self.lut,
            "final_models": self.final_models,
            "deterministic": self.deterministic,
            "noise_ceiling": None if self.ceiling is None else self.ceiling_record,
        }

    @property
    def ceiling_record(self) -> dict:
        """What the noise ceiling is measured with: the architectures (at most), the two
        supernets' seeds (the run's, and the second's derived from it: search.ceiling.twin_seed)
        and the BatchNorm recalibration draw both are evaluated with (the search's own)."""
        assert self.ceiling is not None
        return {
            **self.ceiling.to_dict(),
            "seeds": [self.seed, twin_seed(self.seed)],
            "recal_seed": self.seed,
        }
