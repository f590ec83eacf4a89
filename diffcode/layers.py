"""Building blocks shared by the families' decoders, in both arithmetics.

- `upsample2`: nearest-neighbour x2 upsampling then an optional crop of the last row/column, of
  torch tensors (fitting; the exact pass has its numpy twin, `diffcode.fixedpoint.upsample2`).
- `conv2d`: the fitting passes' float convolution, in the channels-last layout (oneDNN runs the
  families' 3x3 convolutions about 2x faster in it on this CPU: experiments/results/
  conv_layouts.md) and optionally in bfloat16 (`fit_dtype`).
- `float_padded_conv_stack`: the float twin of `diffcode.fixedpoint.padded_conv_stack` (zero-padded
  3x3 convolutions, relu between), for fitting.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F


# the arithmetic of a fit's convolutions: its name in settings -> torch dtype; "auto" is bfloat16
# where the hardware computes it natively (`native_bfloat16`), float32 elsewhere
FIT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.cache
def native_bfloat16(device: str) -> bool:
    """Whether bfloat16 convolutions run natively on `device` ("cpu", "cuda", "cuda:1", ...): a GPU
    that computes them in hardware (not emulated), or an x86 CPU with AVX512-BF16 or AMX (elsewhere
    oneDNN may emulate them; float32 is the safe choice there)."""
    kind = device.split(":")[0]
    if kind == "cuda":
        return torch.cuda.is_available() and _cuda_bf16(torch.device(device))
    if kind != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _cuda_bf16(device: torch.device) -> bool:
    with torch.cuda.device(device):
        return torch.cuda.is_bf16_supported(including_emulation=False)


def fit_dtype(name: str, device: str = "cpu") -> torch.dtype:
    """The torch dtype of a fit's convolutions named `name` (float32, bfloat16 or auto) on `device`."""
    if name == "auto":
        name = "bfloat16" if native_bfloat16(str(device)) else "float32"
    if name not in FIT_DTYPES:
        raise ValueError(f"unknown convolution dtype {name!r}; expected one of {', '.join(FIT_DTYPES)}, auto")
    return FIT_DTYPES[name]


def fit_dtype_name(name: str, device: str = "cpu") -> str:
    """What `fit_dtype(name, device)` resolves to, by name (fits record it: "auto" differs by machine)."""
    return str(fit_dtype(name, device)).removeprefix("torch.")


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int = 0,
           dtype: str = "float32") -> torch.Tensor:
    """F.conv2d in channels-last layout and in fit_dtype(dtype), which the result keeps (a chain of
    convolutions converts once; callers take `.float()` of the chain's end)."""
    t, cl = fit_dtype(dtype, str(x.device)), torch.channels_last
    return F.conv2d(x.to(t).contiguous(memory_format=cl), weight.to(t).contiguous(memory_format=cl),
                    None if bias is None else bias.to(t), padding=padding)


def upsample2(x: torch.Tensor, crop_hw: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of the last two dims, then drop the last row/column.

    Batches (N, C, H, W) go through F.interpolate, whose backward is a dedicated kernel and which
    keeps the channels-last layout: a weights-variant stage at 768x512 took 0.15 s forward and
    backward against 0.32 s with repeat_interleave, whose backward sums an expanded view (one
    thread, best of 4, a throwaway timing while two fits shared the machine).
    The values are the same copies either way. The gradients sum the same four terms in another
    order and precision (in bfloat16 about 30 % of them differ by 1-2 ulp, slightly closer to a
    float64 reference); other inputs (integers, empty images) keep repeat_interleave."""
    if x.dim() == 4 and x.is_floating_point() and x.numel() > 0:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    else:
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
