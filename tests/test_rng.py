"""The shared generator and the integer entropy/width tables are part of the file format."""

import mpmath
import numpy as np
import pytest

from diffcode.storage import entropy_units as eu
from diffcode.storage.rng import RNG_VERSION, fold_key, fold_range, random_u32, random_u64


def test_golden_values():
    assert RNG_VERSION == 1
    assert int(random_u64(0)) == 0xE220A8397B1DCDAF  # splitmix64's first output for seed 0
    assert int(random_u64(1, 2, 3)) == 9613205829653846581
    assert random_u32(12345, 7, np.arange(4), 3).tolist() == [3980007377, 1781027434, 822256010, 3125025053]
    assert int(random_u64(2**64 - 1, 2**64 - 1)) == 4922461756044938104


def test_broadcasting_matches_scalars():
    grid = random_u64(99, np.arange(3)[:, None], 5, np.arange(4, dtype=np.uint64))
    scalars = [[int(random_u64(99, i, 5, j)) for j in range(4)] for i in range(3)]
    assert grid.shape == (3, 4) and grid.tolist() == scalars
    assert random_u32(0, 0, 0).dtype == np.uint32


def test_fold_range_is_fold_key_of_a_range():
    for state in (0, 1, 0x9E3779B97F4A7C15, (1 << 64) - 1):
        assert np.array_equal(fold_range(state, 1000), fold_key(state, np.arange(1000, dtype=np.uint64)))
    assert fold_range(7, 0).shape == (0,)
    assert int(fold_range(12345, 3)[2]) == fold_key(12345, 2)  # the Python-int path


def test_rejects_negative_keys():
    with pytest.raises(ValueError):
        random_u64(0, np.array([-1]))
    with pytest.raises(ValueError):
        random_u64(-1)


def test_tables_match_pinned_hashes():
    assert eu.thresholds.sha256_of(eu.thresholds.exact()) == eu.THRESHOLDS_SHA256
    assert eu.arc_table.sha256_of(eu.arc_table.exact()) == eu.ARC_TABLE_SHA256
    assert eu.thresholds.sha256_of(eu.thresholds()) == eu.THRESHOLDS_SHA256 and not eu.arc_table().flags.writeable


def _units_mpmath(ch_fx: int, frac_bits: int) -> int:
    with mpmath.workprec(120):
        ch = mpmath.mpf(ch_fx) / 2**frac_bits
        y = mpmath.log(1 + mpmath.exp(ch)) / mpmath.log(2) * 256
        return int(min(max(mpmath.floor(y + mpmath.mpf(1) / 2), 0), eu.MAX_UNITS))


@pytest.mark.parametrize("frac_bits", [0, 12, 32])
def test_entropy_units_exact(frac_bits):
    rng = np.random.default_rng(frac_bits)
    ch = rng.integers(-8 << frac_bits, 15 << frac_bits, 300)
    # the fixed-point neighbours of a few switching points are the hard cases
    edges = (eu.thresholds()[[0, 1, 255, 2000, 5119]] >> (32 - frac_bits))
    ch = np.concatenate([ch, edges - 1, edges, edges + 1, [-(10**15), 10**15]])
    got = eu.entropy_units_from_fixed(ch, frac_bits)
    assert got.tolist() == [_units_mpmath(int(c), frac_bits) for c in ch]


def test_entropy_units_table_is_the_search_for_every_value():
    """The lookup table of frac_bits <= 14 gives the thresholds' search for every clipped value."""
    limit = eu.CH_LIMIT << 12
    ch = np.arange(-limit - 5, limit + 6)
    search = np.searchsorted(eu.thresholds(), np.clip(ch, -limit, limit) << 20, side="right")
    assert np.array_equal(eu.entropy_units_from_fixed(ch, 12), search)


def test_entropy_units_edges():
    assert eu.entropy_units_from_fixed(np.array([0]), 12).tolist() == [256]  # softplus(0) = 1 bit
    with pytest.raises(ValueError):
        eu.entropy_units_from_fixed(np.array([0]), 33)


def test_arc_length_exact():
    e = np.array([0, 1, 2, 100, 255, 256, 257, 1000, 4999, 5120, 8191, 8192, 20000])
    with mpmath.workprec(120):
        want = [max(1, int(mpmath.floor(mpmath.power(2, 32 - mpmath.mpf(int(x)) / 256)))) for x in e]
    got = eu.arc_length(e)
    assert got.dtype == np.uint64 and got.tolist() == want
    assert int(eu.arc_length(np.array([0]))[0]) == 2**32


def test_entropy_nats_clamped():
    import torch

    out = eu.entropy_nats(torch.tensor([-50.0, 0.0, 100.0]))
    assert torch.allclose(out, torch.tensor([0.0, float(np.log(2)), eu.MAX_ENTROPY_NATS]))
