"""Vectorized, integer-only interleaved rANS coder (numpy only).

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

Overhead: the flush costs 8 bytes per lane, i.e. at most 8 bytes per 4096
symbols and at most 2 KiB in total (about 31 of its 64 bits are the known initial
state, the price of the integrity check). The coding loss itself is negligible:
1.2M Cauchy symbols took 804,592 bytes for 803,061 ideal bytes of the integer
frequencies (+0.19 %, less than the 2,048-byte flush).

Speed (``python experiments/rans_speed.py``: 1,179,648 symbols of the 256-symbol
:class:`diffcode.cauchy.CauchyModel`, 256 lanes, numpy 2.4, on the 2-core dev machine
while other jobs kept both cores busy, load average 3.5): encode 0.21-0.31 s, decode
1.0-1.8 s of CPU time over 8 runs (decode wall time 1.0-2.7 s under that load). The
decoder resolves 4 bits of each symbol per ``model.cdf`` call, so a 256-symbol model
costs 4 cdf calls per step of 256 lanes.

Requirements for correctness of a :class:`Model`: ``1 <= n <= TOTAL``,
``cdf(p, 0) == 0``, ``cdf(p, n) == TOTAL`` (checked for every row on every call)
and ``cdf`` strictly increasing in the symbol, so every symbol of the support has
frequency >= 1 (checked for every coded and every decoded symbol).
"""

from __future__ import annotations

import typing

import numpy as np

from diffcode.errors import CorruptFileError

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


def num_lanes(n_symbols: int) -> int:
    """Number of interleaved lanes W for a stream of ``n_symbols`` symbols (0 iff N == 0)."""
    return min(MAX_LANES, -(-n_symbols // SYMBOLS_PER_LANE))


def min_stream_bytes(n_symbols: int) -> int:
    """The shortest stream that can hold ``n_symbols`` symbols: the final states, 8 bytes per lane."""
    return 8 * num_lanes(n_symbols)


def _check_params(params: np.ndarray) -> np.ndarray:
    """Return ``params`` as int64 (N, k); raise ValueError if it is not a 2-D integer array."""
    params = np.asarray(params)
    if params.ndim != 2 or not np.issubdtype(params.dtype, np.integer):
        raise ValueError(f"params must be an integer (N, k) array, got {params.dtype} {params.shape}")
    return params.astype(np.int64, copy=False)


def _cdf(model: Model, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """``model.cdf`` as int64 (N,)."""
    return np.asarray(model.cdf(params, symbols)).astype(np.int64, copy=False)


def _model_is_valid(model: Model, params: np.ndarray) -> tuple[np.ndarray, bool]:
    """Support sizes int64 (N,) and whether every row has 1 <= n <= TOTAL, cdf(0)=0, cdf(n)=TOTAL."""
    n = np.asarray(model.n_symbols(params)).astype(np.int64, copy=False)
    if n.shape != (len(params),):
        return n, False
    if np.any(n < 1) or np.any(n > TOTAL):
        return n, False
    zero = _cdf(model, params, np.zeros(len(params), np.int64))
    full = _cdf(model, params, n)
    return n, bool(np.all(zero == 0) and np.all(full == TOTAL))


# ----------------------------------------------------------------------------- encoder


def _start_freq(symbols: np.ndarray, params: np.ndarray, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """Validated interval (start, freq) of each symbol, both uint64 (N,)."""
    symbols = np.asarray(symbols)
    if symbols.shape != (len(params),) or not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError(f"symbols must be integer ({len(params)},), got {symbols.dtype} {symbols.shape}")
    symbols = symbols.astype(np.int64, copy=False)
    n, valid = _model_is_valid(model, params)
    if not valid:
        raise ValueError("model violates cdf(0) == 0, cdf(n) == TOTAL or 1 <= n <= TOTAL")
    bad = (symbols < 0) | (symbols >= n)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"symbol {int(symbols[i])} at index {i} outside its support 0..{int(n[i]) - 1}")
    start = _cdf(model, params, symbols)
    freq = _cdf(model, params, symbols + 1) - start
    if np.any(freq < 1) or np.any(start < 0):
        i = int(np.argmax((freq < 1) | (start < 0)))
        raise ValueError(f"symbol {int(symbols[i])} at index {i} has zero or negative frequency")
    return start.astype(np.uint64), freq.astype(np.uint64)


def _lane_grid(values: np.ndarray, lanes: int, fill: int) -> np.ndarray:
    """Lay uint64 (N,) values out as (steps, lanes), padding the last step with ``fill``."""
    steps = -(-len(values) // lanes)
    grid = np.full(steps * lanes, fill, dtype=np.uint64)
    grid[: len(values)] = values
    return grid.reshape(steps, lanes)


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
    start, freq = _start_freq(symbols, params, model)
    # Padding with (start 0, freq TOTAL) is an exact no-op for both coder directions.
    starts, freqs = _lane_grid(start, lanes, 0), _lane_grid(freq, lanes, TOTAL)
    state = np.full(lanes, _STATE_LOW, dtype=np.uint64)
    emitted = []
    for step in range(len(starts) - 1, -1, -1):
        freq_t = freqs[step]
        emit = state >= (freq_t << _EMIT_SHIFT)
        emitted.append((state[emit] & _WORD_MASK).astype("<u4"))
        state[emit] >>= _WORD_BITS
        state = ((state // freq_t) << _PREC) + state % freq_t + starts[step]
    body = np.concatenate(emitted[::-1]) if emitted else np.zeros(0, "<u4")
    return state.astype("<u8").tobytes() + body.tobytes()


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
    n, valid = _model_is_valid(model, params)
    if not valid:
        raise CorruptFileError("rANS stream corrupt: model cdf invalid (cdf(0) != 0 or cdf(n) != TOTAL)")
    state, words = _read_words(data, lanes)
    out, pos = np.empty(len(params), np.int64), 0
    levels = -(-(int(n.max()) - 1).bit_length() // _RADIX_BITS)
    for first in range(0, len(params), lanes):
        rows = slice(first, first + lanes)
        m = len(out[rows])  # lanes active in this step (fewer only in the last one)
        out[rows], state[:m], pos = _decode_step(model, params[rows], n[rows], state[:m], words, pos, levels)
    if pos != len(words) or np.any(state != _STATE_LOW):
        raise CorruptFileError("rANS stream corrupt: final lane states or word count do not match")
    return out


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
