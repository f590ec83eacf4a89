"""Train the shared per-pixel decoder on the Kodak training split (report 3.2, 4.1, 5).

The decoder (seed, superresolver, head) and the encodings of fixed crops of the eight training
images are trained together with Adam on the total entropy. The encodings' entropy is weighed
lightly at first and ramped up to full weight ("otherwise the optimizer immediately learns to
encode nothing"). Every `val_every` steps the decoder is frozen and the encodings of
validation crops are fitted with the encoder's own loop; the checkpoint with the best
validation bpsp is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ... import kodak
from . import model as per_pixel
from .checkpoint import Checkpoint
from .encodings import CircularEncodings
from .fit import LN2, FitConfig, fit_batch, image_tensor
from .model import DecoderWeights
from .superres import DecoderConfig, size_schedule


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run (defaults: about half an hour on 2 CPU cores)."""

    steps: int = 1500
    crop: int = 128
    crops_per_image: int = 5  # center and the four corners (kodak.CROP_PLACES)
    batch: int = 8
    lr: float = 2e-3
    encoding_lr: float = 0.05
    ramp_fraction: float = 0.6
    final_lr_fraction: float = 0.1  # cosine decay of the decoder's learning rate to this fraction
    val_every: int = 250
    val_crop: int = 128
    val_fit_steps: int = 40
    seed: int = 0


def crops(split: str, size: int, kodak_dir: str | None, per_image: int = 1) -> list[np.ndarray]:
    """size x size crops of every image of a Kodak split (center first, then the corners)."""
    images = [kodak.load(name, kodak_dir) for name in kodak.SPLITS[split]]
    return [kodak.crop(im, (size, size), where) for im in images for where in kodak.CROP_PLACES[:per_image]]


def validate(weights: DecoderWeights, images: torch.Tensor, config: TrainConfig) -> float:
    """bpsp of the validation crops after fitting their encodings with the decoder fixed."""
    fit_cfg = FitConfig(steps=config.val_fit_steps, maximize_steps=0, entropy_on_fraction=1.0,
                        freeze_stages=False, seed=config.seed)
    # training draws everything from torch's global generator, seeded once per validation (as it
    # always was), so a training run is repeatable; fits and coding never touch it
    torch.manual_seed(config.seed)
    _, history = fit_batch(weights, images, fit_cfg, generator=torch.default_generator)
    return float(np.mean([h["bpsp"] for h in history[-5:]]))


def train(config: TrainConfig, decoder_config: DecoderConfig = DecoderConfig(),
          kodak_dir: str | None = None, log=print) -> Checkpoint:
    """Run the training; returns the checkpoint with the best validation bpsp."""
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    train_images = image_tensor(crops("train", config.crop, kodak_dir, config.crops_per_image))
    val_images = image_tensor(crops("validation", config.val_crop, kodak_dir))
    n, _, h, w = train_images.shape
    b = min(config.batch, n)
    schedule = size_schedule(h, w, decoder_config)
    weights = DecoderWeights(decoder_config, torch.Generator().manual_seed(config.seed))
    encodings = CircularEncodings(schedule.encoding_grids(), decoder_config.encodings_per_pixel, n)
    encodings.init_from_image(train_images)
    opt = torch.optim.Adam([{"params": weights.parameters(), "lr": config.lr},
                            {"params": encodings.parameters(), "lr": config.encoding_lr}])
    decay = lambda step: config.final_lr_fraction + (1 - config.final_lr_fraction) * 0.5 * (  # noqa: E731
        1 + math.cos(math.pi * step / config.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [decay, lambda step: 1.0])
    per_bit = 1.0 / (b * 3 * h * w * LN2)
    best, best_bpsp, history = None, math.inf, []
    for step in range(config.steps + 1):
        if step % config.val_every == 0 or step == config.steps:
            val = validate(weights, val_images, config)
            if val < best_bpsp:
                best, best_bpsp = per_pixel.checkpoint_of(weights), val
            log(f"step {step}: validation {val:.4f} bpsp (best {best_bpsp:.4f})")
            history.append({"step": step, "validation_bpsp": val, "seconds": time.perf_counter() - t0})
        if step == config.steps:
            break
        ramp = min(1.0, step / max(1.0, config.ramp_fraction * config.steps))
        index = torch.randperm(n)[:b]
        out, enc_nats = per_pixel.float_pass(weights, encodings, schedule, b, index=index,
                                              generator=torch.default_generator)
        err_nats = per_pixel.error_table_nats(train_images[index], out)
        loss = (err_nats.sum() + ramp * enc_nats.sum()) * per_bit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(weights.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0:
            log(f"step {step}: train {(err_nats.sum() + enc_nats.sum()).item() * per_bit:.4f} bpsp "
                f"(encodings {enc_nats.sum().item() * per_bit:.4f}, weight {ramp:.2f})")
    best.meta = {"train_config": asdict(config), "decoder_config": asdict(decoder_config),
                 "validation_bpsp": best_bpsp, "history": history,
                 "seconds": time.perf_counter() - t0}
    return best
