"""Pixels <-> the error-table stream, in the pyramid order (exact; numpy and numba only).

    coarsest level: every subpixel 8 bits flat, row-major, R G B
    level L-1 .. 0, phase 0 then 1, each chunk of each target group (layout.chunks): contexts (layout)
        -> network trunk (exact) -> channel R: its distribution's parameters -> code R; G sees R; B sees R and G
    the stream: one rANS segment, or (orders with `segment`) a new segment before each chunk once the
        current one holds `segment` subpixels

Encoder and decoder run the same function, `_walk`, with a callback that either reads the true
pixels (encoding) or decodes them from the stream (decoding), so they cannot drift apart. Memory is
the image's own bytes (uint8 levels) plus one chunk's work and, in the encoder, one segment's
symbols and parameters: it does not grow with the image beyond its pixels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import ChecksumError
from . import entropy, layout, spec
from .network import ExactNet, input_integers, own_integers
from .online import Online, Settings

# (parameters (2 | 5, N) (`entropy.checked`), context ids or None, where) -> symbols; one call per channel of a
# target group (see `_walk`)
Code = Callable[[np.ndarray, np.ndarray | None, tuple], np.ndarray]


def _walk(height: int, width: int, net: ExactNet, code: Code, online: Online | None = None,
          end_segment: Callable[[], None] | None = None, progress: Callable[[int, int], None] | None = None
          ) -> np.ndarray:
    """Visit every subpixel in decoding order; `code(params, ctx, where)` returns its values.

    `where` is (level, rows, cols, channel), or (L, None, None, None) for the coarsest level; `ctx` the online
    adaptation's context ids of the subpixels (`online.contexts`) when `online` is given, else None.
    `end_segment()` is called where the stream's segment ends (`Order.segment`), `progress(done, total)` after
    every chunk, in subpixels. Returns the uint8 (H, W, 3) image.
    """
    sizes = layout.level_sizes(height, width)
    segment = net.order.segment
    core_h, core_w = sizes[-1]
    n = core_h * core_w * 3
    total, done, in_segment = 3 * height * width, n, n
    known = code(np.stack([np.zeros(n, np.int64), np.full(n, entropy.FLAT, np.int64)]), None,
                 (len(sizes) - 1, None, None, None))
    known = known.astype(np.uint8).reshape(core_h, core_w, 3)
    for level in range(len(sizes) - 2, -1, -1):
        image = np.zeros(sizes[level] + (3,), np.uint8)
        image[::2, ::2] = known
        for phase in range(len(net.order)):
            for rows, cols, ctx in layout.group_contexts(image, phase, net.order):
                if len(ctx) == 0:
                    continue
                if segment and in_segment >= segment:
                    end_segment()
                    in_segment = 0
                hidden = net.hidden(phase, input_integers(ctx, level))
                pixel = np.zeros((len(ctx), 3), np.int32)
                previous = None
                for c in range(3):
                    own = own_integers(pixel, ctx.base12)
                    params = net.channel(phase, c, hidden, own, ctx.base12)
                    loc12, scale = entropy.centre(params)
                    ids = None
                    if online is not None:
                        neighbours = np.where(ctx.mask[:, :layout.N_BASE],
                                              ctx.residuals[:, :layout.N_BASE, c] + ctx.base12[:, c:c + 1], 0)
                        ids = online.contexts(level, phase, c, loc12, scale, neighbours, previous)
                    pixel[:, c] = code(params, ids, (level, rows, cols, c))
                    previous = 12 * pixel[:, c].astype(np.int64) - loc12
                image[rows, cols] = pixel
                done, in_segment = done + 3 * len(ctx), in_segment + 3 * len(ctx)
                if progress:
                    progress(done, total)
        known = image
    return known


assert -(1 << 15) <= spec.LOC_MIN and spec.LOC_MAX < 1 << 15 and entropy.SINGLE < 1 << 15  # `_Segments.add`'s int16


class _Segments:
    """The encoder's stream: the symbols and parameters of the current segment, coded (backwards) when it ends,
    and each coded segment decoded at once under the same parameters, so a stream that would not read back
    is never returned (ChecksumError)."""

    def __init__(self):
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.streams: list[bytes] = []
        self.bits = 0.0

    def add(self, symbols: np.ndarray, params: np.ndarray) -> None:
        # int16 holds every parameter (locations -384..3444, scale indexes 0..64, weights 0..256): a quarter
        # of the memory of int64 for the segment's subpixels
        self.parts.append((np.asarray(symbols, np.uint8).ravel(), entropy.checked(params).astype(np.int16)))

    def end(self) -> None:
        symbols = np.concatenate([p[0] for p in self.parts])
        params = entropy.checked(np.concatenate([p[1] for p in self.parts], 1))
        self.parts.clear()
        stream, bits = entropy.encode(symbols, params)
        decoder = entropy.Decoder(stream)
        if not np.array_equal(decoder.decode(params), symbols):
            raise ChecksumError("internal error: the error table reads back differently from what was coded")
        decoder.finish()
        self.streams.append(stream)
        self.bits += bits


def encode(image: np.ndarray, net: ExactNet, online: Settings | None = None,
           progress: Callable[[int, int], None] | None = None) -> tuple[bytes, float]:
    """uint8 (H, W, 3) -> (error-table stream, ideal bits of the integer model)."""
    stream, bits, _, _ = encode_with_model(image, net, (online,), progress)
    return stream, bits


def encode_with_model(image: np.ndarray, net: ExactNet, candidates: tuple[Settings | None, ...] = (None,),
                      progress: Callable[[int, int], None] | None = None
                      ) -> tuple[bytes, float, np.ndarray, int]:
    """`encode` under each candidate online adaptation (None: none) in one walk of the network, keeping the
    smallest stream (ties: the first). Returns (stream, its ideal bits, the image its walk rebuilt from the
    coded symbols (uint8 (H, W, 3)), which a decode would give, the index of its candidate). Every segment of
    every candidate's stream has been read back under the parameters it was coded with (`_Segments`)."""
    levels = layout.pyramid(image)
    states = [Online(settings) if settings else None for settings in candidates]
    segments = [_Segments() for _ in candidates]
    adapted = [state for state in states if state is not None]
    if len({state.settings.level_classes for state in adapted}) > 1:
        raise ValueError("the candidate online adaptations must share their contexts (level_classes)")

    def record(params, ids, where):
        level, rows, cols, c = where
        symbols = levels[level].reshape(-1) if rows is None else levels[level][rows, cols, c]
        for state, part in zip(states, segments):
            part.add(symbols, params if state is None or ids is None else state.adapt(symbols, params, ids))
        return symbols

    def end():
        for part in segments:
            part.end()

    walked = _walk(image.shape[0], image.shape[1], net, record, adapted[0] if adapted else None, end, progress)
    end()
    streams = [b"".join(part.streams) for part in segments]
    best = min(range(len(streams)), key=lambda i: (len(streams[i]), i))
    return streams[best], segments[best].bits, walked, best


def decode(height: int, width: int, stream: bytes, net: ExactNet, online: Settings | None = None,
           progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, float]:
    """The error-table stream -> (uint8 (H, W, 3), ideal bits); CorruptFileError if the stream is damaged."""
    decoder = entropy.Decoder(stream)
    state = Online(online) if online else None
    bits = [0.0]

    def read(params, ids, where):
        if ids is None:
            symbols = decoder.decode(params)
        else:
            symbols, params = state.decode(decoder, params, ids)
        bits[0] += float(entropy.bits(symbols, params).sum())
        return symbols

    image = _walk(height, width, net, read, state, decoder.next_segment, progress)
    decoder.finish()
    return image, bits[0]
