"""The discretized Cauchy error model: differentiable nats for fitting, integer tables for coding.

The decoder's head outputs two raw values per pixel and color, ``o_loc`` and
``o_log2scale``. They define a Cauchy distribution over the pixel value
x in 0..255 (the report's per-pixel per-color error table)::

    loc   = clamp(127.5 + 64 * o_loc, LOC_MIN, LOC_MAX)                 pixel units
    sigma = 2 ** clamp(o_log2scale, SCALE_LOG2_MIN, SCALE_LOG2_MAX)      pixel units
    P(x)  = F((x + 0.5 - loc) / sigma) - F((x - 0.5 - loc) / sigma),    F(t) = 1/2 + atan(t)/pi

with the tails folded: P(0) holds all mass below 0.5 and P(255) all mass above 254.5.

Data flow::

    raw head outputs --nats()-----------------------------> entropy in nats (torch, fitting)
          |
          +--params_from_fixed() --> (loc_index, scale_index) int64 (N, 2)
                                          |
                                  CauchyModel.cdf (integer TABLE) --> rans.encode / decode

For coding, loc is quantized to quarter pixels (loc_index = round(4 * loc) in
[-4, 1024]) and sigma to 8 levels per octave (scale_index = round(8 * (log2 sigma + 4.5))
in [0, 95]). The integer cdf is ``cdf(x) = x + TABLE[scale_index, 4x - 2 - loc_index + 1022]``
for x in 1..255, cdf(0) = 0 and cdf(256) = TOTAL, so every symbol has frequency >= 1 and
each row sums to exactly TOTAL. TABLE is built once, on first use, and checked against the
pinned SHA-256 of the exactly rounded (mpmath) table, so every platform codes the same bits.
(No float64 value of the numpy build lies within 6.7e-6 of a rounding tie, far beyond libm
error, so the mpmath fallback should only ever run on a broken libm.)
"""

from __future__ import annotations

import functools
import math

from typing import TYPE_CHECKING

import numba
import numpy as np

from diffcode.pinned import pinned_table
from diffcode.storage.rans import PRECISION_BITS, TOTAL, CdfTable

if TYPE_CHECKING:  # torch is imported by the fitting functions only (it costs 1.3-2 s to import)
    import torch

N_VALUES = 256  # pixel values 0..255

LOC_MIN, LOC_MAX = -1.0, 256.0  # pixel units
LOC_STEPS_PER_LEVEL = 4  # loc is quantized to quarter pixels
LOC_INDEX_MIN, LOC_INDEX_MAX = -4, 1024  # round(4 * LOC_MIN), round(4 * LOC_MAX)

SCALE_LOG2_MIN = -4.5
SCALE_LEVELS_PER_OCTAVE = 8
N_SCALES = 96
SCALE_LOG2_MAX = SCALE_LOG2_MIN + (N_SCALES - 1) / SCALE_LEVELS_PER_OCTAVE  # 7.375
SCALE_MIN, SCALE_MAX = 2.0**SCALE_LOG2_MIN, 2.0**SCALE_LOG2_MAX  # pixel units

TABLE_MASS = TOTAL - N_VALUES  # the table spreads this mass; each symbol also gets 1
TABLE_OFFSET = 1022  # column of offset 0; offsets 4x - 2 - loc_index span [-1022, 1022]
TABLE_WIDTH = 2 * TABLE_OFFSET + 1
TABLE_SHA256 = "9fabbdea1cfc5b916f9d78766c0458b40b4383635ec6cee458d7e3fe04602705"


# ----------------------------------------------------------------------------- fitting (torch)


def _tail_angle(t: torch.Tensor) -> torch.Tensor:
    """pi * P(T > t) for a standard Cauchy T, without cancellation for large t (float64)."""
    import torch

    positive = t > 0
    t_safe = torch.where(positive, t, torch.ones_like(t))
    return torch.where(positive, torch.atan(1.0 / t_safe), math.pi / 2 - torch.atan(t))


def _atan_diff(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """atan(b) - atan(a) for a < b, accurate when both lie far in the same tail (float64)."""
    import torch

    same_sign = (a >= 0) | (b <= 0)
    denominator = 1.0 + torch.where(same_sign, a * b, torch.zeros_like(a))
    return torch.where(same_sign, torch.atan((b - a) / denominator), torch.atan(b) - torch.atan(a))


def _nats_loc_scale(x: torch.Tensor, loc: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """-ln P(x) of the folded discretized Cauchy; all float64, pixel units, same shapes."""
    import torch

    a = (x - 0.5 - loc) / sigma
    b = (x + 0.5 - loc) / sigma
    interior_or_top = torch.where(x >= N_VALUES - 1, _tail_angle(a), _atan_diff(a, b))
    angle = torch.where(x <= 0, _tail_angle(-b), interior_or_top)  # pi * P(x), tails folded
    return math.log(math.pi) - torch.log(angle)


def loc_scale(o_loc: torch.Tensor, o_log2scale: torch.Tensor,
              inward: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamped (loc, sigma) in pixel units, float64, from the head's raw outputs.

    inward: the clamps' gradient is :func:`inward_clamp`'s instead of torch.clamp's (the values
    are the same)."""
    import torch

    clamp = inward_clamp if inward else torch.clamp
    loc = clamp(127.5 + 64.0 * o_loc.double(), LOC_MIN, LOC_MAX)
    sigma = torch.exp2(clamp(o_log2scale.double(), SCALE_LOG2_MIN, SCALE_LOG2_MAX))
    return loc, sigma


def inward_clamp(v: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """torch.clamp(v, low, high) whose gradient also flows where v is clamped, but only where a
    descent step would move v back toward [low, high] (above high: a positive gradient; below low:
    a negative one); elsewhere outside it is 0, as torch.clamp's.

    torch.clamp's gradient is 0 wherever v is clamped. A fit whose outputs have all left the range
    (the weights variant's shared stage, applied once per scale, can blow them up within its first
    few Adam steps) then has no gradient at all and stays where it is; this gradient pulls the
    outputs back. The rule is applied to the loss's gradient (after every factor and sum)."""
    return _inward_clamp().apply(v, low, high)


@functools.cache
def _inward_clamp():
    import torch

    class _InwardClamp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v, low, high):
            ctx.save_for_backward(v)
            ctx.low, ctx.high = low, high
            return v.clamp(low, high)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            keep = ((v >= ctx.low) & (v <= ctx.high)) | ((v > ctx.high) & (grad > 0)) | ((v < ctx.low) & (grad < 0))
            return torch.where(keep, grad, torch.zeros_like(grad)), None, None

    return _InwardClamp


def nats_reference(x: torch.Tensor, o_loc: torch.Tensor, o_log2scale: torch.Tensor,
                   inward: bool = False) -> torch.Tensor:
    """:func:`nats` in plain torch ops, differentiated by autograd (any device; slow on CPU).

    The definition that :func:`nats` must match; it runs on CUDA tensors and in the tests.
    """
    loc, sigma = loc_scale(o_loc, o_log2scale, inward)
    return _nats_loc_scale(x.double(), loc, sigma).to(o_loc.dtype)


def nats(x: torch.Tensor, o_loc: torch.Tensor, o_log2scale: torch.Tensor, inward: bool = False) -> torch.Tensor:
    """Elementwise entropy -ln P(x) in nats, differentiable w.r.t. the raw outputs.

    Computed in float64 with tail-stable atan identities (relative error ~1e-12).
    Params are clamped exactly like the integer path, so their gradient is zero outside
    [LOC_MIN, LOC_MAX] / [SCALE_LOG2_MIN, SCALE_LOG2_MAX], unless `inward`: then a clamped
    param gets the loss's gradient of the clamped cost where a descent step would move it back
    into the range (`inward_clamp`; decided on the loss's gradient, not the elementwise one).

    On CPU float32/float64 params this is one numba pass (:func:`_fused_nats`) that computes
    the nats and both gradients together: forward + backward of (1, 3, 512, 768) float32 on one
    thread takes 0.17x the time of :func:`nats_reference` (experiments/results/conv_layouts.md);
    tests/test_cauchy.py checks the two agree. Elsewhere (CUDA, float16) it is
    :func:`nats_reference`.

    Args:
        x: pixel values 0..255 (any real or integer dtype), broadcastable to o_loc.
        o_loc: raw location output; loc = 127.5 + 64 * o_loc pixels.
        o_log2scale: raw scale output, same shape; sigma = 2 ** o_log2scale pixels.
        inward: the clamps' gradient (above); the values do not depend on it.

    Returns:
        nats, the broadcast shape, dtype of ``o_loc``.
    """
    import torch

    if not _fused_applies(x, o_loc, o_log2scale):
        return nats_reference(x, o_loc, o_log2scale, inward)
    if inward and not (o_loc.shape == o_log2scale.shape == torch.broadcast_shapes(x.shape, o_loc.shape)):
        # a broadcast param's gradient is a sum: inward_clamp decides on the sum, per param
        return nats_reference(x, o_loc, o_log2scale, inward)
    x, o_loc_b, o_log2scale = torch.broadcast_tensors(x, o_loc, o_log2scale)  # expand: autograd sums back
    return _fused_nats().apply(x, o_loc_b, o_log2scale, inward)


# torch dtype names the numba pass is compiled for (names: this module does not import torch to decode)
_FUSED_DTYPES = ("torch.float32", "torch.float64")
_FUSED_X_DTYPES = _FUSED_DTYPES + ("torch.uint8", "torch.int16", "torch.int32", "torch.int64")


def _fused_applies(x: torch.Tensor, o_loc: torch.Tensor, o_log2scale: torch.Tensor) -> bool:
    """Whether the numba pass can take these tensors: on CPU, dtypes it is compiled for, x data."""
    on_cpu = all(t.device.type == "cpu" for t in (x, o_loc, o_log2scale))
    dtypes_ok = (str(o_loc.dtype) in _FUSED_DTYPES and str(o_log2scale.dtype) in _FUSED_DTYPES
                 and str(x.dtype) in _FUSED_X_DTYPES)
    return on_cpu and dtypes_ok and not x.requires_grad


@functools.cache
def _fused_nats():
    """The autograd function of the numba pass (made on first use: it needs torch)."""
    import torch

    class _FusedNats(torch.autograd.Function):
        """:func:`nats_reference` for same-shape CPU tensors; forward also computes the gradients.

        The backward is then one multiplication per input. x gets no gradient (:func:`nats` sends an
        x that requires one to :func:`nats_reference`).
        """

        @staticmethod
        def forward(ctx, x, o_loc, o_log2scale, inward):
            x_, o_loc_, o_log2scale_ = (t.detach().contiguous().numpy().reshape(-1) for t in (x, o_loc, o_log2scale))
            value, grad_loc, grad_scale = np.empty_like(o_loc_), np.empty_like(o_loc_), np.empty_like(o_log2scale_)
            n_sides = len(value) if inward else 0
            side_loc, side_scale = np.zeros(n_sides, np.int8), np.zeros(n_sides, np.int8)
            _nats_and_gradients(x_, o_loc_, o_log2scale_, value, grad_loc, grad_scale, bool(inward), side_loc, side_scale)
            ctx.inward = bool(inward)
            saved = (grad_loc, grad_scale, side_loc, side_scale) if inward else (grad_loc, grad_scale)
            ctx.save_for_backward(*(torch.from_numpy(g).view(o_loc.shape) for g in saved))
            return torch.from_numpy(value).view(o_loc.shape)

        @staticmethod
        def backward(ctx, grad_output):
            grad_loc, grad_scale, *sides = ctx.saved_tensors
            grads = [grad_output * grad_loc, grad_output * grad_scale]
            if ctx.inward:  # inward_clamp's rule, on the loss's gradient: keep what pulls back in
                grads = [torch.where((side == 0) | (side * g > 0), g, torch.zeros_like(g)) for g, side in zip(grads, sides)]
            return None, grads[0], grads[1], None

    return _FusedNats


@numba.njit(cache=True, error_model="numpy")
def _nats_and_gradients(x, o_loc, o_log2scale, value, grad_loc, grad_scale, inward, side_loc, side_scale):
    """Fill value, d value / d o_loc, d value / d o_log2scale, (N,) each, float64 inside.

    angle = pi * P(x) as in :func:`_nats_loc_scale`; with a = (x - 1/2 - loc) / sigma,
    b = (x + 1/2 - loc) / sigma its partials are d angle / da = -1 / (1 + a^2) unless x <= 0
    (then 0), d angle / db = 1 / (1 + b^2) unless x >= 255 (then 0). loc' = 64 and
    sigma' = sigma ln 2 where not clamped. Where clamped the gradient is 0 (torch.clamp's), unless
    `inward`: then it is the clamped cost's, and side_loc / side_scale (int8, (N,); unused
    otherwise) get +1 where the raw param is above its range and -1 below, for the caller to keep
    only what pulls it back once the loss's own factors are applied (`inward_clamp`'s rule). A NaN
    param gets 0 either way.
    """
    log_pi, ln2 = math.log(math.pi), math.log(2.0)
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        raw_loc, raw_scale = 127.5 + 64.0 * np.float64(o_loc[i]), np.float64(o_log2scale[i])
        loc, loc_free = _clamped(raw_loc, LOC_MIN, LOC_MAX)
        log2_sigma, scale_free = _clamped(raw_scale, SCALE_LOG2_MIN, SCALE_LOG2_MAX)
        sigma = np.exp2(log2_sigma)
        a, b = (xi - 0.5 - loc) / sigma, (xi + 0.5 - loc) / sigma
        d_a, d_b = -1.0 / (1.0 + a * a), 1.0 / (1.0 + b * b)
        if xi <= 0:
            angle, d_a = _tail_angle_scalar(-b), 0.0
        elif xi >= N_VALUES - 1:
            angle, d_b = _tail_angle_scalar(a), 0.0
        else:
            angle = _atan_diff_scalar(a, b)
        value[i] = log_pi - math.log(angle)
        grad_loc[i] = 64.0 * (d_a + d_b) / (sigma * angle) if loc_free or (inward and raw_loc == raw_loc) else 0.0
        grad_scale[i] = ln2 * (d_a * a + d_b * b) / angle if scale_free or (inward and raw_scale == raw_scale) else 0.0
        if inward:
            side_loc[i] = _side(raw_loc, LOC_MIN, LOC_MAX)
            side_scale[i] = _side(raw_scale, SCALE_LOG2_MIN, SCALE_LOG2_MAX)


@numba.njit(cache=True)
def _side(v, low, high):
    """+1 above [low, high], -1 below, 0 inside (or NaN)."""
    return 1 if v > high else -1 if v < low else 0


@numba.njit(cache=True)
def _clamped(v, low, high):
    """(clamp(v, low, high), whether low <= v <= high); NaN stays NaN and is not free."""
    return (low if v < low else high if v > high else v), (low <= v <= high)


@numba.njit(cache=True, error_model="numpy")
def _tail_angle_scalar(t):
    """:func:`_tail_angle` of one float64."""
    return math.atan(1.0 / t) if t > 0 else math.pi / 2 - math.atan(t)


@numba.njit(cache=True, error_model="numpy")
def _atan_diff_scalar(a, b):
    """:func:`_atan_diff` of one pair of float64, a < b."""
    if a >= 0 or b <= 0:
        return math.atan((b - a) / (1.0 + a * b))
    return math.atan(b) - math.atan(a)


# ----------------------------------------------------------------------------- quantization


def _round_half_up_fixed(value_fx: np.ndarray, multiplier: int, frac_bits: int) -> np.ndarray:
    """floor(multiplier * value_fx / 2**frac_bits + 1/2) in int64 arithmetic only."""
    return (2 * multiplier * value_fx + (1 << frac_bits)) >> (frac_bits + 1)


def params_from_fixed(o_loc_fx: np.ndarray, o_log2scale_fx: np.ndarray, frac_bits: int) -> np.ndarray:
    """Quantize fixed-point raw outputs to table indexes, integer operations only.

    Args:
        o_loc_fx: int64 (N,), o_loc * 2**frac_bits.
        o_log2scale_fx: int64 (N,), o_log2scale * 2**frac_bits.
        frac_bits: number of fractional bits, 0..48.

    Returns:
        int64 (N, 2): loc_index = round(4 * loc) in [-4, 1024] and
        scale_index = round(8 * (log2 sigma + 4.5)) in [0, 95], rounding half up.
    """
    if not 0 <= frac_bits <= 48:
        raise ValueError(f"frac_bits must be in 0..48, got {frac_bits}")
    one = np.int64(1 << frac_bits)
    # Values beyond these bounds saturate anyway; clipping first keeps the products in int64.
    o_loc = np.clip(np.asarray(o_loc_fx, dtype=np.int64), -4 * one, 4 * one)
    o_scale = np.clip(np.asarray(o_log2scale_fx, dtype=np.int64), -16 * one, 16 * one)
    loc_index = 510 + _round_half_up_fixed(o_loc, 256, frac_bits)
    scale_index = 36 + _round_half_up_fixed(o_scale, SCALE_LEVELS_PER_OCTAVE, frac_bits)
    return _stack_clipped(loc_index, scale_index)


def params_from_float(o_loc: np.ndarray, o_log2scale: np.ndarray) -> np.ndarray:
    """Like :func:`params_from_fixed` for float64 raw outputs (experiments only), same rounding."""
    o_loc, o_scale = np.asarray(o_loc, np.float64), np.asarray(o_log2scale, np.float64)
    if not (np.all(np.isfinite(o_loc)) and np.all(np.isfinite(o_scale))):
        raise ValueError("raw outputs must be finite")
    o_loc, o_scale = np.clip(o_loc, -4.0, 4.0), np.clip(o_scale, -16.0, 16.0)
    loc_index = 510 + _round_half_up_float(256.0 * o_loc)
    scale_index = 36 + _round_half_up_float(SCALE_LEVELS_PER_OCTAVE * o_scale)
    return _stack_clipped(loc_index, scale_index)


def _round_half_up_float(y: np.ndarray) -> np.ndarray:
    """floor(y + 1/2) as int64, exact for float64 y (no rounding in the addition)."""
    floor = np.floor(y)
    return floor.astype(np.int64) + (y - floor >= 0.5)


def _stack_clipped(loc_index: np.ndarray, scale_index: np.ndarray) -> np.ndarray:
    """int64 (N, 2) of indexes clipped to their ranges."""
    loc_index = np.clip(loc_index, LOC_INDEX_MIN, LOC_INDEX_MAX)
    scale_index = np.clip(scale_index, 0, N_SCALES - 1)
    return np.stack([loc_index, scale_index], axis=-1).astype(np.int64).reshape(-1, 2)


def loc_sigma_of_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantized (loc, sigma) in pixels, float64 (N,) each, of int64 (N, 2) params."""
    loc = params[:, 0] / LOC_STEPS_PER_LEVEL
    sigma = np.exp2(SCALE_LOG2_MIN + params[:, 1] / SCALE_LEVELS_PER_OCTAVE)
    return loc, sigma


# ----------------------------------------------------------------------------- integer table


def _half_table_numpy() -> np.ndarray:
    """round(TABLE_MASS * F(d / (4 sigma_k))) for d = 0..1022 with float64 numpy, int64 (96, 1023)."""
    log2_sigma = SCALE_LOG2_MIN + np.arange(N_SCALES) / SCALE_LEVELS_PER_OCTAVE
    t = np.arange(TABLE_OFFSET + 1) / LOC_STEPS_PER_LEVEL * np.exp2(-log2_sigma)[:, None]
    return np.floor(TABLE_MASS * (0.5 + np.arctan(t) / np.pi) + 0.5).astype(np.int64)


def _half_table_mpmath(dps: int = 40) -> np.ndarray:
    """The exactly rounded version of :func:`_half_table_numpy` (mpmath, a few seconds)."""
    import mpmath

    half = np.empty((N_SCALES, TABLE_OFFSET + 1), np.int64)
    with mpmath.workdps(dps):
        mass_over_pi, offset = TABLE_MASS / mpmath.pi, mpmath.mpf(TABLE_MASS + 1) / 2
        for k in range(N_SCALES):
            step = mpmath.mpf(2) ** (mpmath.mpf(36 - k) / SCALE_LEVELS_PER_OCTAVE) / LOC_STEPS_PER_LEVEL
            for d in range(TABLE_OFFSET + 1):
                half[k, d] = int(mpmath.floor(mass_over_pi * mpmath.atan(d * step) + offset))
    return half


def _mirror(half: np.ndarray) -> np.ndarray:
    """Full int32 (96, 2045) table from offsets 0..1022, using F(-t) = 1 - F(t)."""
    return np.concatenate([TABLE_MASS - half[:, :0:-1], half], axis=1).astype(np.int32)


@pinned_table(TABLE_SHA256, exact=lambda: _mirror(_half_table_mpmath()), dtype="<i4")
def table() -> np.ndarray:
    """The Cauchy cdf table, int32 (N_SCALES, TABLE_WIDTH), values in [0, TABLE_MASS]: built with
    numpy on first use, checked against TABLE_SHA256 (of its little-endian int32 values), rebuilt
    with mpmath if it differs (`diffcode.pinned`); read-only."""
    return _mirror(_half_table_numpy())


def max_frequency() -> int:
    """The largest frequency of any symbol in any row of the table (of TOTAL = 2**24).

    Symbol 0 holds the folded lower tail, all mass below 0.5; it is largest with loc at its lowest
    (LOC_MIN = -1, loc_index -4) and sigma at its smallest (SCALE_MIN = 2**-4.5), where it is
    1/2 + atan(1.5 / SCALE_MIN) / pi = 0.9906; symbol 255 at LOC_MAX is its mirror image, and an
    inner symbol gets at most (2 / pi) atan(0.5 / SCALE_MIN) = 0.944. Read from the table (cdf(1)
    of that row); tests/test_cauchy.py checks it against every row. It bounds what a subpixel costs
    an rANS stream (`diffcode.storage.rans.min_symbol_bits`).
    """
    return 1 + int(table()[0, LOC_STEPS_PER_LEVEL * 1 - 2 - LOC_INDEX_MIN + TABLE_OFFSET])


def __getattr__(name: str):
    if name == "TABLE":  # the table as a module attribute, built lazily
        return table()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_COLUMN_WEIGHTS = np.array([-1, TABLE_WIDTH], dtype=np.int64)  # params @ w = row start - loc_index


class CauchyModel:
    """The folded discretized Cauchy as a :class:`diffcode.storage.rans.Model`.

    Params: int64 (N, 2) = (loc_index in [-4, 1024], scale_index in [0, 95]); 256 symbols.
    Requirements for correctness: params in range (checked by :meth:`n_symbols`, which
    the coder calls on every row before any :meth:`cdf`).
    """

    def n_symbols(self, params: np.ndarray) -> np.ndarray:
        """int64 (N,) of 256; raises ValueError if any param is out of range."""
        params = np.asarray(params)
        if params.ndim != 2 or params.shape[1] != 2:
            raise ValueError(f"Cauchy params must be (N, 2), got {params.shape}")
        loc_ok = (params[:, 0] >= LOC_INDEX_MIN) & (params[:, 0] <= LOC_INDEX_MAX)
        scale_ok = (params[:, 1] >= 0) & (params[:, 1] < N_SCALES)
        if not np.all(loc_ok & scale_ok):
            raise ValueError("Cauchy params out of range: loc_index in [-4, 1024], scale_index in [0, 95]")
        return np.full(len(params), N_VALUES, dtype=np.int64)

    def cdf(self, params: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """int64 (N,) cumulative frequency of symbols int64 (N,) in 0..256."""
        column = params @ _COLUMN_WEIGHTS + 4 * symbols + (TABLE_OFFSET - 2)
        # Only symbols 0 and 256 can fall outside their row; their value is replaced below.
        cdf = symbols + np.take(table().reshape(-1), column, mode="clip")
        cdf[symbols <= 0] = 0
        cdf[symbols >= N_VALUES] = TOTAL
        return cdf

    def cdf_table(self, params: np.ndarray) -> CdfTable:
        """:meth:`cdf` as a strided table (what the compiled coder reads): for 0 < x < 256,
        cdf(x) = x + TABLE[scale_index, 4x + TABLE_OFFSET - 2 - loc_index]."""
        params = np.asarray(params)
        return CdfTable(_table_int64(), params[:, 1], TABLE_OFFSET - 2 - params[:, 0], LOC_STEPS_PER_LEVEL, 1)


@functools.lru_cache(maxsize=1)
def _table_int64() -> np.ndarray:
    """The checked table as int64 (N_SCALES, TABLE_WIDTH), the coder's dtype."""
    return table().astype(np.int64)


# ----------------------------------------------------------------------------- reporting


def _tail_angle_numpy(t: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`_tail_angle` (float64)."""
    positive = t > 0
    return np.where(positive, np.arctan(1.0 / np.where(positive, t, 1.0)), math.pi / 2 - np.arctan(t))


def _atan_diff_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`_atan_diff` (float64)."""
    same_sign = (a >= 0) | (b <= 0)
    return np.where(same_sign, np.arctan((b - a) / (1.0 + np.where(same_sign, a * b, 0.0))),
                    np.arctan(b) - np.arctan(a))


def bits_float(x: np.ndarray, params: np.ndarray) -> float:
    """Total ideal bits of pixel values x int (N,) under the float Cauchy with quantized params (N, 2).

    The formulas of :func:`nats` (tail-stable atan identities) in numpy float64: a report figure,
    never coded, computed without importing torch.
    """
    loc, sigma = loc_sigma_of_params(np.asarray(params))
    x = np.asarray(x, np.float64)
    a = (x - 0.5 - loc) / sigma
    b = (x + 0.5 - loc) / sigma
    interior_or_top = np.where(x >= N_VALUES - 1, _tail_angle_numpy(a), _atan_diff_numpy(a, b))
    angle = np.where(x <= 0, _tail_angle_numpy(-b), interior_or_top)  # pi * P(x), tails folded
    return float(np.sum(math.log(math.pi) - np.log(angle))) / math.log(2)


def bits_quantized(x: np.ndarray, params: np.ndarray) -> float:
    """Total ideal bits of pixel values x int (N,) under the integer table with params (N, 2)."""
    x, params = np.asarray(x, np.int64), np.asarray(params, np.int64)
    model = CauchyModel()
    freq = model.cdf(params, x + 1) - model.cdf(params, x)
    return float(np.sum(PRECISION_BITS - np.log2(freq)))
