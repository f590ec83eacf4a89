"""The error table: subpixels rANS-coded under quantized discretized logistics, or mixtures of two (exact integers).

Model: a subpixel x in 0..255 with integer location `loc12` (1/12 grey level, clamped to
[LOC_MIN, LOC_MAX]) and scale index j (0..63; j = FLAT codes 8 bits flat) has the cumulative
frequency

    F(0) = 0,  F(256) = TOTAL = 2^24,
    F(x) = (C[j, 12x - 6 - loc12] * (TOTAL - 256) >> 24) + x      for 1 <= x <= 255,

where C[j, t] = round(2^24 * sigmoid(t / 12 / scale_j)) is a pinned integer table: the logistic
discretized to 0..255 with its tails folded into 0 and 255, every symbol at least 1/2^24. The
table is built with numpy and checked against its pinned SHA-256 (`diffcode.pinned`); if a
platform's libm rounds one entry differently it is rebuilt with mpmath.

A mixture of two logistics (loc1, j1), (loc2, j2) with the first's weight w / 256 (w in 0..256) mixes
two rows of the same table before the same scaling:

    F(x) = (((w C[j1, 12x - 6 - loc1] + (256 - w) C[j2, 12x - 6 - loc2]) >> 8) * (TOTAL - 256) >> 24) + x

Each row increases with x, so the mix does, and the "+ x" keeps every frequency at least 1; with
w = 256 it is the single logistic's F exactly (the second row is not read). So one model serves
both: a subpixel's parameters are the five integers (loc1, j1, loc2, j2, w), and a single logistic
is (loc, j, loc, j, 256) (`checked` fills them in). The weight comes from the network's integer
logit through a pinned table of the logistic (`weight_table`).

Stream: a single-lane stream of `storage.rans` (one or more segments, decoded part by part: the
next group's parameters depend on the pixels just decoded), coded with its `push` and `pop`;
this module holds the model: the table, its cdf and the decoding loop over it. Where segments
end is the coding order's business (`coding.py`): an encoder needs to hold only one segment's
symbols, since rANS codes them backwards. Numba loops over integers only.
"""

from __future__ import annotations

from ... import kernels
import numpy as np

from ...pinned import pinned_table
from ...storage import rans
from . import spec

PRECISION = 24
TOTAL = 1 << PRECISION
FLAT = spec.N_SCALES  # scale index of the flat (8 bits) distribution
T_MAX = 12 * 255 - 6 - spec.LOC_MIN  # largest |12x - 6 - loc12|
STATE_LOW = 1 << 31
PINNED_TABLE_SHA256 = "6a44954cdbd290d2b2f4d7d43985e91ee0850f014c4b3eb6e0e82e453faea181"  # of table(), exact (checked against mpmath)

# The largest frequency of a coded subpixel: each of the 256 symbols has at least 1 (the "+ x" of F),
# so none has more than TOTAL - 255 (reached: symbol 0 with loc12 at LOC_MIN under scale 0), and
# the flat distribution of the coarsest level gives every symbol exactly 2^16. With the state
# range, 24-bit frequencies and one-word refills of storage/rans.py (asserted), a subpixel costs
# a valid stream at least rans.min_symbol_bits of these (`max_subpixels`).
MAX_FREQUENCY = TOTAL - 255
FLAT_FREQUENCY = TOTAL >> 8
assert (PRECISION, STATE_LOW) == (rans.PRECISION_BITS, 1 << rans.STATE_BITS[0]), "see rans.min_symbol_bits"


def _table_mpmath() -> np.ndarray:
    import mpmath

    half = np.zeros((spec.N_SCALES, T_MAX + 1), np.int64)
    with mpmath.workdps(40):
        for j in range(spec.N_SCALES):
            scale = mpmath.mpf(spec.SCALE_MIN) * mpmath.exp(mpmath.mpf(spec.SCALE_LOG_STEP) * j)
            for t in range(T_MAX + 1):
                half[j, t] = int(mpmath.floor(TOTAL / (1 + mpmath.exp(-mpmath.mpf(t) / spec.LOC_STEP / scale)) + 0.5))
    return _mirror(half)


def _mirror(half: np.ndarray) -> np.ndarray:
    """Columns t = -T_MAX..T_MAX from t = 0..T_MAX, using C(-t) = TOTAL - C(t)."""
    return np.concatenate([TOTAL - half[:, :0:-1], half], 1)


@pinned_table(PINNED_TABLE_SHA256, exact=_table_mpmath)
def table() -> np.ndarray:
    """int64 (N_SCALES, 2 T_MAX + 1): C[j, t + T_MAX] (`pinned`: built once, checked, read-only)."""
    t = np.arange(0, T_MAX + 1, dtype=np.float64) / spec.LOC_STEP
    scales = spec.SCALE_MIN * np.exp(spec.SCALE_LOG_STEP * np.arange(spec.N_SCALES, dtype=np.float64))
    half = np.floor(TOTAL / (1.0 + np.exp(-t[None, :] / scales[:, None])) + 0.5).astype(np.int64)
    return _mirror(half)


_CODING_TABLE: list = []


def coding_table() -> np.ndarray:
    """The kernels' copy of `table()`: K[t + T_MAX, j] = C[j, t], int32 (every entry is at most 2^24), C-ordered
    and read-only. The same integers, laid out so that one offset's 64 scales are neighbours in memory: online
    adaptation reads 13 scale shifts of each component at one offset, one cache line apart instead of one row."""
    if not _CODING_TABLE:
        k = np.ascontiguousarray(table().T.astype(np.int32))
        k.flags.writeable = False
        _CODING_TABLE.append(k)
    return _CODING_TABLE[0]


# The first component's weight w = round(256 sigmoid(-q / WEIGHT_STEPS)), clipped to 0..256, of the second
# component's integer logit q in -WEIGHT_Q..WEIGHT_Q (the engine's output, `engine.py`): 1/64 of a unit
# of logit, finer than w's 1/256 steps where the logistic is steepest, and saturated (w = 0 or 256) at the ends.
WEIGHT_STEPS = 64
WEIGHT_Q = 8 * WEIGHT_STEPS
SINGLE = 256  # w of a single logistic
N_PARAMS = 5  # loc1, j1, loc2, j2, w
# of the table's int64 bytes; no entry lies within 9e-4 of a rounding boundary, far beyond any libm's error
WEIGHT_TABLE_SHA256 = "69ce80be9ddce24ac5a04f4133e62ae468a1be49b15c5094978421a97407f02b"


@pinned_table(WEIGHT_TABLE_SHA256)
def weight_table() -> np.ndarray:
    """W[q + WEIGHT_Q] = clip(round(256 / (1 + exp(q / WEIGHT_STEPS))), 0, 256), int64 (`pinned`)."""
    q = np.arange(-WEIGHT_Q, WEIGHT_Q + 1, dtype=np.float64) / WEIGHT_STEPS
    return np.clip(np.floor(SINGLE / (1.0 + np.exp(q)) + 0.5), 0, SINGLE).astype(np.int64)


@kernels.jit
def _cdf(x, loc1, j1, loc2, j2, w, tab):
    if x <= 0:
        return 0
    if x >= 256:
        return TOTAL
    if j1 == FLAT:
        return x << (PRECISION - 8)
    # tab is `coding_table()`: offset first, then scale
    if w == SINGLE:
        c = np.int64(tab[12 * x - 6 - loc1 + T_MAX, j1])
    elif w == 0:
        c = np.int64(tab[12 * x - 6 - loc2 + T_MAX, j2])
    else:
        c = (w * np.int64(tab[12 * x - 6 - loc1 + T_MAX, j1]) + (SINGLE - w) * np.int64(tab[12 * x - 6 - loc2 + T_MAX, j2])) >> 8
    return ((c * (TOTAL - 256)) >> PRECISION) + x


@kernels.jit
def frequency(x, loc1, j1, loc2, j2, w, tab):
    """The frequency of symbol x (at least 1); tab is `coding_table()`."""
    return _cdf(x + 1, loc1, j1, loc2, j2, w, tab) - _cdf(x, loc1, j1, loc2, j2, w, tab)


@kernels.jit("Tuple((int64[::1], int64[::1]))(uint8[::1], int64[:, ::1], int32[:, ::1])")
def _start_freq(symbols, p, tab):
    n = symbols.shape[0]
    start = np.empty(n, np.int64)
    freq = np.empty(n, np.int64)
    for i in range(n):
        x = np.int64(symbols[i])
        lo = _cdf(x, p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], tab)
        start[i] = lo
        freq[i] = _cdf(x + 1, p[0, i], p[1, i], p[2, i], p[3, i], p[4, i], tab) - lo
    return start, freq


@kernels.jit
def _mixed(x, ta, tb, j1, j2, w, tab):
    """F(x) for 0 <= x <= 256 of a non-flat subpixel whose rows start at ta = T_MAX - 6 - loc1, tb = T_MAX - 6 - loc2
    (`_cdf`'s integers: at w = 256 or 0 the mix is one row's value exactly, though both rows are read, so both
    scales must name table columns); tab is `coding_table()`."""
    if x <= 0:
        return 0
    if x >= 256:
        return TOTAL
    c = (w * np.int64(tab[ta + 12 * x, j1]) + (SINGLE - w) * np.int64(tab[tb + 12 * x, j2])) >> 8
    return ((c * (TOTAL - 256)) >> PRECISION) + x


@kernels.jit
def decode_symbol(words, position, state, loc1, j1, loc2, j2, w, tab):
    """One subpixel under (loc1, j1, loc2, j2, w): (symbol, state, position), position -1 if the words ran out.
    The symbol is the one x with F(x) <= slot < F(x + 1): searched from the distribution's centre outwards in
    doubling steps, then by bisection (F increases strictly, so any search finds the same x)."""
    slot = np.int64(state & np.uint64(TOTAL - 1))
    if j1 == FLAT:
        lo = slot >> (PRECISION - 8)
        start, freq = lo << (PRECISION - 8), np.int64(FLAT_FREQUENCY)
    else:
        if w == SINGLE:  # the second row is weighted 0 and may name FLAT (`checked` allows it): read the first twice
            loc2, j2 = loc1, j1
        ta, tb = T_MAX - 6 - loc1, T_MAX - 6 - loc2
        guess = min(max((((w * loc1 + (SINGLE - w) * loc2) >> 8) + 6) // 12, 0), 255)
        c = _mixed(guess, ta, tb, j1, j2, w, tab)
        step = 1
        if c <= slot:  # F(256) = TOTAL > slot ends the climb
            lo, c_lo = guess, c
            hi = lo + 1
            c_hi = _mixed(hi, ta, tb, j1, j2, w, tab)
            while c_hi <= slot:
                lo, c_lo = hi, c_hi
                step *= 2
                hi = min(lo + step, 256)
                c_hi = _mixed(hi, ta, tb, j1, j2, w, tab)
        else:  # F(0) = 0 <= slot ends the descent
            hi, c_hi = guess, c
            lo = hi - 1
            c_lo = _mixed(lo, ta, tb, j1, j2, w, tab)
            while c_lo > slot:
                hi, c_hi = lo, c_lo
                step *= 2
                lo = max(hi - step, 0)
                c_lo = _mixed(lo, ta, tb, j1, j2, w, tab)
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            c = _mixed(mid, ta, tb, j1, j2, w, tab)
            if c <= slot:
                lo, c_lo = mid, c
            else:
                hi, c_hi = mid, c
        start, freq = c_lo, c_hi - c_lo
    state, position = rans.pop(state, np.uint64(start), np.uint64(freq), np.uint64(slot), words, position)
    return lo, state, position


@kernels.jit("Tuple((uint8[::1], int64, uint64))(uint32[::1], int64, uint64, int64[:, ::1], int32[:, ::1])")
def _decode(words, position, state, p, tab):
    """`rans.Resumable.run`'s loop: the symbols (uint8) of one part, then position (-1: out of words), state."""
    n = p.shape[1]
    out = np.empty(n, np.uint8)
    for i in range(n):
        symbol, state, position = decode_symbol(words, position, state, p[0, i], p[1, i], p[2, i], p[3, i],
                                                p[4, i], tab)
        if position < 0:
            return out, position, state
        out[i] = symbol
    return out, position, state


def checked(*params: np.ndarray) -> np.ndarray:
    """Model parameters, (loc12, scale) of single logistics or (loc1, j1, loc2, j2, w) of mixtures (each (N,)),
    or one (2 | 5, N) array of them, as one contiguous int64 (5, N) array, in range (ValueError otherwise)."""
    p = params[0] if len(params) == 1 else None
    if isinstance(p, np.ndarray) and p.ndim == 2 and p.shape[0] == N_PARAMS and p.dtype.kind in "iu":
        p = np.ascontiguousarray(p, np.int64)  # one pass (a segment's (5, N) int16, say); as it is if it fits
    else:  # rows: a copy (a checked array is used as it is: a segment's are 40 MB)
        rows = [np.asarray(r, np.int64).ravel() for r in (params[0] if len(params) == 1 else params)]
        if len(rows) == 2:
            rows = [rows[0], rows[1], rows[0], rows[1], np.full(len(rows[0]), SINGLE, np.int64)]
        if len(rows) != N_PARAMS or len({len(r) for r in rows}) != 1:
            raise ValueError("model parameters: (loc12, scale) or (loc1, j1, loc2, j2, w) of equal lengths")
        p = np.ascontiguousarray(np.stack(rows))
    if not _in_range(p):
        raise ValueError("model parameters out of range")
    return p


@kernels.jit("boolean(int64[:, ::1])")
def _in_range(p):
    """Whether every subpixel's (loc1, j1, loc2, j2, w) is one the kernels may read the tables at: locations in
    LOC_MIN..LOC_MAX, scales in 0..FLAT, w in 0..256, and FLAT only in a single logistic (w = 256)."""
    for i in range(p.shape[1]):
        loc1, j1, loc2, j2, w = p[0, i], p[1, i], p[2, i], p[3, i], p[4, i]
        if loc1 < spec.LOC_MIN or loc1 > spec.LOC_MAX or loc2 < spec.LOC_MIN or loc2 > spec.LOC_MAX:
            return False
        if j1 < 0 or j1 > FLAT or j2 < 0 or j2 > FLAT or w < 0 or w > SINGLE:
            return False
        if w != SINGLE and (j1 == FLAT or j2 == FLAT):
            return False
    return True


def centre(*params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(location, scale index) int64 (N,) that stand for each distribution where one pair must (online
    adaptation's contexts and errors): the weighted mean of the locations, floor((w loc1 + (256 - w) loc2) / 256),
    and the heavier component's scale; a single logistic's own (loc12, scale)."""
    p = checked(*params)
    loc = (p[4] * p[0] + (SINGLE - p[4]) * p[2]) >> 8
    return loc, np.where(p[4] >= SINGLE // 2, p[1], p[3])


def encode(symbols: np.ndarray, *params: np.ndarray) -> tuple[bytes, float]:
    """Code uint8 symbols in decoding order under their parameters (`checked`); returns (stream bytes, ideal bits
    of the integer model)."""
    symbols = np.ascontiguousarray(symbols, np.uint8).ravel()
    start, freq = _start_freq(symbols, checked(*params), coding_table())
    bits = float(np.sum(PRECISION - np.log2(freq.astype(np.float64))))
    return rans.encode_segment(start, freq), bits


def bits(symbols: np.ndarray, *params: np.ndarray) -> np.ndarray:
    """Ideal bits float64 (N,) of each symbol under the integer model (parameters as `checked`)."""
    _, freq = _start_freq(np.ascontiguousarray(symbols, np.uint8).ravel(), checked(*params), coding_table())
    return PRECISION - np.log2(freq.astype(np.float64))


def max_subpixels(stream_bytes: int, flat: int) -> int:
    """The most subpixels a valid stream of this many bytes can decode when its first `flat` are
    coded flat (8 bits each: the coarsest level) and the rest under the logistic table; -1 if it
    cannot even hold the flat ones. A bound, far above what real images reach (the flat part
    aside, a subpixel is only known to cost 2.2e-5 bits)."""
    left = rans.stream_capacity_bits(stream_bytes) * (1 + 1e-9) - flat * rans.min_symbol_bits(FLAT_FREQUENCY)
    if left < 0:
        return -1
    return flat + int(left / rans.min_symbol_bits(MAX_FREQUENCY))


class Decoder(rans.Resumable):
    """A stream of subpixels under this model, decoded group by group (`rans.Resumable`)."""

    def __init__(self, data: bytes, what: str = "error table"):
        super().__init__(data, what)

    def decode(self, *params: np.ndarray) -> np.ndarray:
        """The next symbols, under their parameters (`checked`)."""
        return self.run(_decode, checked(*params), coding_table())
