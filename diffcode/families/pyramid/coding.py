"""Pixels <-> the error-table stream, in the pyramid order (exact; numpy and numba only).

    coarsest level: every subpixel 8 bits flat, row-major, R G B
    level L-1 .. 0, phase 0 then 1, each target group: contexts (layout) -> network trunk (exact)
        -> channel R: (loc12, scale) -> code R; G sees R; B sees R and G

Encoder and decoder run the same function, `_walk`, with a callback that either reads the true
pixels (encoding) or decodes them from the stream (decoding), so they cannot drift apart.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import ChecksumError
from . import entropy, layout
from .network import ExactNet, input_integers, own_integers
from .online import Online, Settings

# (loc12, scale, context ids or None, where) -> symbols; one call per channel of a target group (see `_walk`)
Code = Callable[[np.ndarray, np.ndarray, np.ndarray | None, tuple], np.ndarray]


def _walk(height: int, width: int, net: ExactNet, code: Code, online: Online | None = None) -> np.ndarray:
    """Visit every subpixel in decoding order; `code(loc12, scale, ctx, where)` returns its values.

    `where` is (level, rows, cols, channel), or (L, None, None, None) for the coarsest level; `ctx` the online
    adaptation's context ids of the subpixels (`online.contexts`) when `online` is given, else None.
    Returns the int32 (H, W, 3) image.
    """
    sizes = layout.level_sizes(height, width)
    core_h, core_w = sizes[-1]
    n = core_h * core_w * 3
    known = code(np.zeros(n, np.int64), np.full(n, entropy.FLAT, np.int64), None,
                 (len(sizes) - 1, None, None, None))
    known = known.astype(np.int32).reshape(core_h, core_w, 3)
    for level in range(len(sizes) - 2, -1, -1):
        image = np.zeros(sizes[level] + (3,), np.int32)
        image[::2, ::2] = known
        for phase in range(len(net.order)):
            for rows, cols, ctx in layout.group_contexts(image, phase, net.order):
                if len(ctx) == 0:
                    continue
                hidden = net.hidden(phase, input_integers(ctx, level))
                pixel = np.zeros((len(ctx), 3), np.int32)
                previous = None
                for c in range(3):
                    own = own_integers(pixel, ctx.base12)
                    loc12, scale = net.channel(phase, c, hidden, own, ctx.base12)
                    ids = None
                    if online is not None:
                        neighbours = np.where(ctx.mask[:, :layout.N_BASE],
                                              ctx.residuals[:, :layout.N_BASE, c] + ctx.base12[:, c:c + 1], 0)
                        ids = online.contexts(level, phase, c, loc12, scale, neighbours, previous)
                    pixel[:, c] = code(loc12, scale, ids, (level, rows, cols, c))
                    previous = 12 * pixel[:, c].astype(np.int64) - loc12
                image[rows, cols] = pixel
        known = image
    return known


def encode(image: np.ndarray, net: ExactNet, online: Settings | None = None) -> tuple[bytes, float]:
    """uint8 (H, W, 3) -> (error-table stream, ideal bits of the integer model)."""
    stream, bits, _, _ = encode_with_model(image, net, online)
    return stream, bits


def encode_with_model(image: np.ndarray, net: ExactNet, online: Settings | None = None
                      ) -> tuple[bytes, float, tuple[np.ndarray, ...], np.ndarray]:
    """`encode`, also returning what it coded in decoding order, (symbols, loc12, scale) after any online
    correction (`online`: its settings, None: none), and the image its walk rebuilt from those symbols (uint8 (H, W, 3)), which a decode would give."""
    levels = layout.pyramid(image)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    state = Online(online) if online else None

    def record(loc12, scale, ids, where):
        level, rows, cols, c = where
        symbols = levels[level].reshape(-1) if rows is None else levels[level][rows, cols, c]
        if ids is not None:
            loc12, scale = state.adapt(symbols, loc12, scale, ids)
        parts.append((symbols, loc12, scale))
        return symbols

    walked = _walk(image.shape[0], image.shape[1], net, record, state)
    symbols, loc12, scale = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return *entropy.encode(symbols, loc12, scale), (symbols, loc12, scale), walked.astype(np.uint8)


def replay(stream: bytes, symbols: np.ndarray, loc12: np.ndarray, scale: np.ndarray) -> float:
    """Check an encoder's own stream: decoded under the model it was coded with, it must give back
    `symbols` (in decoding order) and end where it should. Returns its ideal bits. The walk's model
    is a deterministic function of the decoded values, so equal symbols mean `decode` would run
    the same walk; ChecksumError otherwise."""
    decoder = entropy.Decoder(stream)
    decoded = decoder.decode(loc12, scale)
    decoder.finish()
    if not np.array_equal(decoded, np.asarray(symbols, np.uint8).ravel()):
        raise ChecksumError("internal error: the error table reads back differently from what was coded")
    return float(entropy.bits(symbols, loc12, scale).sum())


def decode(height: int, width: int, stream: bytes, net: ExactNet, online: Settings | None = None
           ) -> tuple[np.ndarray, float]:
    """The error-table stream -> (uint8 (H, W, 3), ideal bits); CorruptFileError if the stream is damaged."""
    decoder = entropy.Decoder(stream)
    state = Online(online) if online else None
    bits = [0.0]

    def read(loc12, scale, ids, where):
        if ids is None:
            symbols = decoder.decode(loc12, scale)
        else:
            symbols, loc12, scale = state.decode(decoder, loc12, scale, ids)
        bits[0] += float(entropy.bits(symbols, loc12, scale).sum())
        return symbols

    image = _walk(height, width, net, read, state)
    decoder.finish()
    return image.astype(np.uint8), bits[0]
