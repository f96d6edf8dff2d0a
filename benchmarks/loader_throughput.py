"""Images per second of the image-folder loader alone, for 1, 2 and all cores of this machine.

Writes a synthetic ImageNet-like folder into a temporary directory (JPEGs of ImageNet's typical
size, 333-500 x 375-500 pixels at quality 90, smooth content plus grain so that they compress and
decode like photographs, ~40-70 KB), then times :class:`padnas.data.loader.BatchFeeder` over it: the
training transform (random-resized crop + flip) and the evaluation transform (resize to R/0.875 +
centre crop) at the preset's resolution, with 0 (main process), 1, 2 and all-cores worker
processes. One untimed pass per setting starts the workers and fills the page cache; the timed
passes follow. No GPU is involved: this is the rate the CPUs can feed, to be compared with the
training step rate of ``benchmarks/supernet_throughput.py`` (e.g. ~4,900 img/s on an H200 under
bf16), so a user can size the machine: workers needed ~= GPU img/s / (img/s of one worker).

    python benchmarks/loader_throughput.py [--images 384] [--resolution 224] [--passes 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from padnas.data.datasets import load_data
from padnas.data.loader import BatchFeeder


def write_folder(root: Path, images: int, classes: int, seed: int) -> None:
    """``images`` training JPEGs over ``classes`` classes, plus 10% as many for validation."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    for split, n in (("train", images), ("val", max(classes, images // 10))):
        for i in range(n):
            d = root / split / f"n{i % classes:08d}"
            d.mkdir(parents=True, exist_ok=True)
            w, h = int(rng.integers(333, 501)), int(rng.integers(375, 501))
            coarse = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
            img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
            img = img.filter(ImageFilter.GaussianBlur(2))
            grain = rng.normal(0, 8, (h, w, 3))
            arr = np.clip(np.asarray(img, dtype=np.float64) + grain, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{i:06d}.JPEG", quality=90)


def rate(split, workers: int, batch: int, passes: int) -> float:
    """Images/s over ``passes`` timed passes after one untimed one."""
    n = len(split)
    order = np.random.default_rng(0).permutation(n)
    batches = [order[i : i + batch] for i in range(0, n - batch + 1, batch)]
    with BatchFeeder(split, workers, prefetch_factor=4) as feed:
        for _ in feed(batches, 0):
            pass
        t = time.perf_counter()
        count = 0
        for epoch in range(1, passes + 1):
            for x, _ in feed(batches, epoch):
                count += len(x)
        return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=384, help="training images written")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--passes", type=int, default=2, help="timed passes over the images")
    ap.add_argument("--dir", type=Path, default=None, help="keep the folder here (else a temp dir)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the main-process setting decodes on one core like a worker
    cores = len(os.sched_getaffinity(0))
    settings = sorted({0, 1, 2, cores})
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        if not (root / "train").is_dir():
            t = time.perf_counter()
            write_folder(root, args.images, args.classes, seed=0)
            print(f"wrote {args.images} JPEGs in {time.perf_counter() - t:.0f} s -> {root}")
        data = load_data(f"imagefolder:{root}", args.resolution, seed=0)
        files = list((root / "train").rglob("*.JPEG"))
        kb = np.mean([f.stat().st_size for f in files]) / 1024
        load = os.getloadavg()[0]
        print(
            f"{len(files)} training JPEGs, mean {kb:.0f} KB; resolution {args.resolution}, "
            f"batch {args.batch}; {cores} core(s); load average {load:.2f}"
        )
        for workers in settings:
            label = "main process" if workers == 0 else f"{workers} worker(s)"
            train = rate(data.train, workers, args.batch, args.passes)
            val = rate(data.test, workers, min(args.batch, len(data.test)), args.passes)
            print(f"loader_images_per_s[{label}]: train {train:.0f}  eval {val:.0f}")
        print(f"load_average_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
