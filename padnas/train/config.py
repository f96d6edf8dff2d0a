"""What shapes a training run: :class:`Stage` (epochs and learning rate of one run) and
:class:`TrainConfig` (everything but the data, the space and the seed). The named presets live in
:mod:`padnas.run.settings`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from padnas.space import Proxy

#: supernet path samplers (TrainConfig.sampler)
SAMPLERS = ("uniform", "fair", "sandwich", "transitions")


@dataclass(frozen=True)
class Stage:
    """Epochs and initial learning rate of one training run (decayed linearly to 0)."""

    epochs: int
    lr: float


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run except the data, the space and the seed.

    ``supernet_stages[0]`` trains the initial supernet, ``supernet_stages[k]`` finetunes the
    supernet pruned for the ``k``-th time (Algorithm 1); :meth:`supernet_stage` repeats the last
    entry for pipelines with more stages. The recalibration and evaluation sizes are read by the
    one-shot evaluator.
    """

    name: str
    resolution: int
    width_mult: float
    batch_size: int
    supernet_stages: tuple[Stage, ...]
    standalone: Stage
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    recal_images: int = 2000
    recal_batch_size: int = 250
    #: one-shot accuracy during a search is measured on this many held-out images (training
    #: images no run of the proxy size trains or validates on, the same for every seed:
    #: DataBundle.holdout) instead of the validation split, where the data keeps that many
    #: (padnas.search.oneshot.held_out_images); 0 = the validation split. On 1,000 images the
    #: same supernet ranks 40 architectures with Kendall tau 0.08 between two image draws
    #: (docs/reproduction.md, "How many images")
    eval_images: int = 0
    #: the one-shot score a search ranks by (padnas.search.ces.RANK_BY): "accuracy" (top-1) or
    #: "log_likelihood" (mean log-likelihood of the true class, from the same pass). Two seeds'
    #: supernets rank 40 architectures with tau 0.37 by log-likelihood and 0.13 by accuracy on
    #: 1,000 held-out images (docs/reproduction.md, "How many images")
    rank_by: str = "accuracy"
    eval_batch_size: int = 500
    ckpt_every_steps: int = 0
    num_workers: int = 0
    channels_last: bool = True  # ~3x faster CPU convs for the proxy nets; values unchanged
    entangled_init: bool = False
    zero_init_residual: bool = False
    train_per_class: int | None = None  # proxy data size (in-memory sets); None = all
    precision: str = "fp32"  # fp32, bf16 or fp16 (resolved by padnas.train.precision)
    #: how a supernet step picks its paths (SAMPLERS); the gradients of a
    #: step's paths are summed before one update and a step costs one pass per path.
    #: "uniform": SPOS, one path uniform per layer; "fair": FairNAS's strict fairness, every op of
    #: every layer once per step (as many paths as the largest layer has ops); "sandwich":
    #: BigNAS's rule, the largest, the smallest and two uniform paths; "transitions": one uniform
    #: path and two that redraw only the transition layers (three op draws a step for them)
    sampler: str = "uniform"
    #: learning-rate factor of a supernet's transition layers (searchable, no residual): their
    #: sampled op decides the whole representation downstream, and at CPU scale they drift apart
    #: faster than the rest can follow (docs/reproduction.md)
    transition_lr_mult: float = 1.0
    #: epochs during which an initial supernet's transition layers (searchable, no residual)
    #: keep their smallest op; then every other op of such a layer starts as an exact copy of
    #: it (Net2Net widening, padnas.nn.initialize.grow_op) and sampling covers every op.
    #: Finetunes of a pruned supernet (stage > 0) have no warm-up.
    warmup_epochs: int = 0
    #: the first stride-2 downsamplings (the stem's first) the proxy runs at stride 1
    #: (padnas.space.Proxy): at 32 px, 2 keeps every searchable layer on maps of 4x4 or more
    dropped_strides: int = 0

    def proxy(self) -> Proxy:
        return Proxy(self.resolution, self.width_mult, self.dropped_strides)

    def supernet_stage(self, k: int) -> Stage:
        """Schedule of supernet training stage ``k`` (0 = initial, 1.. = finetune after pruning)."""
        return self.supernet_stages[min(k, len(self.supernet_stages) - 1)]

    @property
    def supernet_epochs_total(self) -> int:
        return sum(s.epochs for s in self.supernet_stages)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["supernet_stages"] = [[s.epochs, s.lr] for s in self.supernet_stages]
        d["standalone"] = [self.standalone.epochs, self.standalone.lr]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["supernet_stages"] = tuple(Stage(int(e), float(lr)) for e, lr in d["supernet_stages"])
        d["standalone"] = Stage(int(d["standalone"][0]), float(d["standalone"][1]))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
