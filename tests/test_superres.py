"""Size schedule and the float/fixed-point decoder passes."""

import numpy as np
import pytest
import torch

from diffcode.families.per_pixel.backends import FixedBackend
from diffcode.families.per_pixel.checkpoint import Checkpoint
from diffcode.families.per_pixel.model import DecoderWeights
from diffcode.families.per_pixel.encodings import CircularEncodings
from diffcode.errors import ImageError
from diffcode.fixedpoint import FRAC_BITS, cos_sin_fixed
from diffcode.families.per_pixel.superres import SHRINK_PER_BLOCK, DecoderConfig, run_decoder, size_schedule
from diffcode.families.per_pixel import model as per_pixel_model


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (37, 23), (23, 37), (128, 128), (512, 768), (768, 512), (1001, 17)])
def test_schedule_reaches_the_image_size(hw):
    config = DecoderConfig()
    s = size_schedule(*hw, config)
    assert max(s.seed_hw) <= config.seed_size
    size = s.seed_hw
    for stage in s.stages:
        assert stage.in_hw == size
        up = (2 * size[0] - stage.crop_hw[0], 2 * size[1] - stage.crop_hw[1])
        assert set(stage.crop_hw) <= {0, 1}
        size = (up[0] - SHRINK_PER_BLOCK, up[1] - SHRINK_PER_BLOCK)
        assert stage.out_hw == size
    assert (size[0] - SHRINK_PER_BLOCK, size[1] - SHRINK_PER_BLOCK) == hw


@pytest.mark.parametrize("hw", [(0, 5), (5, 0), (70000, 3)])
def test_unsupported_sizes_are_clear_errors(hw):
    with pytest.raises(ImageError, match="not supported"):
        size_schedule(*hw, DecoderConfig())


def _random_checkpoint(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = DecoderWeights(DecoderConfig(), g)
    with torch.no_grad():
        for p in w.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return per_pixel_model.checkpoint_of(w)


def _fixed_output(ckpt, schedule, values, rows_per_chunk=64):
    def hook(k, units):
        cos, sin = cos_sin_fixed(values[k])
        return np.concatenate([cos, sin])

    return run_decoder(schedule, FixedBackend(ckpt, rows_per_chunk=rows_per_chunk), hook, ckpt.config)


def _random_values(schedule, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2**32, size=(5, h, w), dtype=np.uint64).astype(np.uint32)
            for h, w in schedule.encoding_grids()]


def test_fixed_point_pass_matches_the_float_pass():
    ckpt = _random_checkpoint()
    schedule = size_schedule(37, 23, ckpt.config)
    values = _random_values(schedule)
    fixed = _fixed_output(ckpt, schedule, values) / 2**FRAC_BITS
    enc = CircularEncodings(schedule.encoding_grids(), 5, 1)
    for k, v in enumerate(values):
        enc.freeze(k, v[None])
    out, _ = per_pixel_model.float_pass(per_pixel_model.weights_of(ckpt), enc, schedule, 1)
    assert np.abs(fixed - out[0].detach().double().numpy()).max() < 5e-3


def test_fixed_point_pass_is_identical_across_threads_and_chunking():
    from diffcode import parallel

    ckpt = _random_checkpoint(1)
    schedule = size_schedule(45, 61, ckpt.config)
    values = _random_values(schedule, 1)
    try:
        outs = []
        for threads, rows in [(1, 64), (2, 64), (2, 3), (3, 1), (1, 1000)]:
            parallel.set_threads(threads)
            outs.append(_fixed_output(ckpt, schedule, values, rows))
    finally:
        parallel.set_threads(None)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    assert np.array_equal(outs[0], np.round(outs[0]))  # integers in 2^-12 units


def test_checkpoint_round_trip_keeps_the_hash(tmp_path):
    ckpt = _random_checkpoint(2)
    ckpt.save(tmp_path / "c.npz")
    again = Checkpoint.load(tmp_path / "c.npz")
    assert again.hash == ckpt.hash
    assert per_pixel_model.checkpoint_of(per_pixel_model.weights_of(again)).hash == ckpt.hash


def test_cos_table_is_exactly_rounded():
    from diffcode import fixedpoint

    exact = fixedpoint.cos_table.exact()
    assert np.array_equal(fixedpoint.cos_table(), exact)
    v = np.array([0, 1 << 30, 1 << 31, 3 << 30], dtype=np.uint32)
    cos, sin = cos_sin_fixed(v)
    assert cos.tolist() == [4096, 0, -4096, 0] and sin.tolist() == [0, 4096, 0, -4096]


def test_compiled_cos_sin_is_the_nearest_table_angle():
    """cos_sin_fixed and cos_sin_stack read the table at the nearest angle (numpy formula), every shape."""
    from diffcode import fixedpoint

    rng = np.random.default_rng(0)
    v = np.concatenate([rng.integers(0, 1 << 32, 20_000, dtype=np.uint64),
                        [0, (1 << 17) - 1, 1 << 17, (1 << 32) - (1 << 17), (1 << 32) - 1]]).astype(np.uint32)
    n, table = 1 << fixedpoint.COS_TABLE_BITS, fixedpoint.cos_table()
    j = ((v.astype(np.int64) + (1 << 17)) >> 18) % n
    cos, sin = cos_sin_fixed(v.reshape(5, -1))
    assert np.array_equal(cos.ravel(), table[j]) and np.array_equal(sin.ravel(), table[(j - n // 4) % n])
    assert cos_sin_fixed(np.uint32(1 << 30)) == (0, 4096)  # a 0-d angle
    with pytest.raises(ValueError):
        fixedpoint.cos_sin_stack(np.uint32(0))
    stack = fixedpoint.cos_sin_stack(v.reshape(5, 1, -1))
    assert stack.dtype == np.float64 and stack.shape == (10, 1, len(v) // 5)
    assert np.array_equal(stack, np.concatenate([cos, sin]).reshape(10, 1, -1))


def test_freeze_plan_freezes_every_stage_once_in_order():
    from diffcode.families.per_pixel.fit import FitConfig, freeze_plan

    for steps in (1, 2, 6, 100):
        plan = freeze_plan(7, FitConfig(steps=steps, freeze_fraction=0.2))
        order = [k for step in sorted(plan) for k in plan[step]]
        assert order == list(range(7)) and all(0 <= s < steps for s in plan)
    assert freeze_plan(7, FitConfig(freeze_stages=False)) == {}


def test_conftest_checkpoint_does_not_depend_on_the_global_seed(checkpoint):
    """The shared test decoder is the same whatever ran before (its hash pins it)."""
    import tests.conftest as conftest

    torch.manual_seed(12345)
    torch.rand(7)
    assert conftest.checkpoint.__wrapped__().hash == checkpoint.hash


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("bfloat16", 0.05)])
def test_fit_convolution_matches_torch_in_both_layouts_and_dtypes(dtype, tol):
    """diffcode.layers.conv2d (channels-last, optionally bfloat16) computes the plain convolution."""
    import torch.nn.functional as F

    from diffcode.layers import FIT_DTYPES, conv2d

    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(2, 6, 9, 11, generator=g), torch.randn(4, 6, 3, 3, generator=g), torch.randn(4, generator=g)
    expected = F.conv2d(x, w, b, padding=1)
    got = conv2d(x, w, b, padding=1, dtype=dtype)
    assert got.dtype == FIT_DTYPES[dtype] and got.shape == expected.shape
    got = got.float()
    assert float((got - expected).abs().max() / expected.abs().max()) < tol


@pytest.mark.parametrize("flags, expected", [("fpu avx512f avx512_bf16 sse", torch.bfloat16),
                                              ("fpu avx512f amx_bf16 sse", torch.bfloat16),
                                              ("fpu avx2 avx512f sse", torch.float32)])
def test_auto_fit_dtype_follows_the_cpu_flags(monkeypatch, flags, expected):
    from pathlib import Path

    from diffcode import layers

    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: f"flags\t\t: {flags}\n"
                        if str(self) == "/proc/cpuinfo" else real_read(self, *a, **k))
    layers.native_bfloat16.cache_clear()
    try:
        assert layers.fit_dtype("auto", "cpu") == expected
        assert layers.fit_dtype("auto", "mps") == torch.float32  # no known native bfloat16 there
        assert (layers.fit_dtype("float32"), layers.fit_dtype("bfloat16")) == (torch.float32, torch.bfloat16)
    finally:
        layers.native_bfloat16.cache_clear()


def test_unknown_fit_dtype_names_the_choices():
    from diffcode.layers import fit_dtype

    with pytest.raises(ValueError, match="unknown convolution dtype 'bf16'; expected one of float32, bfloat16, auto"):
        fit_dtype("bf16")


def test_fits_record_the_convolution_dtype_they_used(checkpoint):
    """"auto" means different arithmetic on different machines; the fit says which one it was."""
    from diffcode.families.per_pixel.config import FitConfig
    from diffcode.families.per_pixel.fit import fit_image
    from diffcode.layers import fit_dtype_name

    image = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    fit = fit_image(image, checkpoint, FitConfig().with_steps(2))
    assert fit.meta["conv_dtype"] == fit_dtype_name("auto") and fit.meta["config"]["conv_dtype"] == "auto"


def test_convolution_outputs_are_read_without_a_copy():
    """conv3x3_valid returns an `empty_image`, which the next convolution reads in place."""
    from diffcode.fixedpoint import conv3x3_valid, empty_image, flat_buffer

    x = empty_image(2, 6, 7)
    x[...] = np.arange(84).reshape(2, 6, 7)
    assert flat_buffer(x) is not None and flat_buffer(np.zeros((2, 6, 7))) is None
    y = conv3x3_valid(x, np.ones((3, 18)), np.zeros(3))
    assert y.shape == (3, 4, 5) and flat_buffer(y) is not None


@pytest.mark.parametrize("channels_last", [False, True])
def test_float_upsample2_is_the_nearest_neighbour_copy(channels_last):
    """layers.upsample2 (F.interpolate for batches) gives the repeat-interleaved values, every crop and
    layout, and the gradient of the copies up to float summation order."""
    from diffcode.layers import upsample2

    for shape in [(1, 3, 5, 7), (2, 4, 6, 6), (1, 1, 1, 1)]:
        x = torch.randn(shape, dtype=torch.float64)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for crop in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            a = x.clone().requires_grad_(True)
            b = x.clone().requires_grad_(True)
            got = upsample2(a, crop)
            ref = b.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
            ref = ref[..., :ref.shape[-2] - crop[0], :ref.shape[-1] - crop[1]]
            assert torch.equal(got, ref)
            g = torch.randn(got.shape, dtype=torch.float64)
            (got * g).sum().backward()
            (ref * g).sum().backward()
            assert torch.allclose(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    assert torch.equal(upsample2(torch.arange(4.0).reshape(1, 2, 2), (1, 1)),
                       torch.tensor([[[0.0, 0, 1], [0, 0, 1], [2, 2, 3]]]))  # (C, H, W) input too
    assert torch.equal(upsample2(torch.arange(4).reshape(1, 1, 2, 2), (0, 0)),  # integers keep repeat_interleave
                       torch.tensor([[[[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]]]))
    assert upsample2(torch.zeros(1, 2, 0, 3), (0, 1)).shape == (1, 2, 0, 5)
