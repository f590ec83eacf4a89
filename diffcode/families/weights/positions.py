"""Per-image weight storage: positions in [0, 1) on dithered grids of n points, and width levels.

A per-image network whose every weight is an interval encoding (the weights family, report 4.2)
stores, for each weight, the index of the grid point nearest its interval's center on a grid of
n = 1/width points shifted by a shared random offset (`dither.offsets(N, seed, key)`, the same on
both sides), all indexes in one mixed-radix stream (`dither.pack_uniform`): the stream pays
sum log2 n bits up to its last byte. Widths come from a table of levels, one level index per group
of weights, sent as side information (`diffcode.families.weights.side_info`).

    centers float (N,) in [0, 1), n int64 (N,) --encode_positions--> bytes, positions uint32 (N,)
    bytes, n --decode_positions--> the same positions uint32 (N,) (a position v means v / 2^32)
"""

from __future__ import annotations

import numpy as np

from ...storage import dither

# n = HALF_BIT_LEVELS[j] grid points per interval: 1, then round(2^((j+1)/2)) = 2, 3, 4, 6, 8, 11, ... 4096
HALF_BIT_LEVELS = np.array([1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024,
                            1448, 2048, 2896, 4096], dtype=np.int64)


def encode_positions(centers: np.ndarray, n: np.ndarray, seed: int, key: int) -> tuple[bytes, np.ndarray]:
    """Dithered storage of centers float (N,) in [0, 1) on grids of n points: (bytes, positions uint32).

    key: the offsets' stage key (a family's own constant, so two families never share offsets).
    """
    c = (np.round(np.asarray(centers, np.float64) * 2.0**32).astype(np.int64) % (1 << 32)).astype(np.uint32)
    u = dither.offsets(len(n), seed, key)
    k = dither.nearest_index(c, u, n)
    return dither.pack_uniform(k, n), dither.grid_values(u, k, n).astype(np.uint32)


def decode_positions(data: bytes, n: np.ndarray, seed: int, key: int) -> np.ndarray:
    """The positions uint32 (N,) that `encode_positions` stored in `data`."""
    k = dither.unpack_uniform(bytes(data), n)
    return dither.grid_values(dither.offsets(len(n), seed, key), k, n).astype(np.uint32)
