"""The Python API, one entry point per step, whatever the model family (the header's variant).

    result = api.fit(image, variant="pyramid" | "per-pixel" | "weights")   # the encoder (Adam)
    data, report = api.store(result)                          # fit result -> .dfc bytes
    image = api.decompress(data)                              # bit-exact, the header names the family
    data = api.compress(image)                                # fit + store

A fit result (`diffcode.families.Fit`) names its family, so `store` needs no flag; each step goes
through the family's protocol (`diffcode.families`). The CLI is a thin layer over these.
"""

from __future__ import annotations

import numpy as np

from . import codec, families, limits
from .errors import UsageError
from .families import Fit
from .image import ColorMode, validate_array

VARIANTS = families.names()


def fit(image: np.ndarray, *, variant: str = "pyramid", model=None, color: ColorMode | None = None,
        preset: str = "default", steps: int | None = None, seed: int | None = None, generator=None,
        device: str = "cpu", progress=None, **options) -> Fit:
    """Fit one uint8 (H, W, 3) image.

    Args:
        variant: the family ("pyramid", the default; "per-pixel", "weights": the report's; `diffcode.families.names()`).
        model: the family's shared model (decoder checkpoint, MLP); None: the shipped one.
        preset: the family's fit preset (pyramid: default, fast, instant; per-pixel: "default"; weights: default,
            report, tiny).
        steps, seed: override the preset's values (weights: `steps` rescales its three phases).
        generator: torch.Generator of the fit's noise (None: one seeded with `seed`).
        color: the mode the image came in, kept for decoding (L, 1 and P are coded as RGB).
        progress: optional callable(step, bpsp).
        options: the family's own (per-pixel: config (FitConfig), storage).
    """
    family = families.get(variant)
    if seed is not None and not 0 <= seed < 2**32:  # the header stores it in 32 bits
        raise UsageError(f"seed {seed} out of range: 0 <= seed < 2**32")
    image = validate_array(image, "image")
    limits.check("fit", image.shape[0], image.shape[1], family.memory, device)
    model = model if model is not None else family.load_model()
    result = family.fit(image, model, preset=preset, steps=steps, seed=seed, generator=generator,
                        progress=progress, device=device, **options)
    result.color = color
    return result


def store(result: Fit, *, model=None, device: str = "cpu", progress=None, verify: bool = True,
          **options) -> tuple[bytes, codec.SizeReport]:
    """A fit result -> (.dfc bytes, size report: theoretical bits vs real bytes per section).

    Per-pixel fits store with the scheme they prepared for unless `storage` says otherwise;
    `progress` is callable(done, total). The file is decoded before it is returned (`verify`), so
    a file that would decode wrong is never handed out.
    """
    return codec.store(result, model, verify=verify, device=device, progress=progress, **options)


def compress(image: np.ndarray, *, variant: str = "pyramid", model=None, preset: str = "default",
             device: str = "cpu", progress=None, **options) -> bytes:
    """Fit and store a uint8 (H, W, 3) image; returns the bytes of a .dfc file."""
    model = model if model is not None else families.get(variant).load_model()
    result = fit(image, variant=variant, model=model, preset=preset, device=device, progress=progress, **options)
    data, _ = store(result, model=model, device=device)
    return data


def decompress(data: bytes, *, model=None, device: str = "cpu") -> np.ndarray:
    """Decode the bytes of a .dfc file to a uint8 (H, W, 3) array, bit-exact."""
    return codec.load(bytes(data), model, device=device)


__all__ = ["VARIANTS", "Fit", "compress", "decompress", "fit", "store"]
