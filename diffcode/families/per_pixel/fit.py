"""The encoder: Adam on an image's encodings with the decoder fixed (report 3.3 and 4.1).

The report's fitting schedule, each piece switchable in `FitConfig`:

- `maximize_steps`: the first steps maximize the encodings' entropy (loss = -entropy), to make
  the encoder request encoded information.
- `entropy_on_fraction`: the encodings' entropy is left out of the loss until the last part
  of the run (1.0 = always in the loss).
- `init_from_image`: 3 encoding channels of every stage start from the image, resized.
- `freeze_stages`: during the last `freeze_fraction` of the steps the superresolution stages
  are frozen one by one with their *true stored* encodings (the storage scheme run on the
  exact decoder), so that later stages adapt to what the decoder will really see.

`storage` names the scheme the fit prepares for. With `dither`, the arcs have widths 1/n while
the entropy is in the loss (straight-through), so the objective is the entropy the file pays.
"""

from __future__ import annotations

import math
import time
import numpy as np
import torch

from .checkpoint import Checkpoint
from .encodings import CircularEncodings
from . import schemes
from .superres import size_schedule
from .. import Fit
from . import exact, model
from .config import FitConfig
from .exact import NAME
from .model import DecoderWeights
from ...layers import fit_dtype_name

LN2 = math.log(2.0)


def image_tensor(images: np.ndarray | list[np.ndarray], device: str = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) or a list of them -> float (B, 3, H, W) in 0..255."""
    arr = np.stack(images) if isinstance(images, list) else images[None]
    return torch.tensor(arr).permute(0, 3, 1, 2).float().to(device)


def loss_weights(step: int, config: FitConfig) -> tuple[float, float]:
    """(error-table weight, encoding-entropy weight) of the loss at `step`."""
    if step < config.maximize_steps:
        return 0.0, -1.0
    if step >= config.steps * (1.0 - config.entropy_on_fraction):
        return 1.0, 1.0
    return 1.0, 0.0


def freeze_plan(n_stages: int, config: FitConfig) -> dict[int, list[int]]:
    """step -> superresolution stages to freeze at that step, in order (evenly spaced in the last part)."""
    plan: dict[int, list[int]] = {}
    if not config.freeze_stages:
        return plan
    start = int(config.steps * (1.0 - config.freeze_fraction))
    span = config.steps - start
    for k in range(n_stages):
        plan.setdefault(start + (k * span) // n_stages, []).append(k)
    return plan


def freeze_stage(checkpoint: Checkpoint, schedule, encodings: CircularEncodings, stage: int,
                 seed: int, device: str, storage: str = "dither") -> None:
    """Replace stage's sampled encodings by the values the storage scheme will really store."""
    scheme = schemes.get(storage)

    def provide(k: int, units: np.ndarray) -> np.ndarray:
        if k < stage:
            return encodings.frozen_values[k][0]
        _, values = scheme.encode_stage(encodings.centers_u32(k).reshape(-1), units.reshape(-1), seed, k)
        encodings.freeze(k, values.reshape(units.shape)[None])
        raise exact.StopPass

    try:
        exact.fixed_pass(checkpoint, schedule, provide, device)
    except exact.StopPass:
        pass


def fit_batch(weights: DecoderWeights, images: torch.Tensor, config: FitConfig, *,
              encodings: CircularEncodings | None = None, progress=None,
              checkpoint: Checkpoint | None = None, device: str = "cpu",
              generator: torch.Generator | None = None) -> tuple[CircularEncodings, list[dict]]:
    """Fit the encodings of a batch of same-size images with the decoder fixed.

    Args:
        weights: decoder (its parameters are not updated).
        images: float (B, 3, H, W) in 0..255.
        progress: optional callable(step, bpsp_total) for a progress bar.
        checkpoint: needed only for `freeze_stages` (the exact coding pass).
        generator: the sampling noise's source (CPU); None: a new one seeded with `config.seed`.
    Returns:
        the fitted encodings and a history of {step, bpsp, error_bpsp, encodings_bpsp}.
    """
    b, _, h, w = images.shape
    schedule = size_schedule(h, w, weights.config)
    generator = generator if generator is not None else torch.Generator().manual_seed(config.seed)
    if encodings is None:
        encodings = CircularEncodings(schedule.encoding_grids(), weights.config.encodings_per_pixel, b).to(device)
        if config.init_from_image:
            encodings.init_from_image(images)
    weights.requires_grad_(False)
    try:
        opt = torch.optim.Adam(encodings.parameters(), lr=config.lr)
        plan = freeze_plan(len(schedule.stages), config) if checkpoint is not None and b == 1 else {}
        per_bit = 1.0 / (b * 3 * h * w * LN2)
        history = []
        for step in range(config.steps):
            for stage in plan.get(step, []):
                freeze_stage(checkpoint, schedule, encodings, stage, config.seed, device, config.storage)
            we, wc = loss_weights(step, config)
            quantize = config.storage == "dither" and wc > 0
            out, enc_nats = model.float_pass(weights, encodings, schedule, b, quantize_widths=quantize,
                                             generator=generator, dtype=config.conv_dtype)
            err_nats = model.error_table_nats(images, out)
            loss = (we * err_nats.sum() + wc * enc_nats.sum()) * per_bit
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rec = {"step": step, "error_bpsp": err_nats.sum().item() * per_bit,
                   "encodings_bpsp": enc_nats.sum().item() * per_bit}
            rec["bpsp"] = rec["error_bpsp"] + rec["encodings_bpsp"]
            history.append(rec)
            if progress is not None:
                progress(step, rec["bpsp"])
    finally:
        weights.requires_grad_(True)
    return encodings, history


def fit_image(image: np.ndarray, checkpoint: Checkpoint, config: FitConfig = FitConfig(), *,
              progress=None, device: str = "cpu", generator: torch.Generator | None = None) -> Fit:
    """Fit one uint8 (H, W, 3) image; arrays `centers_<k>` float32 (n, h_k, w_k) radians (head last)."""
    t0 = time.perf_counter()
    weights = model.weights_of(checkpoint).to(device)
    encodings, history = fit_batch(weights, image_tensor(image, device), config, progress=progress,
                                   checkpoint=checkpoint, device=device, generator=generator)
    # frozen stages keep their centers, so store's search finds the same stored values again
    arrays = {f"centers_{k}": c[0].detach().float().cpu().numpy() for k, c in enumerate(encodings.centers)}
    meta = {"config": config.to_dict(), "conv_dtype": fit_dtype_name(config.conv_dtype, device)}
    return Fit(NAME, image, arrays, meta, checkpoint.hash, "default", config.seed, history, time.perf_counter() - t0)
