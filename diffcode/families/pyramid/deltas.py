"""Per-image weight deltas: which tensors adapt, and their exact storage (numpy and numba only).

A fitted tensor is prior + k * STEP with k an integer in [-127, 127] (STEP = 2^-STEP_EXPONENT),
computed in float64, so the decoder rebuilds the same weights bit for bit. The `gains` set instead
scales each row of a weight matrix (one output unit's weights): W[j] * (1 + k_j * GAIN_STEP), a
float32 prior weight times a 9-bit factor, exact in float64. The integers of each
tensor are rANS-coded as symbols k + 128 under a logistic centred on 0 whose scale index the
encoder picks per tensor by the real code length (the error-table coder of `entropy`):

    side info: adapt code (1 byte), one scale index byte per adapted tensor
    weight-deltas section: the rANS stream of every k, tensors in name order
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import CorruptFileError
from . import entropy, spec

STEP_EXPONENT = 8
STEP = 2.0 ** -STEP_EXPONENT
FACTOR_STEP = 2.0 ** -3  # of the low-rank factors b, whose values are about 1
GAIN_STEP = 2.0 ** -8  # of the row gains: |gain| <= 127/256 keeps every layer within twice the prior's reach
K_MAX = 127
ADAPT = {1: "heads", 2: "all", 3: "biases", 4: "lowrank2", 5: "lowrank4", 6: "lowrank8", 7: "gains", 8: "gains2"}
# codes written in files: never reuse one. lowrankR: every bias gets a delta, every weight matrix W (out, in) a
# delta a @ b of rank R. gains: every bias gets a delta, every weight matrix a gain per output unit (row); gains2
# also a gain per input (column): W[j, i] (1 + g_j)(1 + c_i), two exact products in float64 (24 + 9 + 9 bits).


@dataclass(frozen=True)
class Part:
    """One coded tensor of integers: a delta of the tensor `name`, or (`name` ending in :a or :b) a factor of a
    low-rank delta of the weight matrix before the colon; its values are k * step."""

    name: str
    shape: tuple[int, ...]
    step: float

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def rank(adapt: str) -> int:
    """The rank of a low-rank adapt set (0: deltas of whole tensors)."""
    return int(adapt.removeprefix("lowrank")) if adapt.startswith("lowrank") else 0


def _adapts(name: str, adapt: str) -> bool:
    if adapt in ("all", "gains", "gains2") or rank(adapt):
        return True
    if adapt == "heads":
        return ".heads" in name
    if adapt == "biases":
        return name.endswith(".bias")
    raise ValueError(f"unknown adapt set {adapt!r}; known: {', '.join(ADAPT.values())}")


def adapted_names(arrays: dict, adapt: str) -> list[str]:
    """Names of the adapted tensors, in coding order (sorted)."""
    return [name for name in sorted(arrays) if _adapts(name, adapt)]


def parts(arrays: dict, adapt: str) -> list[Part]:
    """The coded tensors of an adapt set, in coding order."""
    r, out = rank(adapt), []
    for name in adapted_names(arrays, adapt):
        shape = tuple(np.shape(arrays[name]))
        if r and len(shape) == 2:
            out += [Part(name + ":a", (shape[0], r), STEP), Part(name + ":b", (r, shape[1]), FACTOR_STEP)]
        elif adapt.startswith("gains") and len(shape) == 2:
            out.append(Part(name + ":g", shape[:1], GAIN_STEP))
            if adapt == "gains2":
                out.append(Part(name + ":c", shape[1:], GAIN_STEP))
        else:
            out.append(Part(name, shape, STEP))
    return out


def to_integers(fitted: dict, coded: list[Part]) -> np.ndarray:
    """Float values by part name -> int16 (sum of sizes,) integers k, rounded and clamped."""
    flat = [np.floor(np.ravel(fitted[p.name]) / p.step + 0.5) for p in coded]
    return np.clip(np.concatenate(flat) if flat else np.zeros(0), -K_MAX, K_MAX).astype(np.int16)


def apply(prior_arrays: dict, adapt: str, k: np.ndarray) -> dict:
    """The prior's arrays (float64) with the deltas added. A low-rank delta is the integer product a_k @ b_k
    (exact in int64) times both steps (a power of two), and a gain 1 + k * GAIN_STEP (9 significant bits) times
    a float32 weight is exact in float64, so the decoder rebuilds the same weights bit for bit."""
    arrays = {n: np.asarray(a, np.float64) for n, a in prior_arrays.items()}
    if len(k) == 0:
        return arrays
    coded = parts(prior_arrays, adapt)
    if sum(p.size for p in coded) != len(k):
        raise CorruptFileError(f"{len(k)} weight deltas for {sum(p.size for p in coded)} adapted weights")
    factor = None
    for p, part in zip(coded, np.split(np.asarray(k, np.int64), np.cumsum([p.size for p in coded])[:-1])):
        values = part.reshape(p.shape)
        if p.name.endswith(":a"):
            factor = values
        elif p.name.endswith(":b"):
            name = p.name[:-2]
            arrays[name] = arrays[name] + (factor @ values).astype(np.float64) * (STEP * FACTOR_STEP)
        elif p.name.endswith(":g"):
            name = p.name[:-2]
            arrays[name] = arrays[name] * (1.0 + values.astype(np.float64) * p.step)[:, None]
        elif p.name.endswith(":c"):  # after its row gains (":g" comes first): each product is exact
            name = p.name[:-2]
            arrays[name] = arrays[name] * (1.0 + values.astype(np.float64) * p.step)[None, :]
        else:
            arrays[p.name] = arrays[p.name] + values.astype(np.float64) * p.step
    return arrays


def _params(scales: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    total = sum(sizes)
    return np.full(total, 128 * spec.LOC_STEP, np.int64), np.repeat(np.asarray(scales, np.int64), sizes)


def encode(k: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, bytes, float]:
    """Integers k per tensor -> (scale index per tensor uint8, stream bytes, ideal bits of the integer model);
    each tensor's scale is the one with the fewest ideal bits."""
    symbols = (np.asarray(k, np.int64) + 128).astype(np.uint8)
    scales = []
    for part in np.split(symbols, np.cumsum(sizes)[:-1]):
        loc = np.full(len(part), 128 * spec.LOC_STEP, np.int64)
        costs = [entropy.bits(part, loc, np.full(len(part), j, np.int64)).sum() for j in range(spec.N_SCALES)]
        scales.append(int(np.argmin(costs)))
    stream, bits = entropy.encode(symbols, *_params(np.array(scales), sizes))
    return np.array(scales, np.uint8), stream, bits


def decode(stream: bytes, scales: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, float]:
    """The inverse of `encode`: (int16 k (sum of sizes,), ideal bits)."""
    if len(scales) != len(sizes) or np.any(np.asarray(scales) >= spec.N_SCALES):
        raise CorruptFileError("weight deltas: bad side information")
    decoder = entropy.Decoder(stream, "weight deltas")
    params = _params(scales, sizes)
    symbols = decoder.decode(*params)
    decoder.finish()
    k = symbols.astype(np.int64) - 128
    if np.any(np.abs(k) > K_MAX):
        raise CorruptFileError("weight deltas out of range")
    return k.astype(np.int16), float(entropy.bits(symbols, *params).sum())
