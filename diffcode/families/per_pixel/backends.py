"""Two arithmetics for the same decoder wiring (`diffcode.families.per_pixel.superres.run_decoder`).

- `FloatBackend`: float32 torch, batched, differentiable; used to train and to fit.
- `FixedBackend`: exact fixed point (see `diffcode.fixedpoint`), one image; used by store and
  decode, so both compute bit-identical widths and Cauchy parameters.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...fixedpoint import FRAC_BITS, ACT_LIMIT, ROWS_PER_CHUNK, conv3x3_valid
from ...layers import conv2d, upsample2
from ...storage.entropy_units import entropy_nats, entropy_units_from_fixed
from .checkpoint import Checkpoint


def seed_window(seed_size: int, hw: tuple[int, int]) -> tuple[slice, slice]:
    """The centered crop of the seed image that starts the first stage."""
    top, left = (seed_size - hw[0]) // 2, (seed_size - hw[1]) // 2
    return slice(top, top + hw[0]), slice(left, left + hw[1])


class FloatBackend:
    """Differentiable float pass over a batch of same-size images."""

    def __init__(self, weights, batch: int = 1, dtype: str = "float32"):
        """weights: a float model (diffcode.families.per_pixel.model.DecoderWeights); dtype: the
        convolutions' arithmetic (diffcode.layers.fit_dtype)."""
        self.w = weights
        self.batch = batch
        self.dtype = dtype

    def seed(self, hw):
        rows, cols = seed_window(self.w.config.seed_size, hw)
        return self.w.seed[:, :, rows, cols].expand(self.batch, -1, -1, -1)

    def upsample(self, x, crop_hw):
        return upsample2(x, crop_hw)

    def _conv(self, block, layer, x):
        conv = self.w.conv(block, layer)
        return conv2d(x, conv.weight, conv.bias, dtype=self.dtype)

    def pre(self, block, x):
        return self._conv(block, "pre2", F.relu(self._conv(block, "pre1", x))).float()

    def entropy(self, h, n):
        """Entropy in nats of each of the n encodings per pixel: (B, n, h, w)."""
        return entropy_nats(h[:, :n])

    def post(self, block, h, features):
        x = torch.cat([h, features], dim=1)
        return self._conv(block, "post2", F.relu(self._conv(block, "post1", x))).float()

    def residual(self, x_up, y):
        return y + x_up[..., 4:-4, 4:-4]


class FixedBackend:
    """Exact fixed-point pass over one image; values are float64 integers in 2^-12 units."""

    def __init__(self, checkpoint: Checkpoint, rows_per_chunk: int = ROWS_PER_CHUNK, device: str = "cpu"):
        self.config = checkpoint.config
        self.rows_per_chunk = rows_per_chunk
        self.device = device
        a = checkpoint.arrays
        self.params = {k: torch.from_numpy(v.astype(np.float64)).to(device) for k, v in a.items()}

    def _conv(self, block, layer, x):
        w = self.params[f"{block}.{layer}.weight"]
        return conv3x3_valid(x, w.reshape(w.shape[0], -1), self.params[f"{block}.{layer}.bias"],
                             self.rows_per_chunk)

    def seed(self, hw):
        rows, cols = seed_window(self.config.seed_size, hw)
        return self.params["seed"][0, :, rows, cols].clone()

    def upsample(self, x, crop_hw):
        return upsample2(x, crop_hw)

    def pre(self, block, x):
        return self._conv(block, "pre2", torch.relu_(self._conv(block, "pre1", x)))

    def entropy(self, h, n):
        """Integer entropies (units of 1/256 bit) of the n encodings per pixel: int64 (n, h, w)."""
        return entropy_units_from_fixed(h[:n].cpu().numpy().astype(np.int64), FRAC_BITS)

    def post(self, block, h, features):
        feats = torch.from_numpy(features.astype(np.float64)).to(h.device)
        x = torch.cat([h, feats], dim=0)
        return self._conv(block, "post2", torch.relu_(self._conv(block, "post1", x)))

    def residual(self, x_up, y):
        return (y + x_up[..., 4:-4, 4:-4]).clamp_(-ACT_LIMIT, ACT_LIMIT)
