"""The per-pixel circular-encodings variant (report 4.1).

Every superresolution stage and the head compute 5 entropies per pixel from their own
channels, then read 5 circular encodings per pixel (cos/sin as 10 channels). The decoder
(seed, superresolver, head) is shared and trained on the Kodak training split; only the
encodings' centers are fitted per image.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .. import cauchy
from ..backends import FixedBackend, FloatBackend
from ..decoder import Checkpoint, DecoderWeights
from ..encodings import CircularEncodings
from ..fixedpoint import FRAC_BITS, cos_sin_fixed
from ..superres import Schedule, run_decoder

NAME = "per-pixel"

# provide(stage, entropy_units int64 (n, h, w)) -> stored values uint32 (n, h, w)
ValueProvider = Callable[[int, np.ndarray], np.ndarray]


def quantized_entropy(entropy_nats: torch.Tensor) -> torch.Tensor:
    """ln n with n = round(e^entropy) >= 1 (arcs of width 1/n, as dithered storage keeps them).

    Straight-through: the value is ln n, the gradient that of the continuous entropy.
    """
    n = torch.round(torch.exp(entropy_nats.detach())).clamp(min=1.0)
    return entropy_nats + (torch.log(n) - entropy_nats).detach()


def float_pass(weights: DecoderWeights, encodings: CircularEncodings, schedule: Schedule,
               batch: int, sample: bool = True, index: torch.Tensor | None = None,
               quantize_widths: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable decoder pass (of the images `index` of `encodings`, if given).

    quantize_widths: use arcs of width 1/n (see `quantized_entropy`), as dithered storage does.

    Returns:
        head output float (B, 6, H, W) (3 raw locations, 3 raw log2 scales) and the total
        encoding entropy of each image in nats, float (B,).
    """
    totals = []

    def hook(k: int, entropy: torch.Tensor) -> torch.Tensor:
        if quantize_widths:
            entropy = quantized_entropy(entropy)
        totals.append(entropy.sum(dim=(1, 2, 3)))
        return encodings.features(k, entropy, sample, index)

    out = run_decoder(schedule, FloatBackend(weights, batch), hook, weights.config)
    return out, torch.stack(totals).sum(dim=0)


def error_table_nats(images: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Error-table cost of each image in nats, float (B,); images float (B, 3, H, W) in 0..255."""
    return cauchy.nats(images, out[:, :3], out[:, 3:]).sum(dim=(1, 2, 3))


class StopPass(Exception):
    """Raised by a value provider to end a fixed-point pass early (used to freeze stages)."""


def fixed_pass(checkpoint: Checkpoint, schedule: Schedule, provide: ValueProvider,
               device: str = "cpu") -> np.ndarray:
    """Exact coding-time pass; `provide` supplies each stage's stored encodings.

    Returns:
        int64 (3*H*W, 2) Cauchy table parameters (loc index, scale index) in C, H, W order.
    """
    def hook(k: int, units: np.ndarray) -> np.ndarray:
        cos, sin = cos_sin_fixed(provide(k, units))
        return np.concatenate([cos, sin], axis=0)

    out = run_decoder(schedule, FixedBackend(checkpoint, device=device), hook, checkpoint.config)
    out = out.cpu().numpy().astype(np.int64)
    return cauchy.params_from_fixed(out[:3].reshape(-1), out[3:].reshape(-1), FRAC_BITS)
