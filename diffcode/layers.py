"""Building blocks shared by the families' decoders, in both arithmetics.

- `upsample2`: nearest-neighbour x2 upsampling then an optional crop of the last row/column; the
  same code for float tensors (fitting) and float64 integer tensors (exact coding), since it
  only copies values.
- `conv2d`: the fitting passes' float convolution, in the channels-last layout (oneDNN runs the
  families' 3x3 convolutions about 2x faster in it on this CPU: experiments/results/speed.md) and
  optionally in bfloat16 (`FIT_DTYPES`).
- `float_padded_conv_stack`: the float twin of `diffcode.fixedpoint.padded_conv_stack` (zero-padded
  3x3 convolutions, relu between), for fitting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# the arithmetic of a fit's convolutions: its name in settings -> torch dtype (outputs are float32)
FIT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0,
           dtype: str = "float32") -> torch.Tensor:
    """F.conv2d in channels-last layout and in FIT_DTYPES[dtype], which the result keeps (a chain of
    convolutions converts once; callers take `.float()` of the chain's end)."""
    t, cl = FIT_DTYPES[dtype], torch.channels_last
    return F.conv2d(x.to(t).contiguous(memory_format=cl), weight.to(t).contiguous(memory_format=cl),
                    None if bias is None else bias.to(t), padding=padding)


def upsample2(x: torch.Tensor, crop_hw: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of the last two dims, then drop the last row/column."""
    x = x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    return x[..., : x.shape[-2] - crop_hw[0], : x.shape[-1] - crop_hw[1]]


def float_padded_conv_stack(tensors: dict, block: str, n_layers: int, x: torch.Tensor,
                            dtype: str = "float32") -> torch.Tensor:
    """The float twin of `fixedpoint.padded_conv_stack`: float tensors of the same layout, x (B, C, H, W)."""
    for i in range(n_layers):
        w = tensors[f"{block}.{i}.weight"]
        x = conv2d(x, w.reshape(w.shape[0], -1, 3, 3), tensors[f"{block}.{i}.bias"], 1, dtype)
        if i < n_layers - 1:
            x = F.relu(x)
    return x.float()
