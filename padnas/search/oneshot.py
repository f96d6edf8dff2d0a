"""One-shot accuracy of architectures on a trained supernet, with BN recalibration.

The running BN statistics a supernet accumulates during training mix every sampled path, so they
fit no single architecture; ranking architectures by accuracy under them is close to random (ABS
found Kendall tau 0.01-0.11 without recalibration, ~0.5 with it). Before measuring an
architecture, the BN layers *on its path* are therefore reset and re-estimated as an exact average
(``momentum=None``) over a fixed, seeded set of training images forwarded in train mode, as OFA
does; then validation accuracy is measured in eval mode, through
:meth:`~padnas.nn.supernet.Supernet.infer` (each BN folded into its conv: the eval-mode logits
to float rounding, the pass about 2x faster on CPU; ``benchmarks/oneshot_speed.py``).

Built for many evaluations in a row (a search makes thousands): the recalibration images and, for
in-memory data, the validation images are materialised once as tensors on the supernet's device;
only the path's BN layers are touched, and their previous statistics are restored afterwards, so
evaluating never changes the supernet's values (it does switch it to the channels-last layout,
which runs the proxy nets' small depthwise convolutions about 3x faster on CPU); results are
cached per architecture string and the cache is dropped as soon as the supernet's parameters
change (their version counters move whenever an optimiser step or ``load_state_dict`` writes
them) or a different supernet is assigned. With in-memory images the outputs of each evaluated
path prefix are kept too (:mod:`padnas.search.prefix_cache`, within ``prefix_cache_mb``), so an
architecture starts where its longest evaluated prefix ends: the same values, fewer layers run
(``benchmarks/prefix_cache.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from padnas.core.progress import progress_bar
from padnas.data.datasets import DataBundle, Split, iterate_batches
from padnas.data.loader import BatchFeeder
from padnas.nn.supernet import Supernet
from padnas.search.prefix_cache import PrefixCache, PrefixOutputs
from padnas.space import Arch
from padnas.train.precision import precision_of

_BN = nn.modules.batchnorm._BatchNorm

#: memory for the outputs of evaluated path prefixes (padnas.search.prefix_cache); a full path of
#: the quick preset's supernet at 5,000 held-out images holds about 200 MB
PREFIX_CACHE_MB = 1024


class OneShotEvaluator:
    """``accuracy(archs) -> np.ndarray`` of one-shot validation accuracies (0..1), cached.

    ``recal_batches`` x ``batch_size`` training images (drawn once with ``seed``) recalibrate the
    BN statistics of each path; ``eval_batch_size`` sets the batch of the accuracy pass.
    ``split`` picks the split accuracy is measured on (``val`` during search, ``test`` to report).
    :meth:`from_config` takes the sizes from a :class:`~padnas.train.loop.TrainConfig`.
    """

    def __init__(
        self,
        supernet: Supernet,
        data: DataBundle,
        *,
        recal_batches: int = 2,
        batch_size: int = 250,
        seed: int = 0,
        eval_batch_size: int = 500,
        split: str = "val",
        num_workers: int = 0,
        progress: bool = False,
        channels_last: bool = True,
        precision: str = "fp32",
        prefix_cache_mb: int = PREFIX_CACHE_MB,
    ) -> None:
        if recal_batches < 1 or batch_size < 1:
            raise ValueError("recal_batches and batch_size must be at least 1")
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', not {split!r}")
        self.data, self.seed, self.split_name = data, seed, split
        self.recal_batches, self.batch_size = recal_batches, batch_size
        self.eval_batch_size, self.num_workers, self.progress = (
            eval_batch_size,
            num_workers,
            progress,
        )
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.precision = precision  # recalibration and accuracy run under the same autocast
        #: what builds an evaluator of the same values from the same data (a helper process's:
        #: padnas.search.eval_pool)
        self.settings = {
            "recal_batches": recal_batches,
            "batch_size": batch_size,
            "seed": seed,
            "eval_batch_size": eval_batch_size,
            "split": split,
            "num_workers": num_workers,
            "channels_last": channels_last,
            "precision": precision,
            "prefix_cache_mb": prefix_cache_mb,
        }
        self._recal_cpu = self._recal_images(data.train, recal_batches * batch_size, seed)
        self._prefixes = PrefixCache(prefix_cache_mb << 20)
        self._device: torch.device | None = None
        self._feed: BatchFeeder | None = None
        self._laid_out: int | None = None
        self._supernet: Supernet | None = None
        self.supernet = supernet

    @classmethod
    def from_config(cls, supernet: Supernet, data: DataBundle, config, *, seed: int = 0, **kw):
        """Sizes from a :class:`~padnas.train.loop.TrainConfig` (recal_images, batch sizes);
        the ``val`` split is :func:`held_out_images` held-out images instead where there are."""
        images = held_out_images(config, data)
        if images and kw.get("split", "val") == "val":
            data = dataclasses.replace(data, val=data.holdout(images))
        batches = max(1, round(config.recal_images / config.recal_batch_size))
        kw.setdefault("eval_batch_size", config.eval_batch_size)
        kw.setdefault("num_workers", config.num_workers)
        kw.setdefault("channels_last", config.channels_last)
        kw.setdefault("precision", config.precision)
        return cls(
            supernet,
            data,
            recal_batches=batches,
            batch_size=config.recal_batch_size,
            seed=seed,
            **kw,
        )

    # ---- state --------------------------------------------------------------------------------
    @property
    def supernet(self) -> Supernet:
        return self._supernet

    @supernet.setter
    def supernet(self, net: Supernet) -> None:
        self._supernet = net
        self.reset()

    def reset(self) -> None:
        """Forget every cached accuracy (called automatically when the weights change)."""
        self._cache: dict[tuple[str, bool], float] = {}
        self._loglik: dict[tuple[str, bool], float] = {}
        self._prefixes.clear()
        self._fingerprint = self._weights_fingerprint()

    @property
    def recal_images(self) -> list[torch.Tensor]:
        """The fixed recalibration batches (CPU tensors), in the order they are forwarded."""
        return list(self._recal_cpu)

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    @property
    def prefix_cache_bytes(self) -> int:
        """Memory the kept outputs of evaluated path prefixes hold now."""
        return self._prefixes.nbytes

    def weights_version(self) -> tuple:
        """Changes whenever the supernet is replaced or its parameters are written (the cache
        of scores lasts as long as it does)."""
        return self._weights_fingerprint()

    def unknown(self, archs: Iterable[Arch | str]) -> list[Arch]:
        """The architectures of ``archs`` (validated, each once, in order) whose recalibrated
        scores on the current weights are not cached. One freshness check for the batch: it
        walks every parameter."""
        self._check_fresh()
        space = self._supernet.space
        todo = {str(a): a for a in map(space.validate, archs) if (str(a), True) not in self._cache}
        return list(todo.values())

    def remember(self, scores: Iterable[tuple[Arch, float, float]]) -> None:
        """Cache (architecture, accuracy, log-likelihood) scores, recalibrated, measured by an
        evaluator of the same :attr:`settings` and data on a copy of the same weights, in
        another process (padnas.search.eval_pool): they are the values :meth:`evaluate` would
        compute."""
        self._check_fresh()
        for arch, accuracy, log_likelihood in scores:
            key = (str(arch), True)
            self._cache[key], self._loglik[key] = float(accuracy), float(log_likelihood)

    def _weights_fingerprint(self) -> tuple:
        net = self._supernet
        return (id(net), tuple((p.data_ptr(), p._version) for p in net.parameters()))

    def _check_fresh(self) -> None:
        if self._laid_out != id(self._supernet):
            # channels-last runs the small depthwise convs of proxy nets ~3x faster on CPU;
            # values are unchanged, only their memory layout (the cache restarts once).
            self._supernet.to(memory_format=self.memory_format)
            self._laid_out = id(self._supernet)
        if self._weights_fingerprint() != self._fingerprint:
            self.reset()
        device = next(self._supernet.parameters()).device
        if device != self._device:
            self._device, self._feed = device, None
            self._prefixes.clear()
            self._recal = [self._images(b) for b in self._recal_cpu]
            split = getattr(self.data, self.split_name)
            self._val = self._materialise(split) if split.in_memory else None

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self._device, non_blocking=True, memory_format=self.memory_format)

    # ---- public -------------------------------------------------------------------------------
    def accuracy(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """One-shot accuracies of ``archs`` (BN recalibrated), in order."""
        return self._each(self.evaluate, archs)

    def _each(self, measure, archs: Iterable[Arch | str]) -> np.ndarray:
        """``measure(arch)`` of every architecture, in order, behind a progress bar."""
        archs = [self._supernet.space.validate(a) for a in archs]
        # In the order of their ops, so that architectures sharing a prefix follow each other
        # while its outputs are kept; the values do not depend on the order.
        order = sorted(range(len(archs)), key=lambda i: archs[i].ops)
        bar = progress_bar(
            order, desc="one-shot eval", unit="arch", disable=not self.progress, leave=False
        )
        values = np.empty(len(archs), dtype=np.float64)
        for i in bar:
            values[i] = measure(archs[i])
        return values

    def evaluate(self, arch: Arch | str, recalibrate: bool = True) -> float:
        """Accuracy of one architecture; ``recalibrate=False`` keeps the training statistics."""
        arch = self._supernet.space.validate(arch)
        self._check_fresh()
        key = (str(arch), recalibrate)
        if key not in self._cache:
            self._cache[key], self._loglik[key] = self._measure(arch, recalibrate)
        return self._cache[key]

    def log_likelihoods(self, archs: Iterable[Arch | str]) -> np.ndarray:
        """Mean log-likelihoods of ``archs`` (BN recalibrated), in order; from the cache for
        those :meth:`accuracy` already measured."""
        return self._each(self.log_likelihood, archs)

    def log_likelihood(self, arch: Arch | str, recalibrate: bool = True) -> float:
        """Mean log-likelihood of the true class over the same images, from the same pass as
        :meth:`evaluate` (measured then if it was not yet). A ranking score with less sampling
        noise than top-1 accuracy: each image contributes a graded value, not 0 or 1
        (docs/reproduction.md, "How many images")."""
        self.evaluate(arch, recalibrate)
        return self._loglik[(str(self._supernet.space.validate(arch)), recalibrate)]

    # ---- work ---------------------------------------------------------------------------------
    def _measure(self, arch: Arch, recalibrate: bool) -> tuple[float, float]:
        net = self._supernet
        was_training = net.training
        ops = tuple(arch.ops)
        # Start after the longest prefix already evaluated (its outputs are exact: see
        # padnas.search.prefix_cache); streamed evaluation data is never kept.
        kept_ops, kept = (-1, None)
        if self._val is not None:
            kept_ops, kept = self._prefixes.longest(recalibrate, ops)
        start = kept_ops + 1  # path modules (the stem, then one per layer) not to run again
        # Only these modules run, so only they switch mode: walking the whole supernet's
        # ~2,000 modules twice per architecture took a third of a quick-preset evaluation.
        todo = net.path_modules(arch)[start:]
        bns = [m for mod in todo for m in mod.modules() if isinstance(m, _BN)]
        saved = [
            (bn.momentum, bn.running_mean, bn.running_var, bn.num_batches_tracked) for bn in bns
        ]
        for mod in todo:
            mod.eval()
        keep = self._val is not None and self._prefixes.budget_bytes > 0
        autocast = precision_of(self.precision, self._device).autocast()
        try:
            # fresh BN buffers are inference tensors, put back afterwards
            with torch.inference_mode(), autocast:
                recal_outputs = None
                if recalibrate:
                    for bn in bns:
                        # Fresh buffers rather than in-place resets: the saved ones are put back.
                        bn.running_mean = torch.zeros_like(bn.running_mean)
                        bn.running_var = torch.ones_like(bn.running_var)
                        bn.num_batches_tracked = torch.zeros_like(bn.num_batches_tracked)
                        bn.momentum = None  # cumulative (exact) average over the batches
                        bn.train()
                    images = kept.recal if kept is not None else self._recal
                    _, recal_outputs = _run(todo, images, nn.Module.__call__, keep)
                    for bn in bns:
                        bn.eval()
                if self._val is None:
                    return self._streamed_scores(arch)
                images = kept.scored if kept is not None else [x for x, _ in self._val]
                # BN folded: the eval-mode logits, in fewer ops
                logits, outputs = _run(todo, images, _infer, keep)
                if keep:
                    # after the stem and each layer but the last (no architecture extends it)
                    for k in range(len(ops) - start):
                        recal = recal_outputs[k] if recalibrate else None
                        prefix = PrefixOutputs(recal, outputs[k])
                        self._prefixes.put(recalibrate, ops[: start + k], prefix)
                return _scores(zip(logits, (y for _, y in self._val), strict=True))
        finally:
            for bn, (momentum, mean, var, count) in zip(bns, saved, strict=True):
                bn.momentum, bn.running_mean, bn.running_var = momentum, mean, var
                bn.num_batches_tracked = count
            for mod in todo:
                mod.train(was_training)

    def _streamed_scores(self, arch: Arch) -> tuple[float, float]:
        """:func:`_scores` of the evaluation split fed from storage, batch by batch."""
        split = getattr(self.data, self.split_name)
        if self._feed is None:  # workers that live across architectures (padnas.data.loader)
            pin = self._device.type == "cuda"
            self._feed = BatchFeeder(split, self.num_workers, pin_memory=pin)
        batches = self._feed(_chunks(len(split), self.eval_batch_size))
        net = self._supernet
        return _scores(
            (net.infer(self._images(x), arch), y.to(self._device, non_blocking=True))
            for x, y in batches
        )

    def _materialise(self, split: Split) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for b in _chunks(len(split), self.eval_batch_size):
            x, y = split.fetch(b)
            out.append((self._images(x), y.to(self._device)))
        return out

    def _recal_images(self, train: Split, count: int, seed: int) -> list[torch.Tensor]:
        rng = np.random.default_rng([seed, 0x5EC])
        n = len(train)
        idx = rng.permutation(n)[:count] if count <= n else rng.integers(0, n, count)
        batches = [idx[i : i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        return [x for x, _ in iterate_batches(train, batches, self.num_workers)]


def held_out_images(config, data: DataBundle) -> int:
    """How many held-out images one-shot scores of ``config`` are measured on with ``data``:
    its ``eval_images`` where the data keeps that many (:meth:`DataBundle.can_hold_out`), else 0,
    the validation split. A preset's size is a default that data without spare images (digits,
    image folders) cannot follow; ``padnas search --eval-images N`` refuses such data instead."""
    images = config.eval_images
    return images if images and data.can_hold_out(images) else 0


def _chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]


def _infer(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return module.infer(x)


def _run(modules, inputs, step, keep: bool) -> tuple[list, list[list[torch.Tensor]]]:
    """Each input batch through ``modules`` in turn (``step(module, x)``), batch by batch as
    :meth:`Supernet.forward` runs them: (the last module's outputs, and where ``keep`` the
    outputs after each of the others, per module a list over batches)."""
    last, kept = [], [[] for _ in modules[:-1]]
    for x in inputs:
        for k, module in enumerate(modules[:-1]):
            x = step(module, x)
            if keep:
                kept[k].append(x)
        last.append(step(modules[-1], x))
    return last, kept


def _scores(batches) -> tuple[float, float]:
    """(top-1 accuracy, mean log-likelihood of the true class) of (logits, labels) batches."""
    correct, total, loglik = 0, 0, 0.0
    for out, y in batches:
        correct += int((out.argmax(1) == y).sum())
        loglik -= float(F.cross_entropy(out.float(), y, reduction="sum"))
        total += len(y)
    return correct / max(total, 1), loglik / max(total, 1)


def evaluate_model(
    model: nn.Module,
    split: Split,
    *,
    batch_size: int = 500,
    num_workers: int = 0,
    device: torch.device | str | None = None,
    channels_last: bool = True,
    precision: str = "fp32",
) -> float:
    """Top-1 accuracy of a stand-alone network on a split (eval mode, BN statistics as trained),
    under the autocast of ``precision`` (the one it was trained with)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        with torch.no_grad(), precision_of(precision, device).autocast():
            for x, y in iterate_batches(split, _chunks(len(split), batch_size), num_workers):
                x, y = x.to(device, memory_format=fmt), y.to(device)
                correct += int((model(x).argmax(1) == y).sum())
                total += len(y)
    finally:
        model.train(was_training)
    return correct / max(total, 1)
