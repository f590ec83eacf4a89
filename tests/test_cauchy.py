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
    nats_reference,
    params_from_fixed,
    params_from_float,
)
from diffcode.families.per_pixel import model as per_pixel_model
from diffcode.families.weights import model as weights_model
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
    assert cauchy.table.sha256_of(TABLE) == TABLE_SHA256
    assert TABLE.shape == (96, 2 * TABLE_OFFSET + 1) and TABLE.nbytes < 2**20 and not TABLE.flags.writeable


@pytest.mark.slow  # the table's exact mpmath build (the quick loop checks the numpy build's pin at import)
def test_table_regenerated_with_mpmath_matches_pin():
    assert cauchy.table.sha256_of(cauchy.table.exact()) == TABLE_SHA256


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


# ----------------------------------------------------------------------------- fused nats


def coverage_inputs(n=20_000, seed=6):
    """float64 (x, o_loc, o_log2scale) (n,): interior, both folded edges, far tails, clamped params."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, n).astype(np.float64)
    x[: n // 8], x[n // 8 : n // 4] = 0, 255  # folded edges
    loc = rng.uniform(-10, 266, n)  # beyond [-1, 256]: clamped
    near = rng.random(n) < 0.3  # within a few pixels of x, where a and b change sign
    loc[near] = x[near] + rng.uniform(-3, 3, near.sum())
    far = rng.random(n) < 0.1  # x at one end, loc at the other: far tails
    loc[far] = np.where(x[far] > 127, -1.0, 256.0)
    log2_sigma = rng.uniform(-6, 9, n)  # beyond [-4.5, 7.375]: clamped
    log2_sigma[far] = -4.5
    edges = rng.random(n) < 0.02  # exactly on the clamp bounds, where torch.clamp passes the gradient
    loc[edges], log2_sigma[edges] = rng.choice([-1.0, 256.0], edges.sum()), rng.choice([-4.5, 7.375], edges.sum())
    return torch.from_numpy(x), torch.from_numpy((loc - 127.5) / 64), torch.from_numpy(log2_sigma)


def value_and_gradients(function, x, o_loc, o_log2scale):
    """nats and its gradients w.r.t. o_loc, o_log2scale of the elementwise sum."""
    o_loc, o_log2scale = o_loc.detach().requires_grad_(), o_log2scale.detach().requires_grad_()
    value = function(x, o_loc, o_log2scale)
    value.sum().backward()
    return value.detach(), o_loc.grad, o_log2scale.grad


def gradient_scales(x, o_loc, o_log2scale, value):
    """Per element, the sum of the magnitudes of the terms of each gradient (cancellation-free)."""
    loc, sigma = cauchy.loc_scale(o_loc, o_log2scale)
    a, b = (x - 0.5 - loc) / sigma, (x + 0.5 - loc) / sigma
    angle = math.pi * torch.exp(-value)
    loc_scale_ = 64 / (sigma * angle) * (1 / (1 + a**2) + 1 / (1 + b**2))
    return loc_scale_, math.log(2) / angle * (a.abs() / (1 + a**2) + b.abs() / (1 + b**2))


def test_fused_nats_and_gradients_match_reference():
    inputs = coverage_inputs()
    value, grad_loc, grad_scale = value_and_gradients(nats, *inputs)
    ref_value, ref_loc, ref_scale = value_and_gradients(nats_reference, *inputs)
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=0)
    loc_scale_, scale_scale = gradient_scales(*inputs, ref_value)
    # Near x = loc the terms cancel (both implementations lose the same ~1e-16 of the terms).
    assert torch.all((grad_loc - ref_loc).abs() <= 1e-12 * loc_scale_)
    assert torch.all((grad_scale - ref_scale).abs() <= 1e-12 * scale_scale)
    raw_loc = 127.5 + 64 * inputs[1]
    loc_clamped = (raw_loc < cauchy.LOC_MIN) | (raw_loc > cauchy.LOC_MAX)
    scale_clamped = (inputs[2] < cauchy.SCALE_LOG2_MIN) | (inputs[2] > cauchy.SCALE_LOG2_MAX)
    assert loc_clamped.any() and scale_clamped.any()
    assert torch.all(grad_loc[loc_clamped] == 0) and torch.all(ref_loc[loc_clamped] == 0)
    assert torch.all(grad_scale[scale_clamped] == 0) and torch.all(ref_scale[scale_clamped] == 0)
    assert torch.all(grad_loc[~loc_clamped] != 0) and torch.all(grad_scale[~scale_clamped] != 0)


def test_inward_gradients_fused_match_reference_and_only_pull_back():
    """With inward=True the values are unchanged; a clamped param's gradient is the clamped cost's
    gradient where it points back into the range and 0 where it points further out (both
    implementations); unclamped params get the same gradient as without it."""
    inputs = coverage_inputs()
    plain = value_and_gradients(nats, *inputs)
    fused = value_and_gradients(lambda *a: nats(*a, inward=True), *inputs)
    reference = value_and_gradients(lambda *a: nats_reference(*a, inward=True), *inputs)
    torch.testing.assert_close(fused[0], plain[0], rtol=0, atol=0)
    loc_scale_, scale_scale = gradient_scales(*inputs, reference[0])
    assert torch.all((fused[1] - reference[1]).abs() <= 1e-12 * loc_scale_)
    assert torch.all((fused[2] - reference[2]).abs() <= 1e-12 * scale_scale)
    raw_loc = 127.5 + 64 * inputs[1]
    for raw, low, high, got, without in ((raw_loc, cauchy.LOC_MIN, cauchy.LOC_MAX, fused[1], plain[1]),
                                         (inputs[2], cauchy.SCALE_LOG2_MIN, cauchy.SCALE_LOG2_MAX, fused[2], plain[2])):
        above, below = raw > high, raw < low
        inside = ~(above | below)
        assert torch.equal(got[inside], without[inside])
        assert torch.all(got[above] >= 0) and torch.all(got[below] <= 0)  # descent never pushes further out
        assert (got[above] > 0).any() and (got[below] < 0).any()  # and does pull back


def test_inward_rule_applies_to_the_losss_gradient_not_the_elementwise_one():
    """The pull-back decision is taken on the gradient of the loss: with signed weights on the nats,
    and with params broadcast over several pixels (their gradient a sum), the fused pass gives the
    reference's gradients."""
    x, o_loc, o_scale = coverage_inputs()
    signs = torch.from_numpy(np.random.default_rng(3).choice([-1.0, 0.5, 2.0], len(x)))
    grads = []
    for function in (nats, nats_reference):
        loc, scale = o_loc.detach().requires_grad_(), o_scale.detach().requires_grad_()
        (signs * function(x, loc, scale, inward=True)).sum().backward()
        grads.append((loc.grad, scale.grad))
    (fused_loc, fused_scale), (ref_loc, ref_scale) = grads
    scales = gradient_scales(x, o_loc, o_scale, nats_reference(x, o_loc, o_scale).detach())
    assert torch.all((fused_loc - ref_loc).abs() <= 2e-12 * scales[0])
    assert torch.all((fused_scale - ref_scale).abs() <= 2e-12 * scales[1])
    pixels = torch.tensor([250.0, 252.0, 10.0, 255.0])  # one loc above the range for all four
    for function in (nats, nats_reference):
        loc, scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True), torch.full((4,), 2.0, dtype=torch.float64)
        function(pixels, loc, scale, inward=True).sum().backward()
        grads.append(loc.grad)
    torch.testing.assert_close(grads[2], grads[3], rtol=1e-12, atol=0)
    assert grads[2] > 0  # the sum pulls loc down, although pixel 255 alone would push it up


def test_inward_gradient_pulls_outputs_out_of_range_back():
    """Outputs far beyond every clamp (a fit that blew up) get no gradient from torch.clamp's rule
    and one that moves them back into the range with inward=True."""
    x = torch.tensor([250.0, 255.0, 5.0, 0.0])
    o_loc = torch.tensor([300.0, 300.0, -300.0, -300.0], requires_grad=True)  # loc far above / below
    o_scale = torch.full((4,), 500.0, requires_grad=True)  # sigma far above its maximum
    nats(x, o_loc, o_scale).sum().backward()
    assert torch.all(o_loc.grad == 0) and torch.all(o_scale.grad == 0)
    for function in (nats, nats_reference):
        o_loc.grad, o_scale.grad = None, None
        function(x, o_loc, o_scale, inward=True).sum().backward()
        assert o_loc.grad[0] > 0 and o_loc.grad[2] < 0  # loc back down to 250, up to 5
        assert o_loc.grad[1] == 0 and o_loc.grad[3] == 0  # 255 and 0 would gain from loc further out: no gradient
        assert torch.all(o_scale.grad > 0)  # pixels within a few of the clamped loc: narrower costs fewer nats


def mp_nats_of_raw(x, o_loc, o_log2scale):
    """mp_nats of raw outputs (inside the clamps), at the working precision, as an mpf."""
    loc, sigma = 127.5 + 64 * o_loc, mpmath.mpf(2) ** o_log2scale
    upper = 1 if x == 255 else mp_cdf((x + mpmath.mpf(1) / 2 - loc) / sigma)
    lower = 0 if x == 0 else mp_cdf((x - mpmath.mpf(1) / 2 - loc) / sigma)
    return -mpmath.log(upper - lower)


def test_fused_gradients_match_mpmath():
    rng = np.random.default_rng(7)
    x = np.concatenate([[0, 0, 255, 255, 128, 3], rng.integers(0, 256, 24)])
    loc = np.concatenate([[255.0, 0.7, 0.0, 254.2, 128.1, 250.0], rng.uniform(0, 255, 24)])
    log2_sigma = np.concatenate([[-4.5 + 1e-9, 2.0, -4.0, 7.0, -3.0, -4.4], rng.uniform(-4.4, 7.3, 24)])
    inputs = (torch.from_numpy(x.astype(np.float64)), torch.from_numpy((loc - 127.5) / 64), torch.from_numpy(log2_sigma))
    _, grad_loc, grad_scale = value_and_gradients(nats, *inputs)
    with mpmath.workdps(50):
        for i in range(len(x)):
            o_loc, o_scale = mpmath.mpf(float(inputs[1][i])), mpmath.mpf(float(inputs[2][i]))
            d_loc = mpmath.diff(lambda v: mp_nats_of_raw(int(x[i]), v, o_scale), o_loc)
            d_scale = mpmath.diff(lambda v: mp_nats_of_raw(int(x[i]), o_loc, v), o_scale)
            assert grad_loc[i].item() == pytest.approx(float(d_loc), rel=1e-9, abs=1e-12)
            assert grad_scale[i].item() == pytest.approx(float(d_scale), rel=1e-9, abs=1e-12)


def test_fused_gradcheck():
    x = torch.tensor([0.0, 255.0, 128.0, 7.0, 0.0, 255.0, 200.0], dtype=torch.float64)
    o_loc = torch.tensor([0.3, -0.2, 0.01, 1.9, -1.98, 1.98, -1.5], dtype=torch.float64, requires_grad=True)
    o_scale = torch.tensor([0.5, -1.0, -4.0, 7.0, -4.4, -4.4, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda l, s: nats(x, l, s), (o_loc, o_scale))


def test_fused_sums_like_the_callers():
    g = torch.Generator().manual_seed(8)
    images = torch.randint(0, 256, (2, 3, 9, 13), generator=g).float()
    out = (0.7 * torch.randn(2, 6, 9, 13, generator=g)).requires_grad_()
    reference_out = out.detach().clone().requires_grad_()
    per_image = per_pixel_model.error_table_nats(images, out)
    expected = nats_reference(images, reference_out[:, :3], reference_out[:, 3:]).sum(dim=(1, 2, 3))
    assert per_image.dtype == torch.float32 and per_image.shape == (2,)
    torch.testing.assert_close(per_image, expected, rtol=1e-6, atol=0)
    (per_image.sum() + weights_model.error_table_nats(images[:1], out[:1])).backward()
    (expected.sum() + nats_reference(images[:1], reference_out[:1, :3], reference_out[:1, 3:]).sum()).backward()
    assert out.grad.dtype == torch.float32
    torch.testing.assert_close(out.grad, reference_out.grad, rtol=1e-6, atol=1e-6)


def test_fused_broadcasts_x_and_params():
    g = torch.Generator().manual_seed(9)
    x = torch.randint(0, 256, (3, 1, 5), generator=g).to(torch.uint8)
    o_loc = torch.randn(3, 4, 1, generator=g, dtype=torch.float64)
    o_scale = torch.randn(4, 5, generator=g, dtype=torch.float64)
    fused, reference = (value_and_gradients(f, x, o_loc, o_scale) for f in (nats, nats_reference))
    assert fused[0].shape == (3, 4, 5) and fused[1].shape == o_loc.shape and fused[2].shape == o_scale.shape
    for got, expected in zip(fused, reference):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


def test_nats_falls_back_to_reference_off_cpu_and_for_other_dtypes():
    meta = torch.zeros(2, 3, device="meta")
    assert nats(meta, meta, meta).device.type == "meta"  # the torch ops run where numba cannot
    half = torch.tensor([0.1, -0.2], dtype=torch.float16)
    torch.testing.assert_close(nats(torch.tensor([3, 130]), half, half), nats_reference(torch.tensor([3, 130]), half, half))


def test_max_frequency_is_the_largest_of_every_row():
    """cauchy.max_frequency (what bounds a subpixel's cost: rans.min_symbol_bits) is the largest frequency
    any symbol has: inner symbols' frequencies are 1 + TABLE[k, c + 4] - TABLE[k, c] (c over every
    column, a superset of the reachable ones), symbol 0's is 1 + TABLE[k, 1024 - loc_index] and
    symbol 255's its mirror image; and it is 1/2 + atan(1.5 / SCALE_MIN) / pi of the table's mass."""
    t = cauchy.table().astype(np.int64)
    inner = 1 + (t[:, 4:] - t[:, :-4]).max()
    loc = np.arange(cauchy.LOC_INDEX_MIN, cauchy.LOC_INDEX_MAX + 1)
    first = 1 + t[:, 4 - 2 - loc + cauchy.TABLE_OFFSET].max()
    last = (TOTAL - (255 + t[:, 4 * 255 - 2 - loc + cauchy.TABLE_OFFSET])).max()
    assert inner < first == last == cauchy.max_frequency() == 16_619_667
    assert cauchy.max_frequency() == round(1 + cauchy.TABLE_MASS * (0.5 + math.atan(1.5 / cauchy.SCALE_MIN) / math.pi))
    model, params = CauchyModel(), np.array([[cauchy.LOC_INDEX_MIN, 0]])
    assert model.cdf(params, np.array([1])) - model.cdf(params, np.array([0])) == cauchy.max_frequency()
