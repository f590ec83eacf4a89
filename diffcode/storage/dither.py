"""Dithered (universal) quantization of interval encodings: storage at exactly the entropy paid.

An encoding of decoder-known entropy ``e`` (units of 1/256 bit) is stored on a grid of ``n``
points spread evenly over the circle and shifted by a shared random offset ``u``::

    n = levels(e)  = round(2**32 / arc_length(e))          (integer arithmetic, n >= 1)
    u = random_u32(seed, stage, DOMAIN, i)                 (splitmix64, diffcode.storage.rng)
    grid point k:  v_k = (u + floor(k * 2**32 / n)) mod 2**32,  k = 0..n-1

The encoder stores the k of the grid point nearest to the fitted center; whatever the center,
the stored value is then uniform on an arc of width 1/n around it (the offset is uniform), which
is exactly the sample the fit assumes for an arc of width 1/n. Storing k costs log2(n) bits: the
k of a stage are written as one mixed-radix number (below), whose length is the sum of log2(n)
rounded up once per 64 chunks. So the entropy reported, sum(log2 n), is the entropy paid, up to
about 0.03 % and the final byte. Fitting uses widths of the form 1/n in its last phase
(``diffcode.families.per_pixel.fit``), so its objective is this same sum.

Mixed-radix layout of a stage (encodings with n = 1 cost nothing and are skipped):

- chunk: consecutive encodings whose ceil(log2 n) sum starts in the same 40-bit window; its
  digit ``d = sum_i k_i * prod_{j<i} n_j`` and radix ``P = prod n_i`` are below 2**61;
- block: 64 consecutive chunks; its value ``sum_c d_c * prod_{c'<c} P_c'`` is written in exactly
  ``bit_length(prod P - 1)`` bits, blocks one after the other (little-endian bit order), and
  the stream is padded with zero bits to whole bytes.

Everything the decoder needs (n, chunks, blocks, bit lengths) follows from the entropies it
computes itself, so nothing but the digits is stored.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CorruptFileError
from .entropy_units import MAX_UNITS, arc_table
from .rng import fold_key, fold_range, seed_state

NAME = "dither"
DOMAIN = 0x44495448  # b"DITH": keeps the offsets independent of other uses of the seed
CHUNK_WINDOW_BITS = 40
BLOCK_CHUNKS = 64
MAX_LEVELS_BITS = 21  # n <= 2**20 + 1 for entropies up to MAX_ENCODING_BITS
_POW2 = np.array([1 << j for j in range(MAX_LEVELS_BITS + 2)], dtype=np.int64)
_M32 = np.uint64(0xFFFFFFFF)


def levels(entropy_units: np.ndarray) -> np.ndarray:
    """int64 n >= 1 of each encoding: round(2**32 / arc_length(e)), exact integers."""
    e = np.asarray(entropy_units)
    if not np.issubdtype(e.dtype, np.integer) or (e.size and e.min() < 0):
        raise ValueError("entropy_units must be non-negative integers")
    if e.size and e.max() > MAX_UNITS:
        raise ValueError(f"entropy units above {MAX_UNITS}")
    return _levels(e.astype(np.int64).ravel(), arc_table()).reshape(e.shape)


@numba.njit(cache=True)
def _levels(e, arcs):
    """`levels` of int64 entropies in [0, MAX_UNITS]: n = (2**33 // arc_length(e) + 1) >> 1, in one pass."""
    n = np.empty(e.shape[0], np.int64)
    for i in range(e.shape[0]):
        arc = max(arcs[e[i] & 255] >> np.uint64(e[i] >> 8), np.uint64(1))  # arc_length (e >> 8 < 64)
        n[i] = max(np.int64((np.uint64(1 << 33) // arc + np.uint64(1)) >> np.uint64(1)), 1)
    return n


def theoretical_bits(entropy_units: np.ndarray) -> float:
    """sum(log2 n): the bits this scheme pays for encodings of the given entropies."""
    return float(np.log2(levels(entropy_units).astype(np.float64)).sum())


def offsets(n_items: int, seed: int, stage: int) -> np.ndarray:
    """uint64 (N,) shared random offsets in [0, 2**32) of a stage's encodings."""
    h = fold_key(fold_key(seed_state(seed), int(stage)), DOMAIN)
    return fold_range(h, n_items) >> np.uint64(32)


def grid_values(u: np.ndarray, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """uint64 grid points (u + floor(k * 2**32 / n)) mod 2**32."""
    u, k, n = np.broadcast_arrays(u, k, n)  # shapes that do not broadcast raise, as in numpy
    out = _grid_values(u.astype(np.uint64).ravel(), k.astype(np.uint64).ravel(), n.astype(np.uint64).ravel())
    return out.reshape(u.shape)


@numba.njit(cache=True)
def _grid_values(u, k, n):
    out = np.empty(u.shape[0], np.uint64)
    for i in range(u.shape[0]):
        step = (k[i] << np.uint64(32)) // n[i] if n[i] > 1 else np.uint64(0)  # k = 0 where n = 1
        out[i] = (u[i] + step) & _M32
    return out


def nearest_index(centers: np.ndarray, u: np.ndarray, n: np.ndarray) -> np.ndarray:
    """int64 k of the grid point nearest to each center (ties up), in [0, n)."""
    d = (centers.astype(np.uint64) + np.uint64(1 << 32) - u) & _M32
    k = (d * n.astype(np.uint64) + np.uint64(1 << 31)) >> np.uint64(32)
    return (k % n.astype(np.uint64)).astype(np.int64)


def encode_stage(centers: np.ndarray, entropy_units: np.ndarray, seed: int, stage: int) -> tuple[bytes, np.ndarray]:
    """Store one stage's encodings.

    Args:
        centers: uint32 (N,) fitted arc centers.
        entropy_units: int64 (N,) decoder-known entropies (1/256 bit).
        seed, stage: the shared randomness' key.

    Returns:
        (bytes, stored values uint32 (N,)).
    """
    centers = np.asarray(centers)
    n = levels(entropy_units)
    if centers.shape != n.shape or centers.dtype != np.uint32:
        raise ValueError(f"centers must be uint32 {n.shape}, got {centers.dtype} {centers.shape}")
    u = offsets(len(n), seed, stage)
    k = nearest_index(centers, u, n)
    return pack_uniform(k, n), grid_values(u, k, n).astype(np.uint32)


def decode_stage(data: bytes, entropy_units: np.ndarray, seed: int, stage: int) -> np.ndarray:
    """Stored values uint32 (N,) of one stage from :func:`encode_stage`'s bytes."""
    n = levels(entropy_units)
    k = unpack_uniform(bytes(data), n)
    return grid_values(offsets(len(n), seed, stage), k, n).astype(np.uint32)


# ----------------------------------------------------------------------------- mixed radix


def _bit_lengths(x: np.ndarray) -> np.ndarray:
    """Python's int.bit_length of non-negative int64 values below 2**22."""
    return np.searchsorted(_POW2, x, side="right").astype(np.int64)


def _layout(n: np.ndarray):
    """Chunks of the encodings with n > 1: (active index, chunk id, n_chunks); chunk ids are sorted."""
    active = np.flatnonzero(n > 1)
    bits = _bit_lengths(n[active] - 1)  # ceil(log2 n)
    start = np.cumsum(bits) - bits
    window = start // CHUNK_WINDOW_BITS
    # renumber the windows used 0..C-1 (one wide encoding can skip a window); they are sorted
    chunk = np.cumsum(np.diff(window, prepend=window[:1]) != 0) if len(active) else window
    n_chunks = int(chunk[-1]) + 1 if len(active) else 0
    return active, chunk, n_chunks


@numba.njit(cache=True)
def _chunk_radices_of(nn, chunk, n_chunks):
    """uint64 radix of every chunk: the product of its encodings' n (below 2**61, exact)."""
    radix = np.ones(n_chunks, np.uint64)
    for i in range(nn.shape[0]):
        radix[chunk[i]] *= nn[i]
    return radix


@numba.njit(cache=True)
def _join_digits(kk, nn, chunk, n_chunks):
    """uint64 digit of every chunk, sum_i k_i prod_{j<i} n_j (Horner from its last encoding)."""
    digit = np.zeros(n_chunks, np.uint64)
    for i in range(nn.shape[0] - 1, -1, -1):
        digit[chunk[i]] = digit[chunk[i]] * nn[i] + kk[i]
    return digit


@numba.njit(cache=True)
def _split_digits(digit, nn, chunk):
    """The k of every encoding from its chunk's digit (inverse of `_join_digits`; digit is consumed)."""
    kk = np.empty(nn.shape[0], np.uint64)
    for i in range(nn.shape[0]):
        c = chunk[i]
        kk[i] = digit[c] % nn[i]
        digit[c] //= nn[i]
    return kk


def _chunk_radices(nn: np.ndarray, chunk: np.ndarray, n_chunks: int) -> list[int]:
    return [int(r) for r in _chunk_radices_of(nn.astype(np.uint64), chunk, n_chunks)]


def _block_sizes(radices: list[int]) -> list[tuple[int, int, int]]:
    """(first chunk, end chunk, bits) of every block."""
    out = []
    for b0 in range(0, len(radices), BLOCK_CHUNKS):
        b1 = min(b0 + BLOCK_CHUNKS, len(radices))
        prod = 1
        for r in radices[b0:b1]:
            prod *= r
        out.append((b0, b1, (prod - 1).bit_length()))
    return out


def pack_uniform(k: np.ndarray, n: np.ndarray) -> bytes:
    """Bytes of digits k (int64, 0 <= k < n) in the mixed-radix layout of the module docstring."""
    n = np.asarray(n, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    if k.shape != n.shape or np.any((k < 0) | (k >= n)):
        raise ValueError("digits must satisfy 0 <= k < n")
    active, chunk, n_chunks = _layout(n)
    if n_chunks == 0:
        return b""
    nn, kk = n[active].astype(np.uint64), k[active].astype(np.uint64)
    digit = _join_digits(kk, nn, chunk, n_chunks)
    radices = _chunk_radices(nn, chunk, n_chunks)
    digits = [int(d) for d in digit]
    pieces = []
    for b0, b1, bits in _block_sizes(radices):
        value = 0
        for c in range(b1 - 1, b0 - 1, -1):
            value = value * radices[c] + digits[c]
        raw = np.frombuffer(value.to_bytes((bits + 7) // 8, "little"), dtype=np.uint8)
        pieces.append(np.unpackbits(raw, bitorder="little")[:bits])
    return np.packbits(np.concatenate(pieces), bitorder="little").tobytes()


def unpack_uniform(data: bytes, n: np.ndarray) -> np.ndarray:
    """Digits k (int64, shape of n) from :func:`pack_uniform`'s bytes; raises on a corrupt stream."""
    n = np.asarray(n, dtype=np.int64)
    k = np.zeros(n.shape, dtype=np.int64)
    active, chunk, n_chunks = _layout(n)
    radices = _chunk_radices(n[active], chunk, n_chunks) if n_chunks else []
    blocks = _block_sizes(radices)
    total_bits = sum(bits for _, _, bits in blocks)
    if len(data) != (total_bits + 7) // 8:
        raise CorruptFileError(f"encodings section has {len(data)} bytes, the decoder expects {(total_bits + 7) // 8}")
    stream = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if stream[total_bits:].any():
        raise CorruptFileError("encodings section has non-zero padding bits: the file is corrupt")
    digits = [0] * n_chunks
    offset = 0
    for b0, b1, bits in blocks:
        value = int.from_bytes(np.packbits(stream[offset:offset + bits], bitorder="little").tobytes(), "little")
        offset += bits
        for c in range(b0, b1):
            value, digits[c] = divmod(value, radices[c])
        if value:
            raise CorruptFileError("encodings section holds a value out of range: the file is corrupt")
    if n_chunks == 0:
        return k
    k[active] = _split_digits(np.array(digits, dtype=np.uint64), n[active].astype(np.uint64), chunk).astype(np.int64)
    return k
