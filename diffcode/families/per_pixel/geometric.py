"""Coding geometric integers (numbers of failed tries) with the rANS coder, exactly in integers.

A random-seed segment succeeds on each try with probability p, so its number of failed tries n
is geometric: P(n) = p q^n, q = 1 - p. With q^K the exact law splits into independent parts
(memorylessness)::

    n = 16^D * a + sum_{j<D} d_j 16^j
    d_j  on 0..15, P(d_j = s) ∝ r_j^s            r_j = q^(16^j)    (truncated geometric)
    a    on 0,1,2,...  P(a) = (1 - r_D) r_D^a                      (geometric, p_a = 1 - r_D)

D (decoder-known from p) is the smallest D with 16^D p >= 1, so p_a >= 1 - 1/e. ``a`` is coded
in blocks: symbols 0..15 and an escape 16 = "a >= 16, code a - 16 next" (exact by
memorylessness; needed with probability r_D^16 <= e^-16). Each coded symbol uses one row of
integer cumulative frequencies (TOTAL = 2**24), built once per segment from
``p_fx = p * 2**32`` (int64 in [MIN_P_FX, 2**32]) by integer arithmetic only: ratios and powers
in 64-bit fixed point with exact floor((a*b) / 2**64) products. Rows::

    escape row: cdf(s) = s + floor(M1 * (1 - r^s)),                      s = 0..16, cdf(17) = TOTAL
    digit row:  cdf(s) = s + floor(M2 * (1 - r^s) / (1 - r^16))          s = 0..16 (cdf(16) = TOTAL)

with M1 = TOTAL - 17, M2 = TOTAL - 16, and powers r^s computed by successive floor products, so
they never increase with s: every symbol has frequency >= 1 by construction.

Cost: the ``+ s`` terms take at most 17 / 2**24 of the mass per symbol and (1 - r^s) is resolved
to ~2**-16 relative, so the coded size of n is within ~1e-4 bits of -log2 P(n) per symbol, and a
segment codes ~D + 1 symbols (4 for an 8-nat segment).

The model itself (:class:`GeometricModel`) just looks the rows up: the rANS decoder calls
``cdf`` many times per symbol, so it must be a couple of numpy operations.
"""

from __future__ import annotations

import numpy as np

from ...storage.rans import TOTAL, CdfTable

DIGIT_BITS = 4
BASE = 1 << DIGIT_BITS  # 16 values per digit
ESCAPE = BASE  # escape symbol of an ``a`` row
ONE_FX = 1 << 32  # p_fx of a try that always succeeds
MIN_P_FX = 1 << 4  # p >= 2**-28: keeps the digit rows' denominators >= 2**16
ROW_WIDTH = BASE + 3  # n_symbols, then cdf(0..17) padded with TOTAL
_M1 = TOTAL - (BASE + 1)
_M2 = TOTAL - BASE
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S24 = np.uint64(24)


def mul_hi64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """floor(a * b / 2**64), exactly, for uint64 arrays (broadcasting)."""
    a_hi, a_lo, b_hi, b_lo = a >> _S32, a & _M32, b >> _S32, b & _M32
    lh, hl = a_lo * b_hi, a_hi * b_lo
    mid = ((a_lo * b_lo) >> _S32) + (lh & _M32) + (hl & _M32)
    return a_hi * b_hi + (lh >> _S32) + (hl >> _S32) + (mid >> _S32)


def _powers(r64: np.ndarray) -> np.ndarray:
    """uint64 (N, 17): column s = r^s in 2**-64 units by successive floor products (col 0 unused)."""
    out = np.zeros((len(r64), BASE + 1), np.uint64)
    out[:, 1] = r64
    for s in range(2, BASE + 1):
        out[:, s] = mul_hi64(out[:, s - 1], r64)
    return out


def _to_16th_power(r64: np.ndarray) -> np.ndarray:
    """r^16 in 2**-64 units by four floor squarings (uint64 (N,) -> uint64 (N,))."""
    for _ in range(DIGIT_BITS):
        r64 = mul_hi64(r64, r64)
    return r64


def digit_count(p_fx: np.ndarray) -> np.ndarray:
    """int64 (N,): D = smallest D >= 0 with 16^D * p_fx >= 2**32."""
    d = np.zeros(len(p_fx), np.int64)
    scaled = np.asarray(p_fx, np.int64).copy()
    while np.any(need := scaled < ONE_FX):
        d += need
        scaled = np.where(need, scaled << DIGIT_BITS, scaled)
    return d


def escape_rows(r64: np.ndarray) -> np.ndarray:
    """int64 (N, ROW_WIDTH) rows of ``a`` (symbols 0..16, 16 = escape) for ratios r (uint64 2**-64)."""
    one_minus = mul_hi64(np.uint64(_M1), ~_powers(r64)).astype(np.int64)
    one_minus[:, 0] = 0
    rows = np.full((len(r64), ROW_WIDTH), TOTAL, np.int64)
    rows[:, 0] = BASE + 1
    rows[:, 1 : BASE + 2] = np.arange(BASE + 1) + one_minus
    return rows


def digit_rows(r64: np.ndarray) -> np.ndarray:
    """int64 (N, ROW_WIDTH) rows of a digit (symbols 0..15) for ratios r (uint64 2**-64 units)."""
    numer = (~_powers(r64)) >> _S24
    numer[:, 0] = 0
    denom = numer[:, BASE:]
    scaled = (np.uint64(_M2) * numer) // denom
    rows = np.full((len(r64), ROW_WIDTH), TOTAL, np.int64)
    rows[:, 0] = BASE
    rows[:, 1 : BASE + 2] = np.arange(BASE + 1) + scaled.astype(np.int64)
    return rows


def check_p_fx(p_fx: np.ndarray) -> np.ndarray:
    """p_fx as int64 (N,); ValueError unless every entry is in [MIN_P_FX, 2**32]."""
    p_fx = np.asarray(p_fx).astype(np.int64)
    if p_fx.size and (p_fx.min() < MIN_P_FX or p_fx.max() > ONE_FX):
        raise ValueError(f"success probabilities p_fx must lie in [{MIN_P_FX}, 2**32]")
    return p_fx


class TryRows:
    """The coding rows of N segments' tries, all decoder-known.

    Attributes:
        digits: int64 (N,) D per segment.
        digit_params: int64 (sum D, ROW_WIDTH), segment-major, digit j ascending.
        digit_segment: int64 (sum D,) segment of each digit row; digit_index: its j.
        escape_params: int64 (N, ROW_WIDTH) the row of each segment's ``a``.
    """

    def __init__(self, p_fx: np.ndarray):
        """Build the rows for success probabilities p_fx (int64 (N,), in [MIN_P_FX, 2**32])."""
        p_fx = check_p_fx(p_fx)
        self.digits = digit_count(p_fx)
        self.digit_segment = np.repeat(np.arange(len(p_fx)), self.digits)
        starts = np.cumsum(self.digits) - self.digits
        self.digit_index = np.arange(len(self.digit_segment)) - np.repeat(starts, self.digits)
        ratio = (ONE_FX - p_fx).astype(np.uint64) << _S32
        per_row = ratio[self.digit_segment]
        for j in range(int(self.digits.max(initial=0))):
            later = self.digit_index >= j + 1
            per_row[later] = _to_16th_power(per_row[later])
        self.digit_params = digit_rows(per_row)
        top = ratio.copy()
        for j in range(int(self.digits.max(initial=0))):
            top = np.where(self.digits > j, _to_16th_power(top), top)
        self.escape_params = escape_rows(top)

    def split(self, tries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tries int64 (N,) -> (digit symbols int64 (sum D,), a int64 (N,))."""
        shift = (DIGIT_BITS * self.digit_index).astype(np.int64)
        digit_symbols = (tries[self.digit_segment] >> shift) & (BASE - 1)
        return digit_symbols, tries >> (DIGIT_BITS * self.digits)

    def join(self, digit_symbols: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`split`: int64 (N,) tries."""
        tries = a << (DIGIT_BITS * self.digits)
        np.add.at(tries, self.digit_segment, digit_symbols << (DIGIT_BITS * self.digit_index))
        return tries


class GeometricModel:
    """rANS model family (:class:`diffcode.storage.rans.Model`) over precomputed integer rows.

    Params: int64 (N, ROW_WIDTH) rows from :func:`escape_rows` / :func:`digit_rows`: column 0 is
    the support size, columns 1.. are cdf(0), cdf(1), ... padded with TOTAL.
    Requirements for correctness: rows built by those functions (strictly increasing cdf).
    """

    def n_symbols(self, params: np.ndarray) -> np.ndarray:
        """int64 (N,) support sizes (16 for a digit, 17 for an escape row)."""
        return params[:, 0]

    def cdf(self, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """int64 (N,) cumulative frequency of symbols (int64 (N,), 0..n)."""
        return np.take_along_axis(params, 1 + symbols[:, None], axis=1)[:, 0]

    def cdf_table(self, params: np.ndarray) -> CdfTable:
        """:meth:`cdf` as a table: each row is its own table row, cdf(s) in column 1 + s."""
        return CdfTable(params, np.arange(len(params)), np.ones(len(params), np.int64), 1, 0)
