"""The per-pixel family's float model (fitting and training only, never the decode path).

`DecoderWeights` holds the decoder's learned parts as torch parameters; `float_pass` runs the
shared wiring (`diffcode.families.per_pixel.superres.run_decoder`) with the float backend, differentiably. A
checkpoint (`diffcode.families.per_pixel.checkpoint.Checkpoint`) converts to and from it exactly (`weights_of`,
`checkpoint_of`), so the float and exact passes use the same weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ... import cauchy
from .backends import FloatBackend
from .checkpoint import Checkpoint
from .encodings import CircularEncodings
from ...fixedpoint import FRAC_BITS, quantize_tensor
from .superres import DecoderConfig, Schedule, run_decoder

LAYERS = ("pre1", "pre2", "post1", "post2")


def _layer_shapes(config: DecoderConfig, block: str) -> dict[str, tuple[int, int]]:
    c, h, e = config.channels, config.hidden, 2 * config.encodings_per_pixel
    out = config.out_channels if block == "head" else c
    return {"pre1": (c, h), "pre2": (h, c), "post1": (c + e, h), "post2": (h, out)}


class DecoderWeights(nn.Module):
    """All learned parts of the decoder: seed image, superresolver block, head block."""

    def __init__(self, config: DecoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        s = config.seed_size
        self.seed = nn.Parameter(0.5 * torch.randn(1, config.channels, s, s, generator=generator))
        self.blocks = nn.ModuleDict({b: self._block(b) for b in ("stage", "head")})

    def _block(self, block: str) -> nn.ModuleDict:
        convs = {n: nn.Conv2d(cin, cout, 3) for n, (cin, cout) in _layer_shapes(self.config, block).items()}
        if block == "stage":  # start the residual stages close to identity
            nn.init.zeros_(convs["post2"].weight)
            nn.init.zeros_(convs["post2"].bias)
        return nn.ModuleDict(convs)

    def conv(self, block: str, layer: str) -> nn.Conv2d:
        return self.blocks[block][layer]

    # -- checkpoint ---------------------------------------------------------------------------
    def quantized_arrays(self) -> dict[str, np.ndarray]:
        """Weights in fixed point: conv weights * 2^F, biases * 2^2F, seed * 2^F (int64)."""
        arrays = {"seed": quantize_tensor(self.seed, FRAC_BITS)}
        for block, layers in self.blocks.items():
            for name, conv in layers.items():
                arrays[f"{block}.{name}.weight"] = quantize_tensor(conv.weight, FRAC_BITS)
                arrays[f"{block}.{name}.bias"] = quantize_tensor(conv.bias, 2 * FRAC_BITS)
        return arrays

    def load_quantized(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the float weights to exactly the dequantized checkpoint values."""
        with torch.no_grad():
            self.seed.copy_(torch.from_numpy(arrays["seed"] / 2.0**FRAC_BITS))
            for block, layers in self.blocks.items():
                for name, conv in layers.items():
                    conv.weight.copy_(torch.from_numpy(arrays[f"{block}.{name}.weight"] / 2.0**FRAC_BITS))
                    conv.bias.copy_(torch.from_numpy(arrays[f"{block}.{name}.bias"] / 2.0 ** (2 * FRAC_BITS)))


def weights_of(checkpoint: Checkpoint) -> DecoderWeights:
    """The float model with exactly the checkpoint's (dequantized) weights."""
    model = DecoderWeights(checkpoint.config)
    model.load_quantized(checkpoint.arrays)
    return model


def checkpoint_of(model: DecoderWeights, meta: dict | None = None) -> Checkpoint:
    """The float model's weights quantized to a checkpoint."""
    return Checkpoint(model.config, model.quantized_arrays(), meta)


def quantized_entropy(entropy_nats: torch.Tensor) -> torch.Tensor:
    """ln n with n = round(e^entropy) >= 1 (arcs of width 1/n, as dithered storage keeps them).

    Straight-through: the value is ln n, the gradient that of the continuous entropy.
    """
    n = torch.round(torch.exp(entropy_nats.detach())).clamp(min=1.0)
    return entropy_nats + (torch.log(n) - entropy_nats).detach()


def float_pass(weights: DecoderWeights, encodings: CircularEncodings, schedule: Schedule,
               batch: int, sample: bool = True, index: torch.Tensor | None = None,
               quantize_widths: bool = False, generator: torch.Generator | None = None,
               dtype: str = "float32") -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable decoder pass (of the images `index` of `encodings`, if given).

    quantize_widths: use arcs of width 1/n (see `quantized_entropy`), as dithered storage does.
    generator: the samples' source (needed when `sample`).
    dtype: the convolutions' arithmetic (diffcode.layers.fit_dtype).

    Returns:
        head output float (B, 6, H, W) (3 raw locations, 3 raw log2 scales) and the total
        encoding entropy of each image in nats, float (B,).
    """
    totals = []

    def hook(k: int, entropy: torch.Tensor) -> torch.Tensor:
        if quantize_widths:
            entropy = quantized_entropy(entropy)
        totals.append(entropy.sum(dim=(1, 2, 3)))
        return encodings.features(k, entropy, sample, index, generator)

    out = run_decoder(schedule, FloatBackend(weights, batch, dtype), hook, weights.config)
    return out, torch.stack(totals).sum(dim=0)


def error_table_nats(images: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Error-table cost of each image in nats, float (B,); images float (B, 3, H, W) in 0..255."""
    return cauchy.nats(images, out[:, :3], out[:, 3:]).sum(dim=(1, 2, 3))
