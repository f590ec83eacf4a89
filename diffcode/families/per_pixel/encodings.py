"""Per-pixel interval encodings on the unit circle (report 3.1, 3.1.2, 4.1).

An encoding is an arc: a center angle (a free parameter, radians) and an entropy in nats that
the decoder computes from its own channels (softplus), so the arc keeps a fraction
w = e^-entropy of the circle. During fitting a uniform sample u ~ U[0, 1) is drawn *first* and
then mapped linearly into the arc, angle = center + (u - 1/2) * w * 2 pi, so gradients reach
both the center and the width. The decoder sees cos and sin of the angle as two channels.

Stored angles are uint32: angle = 2 pi v / 2^32.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...fixedpoint import TWO_PI, U32, angles_to_u32



class CircularEncodings(nn.Module):
    """Centers of the per-pixel encodings of a batch of images, one tensor per stage.

    `centers[k]` has shape (B, n, h_k, w_k) in radians, where (h_k, w_k) is the stage's
    encoding grid (`Schedule.encoding_grids()`).
    """

    def __init__(self, grids: list[tuple[int, int]], n: int, batch: int = 1):
        super().__init__()
        self.centers = nn.ParameterList([nn.Parameter(torch.zeros(batch, n, h, w)) for h, w in grids])
        self.frozen: dict[int, torch.Tensor] = {}  # stage -> stored angles, radians (B, n, h, w)
        self.frozen_values: dict[int, np.ndarray] = {}  # stage -> stored uint32 (B, n, h, w)

    def init_from_image(self, images: torch.Tensor, channels: int = 3) -> None:
        """Set `channels` encodings of every stage to the image resized to the stage grid.

        images: float (B, 3, H, W) in 0..255. Pixel p becomes the angle (p/255 - 1/2) * pi.
        """
        with torch.no_grad():
            for c in self.centers:
                small = F.interpolate(images, size=c.shape[-2:], mode="area")
                c[:, :channels] = ((small[:, :channels] / 255.0 - 0.5) * math.pi)

    def features(self, k: int, entropy_nats: torch.Tensor, sample: bool = True,
                 index: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """cos/sin channels (B, 2n, h, w) of stage k's encodings.

        Frozen stages use their exact stored angles; otherwise a reparameterized sample inside
        the arc (or the center when sample is False). `index` selects a sub-batch of images.
        The sample's noise comes from `generator` (a CPU generator, so the noise is the same on any
        device; the convolutions' arithmetic may differ: `diffcode.layers.fit_dtype`).
        """
        if k in self.frozen:
            angle = self.frozen[k]
        else:
            angle = self.centers[k] if index is None else self.centers[k][index]
            if sample:
                width = torch.exp(-entropy_nats)
                if generator is None:
                    raise ValueError("sampling needs a torch.Generator")
                u = torch.rand(angle.shape, generator=generator, dtype=angle.dtype).to(angle.device)
                angle = angle + (u - 0.5) * width * TWO_PI
        return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)

    def freeze(self, k: int, stored: np.ndarray) -> None:
        """Use the exact stored values (uint32 (B, n, h, w)) for stage k from now on."""
        self.frozen_values[k] = stored
        angle = torch.from_numpy(stored.astype(np.float64) * (TWO_PI / U32)).float()
        self.frozen[k] = angle.to(self.centers[k].device)

    def centers_u32(self, k: int, image: int = 0) -> np.ndarray:
        """Stage k's centers of one image as uint32 angles (n, h, w)."""
        c = self.centers[k][image].detach().double().cpu().numpy()
        return angles_to_u32(c)
