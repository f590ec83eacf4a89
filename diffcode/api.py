"""The Python API: `compress(array) -> bytes`, `decompress(bytes) -> array`."""

from __future__ import annotations

import numpy as np

from . import codec
from .decoder import Checkpoint
from .fit import FitConfig, fit_image
from .image import validate_array


def compress(image: np.ndarray, *, config: FitConfig | None = None, checkpoint: Checkpoint | None = None,
             device: str = "cpu", progress=None) -> bytes:
    """Fit and store a uint8 (H, W, 3) image; returns the bytes of a .dfc file."""
    image = validate_array(image, "image")
    checkpoint = checkpoint or Checkpoint.load()
    fit = fit_image(image, checkpoint, config or FitConfig(), progress=progress, device=device)
    data, _ = codec.store(image, fit.centers, checkpoint, fit.seed, device=device)
    return data


def decompress(data: bytes, *, checkpoint: Checkpoint | None = None, device: str = "cpu") -> np.ndarray:
    """Decode the bytes of a .dfc file to a uint8 (H, W, 3) array, bit-exact."""
    return codec.load(bytes(data), checkpoint, device=device)
