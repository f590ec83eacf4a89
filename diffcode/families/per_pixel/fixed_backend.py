"""The exact arithmetic of the decoder wiring (`superres.run_decoder`): `FixedBackend`, numpy only.

Store and decode run it, so both compute bit-identical widths and Cauchy parameters (see
`diffcode.fixedpoint`). Its float twin, `backends.FloatBackend`, trains and fits. This module is
on the decode path and imports no torch (importing torch costs 1.3-2 s, most of a decode).
"""

from __future__ import annotations

import numpy as np

from ...fixedpoint import ACT_LIMIT, FRAC_BITS, ROWS_PER_CHUNK, conv3x3_valid, empty_image, upsample2
from ...storage.entropy_units import entropy_units_from_fixed
from .checkpoint import Checkpoint


def seed_window(seed_size: int, hw: tuple[int, int]) -> tuple[slice, slice]:
    """The centered crop of the seed image that starts the first stage."""
    top, left = (seed_size - hw[0]) // 2, (seed_size - hw[1]) // 2
    return slice(top, top + hw[0]), slice(left, left + hw[1])


class FixedBackend:
    """Exact fixed-point pass over one image; values are float64 integers in 2^-12 units (numpy)."""

    def __init__(self, checkpoint: Checkpoint, rows_per_chunk: int = ROWS_PER_CHUNK, device: str = "cpu"):
        """device: accepted for the protocol; the exact pass always runs on the CPU."""
        self.config = checkpoint.config
        self.rows_per_chunk = rows_per_chunk
        self.params = {k: v.astype(np.float64) for k, v in checkpoint.arrays.items()}

    def _conv(self, block, layer, x, relu=False):
        w = self.params[f"{block}.{layer}.weight"]
        return conv3x3_valid(x, w.reshape(w.shape[0], -1), self.params[f"{block}.{layer}.bias"],
                             self.rows_per_chunk, relu=relu)

    def seed(self, hw):
        rows, cols = seed_window(self.config.seed_size, hw)
        return self.params["seed"][0, :, rows, cols].copy()

    def upsample(self, x, crop_hw):
        return upsample2(x, crop_hw)

    def pre(self, block, x):
        return self._conv(block, "pre2", self._conv(block, "pre1", x, relu=True))

    def entropy(self, h, n):
        """Integer entropies (units of 1/256 bit) of the n encodings per pixel: int64 (n, h, w)."""
        return entropy_units_from_fixed(h[:n].astype(np.int64), FRAC_BITS)

    def post(self, block, h, features):
        x = empty_image(h.shape[0] + features.shape[0], *h.shape[1:])
        x[:h.shape[0]] = h
        x[h.shape[0]:] = features
        return self._conv(block, "post2", self._conv(block, "post1", x, relu=True))

    def residual(self, x_up, y):
        out = y + x_up[..., 4:-4, 4:-4]
        return np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)
