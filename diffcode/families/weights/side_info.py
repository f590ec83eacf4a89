"""Side information: a sequence of symbols from a small alphabet, coded under its own counts.

Used by the weights variant for the width level j of every group. A two-part (counted) code:

    counts c_0..c_{K-2} of the symbols (c_{K-1} = G - sum), each a digit in 0..G, written with
        diffcode.storage.dither.pack_uniform at exactly (K-1) log2(G+1) bits in total;
    the symbols, rANS-coded (diffcode.storage.rans) under the static model of the symbols that
        occur, with integer frequencies f_s = 1 + floor(c_s (TOTAL - m) / G) (m symbols occur; the
        remainder goes to the most frequent one), so every frequency is >= 1 and they sum to TOTAL.

Its cost is G times the empirical entropy of the symbols plus the counts, within a few bytes of
an adaptive (Krichevsky-Trofimov) code. The number of symbols G and the alphabet size K are
known to the decoder, so the split point between the two parts is too.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import CorruptFileError
from ...storage import rans
from ...storage.dither import pack_uniform, unpack_uniform


class CountedModel:
    """A static distribution from integer frequencies, as a :class:`diffcode.storage.rans.Model`.

    Requirements for correctness: every frequency >= 1, sum == TOTAL (checked at construction).
    """

    def __init__(self, freq: np.ndarray):
        freq = np.asarray(freq, dtype=np.int64)
        if freq.size == 0 or freq.min() < 1 or int(freq.sum()) != rans.TOTAL:
            raise ValueError("frequencies must be >= 1 and sum to TOTAL")
        self.cum = np.concatenate([[0], np.cumsum(freq)]).astype(np.int64)

    def n_symbols(self, params: np.ndarray) -> np.ndarray:
        return np.full(len(params), len(self.cum) - 1, dtype=np.int64)

    def cdf(self, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        return self.cum[np.clip(symbols, 0, len(self.cum) - 1)]

    def cdf_table(self, params: np.ndarray) -> rans.CdfTable:
        zeros = np.zeros(len(params), np.int64)
        return rans.CdfTable(self.cum[None, :], zeros, zeros, 1, 0)


def frequencies(counts: np.ndarray) -> np.ndarray:
    """int64 frequencies (>= 1, sum TOTAL) of the non-zero counts, in order."""
    c = np.asarray(counts, dtype=np.int64)
    c = c[c > 0]
    total = int(c.sum())
    f = 1 + c * (rans.TOTAL - len(c)) // total
    f[int(np.argmax(c))] += rans.TOTAL - int(f.sum())
    return f


def _count_radices(n_symbols: int, alphabet: int) -> np.ndarray:
    return np.full(alphabet - 1, n_symbols + 1, dtype=np.int64)


def encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Bytes of symbols int (G,) in 0..alphabet-1."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ValueError(f"side-info symbols must lie in 0..{alphabet - 1}")
    counts = np.bincount(symbols, minlength=alphabet)
    head = pack_uniform(counts[:-1], _count_radices(len(symbols), alphabet))
    if len(symbols) == 0:
        return head
    rank = np.cumsum(counts > 0) - 1
    model = CountedModel(frequencies(counts))
    return head + rans.encode(rank[symbols], np.zeros((len(symbols), 1), np.int64), model)


def decode(data: bytes, n_symbols: int, alphabet: int) -> np.ndarray:
    """Symbols int64 (n_symbols,) from :func:`encode`'s bytes; raises CorruptFileError."""
    radices = _count_radices(n_symbols, alphabet)
    head_len = len(pack_uniform(np.zeros(alphabet - 1, np.int64), radices))
    if len(data) < head_len:
        raise CorruptFileError("side-info section truncated")
    c = unpack_uniform(bytes(data[:head_len]), radices)
    last = n_symbols - int(c.sum())
    if last < 0:
        raise CorruptFileError("side-info counts exceed the number of groups: the file is corrupt")
    counts = np.concatenate([c, [last]])
    if n_symbols == 0:
        if len(data) != head_len:
            raise CorruptFileError("side-info section has unexpected bytes")
        return np.zeros(0, np.int64)
    present = np.flatnonzero(counts)
    ranks = rans.decode(bytes(data[head_len:]), np.zeros((n_symbols, 1), np.int64), CountedModel(frequencies(counts)))
    symbols = present[ranks]
    if not np.array_equal(np.bincount(symbols, minlength=alphabet), counts):
        raise CorruptFileError("side-info symbols disagree with their counts: the file is corrupt")
    return symbols


def theoretical_bits(symbols: np.ndarray, alphabet: int) -> float:
    """Ideal bits of the two-part code: the counts plus the symbols under their frequencies."""
    symbols = np.asarray(symbols, dtype=np.int64)
    head = (alphabet - 1) * math.log2(len(symbols) + 1)
    if len(symbols) == 0:
        return head
    counts = np.bincount(symbols, minlength=alphabet)
    f = frequencies(counts)
    bits_per = rans.PRECISION_BITS - np.log2(f.astype(np.float64))
    return head + float((counts[counts > 0] * bits_per).sum())
