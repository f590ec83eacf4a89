"""The pyramid network in narrow exact integers: float32 matrix products where they fit (numpy's), and compiled
loops for the elementwise work between them.

Why it is the same on every machine and thread count: every layer holds integer weights, integer
biases and integer inputs, and its matrix product is exact because no partial sum can leave the
range where its float type holds every integer: for each output column j,

    sum_i |W[i, j]| * max|x_i| + |B[j]| <= LIMIT[dtype]      (float32: 2^24, float64: 2^53)

(checked when a network is built, with exact int64 arithmetic; a prior's exponents are chosen for
half of it, which leaves per-image deltas room). Every integer of magnitude up to LIMIT is a float
of that type, so any summation order, blocking, FMA or SIMD width gives the same integers.
Everything else is elementwise: a multiplication by a power of two (exact), floor, clip. Those run in
compiled loops (`kernels`), one pass per layer, with the same IEEE operations in the same types as the
numpy formulas they replace (`activations`, `Engine.channel_reference`, which the tests compare).

    layer:   acc = x @ W + B                       (exact integers)
    hidden:  h = clip(floor(acc * 2^-e_j + 1/2), 0, ACT_MAX)      (integers, unit 1 / 2^a_layer)
    output:  loc12 = base12 + floor(acc_loc * 96 * 2^-e_j + 1/2), scale = 32 + floor(acc_s * 8 * 2^-e_j + 1/2)

A float weight w on an input of unit u (the input integer x means x / u) becomes the integer
W = rint(w * 2^s_j / u), where 2^s_j is the column's scale, the largest power of two that keeps
the bound; the accumulator then holds 2^s_j times the float pre-activation.

The first layer reads the raw residuals (up to 3060 in 1/12 grey levels), which leave a float32
column too little precision, so it runs in float64 (it is the smallest of the products); every
later layer runs in float32, which halves memory and doubles the speed of the products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import kernels, parallel
from . import entropy, spec
from .layout import MAX_LEVELS, ORDERS

LIMITS = {np.float32: 1 << 24, np.float64: 1 << 53}
ACT_MAX = 511  # hidden activations are integers 0..ACT_MAX
RAW_MAX = 12 * 255  # |residual input| in 1/12 grey levels; mask and level bits are INPUT_UNITS or 0
LOC_PER_UNIT = int(spec.LOC_GAIN * spec.LOC_STEP)  # 96: 1/12 grey levels per unit of o_loc
LOC_MIN, LOC_MAX, SCALE_MID, N_SCALES = float(spec.LOC_MIN), float(spec.LOC_MAX), spec.SCALE_MID, spec.N_SCALES
WEIGHT_Q = float(entropy.WEIGHT_Q)
OUTPUTS = (2, 5)  # per channel: a logistic's (location, scale index), or a mixture of two (`outputs`)


@dataclass
class Dense:
    """Integer weight (in, out) and bias (out,) in `dtype`, the column exponents e (out,): acc * 2^-e is the
    float pre-activation times the output unit."""

    weight: np.ndarray
    bias: np.ndarray
    shift: np.ndarray  # float64 2^-e per column

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        acc = x @ self.weight
        acc += self.bias
        return acc

    def relu(self, x: np.ndarray) -> np.ndarray:
        """Hidden activations: integers 0..ACT_MAX in the layer's dtype."""
        return activations(self.accumulate(x), self.shift)


def activations(acc: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """clip(floor(acc * shift + 1/2), 0, ACT_MAX), in place (shift: powers of two, so the product is exact)."""
    acc *= shift.astype(acc.dtype)
    acc += 0.5
    np.floor(acc, out=acc)
    return np.clip(acc, 0, ACT_MAX, out=acc)


@kernels.jit("void(float64[:, ::1], float64[::1], float32[:, ::1])")
def _relu64(acc, shift, out):
    """out = clip(floor(acc * shift + 1/2), 0, ACT_MAX): float64 accumulators to float32 activations."""
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[i, j] = min(max(np.floor(acc[i, j] * shift[j] + 0.5), 0.0), ACT_MAX)


@kernels.jit("void(float32[:, ::1], float32[::1], uint16[:, ::1])")
def _relu32(acc, shift, out):
    """out = clip(floor(acc * shift + 1/2), 0, ACT_MAX): float32 accumulators (float32 arithmetic, as numpy's) to
    uint16 activations."""
    half = np.float32(0.5)
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[i, j] = np.uint16(min(max(np.floor(acc[i, j] * shift[j] + half), 0.0), ACT_MAX))


@kernels.jit("void(float32[:, ::1], float32[::1], int32[:, ::1], int64, float32[:, ::1], float32[:, ::1], "
             "float32[::1], float64[::1], int32[:, ::1], int64[::1], int64[:, ::1], int64)")
def _head(acc1, shift1, own, c, w_own, w2t, b2, k, base12, weights, out, start):
    """The rest of channel c's head after its first layer's trunk part `acc1` (N, head), which it overwrites: add
    the own channels 0..c-1, activations, the second layer (w2t: its weight transposed, (2 | 5, head)), then the
    distribution's parameters: columns start..start + N of `out` (2 | 5, total), in float64 as
    `Engine.channel_reference` (see `outputs`). The second layer's sums are float32 sums of integers below 2^24,
    exact in any order: each output runs as 8 partial sums over contiguous weights (vector lanes)."""
    half = np.float32(0.5)
    n, m = acc1.shape
    n_out = w2t.shape[0]
    lanes = np.zeros(8, np.float32)
    acc2 = np.zeros(n_out, np.float64)
    for i in range(n):
        a = acc1[i]
        for q in range(c):
            o = np.float32(own[i, q])
            for j in range(m):
                a[j] += o * w_own[q, j]
        for j in range(m):
            a[j] = min(max(np.floor(a[j] * shift1[j] + half), np.float32(0.0)), np.float32(ACT_MAX))
        for o in range(n_out):
            w = w2t[o]
            lanes[:] = 0
            full = m - m % 8
            for j0 in range(0, full, 8):
                for q in range(8):
                    lanes[q] += a[j0 + q] * w[j0 + q]
            for j in range(full, m):
                lanes[j - full] += a[j] * w[j]
            total = b2[o]
            for q in range(8):
                total += lanes[q]
            acc2[o] = np.float64(total)
        delta = np.floor(acc2[0] * k[0] + 0.5)
        out[0, start + i] = np.int64(min(max(base12[i, c] + delta, LOC_MIN), LOC_MAX))
        out[1, start + i] = np.int64(min(max(np.floor(acc2[1] * k[1] + 0.5) + SCALE_MID, 0.0), N_SCALES - 1))
        if n_out == 5:
            delta += np.floor(acc2[2] * k[2] + 0.5)
            out[2, start + i] = np.int64(min(max(base12[i, c] + delta, LOC_MIN), LOC_MAX))
            out[3, start + i] = np.int64(min(max(np.floor(acc2[3] * k[3] + 0.5) + SCALE_MID, 0.0), N_SCALES - 1))
            q = min(max(np.floor(acc2[4] * k[4] + 0.5), -WEIGHT_Q), WEIGHT_Q)
            out[4, start + i] = weights[np.int64(q + WEIGHT_Q)]


def outputs(acc: np.ndarray, k: np.ndarray, base12: np.ndarray) -> np.ndarray:
    """The distribution's parameters (2 | 5, N) int64 of the heads' last accumulators acc float64 (N, 2 | 5), their
    columns' multipliers k (the unit's share of 2^-e times LOC_PER_UNIT, SCALE_GAIN or WEIGHT_STEPS) and the base
    base12 (N,) of the channel (numpy formulas; `_head` runs the same operations):

        delta1 = floor(acc0 k0 + 1/2)           loc1 = clip(base12 + delta1, LOC_MIN, LOC_MAX)
        j1 = clip(floor(acc1 k1 + 1/2) + SCALE_MID, 0, N_SCALES - 1)
    and for a mixture of two logistics (five outputs) the second component and the first one's weight:
        loc2 = clip(base12 + delta1 + floor(acc2 k2 + 1/2)),   j2 = clip(floor(acc3 k3 + 1/2) + SCALE_MID)
        w = entropy.weight_table()[clip(floor(acc4 k4 + 1/2), -WEIGHT_Q, WEIGHT_Q) + WEIGHT_Q]"""
    base = np.asarray(base12, np.float64)
    delta = np.floor(acc[:, 0] * k[0] + 0.5)
    out = [np.clip(base + delta, spec.LOC_MIN, spec.LOC_MAX),
           np.clip(np.floor(acc[:, 1] * k[1] + 0.5) + spec.SCALE_MID, 0, spec.N_SCALES - 1)]
    if acc.shape[1] == 5:
        q = np.clip(np.floor(acc[:, 4] * k[4] + 0.5), -WEIGHT_Q, WEIGHT_Q).astype(np.int64)
        out += [np.clip(base + delta + np.floor(acc[:, 2] * k[2] + 0.5), spec.LOC_MIN, spec.LOC_MAX),
                np.clip(np.floor(acc[:, 3] * k[3] + 0.5) + spec.SCALE_MID, 0, spec.N_SCALES - 1),
                entropy.weight_table()[q + entropy.WEIGHT_Q]]
    return np.stack(out).astype(np.int64)


def exponents(w: np.ndarray, b: np.ndarray, units: np.ndarray, maxima: np.ndarray, dtype) -> np.ndarray:
    """Column exponents s (out,) of a float layer w (out, in) as torch stores it, b (out,), reading inputs of
    `units` (in,) with |x_i| <= maxima[i]: the largest that keep the exactness bound. A float reduction, so it
    runs once, when a prior is made; the exponents are written in the prior and read back, never recomputed."""
    w, b = np.abs(np.asarray(w, np.float64)).T, np.abs(np.asarray(b, np.float64))
    budget = LIMITS[dtype] / 2 * 0.999 - (w.shape[0] + 1) * float(np.max(maxima))  # rounding adds <= 1/2 each
    reach = (w * (maxima / units)[:, None]).sum(0) + b + 1e-30
    return np.floor(np.log2(budget / reach)).astype(np.int64)


def quantize(w: np.ndarray, b: np.ndarray, s: np.ndarray, units: np.ndarray, maxima: np.ndarray, dtype,
             out_unit: float) -> Dense:
    """Float layer w (out, in), b (out,) with column exponents s -> Dense reading inputs of `units` (in,) with
    |x_i| <= maxima[i], whose accumulator times 2^-s gives the pre-activation times `out_unit` (a power of two).
    Elementwise operations only (each one IEEE operation: the same everywhere); the bound is then checked
    exactly (ValueError if deltas or a damaged prior break it)."""
    scale = 2.0 ** np.asarray(s, np.float64)
    weight = np.rint(np.asarray(w, np.float64).T * scale[None, :] / units[:, None])
    bias = np.rint(np.asarray(b, np.float64) * scale)
    # C order: the compiled loops read weights row-major (ahead-of-time kernels do not check layouts)
    layer = Dense(np.ascontiguousarray(weight, dtype), bias.astype(dtype), out_unit / scale)
    check(layer, maxima)
    return layer


def check(layer: Dense, maxima: np.ndarray) -> None:
    """The exactness bound of every column, in int64 (raises ValueError)."""
    w = layer.weight.astype(np.int64)
    reach = (np.abs(w) * maxima.astype(np.int64)[:, None]).sum(0) + np.abs(layer.bias.astype(np.int64))
    if reach.max() > LIMITS[layer.weight.dtype.type]:
        raise ValueError(f"a layer's partial sums could reach {int(reach.max())}, beyond its exact range")


class Layout:
    """Input units, input maxima and dtype of every dense layer of a phase (width and head from the arrays)."""

    @staticmethod
    def layers(arrays: dict, phase: int, units: dict) -> list[tuple[str, np.ndarray, np.ndarray, type, float]]:
        """[(name, input units, input maxima, dtype, output unit)] in evaluation order; `units` holds the
        hidden layers' activation units by layer name (trunk1, trunk2, heads1 of each phase)."""
        pre = f"phases.{phase}."
        width, head = arrays[pre + "trunk1.weight"].shape[0], arrays[pre + "heads1.0.weight"].shape[0]
        n_inputs = arrays[pre + "trunk1.weight"].shape[1]
        n_res = 3 * (n_inputs - MAX_LEVELS) // 4
        raw_units = np.full(n_inputs, float(spec.INPUT_UNITS))
        raw_max = np.concatenate([np.full(n_res, float(RAW_MAX)),
                                  np.full(n_inputs - n_res, float(spec.INPUT_UNITS))])
        u1, u2, uh = (units[pre + n] for n in ("trunk1", "trunk2", "heads1"))
        act = np.full(width, float(ACT_MAX))
        out = [(pre + "trunk1", raw_units, raw_max, np.float64, u1),
               (pre + "trunk2", np.full(width, u1), act, np.float32, u2)]
        out += [(pre + f"heads1.{c}", np.concatenate([np.full(width, u2), np.full(c, float(spec.INPUT_UNITS))]),
                 np.concatenate([act, np.full(c, float(RAW_MAX))]), np.float32, uh) for c in range(3)]
        out += [(pre + f"heads2.{c}", np.full(head, uh), np.full(head, float(ACT_MAX)), np.float32, 1.0)
                for c in range(3)]
        return out


def make_quant(arrays: dict, units: dict, order: int) -> dict:
    """What a prior records of its quantization: {layer: {"unit": u, "exponents": [s_j]}} (JSON)."""
    quant = {}
    for p in range(len(ORDERS[order])):
        for name, in_units, maxima, dtype, out_unit in Layout.layers(arrays, p, units):
            s = exponents(arrays[name + ".weight"], arrays[name + ".bias"], in_units, maxima, dtype)
            quant[name] = {"unit": float(out_unit), "exponents": [int(e) for e in s]}
    return quant


class Engine:
    """The quantized network of float arrays (a prior, plus deltas) with the prior's `quant` (`make_quant`).
    The same interface as network.ExactNet: hidden(phase, inputs), channel(phase, c, hidden, own, base12).
    Blocks of rows are computed apart, on `parallel.threads()` threads (numpy's products and the compiled loops
    release the GIL): every block's integers are the same on any thread count.

    `hidden` keeps the trunk's output activations (integers 0..ACT_MAX, as uint16) of a chunk's targets, which
    every channel's head reads; `channel` runs one head, its first layer's trunk part plus the pixel's own
    earlier channels (the same integer column sums as one product over both). Both work in blocks of ROWS rows,
    so a chunk holds only the uint16 activations and each block's float intermediates."""

    # rows per block (memory: a block's float64 first-layer accumulators). 1,024 keeps a block's accumulators in the
    # core's cache between the product and the loop that reads them: an in-process decode of kodim17 took 1.07 s
    # against 1.16 s with 8,192 (medians of 4 alternated rounds, one thread; 512 and 256 the same as 1,024)
    ROWS = 1 << 10

    def __init__(self, arrays: dict, quant: dict, order: int = 1):
        self.order = ORDERS[order]
        units = {name.removesuffix(".0"): q["unit"] for name, q in quant.items()}  # heads1.0's unit is heads1's
        self.phases, self.shifts32 = [], []
        for p in range(len(self.order)):
            layers = [quantize(arrays[name + ".weight"], arrays[name + ".bias"], np.array(quant[name]["exponents"]),
                               in_units, maxima, dtype, out_unit)
                      for name, in_units, maxima, dtype, out_unit in Layout.layers(arrays, p, units)]
            trunk1, trunk2, heads1, heads2 = layers[0], layers[1], layers[2:5], layers[5:8]
            width = trunk2.weight.shape[1]
            # each head's first layer split into the part reading the trunk and the part reading the own channels
            from_trunk = [Dense(np.ascontiguousarray(h.weight[:width]), h.bias, h.shift) for h in heads1]
            from_own = [np.ascontiguousarray(h.weight[width:]) for h in heads1]
            self.phases.append((trunk1, trunk2, from_trunk, from_own, heads2))
            # the float32 activations' column shifts (powers of two), made once rather than per block
            self.shifts32.append((trunk2.shift.astype(np.float32), [f.shift.astype(np.float32) for f in from_trunk]))

    def hidden(self, phase: int, inputs: np.ndarray) -> np.ndarray:
        """The trunk's output activations (N, width): integers 0..ACT_MAX, uint16."""
        trunk1, trunk2 = self.phases[phase][:2]
        out = np.empty((len(inputs), trunk2.weight.shape[1]), np.uint16)
        shift2 = self.shifts32[phase][0]

        def block(start: int) -> None:
            rows = np.asarray(inputs[start:start + self.ROWS], np.float64)
            h = np.empty((len(rows), trunk1.weight.shape[1]), np.float32)
            _relu64(trunk1.accumulate(rows), trunk1.shift, h)
            _relu32(trunk2.accumulate(h), shift2, out[start:start + len(rows)])

        parallel.each(block, range(0, len(inputs), self.ROWS))
        return out

    def channel(self, phase: int, c: int, hidden: np.ndarray, own: np.ndarray, base12: np.ndarray) -> np.ndarray:
        """The parameters (2 | 5, N) int64 of channel c's distributions (`outputs`), given the trunk's activations
        and the pixel's own residuals of channels < c (int32 (N, 3)); base12 int32 (N, 3)."""
        _, _, from_trunk, from_own, heads2 = self.phases[phase]
        n = len(hidden)
        first, second = from_trunk[c], heads2[c]
        out = np.empty((second.weight.shape[1], n), np.int64)
        own, base12 = np.ascontiguousarray(own, np.int32), np.ascontiguousarray(base12, np.int32)
        shift1 = self.shifts32[phase][1][c]
        k, weights = self.multipliers(second), entropy.weight_table()
        w2t = np.ascontiguousarray(second.weight.T)

        def block(start: int) -> None:
            rows = slice(start, start + self.ROWS)
            _head(first.accumulate(hidden[rows].astype(np.float32)), shift1, own[rows], c, from_own[c],
                  w2t, second.bias, k, base12[rows], weights, out, start)

        parallel.each(block, range(0, n, self.ROWS))
        return out

    @staticmethod
    def multipliers(layer: Dense) -> np.ndarray:
        """The heads' last layer's column multipliers (`outputs`): its shifts times LOC_PER_UNIT (locations),
        SCALE_GAIN (scale indexes) or WEIGHT_STEPS (the weight's logit)."""
        gains = np.array([LOC_PER_UNIT, spec.SCALE_GAIN, LOC_PER_UNIT, spec.SCALE_GAIN, entropy.WEIGHT_STEPS])
        return np.ascontiguousarray(layer.shift * gains[:len(layer.shift)], np.float64)

    def hidden_reference(self, phase: int, inputs: np.ndarray) -> np.ndarray:
        """`hidden` in numpy formulas (the tests' yardstick for the compiled loops)."""
        trunk1, trunk2 = self.phases[phase][:2]
        h = trunk1.relu(np.asarray(inputs, np.float64)).astype(np.float32)
        return trunk2.relu(h).astype(np.uint16)

    def channel_reference(self, phase: int, c: int, hidden: np.ndarray, own: np.ndarray, base12: np.ndarray):
        """`channel` in numpy formulas (the tests' yardstick for the compiled loops)."""
        _, _, from_trunk, from_own, heads2 = self.phases[phase]
        acc1 = from_trunk[c].accumulate(hidden.astype(np.float32))
        if c:
            acc1 += np.asarray(own[:, :c], np.float32) @ from_own[c]
        acc = heads2[c].accumulate(activations(acc1, from_trunk[c].shift)).astype(np.float64)
        return outputs(acc, self.multipliers(heads2[c]), base12[:, c])


def calibrate(arrays: dict, samples, order: int = 1, quantile: float = 0.9999) -> dict:
    """Power-of-two units of every hidden layer from float activations on training samples (`train.Samples`):
    the largest unit that keeps the `quantile` of the layer's activations within ACT_MAX."""
    def dense(x, name):
        return np.maximum(x @ np.asarray(arrays[name + ".weight"], np.float64).T + arrays[name + ".bias"], 0)

    units, rng = {}, np.random.default_rng(0)
    for p in range(len(ORDERS[order])):
        pre = f"phases.{p}."
        pick = rng.choice(len(samples.inputs[p]), min(200_000, len(samples.inputs[p])), replace=False)
        x = samples.inputs[p][pick].astype(np.float64) / spec.INPUT_UNITS
        own = samples.own[p][pick].astype(np.float64) / spec.INPUT_UNITS
        h1 = dense(x, pre + "trunk1")
        h2 = dense(h1, pre + "trunk2")
        heads = np.concatenate([dense(np.concatenate([h2, own[:, :c]], 1), pre + f"heads1.{c}") for c in range(3)], 1)
        for name, h in (("trunk1", h1), ("trunk2", h2), ("heads1", heads)):
            q = max(float(np.quantile(h, quantile)), 1e-6)
            units[pre + name] = float(2.0 ** np.floor(np.log2(ACT_MAX / q)))
    return units
