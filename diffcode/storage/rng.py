"""Shared randomness of the file format: a documented counter-based generator.

Encoder and decoder must draw the very same numbers, on every platform and numpy version,
so this module uses no numpy ``Generator``/``RandomState`` and no floats: only unsigned 64-bit
wrap-around arithmetic (``+``, ``*``, ``^``, ``>>``), identical in Python ints and numpy uint64.

Definition (``RNG_VERSION = 1``), every operation modulo 2**64::

    fmix64(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;      (the splitmix64 finalizer)
                 z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
    h_0        = fmix64(seed + GAMMA)                         GAMMA = 0x9E3779B97F4A7C15
    h_{i+1}    = fmix64(h_i + (key_i + 1) * GAMMA)
    random_u64(seed, key_0, ..., key_{m-1}) = h_m
    random_u32(seed, keys...)               = h_m >> 32

That is, h_{i+1} is output number key_i + 1 of a splitmix64 generator whose state is h_i, so a
key list such as (stage, segment, encoding index, try) addresses one number directly: any
number can be computed without the ones before it (the decoder jumps to the winning try).
Seeds and keys are integers in [0, 2**64); arrays broadcast against each other.
"""

from __future__ import annotations

import numba
import numpy as np

RNG_VERSION = 1

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

_GAMMA_U = np.uint64(GAMMA)
_MIX1_U = np.uint64(MIX1)
_MIX2_U = np.uint64(MIX2)
_S30, _S27, _S31, _S32 = (np.uint64(s) for s in (30, 27, 31, 32))
_ONE_U = np.uint64(1)


def _fmix64_int(z: int) -> int:
    """splitmix64 finalizer of a Python int in [0, 2**64)."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def fmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer, elementwise on uint64 arrays (wrap-around arithmetic)."""
    z = z ^ (z >> _S30)
    z *= _MIX1_U
    z ^= z >> _S27
    z *= _MIX2_U
    z ^= z >> _S31
    return z


def _as_key_array(key: np.ndarray) -> np.ndarray:
    """An integer array key as uint64 (at least 1-d); ValueError if negative or not integer."""
    key = np.asarray(key)
    if not np.issubdtype(key.dtype, np.integer):
        raise ValueError(f"rng keys must be integers, got dtype {key.dtype}")
    if np.issubdtype(key.dtype, np.signedinteger) and key.size and key.min() < 0:
        raise ValueError("rng keys must be non-negative")
    return np.atleast_1d(key).astype(np.uint64, copy=False)


def _check_int(value: int, what: str) -> int:
    """A Python int in [0, 2**64), else ValueError."""
    value = int(value)
    if not 0 <= value <= MASK64:
        raise ValueError(f"{what} must be in [0, 2**64), got {value}")
    return value


def fold_key(state, key):
    """One step h -> fmix64(h + (key + 1) * GAMMA) for ints or uint64 arrays (broadcasting).

    Args:
        state: Python int or uint64 array, the hash of the seed and keys so far.
        key: Python int in [0, 2**64) or a non-negative integer array.

    Returns:
        Python int if both are ints, else a uint64 array of the broadcast shape (at least 1-d).
    """
    if isinstance(state, int) and isinstance(key, (int, np.integer)):
        key = _check_int(key, "rng key")
        return _fmix64_int((state + (key + 1) * GAMMA) & MASK64)
    state = np.uint64(state) if isinstance(state, int) else state
    key = np.uint64(_check_int(key, "rng key")) if isinstance(key, (int, np.integer)) else _as_key_array(key)
    with np.errstate(over="ignore"):
        return fmix64(np.atleast_1d(state + (key + _ONE_U) * _GAMMA_U))


@numba.njit(cache=True)
def _fold_range(state, count):
    out = np.empty(count, np.uint64)
    for i in range(count):
        z = state + np.uint64(i + 1) * _GAMMA_U
        z = (z ^ (z >> _S30)) * _MIX1_U
        z = (z ^ (z >> _S27)) * _MIX2_U
        out[i] = z ^ (z >> _S31)
    return out


def fold_range(state: int, count: int) -> np.ndarray:
    """fold_key(state, arange(count)) in one compiled pass: uint64 (count,), the same numbers."""
    return _fold_range(np.uint64(_check_int(state, "rng state")), int(count))


def seed_state(seed: int) -> int:
    """h_0 = fmix64(seed + GAMMA) for a seed in [0, 2**64)."""
    return _fmix64_int((_check_int(seed, "seed") + GAMMA) & MASK64)


def random_u64(seed: int, *keys) -> np.ndarray:
    """Counter-based 64-bit random numbers.

    Args:
        seed: int in [0, 2**64).
        *keys: ints in [0, 2**64) or non-negative integer arrays (broadcast together),
            e.g. (stage, segment, encoding index, try).

    Returns:
        uint64 array of the broadcast shape of the keys (shape () if all keys are ints).
    """
    h = seed_state(seed)
    shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
    for key in keys:
        h = fold_key(h, key)
    return np.asarray(h, dtype=np.uint64).reshape(shape)


def random_u32(seed: int, *keys) -> np.ndarray:
    """The high 32 bits of :func:`random_u64`, as uint32 of the keys' broadcast shape."""
    return (random_u64(seed, *keys) >> _S32).astype(np.uint32)
