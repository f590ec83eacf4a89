"""The rANS coder of every family: integer-only, interleaved or resumable (numba loops, and a numpy path).

Only integers reach this coder: symbols, integer model parameters, and integer
cumulative frequencies that sum to exactly ``TOTAL = 2**24``. The probability
model is a separate object (a :class:`Model`); the coder never sees a float.

Stream format (all words are 32-bit little-endian)::

    N symbols -> W = min(MAX_LANES, ceil(N / SYMBOLS_PER_LANE)) lanes (0 if N == 0)
    symbol i  -> lane i % W, step i // W

    [ final state of lane 0 (64 bit, low word first) ] ... [ lane W-1 ]
    [ renormalisation words of step 0, lane-ascending ] [ step 1 ] ...

Each lane keeps a 64-bit state in ``[2**31, 2**63)`` that starts (encoder) and
ends (decoder) at exactly ``2**31``; the decoder checks that every lane returns
to it and that every word was consumed, so corruption is detected rather than
silently decoded. An empty input (N == 0) is an empty stream.

Single-lane streams, decoded in parts (the pyramid family's error table and weight deltas,
whose next symbols' parameters depend on the symbols just decoded): one state, coded in one or
more segments one after another, each

    [ final encoder state (64 bit, high word first) ] [ words in decoding order ]

made by :func:`encode_segment`; :class:`Resumable` runs a model's compiled decoding loop on one
part of the symbols at a time, checks that the state is back at ``2**31`` at the end of every
segment, and at the end that every word was read.

Both kinds share one coding step, :func:`push` (encoder) and :func:`pop` (decoder, with its
refill): the same state range, 24-bit frequencies and 32-bit words, so one argument bounds what
any stream can hold (:func:`min_symbol_bits`). A model's own loop (a family's, over its own
integer tables) calls them for every symbol.

Overhead: the flush costs 8 bytes per lane, i.e. at most 8 bytes per 4096
symbols and at most 2 KiB in total (about 31 of its 64 bits are the known initial
state, the price of the integrity check). The coding loss itself is negligible:
1.2M Cauchy symbols took 804,592 bytes for 803,061 ideal bytes of the integer
frequencies (+0.19 %, less than the 2,048-byte flush).

Two implementations of the same stream. A model whose ``cdf_table(params)`` gives its cdf as a
strided integer table (:class:`CdfTable`: the Cauchy error table, side information, random-seed
tries) is coded by compiled numba loops: the encoder's lane loop, and a decoder that
bisects the table per symbol. A model whose ``cdf_table`` gives None goes through the vectorized numpy coder, which
calls ``model.cdf`` on whole steps of lanes and resolves 4 bits of a symbol per call.
``tests/test_rans.py`` checks that both write the same bytes and read each other's streams.

Speed (``python experiments/bench_speed.py``, its coder rows in experiments/results/speed.md:
1,179,648 symbols of the 256-symbol :class:`diffcode.cauchy.CauchyModel`, 256 lanes, one thread,
the shared 2-core machine at load average 5.1, median of 3): compiled encode 0.068 s (17.3 M
symbols/s), decode 0.179 s (6.6 M symbols/s), after a first round trip that also loads the
compiled code from numba's cache (0.55 s in all). The numpy path took 0.12-0.31 s to encode and
0.9-1.8 s to decode the same symbols (``experiments/rans_speed.py`` before the compiled path).

Requirements for correctness of a :class:`Model`: ``1 <= n <= TOTAL``,
``cdf(p, 0) == 0``, ``cdf(p, n) == TOTAL`` (checked for every row on every call)
and ``cdf`` strictly increasing in the symbol, so every symbol of the support has
frequency >= 1 (checked for every coded and every decoded symbol).
"""

from __future__ import annotations

import typing

import numpy as np

from diffcode.errors import CorruptFileError

from .. import kernels

PRECISION_BITS = 24
TOTAL = 1 << PRECISION_BITS  # every frequency table sums to exactly TOTAL

SYMBOLS_PER_LANE = 4096
MAX_LANES = 256

_STATE_LOW = np.uint64(1 << 31)  # initial/final state; states live in [2**31, 2**63)
_WORD_BITS = np.uint64(32)
_WORD_MASK = np.uint64(0xFFFFFFFF)
_PREC = np.uint64(PRECISION_BITS)
_SLOT_MASK = np.uint64(TOTAL - 1)
# Encoder renormalises while state >= freq << _EMIT_SHIFT (= freq * 2**63 / TOTAL).
_EMIT_SHIFT = np.uint64(63 - PRECISION_BITS)
_RADIX_BITS = 4  # the decoder's symbol search resolves 4 bits per model.cdf call


class Model(typing.Protocol):
    """A family of discrete distributions; each symbol to code has its own row of integer params."""

    def n_symbols(self, params: np.ndarray) -> np.ndarray:
        """Support size of each row.

        Args:
            params: int64 (N, k) integer parameters, one row per symbol.

        Returns:
            int64 (N,): support size n of each row (symbols 0..n-1), 1 <= n <= TOTAL.
        """
        ...

    def cdf(self, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """Cumulative frequencies.

        Args:
            params: int64 (N, k).
            symbols: int64 (N,), 0 <= s <= n.

        Returns:
            uint64 or int64 (N,): cdf(., 0) = 0, cdf(., n) = TOTAL, strictly increasing.
        """
        ...

    def cdf_table(self, params: np.ndarray) -> "CdfTable | None":
        """The same cdf as a :class:`CdfTable` (the compiled coder), or None (the numpy coder calls `cdf`)."""
        ...


class CdfTable(typing.NamedTuple):
    """A model's cdf as a strided integer table, which lets the coder run as a compiled loop.

    For row i and 0 < s < n_i: ``cdf(i, s) = slope * s + table[row[i], offset[i] + stride * s]``;
    cdf(i, 0) = 0 and cdf(i, n_i) = TOTAL. A model that gives one (``model.cdf_table(params)``)
    promises that it equals ``model.cdf`` everywhere; the coder checks that every index it can
    reach lies inside the table before it compiles nothing but integer loops over it.
    """

    table: np.ndarray  # int64 (R, C)
    row: np.ndarray  # int64 (N,), 0 <= row < R
    offset: np.ndarray  # int64 (N,)
    stride: int  # >= 0
    slope: int


def num_lanes(n_symbols: int) -> int:
    """Number of interleaved lanes W for a stream of ``n_symbols`` symbols (0 iff N == 0)."""
    return min(MAX_LANES, -(-n_symbols // SYMBOLS_PER_LANE))


def min_stream_bytes(n_symbols: int) -> int:
    """The shortest stream that can hold ``n_symbols`` symbols: the final states, 8 bytes per lane."""
    return 8 * num_lanes(n_symbols)


# ----------------------------------------------------------------------------- the coding step of every stream


@kernels.jit
def push(state, start, freq, words, count):
    """Encoder: code the interval [start, start + freq) (uint64) into `state`; rANS codes backwards. At most
    one word leaves the state first, into words[count]. Returns (state, count)."""
    if state >= (freq << _EMIT_SHIFT):
        words[count] = np.uint32(state & _WORD_MASK)
        count += 1
        state >>= _WORD_BITS
    return ((state // freq) << _PREC) + state % freq + start, count


@kernels.jit
def pop(state, start, freq, slot, words, position):
    """Decoder: the state after the symbol whose interval [start, start + freq) holds `slot` (the state's low
    PRECISION_BITS; all uint64), refilled from words[position] if it fell below 2**31. Returns (state, position),
    position -1 if the words ran out."""
    state = freq * (state >> _PREC) + (slot - start)
    if state < _STATE_LOW:
        if position >= words.shape[0]:
            return state, -1
        state = (state << _WORD_BITS) | np.uint64(words[position])
        position += 1
    return state, position


# ----------------------------------------------------------------------------- how much a stream can hold

STATE_BITS = (31, 63)  # a state lies in [2**31, 2**63) between symbols, and starts and ends at 2**31
WORD_BITS = 32  # one refill reads one 32-bit word
# q = state >> PRECISION_BITS is at least 2**(31 - 24) between symbols: the rounding terms below
_Q_MIN_BITS = STATE_BITS[0] - PRECISION_BITS
assert (PRECISION_BITS, STATE_BITS, WORD_BITS, _Q_MIN_BITS) == (24, (31, 63), 32, 7), "redo the argument of min_symbol_bits"
# bits one word can add to log2(state): x -> x * 2**32 + w < (x + 1) * 2**32 with x >= 2**7 (below)
_WORD_CAPACITY_BITS = WORD_BITS + float(np.log2(1.0 + 2.0 ** -_Q_MIN_BITS))


def min_symbol_bits(max_freq: int, total: int = TOTAL) -> float:
    """A lower bound of what every decoded symbol costs a valid stream when no symbol's frequency
    exceeds ``max_freq`` (of ``total`` = 2**24): the bits by which it lowers log2 of its lane's state.

    The argument (this coder and `diffcode.families.pyramid.entropy`'s, which share the state range,
    the 24-bit frequencies and the one-word refill). Between symbols a state x lies in
    [2**31, 2**63). Decoding a symbol of frequency f <= F = max_freq and cumulative start s, with
    q = x >> 24 >= 2**7 and r = x mod 2**24 in [s, s + f), gives

        x' = f q + r - s = x - (T - f) q - s <= x - (T - F) q,   and   x' <= f (q + 1) - 1.

    As q > x / T - 1 >= (x / T) (1 - 2**-7), the first gives x' < x (1 - (1 - F/T)(1 - 2**-7)),
    the second x' < x (F/T)(1 + 2**-7); log2 x drops by at least the larger of
    -log2(1 - (1 - F/T)(1 - 2**-7)) and -log2(F/T) - log2(1 + 2**-7), the value returned. A
    refill (x' < 2**31) reads one word w: x'' = x' 2**32 + w < (x' + 1) 2**32 with x' >= f q >= 2**7,
    so it raises log2 x by less than 32 + log2(1 + 2**-7) bits. A lane starts below 2**63 and a
    valid stream ends it at exactly 2**31: over the stream, the symbols' drops add up to less than
    32 bits per lane (its 8 bytes of initial state) plus 32 + log2(1 + 2**-7) per word read. See
    `max_symbols`.
    """
    if not 1 <= max_freq <= total:
        raise ValueError(f"max_freq {max_freq} outside 1..{total}")
    p, slack = max_freq / total, 2.0 ** -_Q_MIN_BITS
    return max(float(-np.log2(1.0 - (1.0 - p) * (1.0 - slack))), float(-np.log2(p) - np.log2(1.0 + slack)))


def stream_capacity_bits(stream_bytes: int) -> float:
    """An upper bound of the sum of `min_symbol_bits` over the symbols a valid stream of this many
    bytes decodes: 32.011 bits per 4 bytes (8 bytes of lane state hold only 32)."""
    return stream_bytes / 4 * _WORD_CAPACITY_BITS


def max_symbols(stream_bytes: int, max_freq: int) -> int:
    """The most symbols, none more probable than ``max_freq`` / 2**24, that a valid stream of this
    many bytes can decode (every lane back at its initial state, every word read); a file whose
    header implies more is corrupt, whatever its payload (`min_symbol_bits`)."""
    return int(stream_capacity_bits(stream_bytes) / (min_symbol_bits(max_freq) * (1 - 1e-9)))  # float rounding


def _check_params(params: np.ndarray) -> np.ndarray:
    """Return ``params`` as int64 (N, k); raise ValueError if it is not a 2-D integer array."""
    params = np.asarray(params)
    if params.ndim != 2 or not np.issubdtype(params.dtype, np.integer):
        raise ValueError(f"params must be an integer (N, k) array, got {params.dtype} {params.shape}")
    return params.astype(np.int64, copy=False)


def _cdf(model: Model, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """``model.cdf`` as int64 (N,)."""
    return np.asarray(model.cdf(params, symbols)).astype(np.int64, copy=False)


def _support_is_valid(model: Model, params: np.ndarray) -> tuple[np.ndarray, bool]:
    """Support sizes int64 (N,) and whether every row has 1 <= n <= TOTAL."""
    n = np.ascontiguousarray(model.n_symbols(params), np.int64)
    return n, n.shape == (len(params),) and not (np.any(n < 1) or np.any(n > TOTAL))


def _ends_are_valid(model: Model, params: np.ndarray, n: np.ndarray) -> bool:
    """Whether every row has cdf(0) = 0 and cdf(n) = TOTAL (a :class:`CdfTable` has them by its definition)."""
    zero = _cdf(model, params, np.zeros(len(params), np.int64))
    return bool(np.all(zero == 0) and np.all(_cdf(model, params, n) == TOTAL))


# ----------------------------------------------------------------------------- encoder


def _checked_symbols(symbols: np.ndarray, n: np.ndarray) -> np.ndarray:
    """symbols as int64 (N,), each inside its row's support 0..n-1 (ValueError otherwise)."""
    symbols = np.asarray(symbols)
    if symbols.shape != n.shape or not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError(f"symbols must be integer ({len(n)},), got {symbols.dtype} {symbols.shape}")
    symbols = np.ascontiguousarray(symbols, np.int64)
    bad = (symbols < 0) | (symbols >= n)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"symbol {int(symbols[i])} at index {i} outside its support 0..{int(n[i]) - 1}")
    return symbols


def _start_freq(symbols: np.ndarray, params: np.ndarray, model: Model, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated interval (start, freq) of each symbol, both uint64 (N,), from `model.cdf`."""
    if not _ends_are_valid(model, params, n):
        raise ValueError("model violates cdf(0) == 0, cdf(n) == TOTAL or 1 <= n <= TOTAL")
    symbols = _checked_symbols(symbols, n)
    start = _cdf(model, params, symbols)
    freq = _cdf(model, params, symbols + 1) - start
    if np.any(freq < 1) or np.any(start < 0):
        i = int(np.argmax((freq < 1) | (start < 0)))
        raise ValueError(f"symbol {int(symbols[i])} at index {i} has zero or negative frequency")
    return start.astype(np.uint64), freq.astype(np.uint64)


def _cdf_table(model: Model, params: np.ndarray, n: np.ndarray) -> CdfTable | None:
    """The model's :class:`CdfTable` for these rows (support sizes n), checked to stay inside its
    table, or None (the model has none).

    Raises:
        ValueError: a table form that does not fit its rows (a bug of the model).
    """
    form = model.cdf_table(params)
    if form is None:
        return None
    table = np.ascontiguousarray(form.table, np.int64)
    row, offset = (np.ascontiguousarray(v, np.int64) for v in (form.row, form.offset))
    if table.ndim != 2 or row.shape != (len(params),) or offset.shape != row.shape or form.stride < 0:
        raise ValueError("model cdf table has the wrong shape")
    inner = n > 1  # rows with a symbol 0 < s < n read the table at s = 1 .. n - 1
    first, last = offset + form.stride, offset + form.stride * (n - 1)
    if np.any(inner & ((row < 0) | (row >= len(table)) | (first < 0) | (last >= table.shape[1]))):
        raise ValueError("model cdf table does not cover its rows")
    return CdfTable(table, row, offset, int(form.stride), int(form.slope))


def _start_freq_table(symbols: np.ndarray, n: np.ndarray, form: CdfTable) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_start_freq` through the model's cdf table: the same checks, one compiled pass."""
    symbols = _checked_symbols(symbols, n)
    start, freq, i = _intervals(symbols, n, *form)
    if i >= 0:
        raise ValueError(f"symbol {int(symbols[i])} at index {i} has zero or negative frequency")
    return start, freq


@kernels.jit
def _table_cdf(table, row, offset, stride, slope, n, s):
    """cdf of symbol s (0 <= s <= n) of one row of a :class:`CdfTable`."""
    if s <= 0:
        return 0
    if s >= n:
        return TOTAL
    return slope * s + table[row, offset + stride * s]


@kernels.jit
def _intervals(symbols, n, table, row, offset, stride, slope):
    """uint64 (N,) start and freq of each symbol, and the first index with freq < 1 or start < 0 (else -1)."""
    start = np.empty(symbols.shape[0], np.uint64)
    freq = np.empty(symbols.shape[0], np.uint64)
    for i in range(symbols.shape[0]):
        lo = _table_cdf(table, row[i], offset[i], stride, slope, n[i], symbols[i])
        hi = _table_cdf(table, row[i], offset[i], stride, slope, n[i], symbols[i] + 1)
        if hi - lo < 1 or lo < 0:
            return start, freq, i
        start[i], freq[i] = np.uint64(lo), np.uint64(hi - lo)
    return start, freq, -1


def encode(symbols: np.ndarray, params: np.ndarray, model: Model) -> bytes:
    """Encode symbols with interleaved rANS.

    Args:
        symbols: integer (N,), symbol i in 0..n_i-1.
        params: integer (N, k), the model parameters of each symbol.
        model: the distribution family (see :class:`Model`).

    Returns:
        The stream: 8 bytes per lane of final states, then 32-bit renormalisation words.

    Raises:
        ValueError: on malformed arrays, a symbol outside its support, or an invalid model row.
    """
    params = _check_params(params)
    lanes = num_lanes(len(params))
    if lanes == 0:
        return b""
    n, valid = _support_is_valid(model, params)
    if not valid:
        raise ValueError("model violates cdf(0) == 0, cdf(n) == TOTAL or 1 <= n <= TOTAL")
    form = _cdf_table(model, params, n)
    start, freq = _start_freq(symbols, params, model, n) if form is None else _start_freq_table(symbols, n, form)
    state, body = _encode_lanes(start, freq, lanes)
    return state.astype("<u8").tobytes() + body.astype("<u4").tobytes()


@kernels.jit
def _encode_lanes(start: np.ndarray, freq: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """Final lane states uint64 (W,) and the words uint32 (M,) in stream order, of uint64 (N,) intervals.

    Steps run backwards; a step's words (at most one per lane: a state below 2**63 shifted by 32
    bits is below any freq << 39) are written lane-ascending in front of the later steps' words.
    """
    n = start.shape[0]
    state = np.full(lanes, _STATE_LOW, np.uint64)
    words = np.empty(n, np.uint32)
    chunk = np.empty(lanes, np.uint32)
    end = n
    for step in range((n + lanes - 1) // lanes - 1, -1, -1):
        count = 0
        for lane in range(min(lanes, n - step * lanes)):  # a missing symbol of the last step is a no-op
            i = step * lanes + lane
            state[lane], count = push(state[lane], start[i], freq[i], chunk, count)
        words[end - count:end] = chunk[:count]
        end -= count
    return state, words[end:].copy()


# ----------------------------------------------------------------------------- decoder


def _read_words(data: bytes, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a stream into initial lane states uint64 (W,) and words uint64 (M,)."""
    if len(data) % 4 or len(data) < 8 * lanes:
        raise CorruptFileError(f"rANS stream corrupt: {len(data)} bytes is truncated or misaligned")
    state = np.frombuffer(data, "<u8", count=lanes).astype(np.uint64)
    words = np.frombuffer(data, "<u4", offset=8 * lanes).astype(np.uint64)
    if np.any(state < _STATE_LOW) or np.any(state >> np.uint64(63)):
        raise CorruptFileError("rANS stream corrupt: a lane state is out of range")
    return state, words


def _search(model: Model, params: np.ndarray, n: np.ndarray, slot: np.ndarray, levels: int):
    """Vectorized radix-16 search for the symbol s with cdf(s) <= slot < cdf(s+1).

    Each level evaluates 15 candidates per row in one ``model.cdf`` call (few large
    numpy calls are much cheaper than many small ones).

    Args:
        params: int64 (m, k); n: int64 (m,) support sizes; slot: int64 (m,) in [0, TOTAL).
        levels: number of base-16 digits of the largest symbol, ceil(log2(max n) / 4).

    Returns:
        int64 (m,) symbols and their int64 (m,) cdf(s), cdf(s+1).
    """
    digits = np.arange(1, 1 << _RADIX_BITS, dtype=np.int64)
    repeated = np.repeat(params, len(digits), axis=0)
    symbol = np.zeros_like(n)
    for level in range(levels - 1, -1, -1):
        shift = level * _RADIX_BITS
        # Candidates past the support cost nothing: cdf(n) = TOTAL > slot is never taken.
        candidates = np.minimum(symbol[:, None] + (digits << shift), n[:, None])
        c = _cdf(model, repeated, candidates.reshape(-1)).reshape(candidates.shape)
        symbol = symbol + ((c <= slot[:, None]).sum(axis=1) << shift)
    start, end = _cdf(model, params, symbol), _cdf(model, params, symbol + 1)
    if np.any((start < 0) | (start > slot) | (end <= slot) | (end > TOTAL)):
        raise CorruptFileError("rANS stream corrupt: model cdf is not increasing for a decoded symbol")
    return symbol, start, end


def decode(data: bytes, params: np.ndarray, model: Model) -> np.ndarray:
    """Decode a stream made by :func:`encode` with the same params and model.

    Args:
        data: the stream.
        params: integer (N, k), exactly the params given to the encoder.
        model: the same distribution family.

    Returns:
        int64 (N,) decoded symbols.

    Raises:
        CorruptFileError: truncated or corrupt stream, lanes not back at their initial
            state, unread words, or a model row whose cdf is invalid.
    """
    params = _check_params(params)
    lanes = num_lanes(len(params))
    if lanes == 0:
        if data:
            raise CorruptFileError(f"rANS stream corrupt: {len(data)} bytes for 0 symbols")
        return np.zeros(0, np.int64)
    n, valid = _support_is_valid(model, params)
    form = _cdf_table_or_corrupt(model, params, n) if valid else None
    if not valid or (form is None and not _ends_are_valid(model, params, n)):
        raise CorruptFileError("rANS stream corrupt: model cdf invalid (cdf(0) != 0 or cdf(n) != TOTAL)")
    state, words = _read_words(data, lanes)
    if form is not None:
        out, state, pos, status = _decode_table(state, words, n, *form)
        if status:
            raise CorruptFileError(_DECODE_ERRORS[status])
        if pos != len(words) or np.any(state != _STATE_LOW):
            raise CorruptFileError("rANS stream corrupt: final lane states or word count do not match")
        return out
    out, pos = np.empty(len(params), np.int64), 0
    levels = -(-(int(n.max()) - 1).bit_length() // _RADIX_BITS)
    for first in range(0, len(params), lanes):
        rows = slice(first, first + lanes)
        m = len(out[rows])  # lanes active in this step (fewer only in the last one)
        out[rows], state[:m], pos = _decode_step(model, params[rows], n[rows], state[:m], words, pos, levels)
    if pos != len(words) or np.any(state != _STATE_LOW):
        raise CorruptFileError("rANS stream corrupt: final lane states or word count do not match")
    return out


_DECODE_ERRORS = {1: "rANS stream corrupt: model cdf is not increasing for a decoded symbol",
                  2: "rANS stream corrupt: truncated (ran out of words)"}


def _cdf_table_or_corrupt(model: Model, params: np.ndarray, n: np.ndarray) -> CdfTable | None:
    """:func:`_cdf_table`, a bad table form reported as the decoder reports an invalid model."""
    try:
        return _cdf_table(model, params, n)
    except ValueError as exc:
        raise CorruptFileError(f"rANS stream corrupt: model cdf invalid ({exc})") from exc


@kernels.jit
def _decode_table(state, words, n, table, row, offset, stride, slope):
    """The decoder of :func:`decode` as one compiled loop over a :class:`CdfTable`.

    Lanes of a step are decoded in ascending order, so refills read words in stream order; the
    symbol is found by bisection on the (increasing) cdf, the same symbol the radix search finds.

    Returns:
        int64 (N,) symbols, uint64 (W,) final states, words read, status (0 ok, else a key of
        ``_DECODE_ERRORS``).
    """
    lanes, total = state.shape[0], n.shape[0]
    out = np.zeros(total, np.int64)
    pos = 0
    for i in range(total):
        lane = i % lanes
        x = state[lane]
        slot = np.int64(x & _SLOT_MASK)
        lo, hi = 0, n[i]  # cdf(lo) <= slot < cdf(hi)
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if _table_cdf(table, row[i], offset[i], stride, slope, n[i], mid) <= slot:
                lo = mid
            else:
                hi = mid
        start = _table_cdf(table, row[i], offset[i], stride, slope, n[i], lo)
        end = _table_cdf(table, row[i], offset[i], stride, slope, n[i], lo + 1)
        if start < 0 or start > slot or end <= slot or end > TOTAL:
            return out, state, pos, 1
        x, pos = pop(x, np.uint64(start), np.uint64(end - start), np.uint64(slot), words, pos)
        if pos < 0:
            return out, state, 0, 2
        state[lane] = x
        out[i] = lo
    return out, state, pos, 0


def _decode_step(model: Model, params: np.ndarray, n: np.ndarray, x: np.ndarray, words: np.ndarray,
                 pos: int, levels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode one step of m lanes.

    Args:
        params: int64 (m, k); n: int64 (m,) support sizes; x: uint64 (m,) lane states.
        words: uint64 (M,) renormalisation words; pos: index of the next unread word.
        levels: see :func:`_search`.

    Returns:
        int64 (m,) symbols, uint64 (m,) new states, the new ``pos``.
    """
    slot = (x & _SLOT_MASK).astype(np.int64)
    symbols, start, end = _search(model, params, n, slot, levels)
    x = (end - start).astype(np.uint64) * (x >> _PREC) + (slot - start).astype(np.uint64)
    need = x < _STATE_LOW
    count = int(np.count_nonzero(need))
    if pos + count > len(words):
        raise CorruptFileError("rANS stream corrupt: truncated (ran out of words)")
    x[need] = (x[need] << _WORD_BITS) | words[pos : pos + count]
    return symbols, x, pos + count


# ----------------------------------------------------------------------------- single-lane streams, decoded in parts


@kernels.jit("uint32[::1](uint64[::1], uint64[::1])")
def _encode_segment(start, freq):
    n = start.shape[0]
    words = np.empty(n + 2, np.uint32)  # at most one word per symbol, plus the flush
    count = 0
    state = _STATE_LOW
    for i in range(n - 1, -1, -1):
        state, count = push(state, start[i], freq[i], words, count)
    words[count] = np.uint32(state & _WORD_MASK)  # reversed below: high word first
    words[count + 1] = np.uint32(state >> _WORD_BITS)
    return words[:count + 2][::-1].copy()


def encode_segment(start: np.ndarray, freq: np.ndarray) -> bytes:
    """One segment of a single-lane stream: the intervals (start, freq) (N,) of its symbols in decoding order,
    each 0 <= start, 1 <= freq, start + freq <= TOTAL (the model's business: not checked here)."""
    return _encode_segment(np.ascontiguousarray(start, np.uint64),
                           np.ascontiguousarray(freq, np.uint64)).astype("<u4").tobytes()


class Resumable:
    """Decodes a single-lane stream part by part (`run`); `next_segment` and `finish` prove where it ends."""

    def __init__(self, data: bytes, what: str = "rANS stream"):
        self.what = what
        if len(data) < 8 or len(data) % 4:
            raise CorruptFileError(f"{what} of {len(data)} bytes is not a stream of 32-bit words")
        self.words = np.frombuffer(data, "<u4").astype(np.uint32)
        self.position = 0
        self._start()

    def _start(self) -> None:
        if self.position + 2 > len(self.words):
            raise CorruptFileError(f"{self.what} truncated: the rANS stream ran out of words")
        self.state = np.uint64((int(self.words[self.position]) << 32) | int(self.words[self.position + 1]))
        self.position += 2
        if int(self.state) < 1 << STATE_BITS[0] or int(self.state) >= 1 << STATE_BITS[1]:
            raise CorruptFileError(f"{self.what}: bad initial rANS state")

    def run(self, loop, *args):
        """The next part of the symbols: `loop(words, position, state, *args)` is a model's compiled loop that
        decodes them with `pop` and returns (outputs..., position, state), position -1 if the words ran out.
        Returns its outputs (one, or a tuple)."""
        *out, position, state = loop(self.words, self.position, self.state, *args)
        if position < 0:
            raise CorruptFileError(f"{self.what} truncated: the rANS stream ran out of words")
        self.position, self.state = position, state
        return out[0] if len(out) == 1 else tuple(out)

    def next_segment(self) -> None:
        """The current segment must end here; the next one starts."""
        if int(self.state) != 1 << STATE_BITS[0]:
            raise CorruptFileError(f"{self.what} corrupt: a rANS segment did not end where it should")
        self._start()

    def finish(self) -> None:
        if int(self.state) != 1 << STATE_BITS[0] or self.position != len(self.words):
            raise CorruptFileError(f"{self.what} corrupt: the rANS stream did not end where it should")
