"""Exact fixed-point arithmetic for the coding-time decoder pass (numpy and numba; no torch).

Why the coding parameters are identical on every machine, thread count and batching:
every activation is an integer multiple of 2^-12 held as an integer in a float64 array, every
weight an integer multiple of 2^-12, every bias of 2^-24. A 3x3 convolution is an im2col copy
followed by a float64 matrix product whose products and partial sums are all integers below
2^53 (|activation| <= 2^24 units, |weight| <= 2^15 units, at most 9*1820 terms), so every
summation order, blocking, FMA use or thread split gives the *same exact integer*. The result is
rescaled with floor((acc + 2^11) / 2^12) (exact in float64) and clamped. Nonlinearities are
relu (exact) and integer lookup tables (`cos_sin_fixed` here, entropies in
`diffcode.storage.entropy_units`, Cauchy indexes in `diffcode.cauchy`) built with numpy and
checked against pinned hashes, or else with mpmath (`diffcode.pinned`). No libm function touches a value that reaches the coder.

Threads: a convolution's output rows are split among `parallel.threads()` Python threads, each running
single-threaded BLAS products on its own blocks of rows (numpy and the compiled requantization
release the GIL). Importing torch costs 1.3-2 s, more than the exact pass of a weights image, so
the coding path does not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

from .parallel import executor, single_threaded_blas, threads
from .pinned import pinned_table

if TYPE_CHECKING:
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


def quantize_tensor(t: "torch.Tensor", bits: int) -> np.ndarray:
    """Float tensor -> int64 array in 2^-bits units (nearest), clamped to the weight limit at that scale."""
    q = np.round(t.detach().cpu().double().numpy() * 2.0**bits).astype(np.int64)
    limit = WEIGHT_LIMIT << (bits - FRAC_BITS)
    return np.clip(q, -limit, limit)


def requantize(acc: np.ndarray, shift: int = FRAC_BITS) -> np.ndarray:
    """Round an exact integer accumulator (float64) from 2^-2F to 2^-F units, then clamp (a new array)."""
    out = np.floor((acc + float(1 << (shift - 1))) * (1.0 / (1 << shift)))
    return np.clip(out, -ACT_LIMIT, ACT_LIMIT, out=out)


# ----------------------------------------------------------------------------- convolutions

# Output rows per block of conv3x3_valid: small enough that the im2col block (9C x rows x W) and
# the accumulator (O x rows x W float64) stay in cache. A 40->40 conv of 512x768 pixels on one
# thread (load average 2.4): 2 rows 0.42-0.44 s, 8 rows 0.50-0.52 s (torch's nine addmm_ per
# 8-row block, the previous implementation: 0.53-0.62 s).
ROWS_PER_CHUNK = 2


@numba.njit(cache=True, nogil=True)
def _requantize_rows(acc, bias, out, start, stride, r0, rows, width, low):
    """Output rows r0 .. r0 + rows - 1 of a block: out[:, start + (r0 + r) * stride + j] =
    clamp(floor((acc[:, r * width + j] + bias + 2^11) / 2^12), low, ACT_LIMIT) for j < width - 2,
    the block's valid columns requantized with the float64 operations of `requantize` (low = 0
    applies relu). acc: (O, rows * width), out: the output's flat buffer (rows `stride` apart,
    from `start`); both C-contiguous, so the loop is vectorized."""
    half = float(1 << (FRAC_BITS - 1))
    scale = 1.0 / (1 << FRAC_BITS)
    limit = float(ACT_LIMIT)
    valid = width - 2
    for o in range(acc.shape[0]):
        b = bias[o]
        for r in range(rows):
            src = acc[o, r * width:r * width + valid]
            dst = out[o, start + (r0 + r) * stride:start + (r0 + r) * stride + valid]
            for j in range(valid):
                dst[j] = min(max(np.floor(((src[j] + b) + half) * scale), low), limit)


def empty_image(c: int, h: int, w: int) -> np.ndarray:
    """An uninitialised float64 (C, H, W) image whose rows lie in a flat (C, H*W + 2) buffer with two
    zero spares, the layout `conv3x3_valid` reads: filling it saves the convolution a copy."""
    flat = np.empty((c, h * w + 2))
    flat[:, h * w:] = 0.0
    return flat[:, :h * w].reshape(c, h, w)


def flat_buffer(x: np.ndarray) -> np.ndarray | None:
    """The flat float64 (C, H*W + 2) buffer of an `empty_image` x, which `conv3x3_valid` reads in place,
    or None if x is another array (the convolution then copies it into one)."""
    base = x.base  # numpy collapses the chain of views: the flat buffer itself
    c, h, w = x.shape
    if (isinstance(base, np.ndarray) and base.dtype == np.float64 and base.shape == (c, h * w + 2)
            and base.flags.c_contiguous and x.strides == (8 * (h * w + 2), 8 * w, 8)
            and x.__array_interface__["data"][0] == base.__array_interface__["data"][0]
            and not base[:, h * w:].any()):
        return base
    return None


def _conv_rows(flat, h, w, taps, bias, out, start, stride, first, step, rows_per_chunk, low):
    """Blocks first, first + step, ... of output rows (one thread's share) into out's flat buffer."""
    c, o = flat.shape[0], taps.shape[0]
    cols = np.empty((9 * c, rows_per_chunk * w))
    acc_buffer = np.empty((o, rows_per_chunk * w))
    for r0 in range(first * rows_per_chunk, h - 2, step * rows_per_chunk):
        r1 = min(h - 2, r0 + rows_per_chunk)
        n = (r1 - r0) * w
        block = cols if n == cols.shape[1] else np.empty((9 * c, n))
        for t in range(9):
            shift = (r0 + t // 3) * w + t % 3
            block[t * c:(t + 1) * c] = flat[:, shift:shift + n]
        acc = acc_buffer if n == acc_buffer.shape[1] else np.empty((o, n))
        np.matmul(taps, block, out=acc)
        _requantize_rows(acc, bias, out, start, stride, r0, r1 - r0, w, low)


def _conv3x3_flat(flat: np.ndarray, h: int, w: int, weight: np.ndarray, bias: np.ndarray,
                  rows_per_chunk: int, relu: bool = False, pad: bool = False) -> np.ndarray:
    """:func:`conv3x3_valid` of an input already flattened to float64 (C, H*W + 2), the 2 spare zeros.
    pad: return the output inside a zero border of one pixel, (O, H, W), the next padded layer's input."""
    c = flat.shape[0]
    if c > MAX_CONV_INPUTS:
        raise ValueError(f"{c} input channels exceed the exact-arithmetic limit {MAX_CONV_INPUTS}")
    o = weight.shape[0]
    taps = np.ascontiguousarray(weight.reshape(o, c, 9).transpose(0, 2, 1).reshape(o, 9 * c))  # tap-major K
    hh, ww = max(h - 2, 0) + 2 * pad, max(w - 2, 0) + 2 * pad  # the output's rows and columns
    out_flat = np.zeros((o, hh * ww + 2)) if pad else np.empty((o, hh * ww + 2))  # calloc: zero border, no memset
    out_flat[:, -2:] = 0.0
    out = out_flat[:, :-2].reshape(o, hh, ww)  # an empty_image
    start = ww + 1 if pad else 0
    bias = np.ascontiguousarray(bias, dtype=np.float64)
    low = 0.0 if relu else -float(ACT_LIMIT)
    blocks = -(-max(h - 2, 0) // rows_per_chunk)
    n = min(threads(), blocks)
    with single_threaded_blas():  # also for one thread: OpenBLAS would otherwise take every core
        if n <= 1:
            _conv_rows(flat, h, w, taps, bias, out_flat, start, ww, 0, 1, rows_per_chunk, low)
            return out
        jobs = [executor(n).submit(_conv_rows, flat, h, w, taps, bias, out_flat, start, ww, i, n, rows_per_chunk,
                                    low) for i in range(n)]
        for job in jobs:
            job.result()
    return out


def conv3x3_valid(x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                  rows_per_chunk: int = ROWS_PER_CHUNK, relu: bool = False) -> np.ndarray:
    """Exact valid 3x3 convolution of one fixed-point image.

    Per block of output rows, an im2col copy (the input flattened row-major, shifted by dy*W + dx
    for tap (dy, dx); the two right-most columns of every output row wrap into the next row and
    are dropped) and one matrix product. Every product and partial sum is an integer below 2^53,
    so the result is exact in any summation order, blocking or thread count.

    Args:
        x: float64 (C, H, W) integers in 2^-12 units (an `empty_image` is read without a copy).
        weight: float64 (O, C*9) integers in 2^-12 units (im2col layout of a Conv2d weight).
        bias: float64 (O,) integers in 2^-24 units.
        rows_per_chunk: output rows per block (bounds memory); any value gives the same result.
        relu: apply relu to the output (exact).
    Returns:
        float64 (O, H-2, W-2) integers in 2^-12 units, an `empty_image`.
    """
    c, h, w = x.shape
    flat = flat_buffer(x)
    if flat is None:
        image = empty_image(c, h, w)
        image[...] = x
        flat = flat_buffer(image)
    return _conv3x3_flat(flat, h, w, weight, bias, rows_per_chunk, relu)


def upsample2(x: np.ndarray, crop_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour x2 upsampling of float64 (C, H, W), then drop the last row/column: the numpy
    twin of `diffcode.layers.upsample2` (it only copies values), returned as an `empty_image`."""
    c, h, w = x.shape
    kh, kw = h - crop_hw[0], w - crop_hw[1]  # odd rows / columns kept
    out = empty_image(c, h + kh, w + kw)
    out[:, 0::2, 0::2] = x
    out[:, 0::2, 1::2] = x[:, :, :kw]
    out[:, 1::2, 0::2] = x[:, :kh, :]
    out[:, 1::2, 1::2] = x[:, :kh, :kw]
    return out


def _cos_table_mpmath() -> np.ndarray:
    import mpmath

    n = 1 << COS_TABLE_BITS
    with mpmath.workprec(80):
        return np.array([int(mpmath.nint(mpmath.cos(2 * mpmath.pi * i / n) * ONE)) for i in range(n)], np.int64)


@pinned_table(COS_TABLE_SHA256, exact=_cos_table_mpmath)
def cos_table() -> np.ndarray:
    """round(cos(2*pi*i / 2^14) * 2^12) for i in 0..2^14-1, int64.

    Built with numpy and checked against the hash of the exactly rounded (mpmath) table; a
    platform whose libm rounds differently falls back to mpmath (about 1 s; `diffcode.pinned`).
    """
    i = np.arange(1 << COS_TABLE_BITS)
    return np.round(np.cos(2 * np.pi * i / (1 << COS_TABLE_BITS)) * ONE).astype(np.int64)


def cos_sin_fixed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of stored angles, in 2^-12 units.

    Args:
        values: uint32 angles, angle = 2*pi*v/2^32.
    Returns:
        (cos, sin) int64 arrays of the same shape, from the nearest of 2^14 table angles.
    """
    values = np.asarray(values)
    flat = _cos_sin_flat(values, np.int64)
    return flat[0].reshape(values.shape), flat[1].reshape(values.shape)


def cos_sin_stack(values: np.ndarray) -> np.ndarray:
    """float64 (2C, ...) of uint32 angles (C, ...): the cos then the sin of `cos_sin_fixed`, in one pass."""
    values = np.asarray(values)
    if values.ndim == 0:
        raise ValueError("cos_sin_stack needs angles of shape (C, ...)")
    return _cos_sin_flat(values, np.float64).reshape((2 * values.shape[0],) + values.shape[1:])


def _cos_sin_flat(values: np.ndarray, dtype) -> np.ndarray:
    """(2, values.size) of `dtype`: the cos, then the sin, of the flattened angles."""
    flat = np.empty((2, values.size), dtype)
    _cos_sin_into(values.astype(np.uint32).reshape(-1), cos_table(), flat[0], flat[1])
    return flat


@numba.njit(cache=True, nogil=True)
def _cos_sin_into(values, table, cos, sin):
    """cos[i], sin[i] = table[j], table[(j - n/4) mod n] for j the nearest of n table angles to values[i]."""
    n = table.shape[0]
    shift = 32 - COS_TABLE_BITS
    half = 1 << (shift - 1)
    for i in range(values.shape[0]):
        j = ((np.int64(values[i]) + half) >> shift) % n
        cos[i] = table[j]
        sin[i] = table[(j + 3 * n // 4) % n]


def angles_to_u32(angles: np.ndarray) -> np.ndarray:
    """Radians -> uint32 circle positions (nearest, wrapping)."""
    turns = np.mod(angles / TWO_PI, 1.0)
    return (np.round(turns * U32).astype(np.int64) % (1 << 32)).astype(np.uint32)


def padded_conv_stack(tensors: dict, block: str, n_layers: int, x: np.ndarray) -> np.ndarray:
    """Exact zero-padded 3x3 convolutions `block.<i>.weight` (O, 9C) in 2^-12 / `.bias` (O,) in 2^-24,
    relu between them, of x float64 integers (C, H, W) in 2^-12: the output keeps H x W."""
    c, h, w = x.shape
    flat = np.zeros((x.shape[0], (h + 2) * (w + 2) + 2))  # zero border and the 2 spare, one copy
    flat[:, :(h + 2) * (w + 2)].reshape(-1, h + 2, w + 2)[:, 1:-1, 1:-1] = x
    for i in range(n_layers):
        inner = i < n_layers - 1  # relu, and written inside the next layer's zero border
        x = _conv3x3_flat(flat, h + 2, w + 2, tensors[f"{block}.{i}.weight"], tensors[f"{block}.{i}.bias"],
                          ROWS_PER_CHUNK, relu=inner, pad=inner)
        if inner:
            flat = flat_buffer(x)
    return x
