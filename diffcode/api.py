"""The Python API, one entry point per step, whatever the variant.

    result = api.fit(image, variant="per-pixel" | "weights")   # the encoder (Adam), minutes
    data, report = api.store(result)                          # fitted intervals -> .dfc bytes
    image = api.decompress(data)                              # bit-exact, the header names the variant
    data = api.compress(image)                                # fit + store

The variant decides which encoder and which coder run (`diffcode.fit_per_pixel` and `diffcode.codec` for
per-pixel encodings, `diffcode.fit_weights` and `diffcode.weights_codec` for CNN weight encodings);
a fit result carries its variant, so `store` needs no flag. The CLI is a thin layer over these.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import codec
from . import fit_per_pixel as _per_pixel  # called through the module, so tests can count fits
from .decoder import Checkpoint
from .fit_per_pixel import FitConfig, FitResult
from .image import ColorMode, validate_array

VARIANTS = ("per-pixel", "weights")


def fit(image: np.ndarray, *, variant: str = "per-pixel", color: ColorMode | None = None,
        config: FitConfig | None = None, preset: str = "default", steps: int | None = None, seed: int | None = None,
        storage: str | None = None, checkpoint: Checkpoint | None = None, device: str = "cpu", progress=None):
    """Fit one uint8 (H, W, 3) image.

    Args:
        variant: "per-pixel" (shared decoder, `config`) or "weights" (per-image CNN, `preset`).
        steps, seed, storage: override the config's (per-pixel) or the preset's (weights) values;
            `steps` rescales the phases (`FitConfig.with_steps`, `variants.weights.with_steps`).
        color: the mode the image came in, kept for decoding (L, 1 and P are coded as RGB).
        progress: optional callable(step, bpsp).

    Returns:
        `diffcode.fit_per_pixel.FitResult` or `diffcode.fit_weights.WeightsFitResult`; both have `.variant`,
        `.image`, `.history` and `.seconds`, and `store` takes either.
    """
    image = validate_array(image, "image")
    if variant == "weights":
        from .fit_weights import fit_image as fit_weights
        from .variants import weights as wv

        if config is not None or storage not in (None, "dither"):
            raise ValueError("the weights variant takes a preset, not a FitConfig, and stores with dither only")
        p = wv.preset(preset)
        if steps is not None:
            p = wv.with_steps(p, steps)
        result = fit_weights(image, wv.MLPCheckpoint.load(), p, 0 if seed is None else seed, progress, device=device)
    elif variant == "per-pixel":
        config = config or FitConfig()
        if steps is not None:  # the phases scale with the step count
            config = config.with_steps(steps)
        overrides = {"seed": seed, "storage": storage}
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        result = _per_pixel.fit_image(image, checkpoint or Checkpoint.load(), config, progress=progress,
                                      device=device)
    else:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    result.color = color
    return result


def store(result, *, checkpoint: Checkpoint | None = None, storage: str | None = None,
          budget_nats: float | None = None, device: str = "cpu", progress=None, verify: bool = True):
    """A fit result -> (.dfc bytes, report of theoretical entropy vs real size).

    Per-pixel fits store with the scheme they prepared for unless `storage` says otherwise;
    `progress` is callable(stages_done, stages_total). The file is decoded before it is returned
    (`verify`), so a file that would decode wrong is never handed out.
    """
    color = result.color or ColorMode()
    if getattr(result, "variant", "per-pixel") == "weights":
        from . import weights_codec
        from .variants import weights as wv

        if storage not in (None, "dither") or budget_nats is not None:
            raise ValueError("the weights variant stores its positions with dither only (no budget)")
        mlp = wv.MLPCheckpoint.load()
        if result.mlp_hash != mlp.hash:
            raise ValueError(f"the fit used weights MLP {result.mlp_hash[:16]}, the shipped one is {mlp.hash[:16]}")
        return weights_codec.store(result.image, result.centers, result.level_index, wv.preset(result.preset), mlp,
                                   result.seed, verify=verify, color=color)
    checkpoint = checkpoint or Checkpoint.load()
    if result.checkpoint_hash != checkpoint.hash:
        raise ValueError(f"the fit used decoder {result.checkpoint_hash[:16]}, the loaded decoder is "
                         f"{checkpoint.short_hash}; pass the fit's checkpoint")
    return codec.store(result.image, result.centers, checkpoint, result.seed,
                       storage=storage or result.config.storage, budget_nats=budget_nats, verify=verify,
                       device=device, progress=progress, color=color)


def compress(image: np.ndarray, *, variant: str = "per-pixel", config: FitConfig | None = None,
             preset: str = "default", checkpoint: Checkpoint | None = None, device: str = "cpu",
             progress=None, **overrides) -> bytes:
    """Fit and store a uint8 (H, W, 3) image; returns the bytes of a .dfc file."""
    checkpoint = checkpoint or (Checkpoint.load() if variant == "per-pixel" else None)
    result = fit(image, variant=variant, config=config, preset=preset, checkpoint=checkpoint, device=device,
                 progress=progress, **overrides)
    data, _ = store(result, checkpoint=checkpoint, device=device)
    return data


def decompress(data: bytes, *, checkpoint: Checkpoint | None = None, device: str = "cpu") -> np.ndarray:
    """Decode the bytes of a .dfc file to a uint8 (H, W, 3) array, bit-exact."""
    return codec.load(bytes(data), checkpoint, device=device)


__all__ = ["VARIANTS", "FitConfig", "FitResult", "compress", "decompress", "fit", "store"]
