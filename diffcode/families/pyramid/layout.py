"""The pyramid order and each subpixel's context, in exact integers (numpy only).

    level L (coarsest, at most CORE_PIXELS pixels): coded with a flat distribution
    level l = x[::2^l, ::2^l], from L-1 down to 0, given level l+1 = its (even, even) positions:
        phase 0: the (odd, odd) positions, seeing the 16 known pixels at odd offsets within +-3
        phase 1: the (even, odd) and (odd, even) positions, seeing 16 known pixels among
                 (even, even) and (odd, odd); (odd, even) targets are read in the transposed
                 image, so one context layout (and one network) serves both
    within a pixel: R, then G given R, then B given R and G

That is order 1 (`ORDERS`). Order 2 splits phase 1 in two: the (even, odd) positions, then the
(odd, even) ones, which see all eight neighbours (16 known pixels within +-2) with their own network.
A prior names its order; the order fixes the phases, their target groups and what each sees.

Every phase is one parallel pass: all its targets' contexts are known before it starts. The
encoder, the fit and the decoder all call `contexts` on the same known pixels, so the integers
the networks see are identical on both sides.

Units: `base12` is 12 x the mean of the available nearest known neighbours (the 4 diagonal ones
in phase 0, the 4 direct ones in phase 1); 12 is divisible by every possible count 1..4, so it is
an exact integer. Residuals are `12 * v - base12`, zero where the neighbour lies outside the
image (its mask bit is then 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ... import kernels
import numpy as np

CORE_PIXELS = 64  # the coarsest level has at most this many pixels
MAX_LEVELS = 8  # level one-hot width; deeper levels share the last slot
BASE_UNITS = 12  # base and residuals are in 1/12 of a grey level

# Offsets (drow, dcol) of the known pixels each phase sees; the first four form the base.
PHASE_OFFSETS = (
    ((-1, -1), (-1, 1), (1, -1), (1, 1), (-3, -3), (-3, -1), (-3, 1), (-3, 3), (-1, -3), (-1, 3),
     (1, -3), (1, 3), (3, -3), (3, -1), (3, 1), (3, 3)),
    ((0, -1), (0, 1), (-1, 0), (1, 0), (-2, -1), (-2, 1), (2, -1), (2, 1), (-1, -2), (-1, 2),
     (1, -2), (1, 2), (0, -3), (0, 3), (-3, 0), (3, 0)),
    # order 2's third phase, the (odd, even) targets: every pixel but the other (odd, even) ones is known
    ((0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1), (-1, -2), (-1, 2),
     (1, -2), (1, 2), (-2, -1), (-2, 1), (2, -1), (2, 1)),
)
# order 5's wider contexts: 8 more known pixels each, the nearest beyond the first 16 (phase 0: at +-5 across
# the 4x4 block; phase 1: filling the 7x7 box)
WIDE_OFFSETS = (
    PHASE_OFFSETS[0] + ((-5, -1), (-5, 1), (5, -1), (5, 1), (-1, -5), (1, -5), (-1, 5), (1, 5)),
    PHASE_OFFSETS[1] + ((-3, -2), (-3, 2), (3, -2), (3, 2), (-2, -3), (-2, 3), (2, -3), (2, 3)),
)
N_NEIGHBOURS = 16  # of orders 1-4
N_BASE = 4


@dataclass(frozen=True)
class Phase:
    """One parallel pass of a level: its target groups (row parity, column parity, transposed) and the
    offsets of the known pixels it sees (the first N_BASE form the base)."""

    groups: tuple[tuple[int, int, bool], ...]
    offsets: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Order:
    """The phases of every level, in coding order (`code` is written in prior files: never reuse one).

    chunk: 0, or the most targets coded together: each target group is then coded in chunks of at most
    `chunk` targets (row-major), each chunk's R, then G, then B, so the work per step, and the memory, stays
    bounded whatever the image's size.
    segment: 0 (one rANS stream), or the subpixels after which the stream's segment ends (`entropy.py`): a
    new segment starts before the next chunk once the current one holds at least this many, so an encoder
    holds one segment's symbols at a time (rANS codes them backwards), not the image's."""

    code: int
    phases: tuple[Phase, ...]
    chunk: int = 0
    segment: int = 0

    def __len__(self) -> int:
        return len(self.phases)

    @property
    def n_neighbours(self) -> int:
        """Known pixels every target of this order sees (the same in each phase)."""
        (n,) = {len(p.offsets) for p in self.phases}
        return n


ORDERS = {o.code: o for o in (
    # 1: (odd, odd), then (even, odd) and (odd, even) together, the latter read in the transposed image
    Order(1, (Phase(((1, 1, False),), PHASE_OFFSETS[0]), Phase(((0, 1, False), (1, 0, True)), PHASE_OFFSETS[1]))),
    # 2: (odd, odd), then (even, odd), then (odd, even) seeing all eight neighbours
    Order(2, (Phase(((1, 1, False),), PHASE_OFFSETS[0]), Phase(((0, 1, False),), PHASE_OFFSETS[1]),
              Phase(((1, 0, False),), PHASE_OFFSETS[2]))),
    # 3: order 1 in chunks of 2^16 targets (model 2 and later: bounded memory for large images)
    Order(3, (Phase(((1, 1, False),), PHASE_OFFSETS[0]), Phase(((0, 1, False), (1, 0, True)), PHASE_OFFSETS[1])),
          chunk=1 << 16),
    # 4: order 3 with the stream in segments of about 2^20 subpixels (encoder memory bounded too; issue 27)
    Order(4, (Phase(((1, 1, False),), PHASE_OFFSETS[0]), Phase(((0, 1, False), (1, 0, True)), PHASE_OFFSETS[1])),
          chunk=1 << 16, segment=1 << 20),
    # 5: order 4 with 24 known pixels per target (WIDE_OFFSETS)
    Order(5, (Phase(((1, 1, False),), WIDE_OFFSETS[0]), Phase(((0, 1, False), (1, 0, True)), WIDE_OFFSETS[1])),
          chunk=1 << 16, segment=1 << 20),
)}
ORDER_1 = ORDERS[1]
N_PHASES = len(ORDER_1)  # of order 1


def level_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """Sizes of levels 0 (the image) .. L (the coarsest, at most CORE_PIXELS pixels)."""
    sizes = [(height, width)]
    while sizes[-1][0] * sizes[-1][1] > CORE_PIXELS:
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def targets(height: int, width: int, phase: int, order: Order = ORDER_1) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Target positions of one phase of a level of size height x width.

    Returns:
        [(rows, cols, transposed)]: int64 index arrays (row-major order) into the level image;
        `transposed` groups are read in the transposed image (rows and cols are then swapped back).
    """
    out = []
    for row_parity, col_parity, transposed in order.phases[phase].groups:
        rows, cols = np.meshgrid(np.arange(row_parity, height, 2), np.arange(col_parity, width, 2), indexing="ij")
        out.append((rows.ravel(), cols.ravel(), transposed))
    return out


@dataclass
class Contexts:
    """What the networks see for N targets of one phase (all exact integers).

    residuals: int32 (N, 16, 3) 12*v - base12 of the known neighbours (0 where masked)
    mask: bool (N, 16) neighbour inside the image
    base12: int32 (N, 3)
    """

    residuals: np.ndarray
    mask: np.ndarray
    base12: np.ndarray

    def __len__(self) -> int:
        return len(self.base12)


@kernels.jit("Tuple((int32[:, :, ::1], boolean[:, ::1], int32[:, ::1]))(uint8[:, :, ::1], int64[::1], int64[::1], boolean, "
             "int64[:, ::1])")
def _gather(level, rows, cols, transposed, offsets):
    """Residuals, mask and base12 of targets (rows, cols) of a uint8 (h, w, 3) level (compiled, integers)."""
    h, w = level.shape[0], level.shape[1]
    n, k = rows.shape[0], offsets.shape[0]
    residuals = np.zeros((n, k, 3), np.int32)
    mask = np.zeros((n, k), np.bool_)
    base12 = np.zeros((n, 3), np.int32)
    for i in range(n):
        total = np.zeros(3, np.int64)
        count = 0
        for j in range(k):
            if transposed:  # offsets are in the transposed frame: (drow, dcol) moves (col, row)
                r, c = rows[i] + offsets[j, 1], cols[i] + offsets[j, 0]
            else:
                r, c = rows[i] + offsets[j, 0], cols[i] + offsets[j, 1]
            if 0 <= r < h and 0 <= c < w:
                mask[i, j] = True
                if j < N_BASE:
                    count += 1
                    for ch in range(3):
                        total[ch] += level[r, c, ch]
        for ch in range(3):
            base12[i, ch] = total[ch] * (BASE_UNITS // max(count, 1))
        for j in range(k):
            if mask[i, j]:
                if transposed:
                    r, c = rows[i] + offsets[j, 1], cols[i] + offsets[j, 0]
                else:
                    r, c = rows[i] + offsets[j, 0], cols[i] + offsets[j, 1]
                for ch in range(3):
                    residuals[i, j, ch] = BASE_UNITS * level[r, c, ch] - base12[i, ch]
    return residuals, mask, base12


def contexts(level: np.ndarray, phase: int, rows: np.ndarray, cols: np.ndarray, transposed: bool = False,
             order: Order = ORDER_1) -> Contexts:
    """Contexts of targets (rows, cols) of `level` (h, w, 3) pixels 0..255 (uint8; any other integer type is
    copied to uint8, as is a level that is not contiguous: pass a contiguous uint8 level when calling this per
    chunk).

    With `transposed`, the phase's offsets are read in the transposed image (rows and cols stay
    the level's own). Only the positions the phase may see are read (see PHASE_OFFSETS), so
    unknown pixels of `level` may hold anything.
    """
    residuals, mask, base12 = _gather(np.ascontiguousarray(level, np.uint8), np.ascontiguousarray(rows, np.int64),
                                      np.ascontiguousarray(cols, np.int64), transposed,
                                      np.array(order.phases[phase].offsets, np.int64))
    return Contexts(residuals, mask, base12)


def chunks(height: int, width: int, phase: int, order: Order = ORDER_1
           ) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """(rows, cols, transposed) of every target group of a phase, or of every chunk of one (`Order.chunk`), in
    coding order: the row-major order of `targets`, each chunk's positions computed only when it is reached (so
    nothing the size of the image is built)."""
    for row_parity, col_parity, transposed in order.phases[phase].groups:
        n_rows, n_cols = max(0, (height - row_parity + 1) // 2), max(0, (width - col_parity + 1) // 2)
        n = n_rows * n_cols
        step = order.chunk or max(n, 1)
        for start in range(0, max(n, 1), step):
            index = np.arange(start, min(start + step, n), dtype=np.int64)
            yield row_parity + 2 * (index // max(n_cols, 1)), col_parity + 2 * (index % max(n_cols, 1)), transposed


def group_contexts(level: np.ndarray, phase: int,
                   order: Order = ORDER_1) -> Iterator[tuple[np.ndarray, np.ndarray, Contexts]]:
    """(rows, cols, contexts) of every chunk of a phase (`chunks`), in coding order; each chunk's contexts are
    gathered only when it is reached."""
    if level.dtype != np.uint8 or not level.flags.c_contiguous:
        level = np.ascontiguousarray(level, np.uint8)  # once, not per chunk
    for rows, cols, transposed in chunks(level.shape[0], level.shape[1], phase, order):
        yield rows, cols, contexts(level, phase, rows, cols, transposed, order)


def pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Levels 0..L of an (H, W, 3) image: level l = image[::2^l, ::2^l]."""
    levels = [image]
    for _ in level_sizes(*image.shape[:2])[1:]:
        levels.append(levels[-1][::2, ::2])
    return levels
