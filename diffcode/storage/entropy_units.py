"""Decoder-side integer entropies of encodings and the arc widths they imply.

The decoder network outputs, for each encoding, a fixed-point number ``ch_fx`` (int64, units of
``2**-frac_bits``); the report's entropy is ``softplus(ch)`` nats with ``ch = ch_fx / 2**frac_bits``.
Storage works with that entropy as an integer ``e`` in units of 1/256 bit::

    e = round(softplus(ch) / ln 2 * 256)  clamped to [0, MAX_ENCODING_BITS * 256]   (half up)
    L = floor(2**32 * 2**(-e / 256))      the arc length, in units of 2**-32 of the circle

Both are bit-identical on every platform: ``e`` is a ``searchsorted`` of ``ch_fx`` in a table of
the 5,120 exact switching points (``ceil(x_u * 2**32)`` with ``x_u = ln(2**((2u-1)/512) - 1)``,
the ``ch`` where the rounded value reaches ``u``), and ``L`` shifts an exact table of
``floor(2**32 * 2**(-r/256))``, r = 0..255. The tables are built with numpy and accepted only if
their SHA-256 equals the pinned one; otherwise they are rebuilt with mpmath at 100 bits
(`diffcode.pinned`).

Fitting uses :func:`entropy_nats`, the float (torch) version of the same clamped softplus.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from ..pinned import pinned_table

if TYPE_CHECKING:
    import torch

UNITS_PER_BIT = 256
MAX_ENCODING_BITS = 20
MAX_UNITS = MAX_ENCODING_BITS * UNITS_PER_BIT
MAX_ENTROPY_NATS = MAX_ENCODING_BITS * math.log(2)
FULL_CIRCLE = 1 << 32  # arc length of an encoding of entropy 0

_THRESHOLD_FRAC_BITS = 32
CH_LIMIT = 64  # entropy_units_from_fixed clamps |ch| to this (beyond it the units are 0 or MAX_UNITS)
_TABLE_FRAC_BITS = 14  # entropy_units_from_fixed's lookup tables: at most 2 * 64 * 2^14 + 1 entries (4 MB)
THRESHOLDS_SHA256 = "c4774596094e8a6cf06deb8e56629fbacef23f06032eddaab028759988f568e4"
ARC_TABLE_SHA256 = "5d1791013abd19c7e1288703db7edd63816bd8d5cc1d3f4a8b0c5b6ec9d0c246"


def _thresholds_mpmath() -> np.ndarray:
    """ceil(x_u * 2**32) for u = 1..MAX_UNITS, exact (mpmath, 100-bit precision)."""
    import mpmath

    with mpmath.workprec(100):
        ln2 = mpmath.log(2)
        out = [
            int(mpmath.ceil(mpmath.log(mpmath.expm1((2 * u - 1) * ln2 / (2 * UNITS_PER_BIT))) * 2**_THRESHOLD_FRAC_BITS))
            for u in range(1, MAX_UNITS + 1)
        ]
    return np.array(out, dtype=np.int64)


@pinned_table(THRESHOLDS_SHA256, exact=_thresholds_mpmath, dtype="<u8")
def thresholds() -> np.ndarray:
    """int64 (MAX_UNITS,): entry u-1 is the smallest ch * 2**32 whose rounded entropy is >= u.

    ceil(x_u * 2**32) in float64 (fast, may be off by one somewhere), checked against the pin."""
    u = np.arange(1, MAX_UNITS + 1, dtype=np.float64)
    x = np.log(np.expm1((2 * u - 1) / (2 * UNITS_PER_BIT) * math.log(2)))
    return np.ceil(x * 2.0**_THRESHOLD_FRAC_BITS).astype(np.int64)


def _arc_table_mpmath() -> np.ndarray:
    """floor(2**32 * 2**(-r/256)) for r = 0..255, exact (mpmath, 100-bit precision)."""
    import mpmath

    with mpmath.workprec(100):
        out = [int(mpmath.floor(mpmath.power(2, 32 - mpmath.mpf(r) / UNITS_PER_BIT))) for r in range(UNITS_PER_BIT)]
    return np.array(out, dtype=np.uint64)


@pinned_table(ARC_TABLE_SHA256, exact=_arc_table_mpmath, dtype="<u8")
def arc_table() -> np.ndarray:
    """uint64 (256,): floor(2**32 * 2**(-r/256)) for r = 0..255 (entry 0 is 2**32), in float64 and
    checked against the pin."""
    r = np.arange(UNITS_PER_BIT, dtype=np.float64)
    return np.floor(np.exp2(32.0 - r / UNITS_PER_BIT)).astype(np.uint64)


def entropy_units_from_fixed(ch_fx: np.ndarray, frac_bits: int) -> np.ndarray:
    """Integer entropies of encodings from the decoder's fixed-point outputs.

    Args:
        ch_fx: int64 array (any shape), ch in units of 2**-frac_bits.
        frac_bits: 0..32.

    Returns:
        int64 array of ch_fx's shape: round(softplus(ch) / ln 2 * 256) (half up), clamped to
        [0, MAX_UNITS], in units of 1/256 bit.
    """
    if not 0 <= frac_bits <= _THRESHOLD_FRAC_BITS:
        raise ValueError(f"frac_bits must be in 0..{_THRESHOLD_FRAC_BITS}, got {frac_bits}")
    ch_fx = np.asarray(ch_fx)
    if not np.issubdtype(ch_fx.dtype, np.integer):
        raise ValueError(f"ch_fx must be an integer array, got dtype {ch_fx.dtype}")
    limit = CH_LIMIT << frac_bits
    clipped = np.clip(ch_fx.astype(np.int64), -limit, limit)
    if frac_bits <= _TABLE_FRAC_BITS:  # every clipped value looked up once in advance
        return _units_of_fixed(frac_bits)[clipped + limit].astype(np.int64)
    return np.searchsorted(thresholds(), clipped << (_THRESHOLD_FRAC_BITS - frac_bits), side="right").astype(np.int64)


@functools.lru_cache(maxsize=2)
def _units_of_fixed(frac_bits: int) -> np.ndarray:
    """int16 entropy units of every ch_fx in [-limit, limit] at index ch_fx + limit (the searchsorted
    of `entropy_units_from_fixed`, done once: a decode looks up millions of values)."""
    limit = CH_LIMIT << frac_bits
    ch = np.arange(-limit, limit + 1, dtype=np.int64) << (_THRESHOLD_FRAC_BITS - frac_bits)
    table = np.searchsorted(thresholds(), ch, side="right").astype(np.int16)
    table.setflags(write=False)
    return table


def arc_length(entropy_units: np.ndarray) -> np.ndarray:
    """Arc length of encodings of the given integer entropies.

    Args:
        entropy_units: non-negative integer array (any shape), units of 1/256 bit; values above
            MAX_UNITS are allowed (segments sum several encodings).

    Returns:
        uint64 array of the same shape: max(1, floor(2**32 * 2**(-e/256))), in units of 2**-32
        of the circle; exactly 2**32 for e = 0.
    """
    e = np.asarray(entropy_units)
    if not np.issubdtype(e.dtype, np.integer) or (e.size and e.min() < 0):
        raise ValueError("entropy_units must be non-negative integers")
    e = e.astype(np.int64)
    shift = np.minimum(e >> 8, 63).astype(np.uint64)
    return np.maximum(arc_table()[e & 255] >> shift, np.uint64(1))


def entropy_nats(ch: "torch.Tensor") -> "torch.Tensor":
    """Differentiable entropy for fitting: softplus(ch) clamped to MAX_ENCODING_BITS bits, in nats.

    Args:
        ch: float tensor (any shape), the raw entropy parameter of each encoding.

    Returns:
        Tensor of the same shape and dtype, in nats, in [0, MAX_ENTROPY_NATS].
    """
    import torch.nn.functional as F

    return F.softplus(ch).clamp(max=MAX_ENTROPY_NATS)
