"""Exact fixed-point arithmetic for the coding-time decoder pass.

Why the coding parameters are identical on every machine, thread count and batching:
every activation is an integer multiple of 2^-12 held as an integer in a float64 tensor, every
weight an integer multiple of 2^-12, every bias of 2^-24. A 3x3 convolution is an im2col copy
followed by a float64 matrix product whose products and partial sums are all integers below
2^53 (|activation| <= 2^24 units, |weight| <= 2^15 units, at most 9*1820 terms), so every
summation order, blocking, FMA use or thread split gives the *same exact integer*. The result is
rescaled with floor((acc + 2^11) / 2^12) (exact in float64) and clamped. Nonlinearities are
relu (exact) and integer lookup tables (`cos_sin_fixed` here, entropies in
`diffcode.storage.entropy_units`, Cauchy indexes in `diffcode.cauchy`) built with mpmath or
checked against pinned hashes. No libm function touches a value that reaches the coder.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
import torch

FRAC_BITS = 12
ONE = 1 << FRAC_BITS
WEIGHT_LIMIT = 8 * ONE  # |weight| <= 8.0
ACT_LIMIT = 1 << 24  # |activation| <= 4096.0
MAX_CONV_INPUTS = (1 << 53) // (ACT_LIMIT * WEIGHT_LIMIT * 9 * 2)  # keeps sums below 2^53
COS_TABLE_BITS = 14
TWO_PI = 2 * math.pi
U32 = float(1 << 32)  # stored angles are uint32: angle = 2 pi v / 2^32
COS_TABLE_SHA256 = "78af9380575a8bf0cdb4ffec1f3778e8b422fa4c86ec4b42f48f293dccbf8d1b"  # exact (mpmath)


def quantize_tensor(t: torch.Tensor, bits: int) -> np.ndarray:
    """Float tensor -> int64 array in 2^-bits units (nearest), clamped to the weight limit at that scale."""
    q = np.round(t.detach().cpu().double().numpy() * 2.0**bits).astype(np.int64)
    limit = WEIGHT_LIMIT << (bits - FRAC_BITS)
    return np.clip(q, -limit, limit)


def requantize(acc: torch.Tensor, shift: int = FRAC_BITS) -> torch.Tensor:
    """Round an exact integer accumulator (float64) from 2^-2F to 2^-F units, then clamp."""
    out = torch.floor((acc + float(1 << (shift - 1))) * (1.0 / (1 << shift)))
    return out.clamp_(-ACT_LIMIT, ACT_LIMIT)


def requantize_(acc: torch.Tensor, shift: int = FRAC_BITS) -> torch.Tensor:
    """:func:`requantize` in place (the same floating-point operations, so the same integers)."""
    acc.add_(float(1 << (shift - 1))).mul_(1.0 / (1 << shift)).floor_()
    return acc.clamp_(-ACT_LIMIT, ACT_LIMIT)


# Output rows per block of conv3x3_valid: small enough that the accumulator (O x rows x W float64)
# stays in the L2 cache across the nine products. 8 rows: 0.70 s instead of 1.02 s (128 rows)
# for a 40->40 conv of 512x768 pixels on one thread (/tmp benchmark at load average 6.6).
ROWS_PER_CHUNK = 8


def conv3x3_valid(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  rows_per_chunk: int = ROWS_PER_CHUNK) -> torch.Tensor:
    """Exact valid 3x3 convolution of one fixed-point image.

    Nine matrix products, one per kernel tap, accumulate into the output: tap (dy, dx) reads the
    input flattened row-major and shifted by dy*W + dx, so no im2col copy is made (the two
    right-most columns of every output row wrap into the next row and are dropped). Every
    product and partial sum is an integer below 2^53, so the result is exact in any summation
    order, blocking or thread count.

    Args:
        x: float64 (C, H, W) integers in 2^-12 units.
        weight: float64 (O, C*9) integers in 2^-12 units (im2col layout of a Conv2d weight).
        bias: float64 (O,) integers in 2^-24 units.
        rows_per_chunk: output rows per block (bounds memory); any value gives the same result.
    Returns:
        float64 (O, H-2, W-2) integers in 2^-12 units.
    """
    c, h, w = x.shape
    flat = x.new_zeros(c, h * w + 2)  # 2 spare: the last tap's wrap
    flat[:, :h * w] = x.reshape(c, h * w)
    return _conv3x3_flat(flat, h, w, weight, bias, rows_per_chunk)


def _conv3x3_flat(flat: torch.Tensor, h: int, w: int, weight: torch.Tensor, bias: torch.Tensor,
                  rows_per_chunk: int) -> torch.Tensor:
    """:func:`conv3x3_valid` of an input already flattened to float64 (C, H*W + 2), the 2 spare zeros."""
    c = flat.shape[0]
    if c > MAX_CONV_INPUTS:
        raise ValueError(f"{c} input channels exceed the exact-arithmetic limit {MAX_CONV_INPUTS}")
    o = weight.shape[0]
    taps = weight.view(o, c, 3, 3).permute(2, 3, 0, 1).contiguous()  # (3, 3, O, C)
    out = flat.new_empty(o, max(h - 2, 0), max(w - 2, 0))
    acc_buffer = flat.new_empty(o, min(rows_per_chunk, max(h - 2, 0)) * w)
    for r0 in range(0, h - 2, rows_per_chunk):
        r1 = min(h - 2, r0 + rows_per_chunk)
        n = (r1 - r0) * w
        acc = acc_buffer[:, :n]
        acc.copy_(bias[:, None].expand(o, n))
        for dy in range(3):
            for dx in range(3):
                start = (r0 + dy) * w + dx
                acc.addmm_(taps[dy, dx], flat[:, start:start + n])
        out[:, r0:r1] = requantize_(acc).view(o, r1 - r0, w)[:, :, :w - 2]
    return out


def _cos_table_numpy() -> np.ndarray:
    i = np.arange(1 << COS_TABLE_BITS)
    return np.round(np.cos(2 * np.pi * i / (1 << COS_TABLE_BITS)) * ONE).astype(np.int64)


def _cos_table_mpmath() -> np.ndarray:
    import mpmath

    n = 1 << COS_TABLE_BITS
    with mpmath.workprec(80):
        return np.array([int(mpmath.nint(mpmath.cos(2 * mpmath.pi * i / n) * ONE)) for i in range(n)], np.int64)


@functools.lru_cache(maxsize=1)
def cos_table() -> np.ndarray:
    """round(cos(2*pi*i / 2^14) * 2^12) for i in 0..2^14-1, int64.

    Built with numpy and checked against the hash of the exactly rounded (mpmath) table; a
    platform whose libm rounds differently falls back to mpmath (about 1 s).
    """
    for build in (_cos_table_numpy, _cos_table_mpmath):
        table = build()
        if _sha256(table) == COS_TABLE_SHA256:
            table.setflags(write=False)
            return table
    raise RuntimeError("cannot build the exact cos table on this platform")


def _sha256(table: np.ndarray) -> str:
    return hashlib.sha256(table.astype("<i8").tobytes()).hexdigest()


def cos_sin_fixed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of stored angles, in 2^-12 units.

    Args:
        values: uint32 angles, angle = 2*pi*v/2^32.
    Returns:
        (cos, sin) int64 arrays of the same shape, from the nearest of 2^14 table angles.
    """
    n = 1 << COS_TABLE_BITS
    shift = 32 - COS_TABLE_BITS
    idx = ((values.astype(np.int64) + (1 << (shift - 1))) >> shift) % n
    table = cos_table()
    return table[idx], table[(idx - n // 4) % n]


def angles_to_u32(angles: np.ndarray) -> np.ndarray:
    """Radians -> uint32 circle positions (nearest, wrapping)."""
    turns = np.mod(angles / TWO_PI, 1.0)
    return (np.round(turns * U32).astype(np.int64) % (1 << 32)).astype(np.uint32)


def padded_conv_stack(tensors: dict, block: str, n_layers: int, x: torch.Tensor) -> torch.Tensor:
    """Exact zero-padded 3x3 convolutions `block.<i>.weight` (O, 9C) in 2^-12 / `.bias` (O,) in 2^-24,
    relu between them, of x float64 integers (C, H, W) in 2^-12: the output keeps H x W."""
    c, h, w = x.shape
    for i in range(n_layers):
        flat = x.new_zeros(x.shape[0], (h + 2) * (w + 2) + 2)  # zero border and the 2 spare, one copy
        flat[:, :(h + 2) * (w + 2)].view(-1, h + 2, w + 2)[:, 1:-1, 1:-1] = x
        x = _conv3x3_flat(flat, h + 2, w + 2, tensors[f"{block}.{i}.weight"], tensors[f"{block}.{i}.bias"],
                          ROWS_PER_CHUNK)
        if i < n_layers - 1:
            x = torch.relu_(x)
    return x
