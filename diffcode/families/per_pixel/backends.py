"""Two arithmetics for the same decoder wiring (`diffcode.families.per_pixel.superres.run_decoder`).

- `FloatBackend`: float torch (convolutions in `diffcode.layers.conv2d`'s layout and dtype), batched,
  differentiable; used to train and to fit.
- `FixedBackend`: exact fixed point (see `diffcode.fixedpoint`), one image; used by store and
  decode, so both compute bit-identical widths and Cauchy parameters. It lives in
  `fixed_backend.py` (numpy only: the decode path imports no torch) and is re-exported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...layers import conv2d, upsample2
from ...storage.entropy_units import entropy_nats
from .fixed_backend import FixedBackend, seed_window  # noqa: F401 (re-exported)


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
