"""The weights family's float model (fitting and MLP training only, never the decode path).

`MLP` is the shared float MLP (1, 40, 40, 1); `TableMLP` the same MLP as an interpolated table for
fast fitting; `float_values` / `float_pass` the differentiable per-image CNN (spec.py holds its
layout and the exact pass, which use the same integer weights).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import cauchy
from ...layers import float_padded_conv_stack, upsample2
from ...fixedpoint import FRAC_BITS, WEIGHT_LIMIT, quantize_tensor
from .spec import MLP_SIZES, MLPCheckpoint, Preset, TensorSpec, size_schedule


class MLP(nn.Module):
    """The shared float MLP (1, 40, 40, 1), relu: position in [0, 1) -> raw weight value."""

    def __init__(self, sizes: tuple[int, ...] = MLP_SIZES):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = u.reshape(-1, 1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x.reshape(u.shape)

    def quantized_arrays(self) -> dict[str, np.ndarray]:
        """Weights * 2^12, biases * 2^24 as int64 (clamped like decoder checkpoints)."""
        out = {}
        for i, layer in enumerate(self.layers):
            out[f"{i}.weight"] = quantize_tensor(layer.weight, FRAC_BITS)
            out[f"{i}.bias"] = quantize_tensor(layer.bias, 2 * FRAC_BITS)
        return out

    def load_quantized(self, arrays: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                layer.weight.copy_(torch.from_numpy(arrays[f"{i}.weight"] / 2.0**FRAC_BITS))
                layer.bias.copy_(torch.from_numpy(arrays[f"{i}.bias"] / 2.0 ** (2 * FRAC_BITS)))


class TableMLP(nn.Module):
    """The fixed MLP as a table of 2^bits + 1 values with linear interpolation, for fitting.

    The MLP is piecewise linear (relu), so interpolating it on a fine grid changes its values by
    far less than a weight's fixed-point step, while a fit step costs a gather instead of two
    40-wide layers per weight (the report preset has 330,000 weights). Gradients are the
    interpolation's slopes. Only the float fit uses it; coding runs the exact `fixed_mlp`.
    """

    def __init__(self, mlp: MLP, bits: int = 16):
        super().__init__()
        self.bits = bits
        grid = torch.arange(2**bits + 1, dtype=torch.float64) / 2**bits
        with torch.no_grad():
            x = grid.reshape(-1, 1)
            for i, layer in enumerate(mlp.layers):
                x = x @ layer.weight.double().T + layer.bias.double()
                if i < len(mlp.layers) - 1:
                    x = torch.relu(x)
        self.register_buffer("table", x.reshape(-1).float())

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = u.clamp(0.0, 1.0) * 2**self.bits
        i = x.detach().floor().clamp(max=2**self.bits - 1).long()
        lo, hi = self.table[i], self.table[i + 1]
        return lo + (x - i) * (hi - lo)


def mlp_of(checkpoint: MLPCheckpoint) -> MLP:
    """The float MLP with exactly the checkpoint's (dequantized) weights."""
    m = MLP()
    m.load_quantized(checkpoint.arrays)
    return m


def checkpoint_of(model: MLP, meta: dict | None = None) -> MLPCheckpoint:
    """The float MLP's weights quantized to a checkpoint."""
    return MLPCheckpoint(model.quantized_arrays(), meta)


def float_values(mlp: MLP, positions: torch.Tensor, specs: list[TensorSpec]) -> dict[str, torch.Tensor]:
    """Differentiable CNN tensors from positions float (N,) in [0, 1)."""
    raw = mlp(positions)
    out, start = {}, 0
    for s in specs:
        v = raw[start:start + s.size] * 2.0**-s.shift
        out[s.name] = v.clamp(-WEIGHT_LIMIT / 2.0**FRAC_BITS, WEIGHT_LIMIT / 2.0**FRAC_BITS).reshape(s.shape)
        start += s.size
    return out


def float_pass(t: dict[str, torch.Tensor], p: Preset, height: int, width: int,
               window: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Head output float (1, 6, H, W) of the per-image CNN with float tensors t.

    window (top, left, rows, cols): only that part of the output, (1, 6, rows, cols), with the
    same values as the whole pass's (up to float rounding). Every stage runs on the part of its
    output the window depends on (`window_regions`) plus a margin of one pixel per convolution;
    the margin is clipped at the stage's border, where the zero padding is the whole pass's, and
    inside the image it absorbs the wrong zero padding of the region's edges.
    """
    n_stage, n_head = len(p.superres) - 1, len(p.head) - 1
    schedule = size_schedule(height, width)
    x = t["seed"].reshape(1, -1, 1, 1)
    if window is None:
        for crop in schedule:
            x_up = upsample2(x, crop)
            x = x_up + float_padded_conv_stack(t, "stage", n_stage, x_up, p.conv_dtype)
        return float_padded_conv_stack(t, "head", n_head, x, p.conv_dtype)
    regions, grown = window_regions(schedule, window, n_stage, n_head)
    for k in range(len(schedule)):
        (q0, _, r0, _), (g0, g1, c0, c1) = regions[k], grown[k]
        up = upsample2(x, (0, 0))[..., g0 - 2 * q0:g1 - 2 * q0, c0 - 2 * r0:c1 - 2 * r0]
        x = _inside(up + float_padded_conv_stack(t, "stage", n_stage, up, p.conv_dtype), grown[k], regions[k + 1])
    out = float_padded_conv_stack(t, "head", n_head, x, p.conv_dtype)
    top, left, rows, cols = window
    return _inside(out, regions[-1], (top, top + rows, left, left + cols))


Region = tuple[int, int, int, int]  # rows y0:y1, columns x0:x1


def _inside(x: torch.Tensor, outer: Region, inner: Region) -> torch.Tensor:
    """The part `inner` of x, which holds the region `outer`."""
    return x[..., inner[0] - outer[0]:inner[1] - outer[0], inner[2] - outer[2]:inner[3] - outer[2]]


def window_regions(schedule: list[tuple[int, int]], window: tuple[int, int, int, int], n_stage: int,
                   n_head: int) -> tuple[list[Region], list[Region]]:
    """What a windowed pass computes, in each stage's own coordinates.

    regions[k]: the part of stage k's output (k = 0 the seed, k = len(schedule) the last stage)
    that is needed exactly; grown[k]: the part of stage k + 1's upsampled input its convolutions
    run on (regions[k + 1] plus a margin of n_stage, clipped to the stage). Going back a stage halves
    a region; each margin absorbs the wrong zero padding at an edge that is not the image's."""
    sizes = [(1, 1)]
    for crop_h, crop_w in schedule:
        sizes.append((2 * sizes[-1][0] - crop_h, 2 * sizes[-1][1] - crop_w))
    top, left, rows, cols = window
    h, w = sizes[-1]
    if not (0 <= top and 0 <= left and 0 < rows and 0 < cols and top + rows <= h and left + cols <= w):
        raise ValueError(f"window {window} is not inside the {h}x{w} output")

    def grow(r: Region, margin: int, size: tuple[int, int]) -> Region:
        return max(r[0] - margin, 0), min(r[1] + margin, size[0]), max(r[2] - margin, 0), min(r[3] + margin, size[1])

    regions = [grow((top, top + rows, left, left + cols), n_head, sizes[-1])]
    grown = []
    for k in range(len(schedule), 0, -1):
        g = grow(regions[0], n_stage, sizes[k])
        grown.insert(0, g)
        regions.insert(0, (g[0] // 2, (g[1] - 1) // 2 + 1, g[2] // 2, (g[3] - 1) // 2 + 1))
    return regions, grown


def error_table_nats(image: torch.Tensor, out: torch.Tensor, inward: bool = False) -> torch.Tensor:
    """Error-table cost in nats of image float (1, 3, H, W) in 0..255 (inward: `cauchy.nats`)."""
    return cauchy.nats(image, out[:, :3], out[:, 3:], inward).sum()
