"""Dithered storage: exact round trips, values uniform around the centers, size = sum(log2 n)."""

import numpy as np
import pytest

from diffcode.errors import CorruptFileError
from diffcode.storage import dither
from diffcode.storage.entropy_units import MAX_UNITS, UNITS_PER_BIT


def _round_trip(e, seed=5, stage=3, centers=None):
    e = np.asarray(e, np.int64)
    if centers is None:
        centers = np.random.default_rng(len(e)).integers(0, 1 << 32, len(e), dtype=np.uint64).astype(np.uint32)
    data, values = dither.encode_stage(centers, e, seed, stage)
    assert values.dtype == np.uint32 and values.shape == e.shape
    assert np.array_equal(dither.decode_stage(data, e, seed, stage), values)
    return data, values, centers


def _distance(values, centers):
    """Signed circular distance value - center, in units of 2**-32 of the circle."""
    return ((values.astype(np.int64) - centers.astype(np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def test_compiled_levels_and_grid_match_their_formulas():
    """The one-pass kernels give the module docstring's integers (numpy uint64 formulas)."""
    from diffcode.storage.entropy_units import arc_length

    e = np.arange(MAX_UNITS + 1)
    arc = arc_length(e).astype(np.uint64)
    formula = np.maximum(((np.uint64(1 << 33) // arc) + np.uint64(1)) >> np.uint64(1), np.uint64(1))
    assert np.array_equal(dither.levels(e), formula.astype(np.int64))
    assert dither.levels(e.reshape(-1, 1)).shape == (MAX_UNITS + 1, 1)
    with pytest.raises(ValueError):
        dither.levels(np.array([-1]))
    rng = np.random.default_rng(3)
    n = rng.integers(1, (1 << 20) + 2, 5000).astype(np.uint64)
    k = (rng.random(5000) * n).astype(np.uint64)
    u = rng.integers(0, 1 << 32, 5000, dtype=np.uint64)
    expected = (u + (k << np.uint64(32)) // n) & np.uint64(0xFFFFFFFF)
    assert np.array_equal(dither.grid_values(u, k, n), expected)
    assert np.array_equal(dither.grid_values(u[:1], k[:1].reshape(1, 1), n[:1]), expected[:1].reshape(1, 1))
    with pytest.raises(ValueError):  # lengths that do not broadcast are an error, never a read past the end
        dither.grid_values(u, k[:3], n[:3])


def test_levels_are_the_rounded_inverse_widths():
    e = np.array([0, 127, 128, 256, 384, 512, 8 * 256, MAX_UNITS])
    assert dither.levels(e).tolist() == [1, 1, 1, 2, 3, 4, 256, 1 << 20]
    exact = np.round(2.0 ** (np.arange(MAX_UNITS + 1) / UNITS_PER_BIT))
    n = dither.levels(np.arange(MAX_UNITS + 1))
    # arcs are floor(2**32 * 2**-bits): relative error below 2**-12 at 20 bits
    assert np.all(np.abs(n - exact) <= 1 + exact * 2.5e-4)


@pytest.mark.parametrize("e", [[], [0], [0] * 50, [1], [256], [MAX_UNITS], [MAX_UNITS] * 7, [3, 0, 700, 5119, 5120]])
def test_round_trip_of_small_stages(e):
    data, _, _ = _round_trip(e)
    bits = dither.theoretical_bits(np.asarray(e, np.int64))
    assert bits <= 8 * len(data) <= bits + 8


@pytest.mark.parametrize("kind", ["near zero", "near the whole circle", "mixed", "one wide window"])
def test_size_is_within_a_small_margin_of_the_entropy(kind):
    rng = np.random.default_rng(1)
    n = 30_000
    e = {"near zero": rng.integers(0, 200, n),  # widths near the whole circle: n = 1 or 2
         "near the whole circle": rng.integers(MAX_UNITS - 300, MAX_UNITS + 1, n),  # widths near 0
         "mixed": np.where(rng.random(n) < 0.4, 0, rng.integers(0, MAX_UNITS + 1, n)),
         "one wide window": np.r_[np.full(100, 300), [MAX_UNITS], np.full(100, 300)]}[kind]
    data, values, centers = _round_trip(e)
    bits = dither.theoretical_bits(e)
    # one bit per 64-chunk block plus the final byte: about 0.03 % for realistic stages
    assert bits <= 8 * len(data) <= bits * 1.001 + 8
    n_levels = dither.levels(e)
    assert np.all(np.abs(_distance(values, centers)) <= (1 << 31) // n_levels + 1)


def test_stored_values_are_uniform_inside_the_arc():
    e = np.full(200_000, 6 * UNITS_PER_BIT)  # n = 64
    centers = np.full(len(e), 123_456_789, np.uint32)
    _, values, _ = _round_trip(e, centers=centers)
    offset = _distance(values, centers) / (2.0**32 / 64)  # in arc widths, should be U(-1/2, 1/2)
    assert abs(offset.mean()) < 0.005 and abs(offset.std() - np.sqrt(1 / 12)) < 0.005
    hist, _ = np.histogram(offset, bins=10, range=(-0.5, 0.5))
    assert hist.min() > 0.95 * len(e) / 10


def test_values_depend_on_seed_and_stage_only_through_the_offsets():
    e = np.full(1000, 1000)
    a = _round_trip(e, seed=1, stage=0)[1]
    b = _round_trip(e, seed=2, stage=0)[1]
    c = _round_trip(e, seed=1, stage=1)[1]
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_corrupt_streams_are_rejected():
    e = np.full(500, 9 * UNITS_PER_BIT + 7)
    data, _, _ = _round_trip(e)
    with pytest.raises(CorruptFileError):
        dither.decode_stage(data[:-1], e, 5, 3)
    with pytest.raises(CorruptFileError):
        dither.decode_stage(data + b"\0", e, 5, 3)
    with pytest.raises(CorruptFileError):
        dither.decode_stage(b"\xff" * len(data), e, 5, 3)  # values beyond the radix product


def test_pack_rejects_out_of_range_digits():
    with pytest.raises(ValueError):
        dither.pack_uniform(np.array([3]), np.array([3]))


def _reference_pack(k, n):
    """The module docstring's mixed-radix layout with Python ints, one encoding at a time."""
    chunks, window, bits_so_far = [], None, 0
    for ki, ni in zip(k.tolist(), n.tolist()):
        if ni <= 1:
            continue
        w = bits_so_far // dither.CHUNK_WINDOW_BITS
        if w != window:
            chunks.append([])
            window = w
        chunks[-1].append((ki, ni))
        bits_so_far += (ni - 1).bit_length()
    stream = ""
    for b0 in range(0, len(chunks), dither.BLOCK_CHUNKS):
        value, scale = 0, 1
        for chunk in chunks[b0:b0 + dither.BLOCK_CHUNKS]:
            digit, radix = 0, 1
            for ki, ni in chunk:
                digit, radix = digit + ki * radix, radix * ni
            value, scale = value + digit * scale, scale * radix
        bits = (scale - 1).bit_length()
        stream += "".join(str((value >> i) & 1) for i in range(bits))
    stream += "0" * (-len(stream) % 8)
    return bytes(int(stream[i:i + 8][::-1], 2) for i in range(0, len(stream), 8))


@pytest.mark.parametrize("kind", ["small n", "mixed", "wide"])
def test_pack_matches_the_documented_layout(kind):
    """The compiled chunk loops write exactly the docstring's layout (a plain-Python reference)."""
    rng = np.random.default_rng({"small n": 0, "mixed": 1, "wide": 2}[kind])
    size = 3000
    n = {"small n": rng.integers(1, 6, size),
         "mixed": np.where(rng.random(size) < 0.5, 1, rng.integers(1, 1 << 12, size)),
         "wide": rng.integers(1, (1 << 20) + 2, size)}[kind].astype(np.int64)
    k = (rng.random(size) * n).astype(np.int64)
    data = dither.pack_uniform(k, n)
    assert data == _reference_pack(k, n)
    assert np.array_equal(dither.unpack_uniform(data, n), k)
