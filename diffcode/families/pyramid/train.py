"""Training the pyramid family's shared prior (float, torch).

    images -> every (level, phase) context of every pixel (`samples`) -> Adam on the mean bits
    per subpixel of random batches, cosine learning rate -> float32 arrays (`PyramidNet.arrays`)

The prior is shipped in the package (`diffcode/data/pyramid_prior.npz`) and named by its
SHA-256 in every file; `experiments/train_pyramid.py` records how it was made.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import layout, spec
from .layout import N_PHASES
from .model import PyramidNet, phase_nats
from .network import input_integers, own_integers

LN2 = math.log(2)


@dataclass
class Samples:
    """Every coded subpixel context of a set of images, per phase (int16 / uint8 numpy)."""

    inputs: list[np.ndarray]  # per phase (N, 72) int16
    own: list[np.ndarray]  # (N, 3) int16
    base12: list[np.ndarray]  # (N, 3) int16
    target: list[np.ndarray]  # (N, 3) uint8
    core_subpixels: int  # subpixels of the coarsest levels (coded flat, 8 bits each)

    @property
    def subpixels(self) -> int:
        return sum(3 * len(t) for t in self.target) + self.core_subpixels


def image_samples(image: np.ndarray) -> tuple[list[list[np.ndarray]], int]:
    """Per phase [inputs, own, base12, target] of one (H, W, 3) uint8 image; core subpixel count."""
    per_phase = [[[], [], [], []] for _ in range(N_PHASES)]
    levels = layout.pyramid(image)
    for level in range(len(levels) - 1):
        for phase in range(N_PHASES):
            for rows, cols, ctx in layout.group_contexts(levels[level], phase):
                if len(ctx) == 0:
                    continue
                target = levels[level][rows, cols]
                parts = (input_integers(ctx, level), own_integers(target, ctx.base12), ctx.base12, target)
                for store, part in zip(per_phase[phase], parts):
                    store.append(part)
    return per_phase, levels[-1].size


def samples(images: list[np.ndarray]) -> Samples:
    """Contexts of every coded subpixel of `images`, concatenated per phase."""
    merged = [[[], [], [], []] for _ in range(N_PHASES)]
    core = 0
    for image in images:
        per_phase, n_core = image_samples(image)
        core += n_core
        for phase in range(N_PHASES):
            for store, parts in zip(merged[phase], per_phase[phase]):
                store.extend(parts)
    widths = (spec.N_INPUTS, 3, 3, 3)
    cat = [[np.concatenate(parts) if parts else np.zeros((0, width)) for parts, width in zip(merged[phase], widths)]
           for phase in range(N_PHASES)]
    dtypes = (np.int16, np.int16, np.int16, np.uint8)
    fields = [[cat[p][i].astype(dtypes[i]) for p in range(N_PHASES)] for i in range(4)]
    return Samples(*fields, core_subpixels=core)


def _batch(s: Samples, phase: int, index: np.ndarray, device: str) -> list[torch.Tensor]:
    return [torch.from_numpy(a[phase][index].astype(np.float32)).to(device) for a in (s.inputs, s.own, s.base12, s.target)]


def mean_bpsp(net: PyramidNet, s: Samples, device: str = "cpu", chunk: int = 1 << 16) -> float:
    """Bits per subpixel of every sample under the float model (core subpixels at 8 bits)."""
    total = 8.0 * s.core_subpixels
    with torch.no_grad():
        for phase in range(N_PHASES):
            for start in range(0, len(s.target[phase]), chunk):
                index = np.arange(start, min(start + chunk, len(s.target[phase])))
                total += phase_nats(net.phases[phase], *_batch(s, phase, index, device)).sum().item() / LN2
    return total / s.subpixels


def batch_bits(net: PyramidNet, s: Samples, rng: np.random.Generator, batch: int, device: str) -> torch.Tensor:
    """Mean bits per subpixel of a random batch, phases drawn in proportion to their sizes."""
    sizes = np.array([len(t) for t in s.target], np.float64)
    total, count = 0.0, 0
    for phase in range(N_PHASES):
        if sizes[phase] == 0:
            continue
        n = max(1, int(round(batch * sizes[phase] / sizes.sum())))
        index = rng.integers(0, len(s.target[phase]), n)
        total = total + phase_nats(net.phases[phase], *_batch(s, phase, index, device)).sum()
        count += 3 * n
    return total / (count * LN2)


def train(train_set: Samples, val_set: Samples | None, *, steps: int, batch: int = 32768, lr: float = 3e-3,
          width: int = 64, head: int = 32, seed: int = 0, device: str = "cpu", net: PyramidNet | None = None,
          progress=None, log_every: int = 250) -> tuple[PyramidNet, list[dict]]:
    """Adam on the mean bits of random batches; cosine learning rate from `lr` to lr/50.

    Returns the network and a log [{step, seconds, train_bpsp (batch), val_bpsp}]."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = (net or PyramidNet(width, head, generator)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    log, start, running = [], time.perf_counter(), []
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps)))
        loss = batch_bits(net, train_set, rng, batch, device)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if progress:
            progress(step, loss.item())
        if step % log_every == 0 or step == steps:
            row = {"step": step, "seconds": round(time.perf_counter() - start, 1),
                   "train_bpsp": round(float(np.mean(running)), 4)}
            running = []
            if val_set is not None and (step == steps or step % (4 * log_every) == 0):
                row["val_bpsp"] = round(mean_bpsp(net, val_set, device), 4)
            log.append(row)
    return net, log


PHOTOS_ENV = "DIFFCODE_PHOTOS"  # a folder holding train/ and val/ photos (PNG)


def training_images(kodak_dir: str | None, photos_dir: str | None, crop: int) -> tuple[list, list, dict]:
    """(training images, selection images, description): Kodak's training / validation split (full)
    plus centre crops (at most crop x crop) of the photos in photos_dir/train and photos_dir/val."""
    import os
    from pathlib import Path

    from ... import kodak
    from ...errors import DiffcodeError
    from ...image import read_image

    photos_dir = photos_dir or os.environ.get(PHOTOS_ENV)
    if not photos_dir or not (Path(photos_dir) / "train").is_dir():
        raise DiffcodeError(f"the pyramid prior trains on photos too: set {PHOTOS_ENV} to a folder holding "
                            f"train/ and val/ (for example ../shared/photos)")

    def crops(folder: Path) -> list[np.ndarray]:
        out = []
        for path in sorted(folder.glob("*.png")):
            image = read_image(path)
            out.append(kodak.crop(image, (min(crop, image.shape[0]), min(crop, image.shape[1]))))
        return out

    train_images = [kodak.load(n, kodak_dir) for n in kodak.TRAIN] + crops(Path(photos_dir) / "train")
    val_images = [kodak.load(n, kodak_dir) for n in kodak.VALIDATION] + crops(Path(photos_dir) / "val")
    about = {"train": list(kodak.TRAIN) + [f"{photos_dir}/train ({len(train_images) - len(kodak.TRAIN)} photos, "
                                           f"centre crops of at most {crop})"],
             "validation": list(kodak.VALIDATION) + [f"{photos_dir}/val ({len(val_images) - len(kodak.VALIDATION)} "
                                                     f"photos, same crops)"]}
    return train_images, val_images, about


def train_prior(*, steps: int = 6000, batch: int = 32768, lr: float = 3e-3, width: int = 64, head: int = 32,
                crop: int = 640, kodak_dir: str | None = None, photos_dir: str | None = None, log=print):
    """Train a prior from scratch (the recipe of the shipped one); returns (Prior, training log rows)."""
    from . import prior

    start = time.perf_counter()
    train_images, val_images, about = training_images(kodak_dir, photos_dir, crop)
    train_set, val_set = samples(train_images), samples(val_images)
    log(f"training on {train_set.subpixels:,} subpixels, validating on {val_set.subpixels:,}")

    def progress(step: int, bits: float) -> None:
        if step % 250 == 0:
            log(f"step {step}/{steps}: {bits:.4f} bpsp (batch), {time.perf_counter() - start:.0f} s")

    net, rows = train(train_set, val_set, steps=steps, batch=batch, lr=lr, width=width, head=head, progress=progress)
    meta = {**about, "steps": steps, "batch": batch, "lr": lr, "width": width, "head": head, "crop": crop,
            "validation_bpsp": rows[-1]["val_bpsp"], "seconds": round(time.perf_counter() - start)}
    data = prior.to_bytes(net.arrays(), meta)
    return prior.from_bytes(data), rows
