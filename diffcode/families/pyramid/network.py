"""The pyramid network's exact pass: integer weights and activations carried in float64 (numpy only).

Why it is identical on every machine and thread count: inputs are integers in 1/384 units,
activations integers in 2^-12 units, weights on inputs in 2^-24 x 384 units and weights on
activations in 2^-12 units, biases in 2^-24 units; every product and partial sum of a dense layer
is an integer of magnitude below MAX_ACC < 2^53, so the float64 matrix product is exact in any
summation order, blocking or FMA use. Rescaling is floor((acc + 2^11) / 2^12) (exact), relu is
exact, and the outputs become coding parameters by multiplying the exact accumulator by a small
integer and flooring (a product beyond 2^53 may round, but identically everywhere: it is one IEEE
multiplication, and such values are clipped to the parameter range anyway).

    inputs (N, 72) -> relu(dense) -> relu(dense) -> h;  per channel c: [h, own[:, :c]] -> relu(dense) -> dense
    -> loc12 = clip(base12 + round(acc_loc * 96 / 2^24)),  scale = clip(32 + round(acc_scale * 8 / 2^24), 0, 63)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import spec
from .layout import MAX_LEVELS, ORDERS, Contexts

ACC_BITS = 24  # an accumulator holds 2^-24 units
ACT_BITS = 12  # activations and weights on activations are in 2^-12 units
ACT_LIMIT = 1 << 22  # |activation| <= 1024.0
INPUT_LIMIT = 12 * 255 + spec.INPUT_UNITS  # |input integer|
WEIGHT_LIMIT = 1 << 20  # |integer weight|
BIAS_LIMIT = 1 << 40  # |integer bias| (2^-24 units: 65536.0)
MAX_FAN_IN = 128
# the largest accumulator: every product at its limit, plus the bias; must stay below 2^53
MAX_ACC = MAX_FAN_IN * max(INPUT_LIMIT, ACT_LIMIT) * WEIGHT_LIMIT + BIAS_LIMIT
assert MAX_ACC < 1 << 53


def quantize(values: np.ndarray, scale, limit: int = WEIGHT_LIMIT) -> np.ndarray:
    """Float weights -> integers round(values * scale) as float64, clamped to +-limit."""
    q = np.floor(np.asarray(values, np.float64) * scale + 0.5)
    return np.clip(q, -limit, limit)


@dataclass
class ExactDense:
    """One dense layer in integers: weight (in, out) float64, bias (out,) float64 in 2^-24 units."""

    weight: np.ndarray
    bias: np.ndarray

    def accumulate(self, x: np.ndarray) -> np.ndarray:
        acc = x @ self.weight
        acc += self.bias
        return acc


def _rescale(acc: np.ndarray) -> np.ndarray:
    """2^-24 accumulator -> 2^-12 activation after relu, clamped (in place)."""
    acc += float(1 << (ACT_BITS - 1))
    acc *= 1.0 / (1 << ACT_BITS)
    np.floor(acc, out=acc)
    return np.clip(acc, 0, ACT_LIMIT, out=acc)


def _dense(arrays: dict, name: str, input_scale: float, n_raw_inputs: int = 0) -> ExactDense:
    """Quantize layer `name`: the first inputs are activations (2^-12), the last `n_raw_inputs` are
    raw integer inputs (1/384 units)."""
    w = np.asarray(arrays[name + ".weight"], np.float64).T  # (in, out)
    if w.shape[0] > MAX_FAN_IN:
        raise ValueError(f"layer {name} has {w.shape[0]} inputs, more than the exact pass allows ({MAX_FAN_IN})")
    scales = np.full((w.shape[0], 1), input_scale)
    if n_raw_inputs:
        scales[w.shape[0] - n_raw_inputs:] = float(1 << ACC_BITS) / spec.INPUT_UNITS
    return ExactDense(quantize(w, scales), quantize(arrays[name + ".bias"], float(1 << ACC_BITS), BIAS_LIMIT))


def input_integers(ctx: Contexts, level: int) -> np.ndarray:
    """The network's integer inputs (N, 72) in 1/384 units (shared with the exact pass), int16: residuals are
    within +-12 x 255, mask and level bits 0 or 384."""
    n = len(ctx)
    onehot = np.zeros((n, MAX_LEVELS), np.int16)
    onehot[:, min(level, MAX_LEVELS - 1)] = spec.INPUT_UNITS
    return np.concatenate([ctx.residuals.reshape(n, -1).astype(np.int16),
                           ctx.mask.astype(np.int16) * np.int16(spec.INPUT_UNITS), onehot], 1)


def own_integers(target: np.ndarray, base12: np.ndarray) -> np.ndarray:
    """Residuals 12*x - base12 (N, 3) of the target pixel's own channels (in 1/384 units as inputs)."""
    return target.astype(np.int32) * spec.LOC_STEP - base12


class ExactNet:
    """The quantized network of a prior (plus per-image deltas), evaluated in exact integers.

    The three heads' first layers read the same trunk output, so their trunk parts run as one
    matrix product (`hidden`); `channel` adds the pixel's own earlier channels. Integer sums do not
    depend on how they are grouped, so this is the same network, only faster.
    """

    def __init__(self, arrays: dict, order: int = 1):
        act = float(1 << ACT_BITS)
        raw = float(1 << ACC_BITS) / spec.INPUT_UNITS
        self.order = ORDERS[order]
        self.phases = []
        for p in range(len(self.order)):
            pre = f"phases.{p}."
            trunk1 = _dense(arrays, pre + "trunk1", raw)
            trunk2 = _dense(arrays, pre + "trunk2", act)
            heads1 = [_dense(arrays, pre + f"heads1.{c}", act, n_raw_inputs=c) for c in range(3)]
            width = trunk2.weight.shape[1]
            shared = ExactDense(np.concatenate([h.weight[:width] for h in heads1], 1),
                                np.concatenate([h.bias for h in heads1]))
            own = [h.weight[width:] for h in heads1]
            heads2 = [_dense(arrays, pre + f"heads2.{c}", act) for c in range(3)]
            self.phases.append((trunk1, trunk2, shared, own, heads2))

    def hidden(self, phase: int, inputs: np.ndarray) -> np.ndarray:
        """The heads' first-layer accumulators from the trunk, float64 (N, 3 x head) in 2^-24 units."""
        trunk1, trunk2, shared, _, _ = self.phases[phase]
        x = np.asarray(inputs, np.float64)
        return shared.accumulate(_rescale(trunk2.accumulate(_rescale(trunk1.accumulate(x)))))

    def channel(self, phase: int, c: int, hidden: np.ndarray, own: np.ndarray, base12: np.ndarray):
        """(loc12, scale) int64 (N,) of channel c, given the pixel's own residuals of channels < c."""
        _, _, _, own_weights, heads2 = self.phases[phase]
        head = heads2[c].weight.shape[0]
        acc1 = hidden[:, c * head:(c + 1) * head].copy()
        if c:
            acc1 += np.asarray(own[:, :c], np.float64) @ own_weights[c]
        acc = heads2[c].accumulate(_rescale(acc1))
        loc_step = int(spec.LOC_GAIN * spec.LOC_STEP)  # 96: 1/12 grey levels per unit of o_loc
        half = float(1 << (ACC_BITS - 1))
        delta = np.floor((acc[:, 0] * loc_step + half) * (1.0 / (1 << ACC_BITS)))
        scale = np.floor((acc[:, 1] * int(spec.SCALE_GAIN) + half) * (1.0 / (1 << ACC_BITS))) + spec.SCALE_MID
        loc12 = np.clip(np.asarray(base12[:, c], np.float64) + delta, spec.LOC_MIN, spec.LOC_MAX)
        return loc12.astype(np.int64), np.clip(scale, 0, spec.N_SCALES - 1).astype(np.int64)
