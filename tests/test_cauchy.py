"""The discretized Cauchy: integer table properties, exactness vs mpmath, differentiable nats."""

import math

import mpmath
import numpy as np
import pytest
import torch

from diffcode import cauchy
from diffcode.cauchy import (
    TABLE,
    TABLE_MASS,
    TABLE_OFFSET,
    TABLE_SHA256,
    CauchyModel,
    bits_float,
    bits_quantized,
    nats,
    params_from_fixed,
    params_from_float,
)
from diffcode.storage.rans import TOTAL


def random_params(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(-4, 1025, n), rng.integers(0, 96, n)], axis=1)


def full_cdf(params):
    """int64 (N, 257): the cdf of every symbol 0..256 of each row."""
    n = len(params)
    symbols = np.tile(np.arange(257), n)
    return CauchyModel().cdf(np.repeat(params, 257, axis=0), symbols).reshape(n, 257)


def mp_cdf(t):
    """Standard Cauchy cdf at 50 digits."""
    return mpmath.mpf(1) / 2 + mpmath.atan(t) / mpmath.pi


def mp_nats(x, loc, sigma):
    """-ln P(x) of the folded discretized Cauchy at 50 digits."""
    with mpmath.workdps(50):
        loc, sigma = mpmath.mpf(loc), mpmath.mpf(sigma)
        upper = 1 if x == 255 else mp_cdf((x + mpmath.mpf(1) / 2 - loc) / sigma)
        lower = 0 if x == 0 else mp_cdf((x - mpmath.mpf(1) / 2 - loc) / sigma)
        return float(-mpmath.log(upper - lower))


def test_table_hash_is_pinned():
    assert TABLE_SHA256 == "9fabbdea1cfc5b916f9d78766c0458b40b4383635ec6cee458d7e3fe04602705"
    assert cauchy.table_sha256(TABLE) == TABLE_SHA256
    assert TABLE.shape == (96, 2 * TABLE_OFFSET + 1) and TABLE.nbytes < 2**20


def test_table_regenerated_with_mpmath_matches_pin():
    assert cauchy.table_sha256(cauchy.build_table(use_mpmath=True)) == TABLE_SHA256


def test_table_sample_matches_mpmath():
    rng = np.random.default_rng(1)
    with mpmath.workdps(50):
        for k, d in zip(rng.integers(0, 96, 300), rng.integers(-TABLE_OFFSET, TABLE_OFFSET + 1, 300)):
            sigma = mpmath.mpf(2) ** (mpmath.mpf(-4.5) + mpmath.mpf(int(k)) / 8)
            exact = int(mpmath.floor(TABLE_MASS * mp_cdf(mpmath.mpf(int(d)) / 4 / sigma) + mpmath.mpf(1) / 2))
            assert TABLE[k, d + TABLE_OFFSET] == exact


def test_frequencies_positive_and_sum_to_total():
    params = np.concatenate([random_params(3000), [[-4, 0], [1024, 0], [-4, 95], [1024, 95], [510, 0]]])
    cdf = full_cdf(params)
    assert np.all(cdf[:, 0] == 0) and np.all(cdf[:, 256] == TOTAL)
    assert np.all(np.diff(cdf, axis=1) >= 1)
    assert np.all(CauchyModel().n_symbols(params) == 256)


def test_tails_are_folded():
    """freq(0) holds all mass below 0.5 and freq(255) all mass above 254.5."""
    cdf = full_cdf(np.array([[-4, 0], [1024, 0], [0, 40], [1020, 40]]))
    assert cdf[0, 1] == 1 + TABLE[0, TABLE_OFFSET + 4 * 1 - 2 - (-4)]  # offset of x = 0.5 from loc = -1
    assert cdf[0, 1] > 0.99 * TOTAL  # loc = -1: nearly everything folds into 0
    assert TOTAL - cdf[1, 255] > 0.99 * TOTAL  # loc = 256: nearly everything folds into 255
    with mpmath.workdps(50):
        sigma = mpmath.mpf(2) ** (mpmath.mpf(-4.5) + 5)
        lower_tail = mp_cdf(mpmath.mpf(0.5) / sigma)  # loc = 0: P(X < 0.5)
        assert cdf[2, 1] - 1 == int(mpmath.nint(TABLE_MASS * lower_tail))
        upper_tail = 1 - mp_cdf((mpmath.mpf(254.5) - 255) / sigma)  # loc = 255: P(X > 254.5)
        assert TOTAL - cdf[3, 255] - 1 == int(mpmath.nint(TABLE_MASS * upper_tail))


def test_out_of_range_params_rejected():
    with pytest.raises(ValueError, match="out of range"):
        CauchyModel().n_symbols(np.array([[1025, 0]]))
    with pytest.raises(ValueError, match="out of range"):
        CauchyModel().n_symbols(np.array([[0, 96]]))


CASES = [  # (x, loc, log2 sigma): centre, far tails, folded edges, both clamps
    (0, -1.0, -4.5), (0, 256.0, -4.5), (255, -1.0, -4.5), (255, 256.0, -4.5), (128, 127.5, -4.5),
    (128, 128.0, -4.5), (3, 250.0, -4.5), (250, 3.0, 0.0), (0, 0.0, 7.375), (255, 254.9, 7.375),
    (100, 100.3, 2.0), (17, 40.25, -1.0), (254, 255.0, -3.0), (1, 0.5, -4.5), (200, 180.0, 3.3),
]


@pytest.mark.parametrize("x, loc, log2_sigma", CASES)
def test_nats_match_mpmath(x, loc, log2_sigma):
    o_loc = torch.tensor([(loc - 127.5) / 64], dtype=torch.float64)
    value = nats(torch.tensor([x]), o_loc, torch.tensor([log2_sigma], dtype=torch.float64))
    expected = mp_nats(x, 127.5 + 64 * o_loc.item(), 2.0**log2_sigma)
    assert value.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_nats_random_against_mpmath():
    rng = np.random.default_rng(2)
    x, loc, log2_sigma = rng.integers(0, 256, 200), rng.uniform(-1, 256, 200), rng.uniform(-4.5, 7.375, 200)
    o_loc, o_scale = torch.from_numpy((loc - 127.5) / 64), torch.from_numpy(log2_sigma)
    value = nats(torch.from_numpy(x), o_loc, o_scale).numpy()
    expected = [mp_nats(int(a), 127.5 + 64 * float(b), 2.0 ** float(c)) for a, b, c in zip(x, o_loc, o_scale)]
    np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12)


def test_nats_clamps_params_like_the_integer_path():
    x = torch.tensor([0.0, 255.0])
    far = nats(x, torch.tensor([-10.0, 10.0]), torch.tensor([-20.0, 20.0]))
    edge = nats(x, torch.tensor([-128.5 / 64, 128.5 / 64]), torch.tensor([-4.5, 7.375]))
    torch.testing.assert_close(far, edge)


def test_nats_gradient_is_finite():
    x = torch.tensor([0.0, 255.0, 0.0, 255.0, 128.0, 7.0, 128.0, 0.0])
    o_loc = torch.tensor([-2.0, 2.0, 2.0, -2.0, 0.0078125, 1.9, 0.0, -0.0078125 * 63], requires_grad=True)
    o_scale = torch.tensor([-4.5, -4.5, -4.0, -4.0, -4.5, 7.0, 0.0, 1.0], requires_grad=True)
    nats(x, o_loc, o_scale).sum().backward()
    assert torch.all(torch.isfinite(o_loc.grad)) and torch.all(torch.isfinite(o_scale.grad))
    assert o_scale.grad[6] > 0  # x within a pixel of loc: narrowing sigma = 1 saves nats


def test_nats_dtype_and_shape():
    value = nats(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(2, 3), torch.zeros(2, 3))
    assert value.shape == (2, 3) and value.dtype == torch.float32


def test_params_round_half_up():
    frac_bits = 16
    one = 1 << frac_bits
    # loc index = 510 + round(256 * o_loc): o_loc = +-0.5/256 lies exactly between two levels.
    o_loc = np.array([one // 512, -one // 512, one // 512 - 1, 0, 10 * one, -10 * one])
    o_scale = np.array([one // 16, -one // 16, one // 16 - 1, 0, 10 * one, -10 * one])
    expected = [[511, 37], [510, 36], [510, 36], [510, 36], [1024, 95], [-4, 0]]
    np.testing.assert_array_equal(params_from_fixed(o_loc, o_scale, frac_bits), expected)
    np.testing.assert_array_equal(params_from_float(o_loc / one, o_scale / one), expected)


def test_fixed_and_float_quantization_agree():
    rng = np.random.default_rng(3)
    frac_bits = 20
    o_loc, o_scale = rng.integers(-3 << 20, 3 << 20, 5000), rng.integers(-14 << 20, 14 << 20, 5000)
    fixed = params_from_fixed(o_loc, o_scale, frac_bits)
    np.testing.assert_array_equal(fixed, params_from_float(o_loc / 2**20, o_scale / 2**20))
    assert fixed[:, 0].min() == -4 and fixed[:, 0].max() == 1024 and fixed[:, 1].max() == 95
    with pytest.raises(ValueError):
        params_from_fixed(o_loc, o_scale, 60)


def test_bits_float_and_quantized_agree():
    params = random_params(20_000, seed=4)
    rng = np.random.default_rng(5)
    sigma = 2.0 ** (-4.5 + params[:, 1] / 8)
    noise = sigma * rng.standard_cauchy(len(params))
    x = np.clip(np.round(params[:, 0] / 4 + noise), 0, 255).astype(np.int64)
    ideal, table = bits_float(x, params), bits_quantized(x, params)
    assert table == pytest.approx(ideal, rel=1e-3)
    o_loc = torch.from_numpy((params[:, 0] / 4 - 127.5) / 64)
    o_scale = torch.from_numpy(-4.5 + params[:, 1] / 8)
    nats_total = nats(torch.from_numpy(x), o_loc, o_scale).sum().item()
    assert nats_total / math.log(2) == pytest.approx(ideal, rel=1e-12)
