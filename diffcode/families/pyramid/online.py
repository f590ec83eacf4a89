"""Exact online adaptation: the coder corrects the network's distributions from the subpixels already coded.

Encoder and decoder keep the same statistics, updated after every subpixel in coding order, so the
correction costs no bits. Per context (below), in integers only:

    bias:  sum of errors 12 x - loc12 and their count;  location += floor(sum / (count + BIAS_PRIOR))
    scale: the running code length (in 1/256 bit, integer) the subpixels would have cost under each
           scale shift -MAX_SHIFT..MAX_SHIFT; once a context has seen WARMUP subpixels its cheapest
           shift is used (ties: the smallest |shift|)
    mixtures of two logistics (`entropy`): loc12 is the weighted mean of the two locations
           (`entropy.centre`), and both locations move by the bias, both scale indexes by the shift
    every HALVE subpixels of a context, its sums, count and code lengths are halved (recent ones weigh more)

A context: (level 0 or coarser, phase, channel, the network's scale index / 4, which of the 4 base
neighbours lie above the network's location (a mixture: `entropy.centre`'s), and for G and B the sign of the same pixel's previous channel's error) --
the bias cancellation of CALIC on top of a learned predictor. Code lengths come from an integer
table of -log2 (`COST_TABLE`, pinned), never from floating-point logarithms, so every machine makes
the same choices. The first shipped prior codes without it; a prior whose meta says "online": 1 with it.
Settings 2 shifts scales only (no bias); 3 leaves subpixels of value 0 or 255 out of the bias (a clipped value
says only that the true one lies at or beyond it: on a sky saturated at 255, counting them drags the location
away from 255). A prior whose meta lists "online_choices" lets each file choose (`exact.choices`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import kernels
import numpy as np

from ...pinned import pinned_table
from . import entropy, spec

BIAS_PRIOR = 16
WARMUP = 32
HALVE = 128
MAX_SHIFT = 6
SCALE_BUCKETS = spec.N_SCALES // 4
N_CONTEXTS_PER_PHASE = 3 * SCALE_BUCKETS * 16 * 3  # channel, scale bucket, neighbours above, previous sign
MAX_PHASES = 3
COST_BITS = 8  # code lengths in 1/256 bit
MANTISSA = 12  # -log2 of a frequency from its top 12 bits
# of the table's int64 bytes; no entry lies within 2.4e-4 of a rounding boundary, far beyond any libm's error
COST_TABLE_SHA256 = "363ed38b01e749f1f8aaca8abcfe26503e3ba5fdc5df08510879fb5d6e872ac4"


@pinned_table(COST_TABLE_SHA256)
def cost_table() -> np.ndarray:
    """T[m - 2^11] = round(256 * log2(m / 2^11)) for m in 2^11 .. 2^12 - 1 (int64; `pinned`: checked, read-only)."""
    m = np.arange(1 << (MANTISSA - 1), 1 << MANTISSA, dtype=np.float64)
    return np.floor((1 << COST_BITS) * np.log2(m / (1 << (MANTISSA - 1))) + 0.5).astype(np.int64)


COST_TABLE = cost_table()


BIT_LENGTH = np.array([int(v).bit_length() for v in range((1 << MANTISSA) + 1)], np.int64)  # of 0 .. 2^12


@kernels.jit
def code_length(freq, table):
    """-log2(freq / 2^24) in 1/256 bit (integer), 1 <= freq <= 2^24."""
    high = freq >> MANTISSA
    if high:  # freq >= 2^12: keep its top 12 bits
        e = BIT_LENGTH[high]
        f = freq >> e
    else:  # freq < 2^12: shift it up to 12 bits
        e = BIT_LENGTH[freq] - MANTISSA
        f = freq << -e
    # freq ~ f * 2^e with f in [2^11, 2^12): log2 freq = e + 11 + log2(f / 2^11)
    return (entropy.PRECISION - e - (MANTISSA - 1)) * (1 << COST_BITS) - table[f - (1 << (MANTISSA - 1))]


@kernels.jit
def _centre(loc1, loc2, w):
    """`entropy.centre`'s location of one subpixel."""
    return (w * loc1 + (entropy.SINGLE - w) * loc2) >> 8


@kernels.jit
def _clip_loc(loc):
    return min(max(loc, spec.LOC_MIN), spec.LOC_MAX)


@kernels.jit
def _clip_scale(j):
    return min(max(j, 0), spec.N_SCALES - 1)


@kernels.jit
def _corrected(k, loc1, j1, loc2, j2, bias_sum, count, cost, params):
    """The corrected (loc1, j1, loc2, j2) of a subpixel of context k: both locations moved by the context's bias,
    both scale indexes by its cheapest shift."""
    bias_prior, warmup, max_shift = params[0], params[1], params[3]
    bias = bias_sum[k] // (count[k] + bias_prior)
    shift = 0
    if count[k] >= warmup:
        best = cost[k, max_shift]
        for d in range(1, max_shift + 1):
            for s in (-d, d):
                if cost[k, max_shift + s] < best:
                    best = cost[k, max_shift + s]
                    shift = s
    return _clip_loc(loc1 + bias), _clip_scale(j1 + shift), _clip_loc(loc2 + bias), _clip_scale(j2 + shift)


@kernels.jit
def _update(k, x, centre, j1, j2, w, loc1, loc2, bias_sum, count, cost, tab, table, params):
    """Learn from subpixel x of context k: the network's centre location and scale indexes j1, j2, weight w, and the
    corrected locations loc1, loc2."""
    halve, max_shift = params[2], params[3]
    if params[4] and not (params[5] and (x == 0 or x == 255)):  # bias on; a censored value (clipped at 0 or
        bias_sum[k] += 12 * x - centre                          # 255) says nothing of it when censor is on
    count[k] += 1
    # entropy.frequency(x, loc1, j1 + s, loc2, j2 + s, w) for every shift s, the rows' offsets computed once
    ta, tb = entropy.T_MAX - 6 - loc1, entropy.T_MAX - 6 - loc2
    for s in range(-max_shift, max_shift + 1):
        a, b = _clip_scale(j1 + s), _clip_scale(j2 + s)
        f = entropy._mixed(x + 1, ta, tb, a, b, w, tab) - entropy._mixed(x, ta, tb, a, b, w, tab)
        cost[k, max_shift + s] += code_length(f, table)
    if count[k] >= halve:
        bias_sum[k] = bias_sum[k] // 2
        count[k] = count[k] // 2
        for s in range(2 * max_shift + 1):
            cost[k, s] = cost[k, s] // 2


@kernels.jit("int64[:, ::1](uint8[::1], int64[:, ::1], int64[::1], int64[::1], int64[::1], int64[:, ::1], "
             "int32[:, ::1], int64[::1], int64[::1])")
def _adapt(symbols, p, ctx, bias_sum, count, cost, tab, table, params):
    """Encoder: the corrected parameters (5, N) of known symbols, in coding order (updating the statistics)."""
    n = symbols.shape[0]
    out = np.empty((5, n), np.int64)
    for i in range(n):
        k, w = ctx[i], p[4, i]
        loc1, j1, loc2, j2 = _corrected(k, p[0, i], p[1, i], p[2, i], p[3, i], bias_sum, count, cost, params)
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i] = loc1, j1, loc2, j2, w
        _update(k, np.int64(symbols[i]), _centre(p[0, i], p[2, i], w), p[1, i], p[3, i], w, loc1, loc2,
                bias_sum, count, cost, tab, table, params)
    return out


@kernels.jit("Tuple((uint8[::1], int64[:, ::1], int64, uint64))(uint32[::1], int64, uint64, int64[:, ::1], "
             "int64[::1], int64[::1], int64[::1], int64[:, ::1], int32[:, ::1], int64[::1], int64[::1])")
def _decode(words, position, state, p, ctx, bias_sum, count, cost, tab, table, params):
    """Decoder (`rans.Resumable.run`'s loop): `entropy.decode_symbol` with each subpixel's parameters corrected
    just before it is decoded."""
    n = p.shape[1]
    out = np.empty(n, np.uint8)
    corrected = np.empty((5, n), np.int64)
    for i in range(n):
        k, w = ctx[i], p[4, i]
        loc1, j1, loc2, j2 = _corrected(k, p[0, i], p[1, i], p[2, i], p[3, i], bias_sum, count, cost, params)
        lo, state, position = entropy.decode_symbol(words, position, state, loc1, j1, loc2, j2, w, tab)
        if position < 0:
            return out, corrected, position, state
        out[i] = lo
        corrected[0, i], corrected[1, i], corrected[2, i], corrected[3, i], corrected[4, i] = loc1, j1, loc2, j2, w
        _update(k, np.int64(lo), _centre(p[0, i], p[2, i], w), p[1, i], p[3, i], w, loc1, loc2,
                bias_sum, count, cost, tab, table, params)
    return out, corrected, position, state


@dataclass(frozen=True)
class Settings:
    """The adaptation's constants (written nowhere: a prior's `online` code names one Settings)."""

    bias_prior: int = BIAS_PRIOR
    warmup: int = WARMUP
    halve: int = HALVE
    max_shift: int = MAX_SHIFT
    level_classes: int = 2  # contexts are also split by min(level, level_classes - 1): level 0 and the rest
    bias: bool = True  # False: scale shifts only
    censor: bool = False  # True: subpixels of value 0 or 255 do not move the bias

    def params(self) -> np.ndarray:
        return np.array([self.bias_prior, self.warmup, self.halve, self.max_shift, self.bias, self.censor], np.int64)


# a prior's meta "online" code (or a file's, `exact.choices`) -> its settings; never change a published one. 1: chosen
# on kodim09/11/13/15 (experiments/results/online_ablation-val4*.md: -2.90 % against no adaptation with the first
# prior's network); 2 and 3: online_ablation-prior6-val-default.md
SETTINGS = {1: Settings(), 2: Settings(bias=False), 3: Settings(censor=True)}


class Online:
    """The statistics of one image's coding (encoder or decoder: both start empty)."""

    def __init__(self, settings: Settings = SETTINGS[1]):
        self.settings, self.params = settings, settings.params()
        n = MAX_PHASES * N_CONTEXTS_PER_PHASE * settings.level_classes
        self.bias_sum = np.zeros(n, np.int64)
        self.count = np.zeros(n, np.int64)
        self.cost = np.zeros((n, 2 * settings.max_shift + 1), np.int64)

    def contexts(self, level: int, phase: int, c: int, loc12: np.ndarray, scale: np.ndarray,
                 neighbours12: np.ndarray, previous_error: np.ndarray | None) -> np.ndarray:
        """Context ids (N,) int64: neighbours12 (N, 4) are 12 x the base neighbours (0 where absent: below any
        location), previous_error (N,) 12 x - loc12 of the pixel's previous channel (None for R)."""
        above = ((neighbours12 > loc12[:, None]) * np.array([1, 2, 4, 8])).sum(1)
        sign = np.zeros(len(loc12), np.int64) if previous_error is None else np.sign(previous_error) + 1
        bucket = np.minimum(scale, spec.N_SCALES - 1) // 4
        level_class = min(level, self.settings.level_classes - 1)
        return ((((level_class * MAX_PHASES + phase) * 3 + c) * SCALE_BUCKETS + bucket) * 16 + above) * 3 + sign

    def adapt(self, symbols, params, ctx) -> np.ndarray:
        """The corrected parameters (5, N) of known symbols under the network's (`entropy.checked`)."""
        return _adapt(np.ascontiguousarray(symbols, np.uint8), entropy.checked(params),
                      np.ascontiguousarray(ctx, np.int64), self.bias_sum, self.count, self.cost, entropy.coding_table(),
                      COST_TABLE, self.params)

    def decode(self, decoder: entropy.Decoder, params, ctx) -> tuple[np.ndarray, np.ndarray]:
        """Decode symbols with corrected parameters; returns (symbols, corrected parameters (5, N))."""
        return decoder.run(_decode, entropy.checked(params), np.ascontiguousarray(ctx, np.int64),
                           self.bias_sum, self.count, self.cost, entropy.coding_table(), COST_TABLE, self.params)
