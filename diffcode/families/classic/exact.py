"""The classic family's coding: stored pixels, or filtered channels LZMA-compressed (no network).

    image --channels: gray (R = G = B: one channel) | palette (<= 256 colours: a table and an index
            channel) | RGB (three channels, or G, R - G, B - G mod 256: `subtract-green`)
          --stored: the channels as they are
            lzma: a filter per channel (none, the left or upper neighbour, or LOCO-I's median edge
                  detector, residuals mod 256; indexes unfiltered), the bytes planar or interleaved,
                  then LZMA2 (raw stream, preset 9, a dictionary no larger than the data). Gray
                  tries every filter, RGB the RGB_CANDIDATES layouts, ranked by a fast LZMA2 pass
          --> SIDE_INFO (method, transform, filter, layout, palette) + PIXEL_DATA sections

Exactness: every step is an integer map with an exact inverse (filters read only decoded pixels,
LZMA2 is lossless by construction), so any machine decodes the same pixels; the codec checks the
pixel hash anyway. A crafted header cannot make the decoder allocate beyond its size: stored data
must be exactly the channels' size, and LZMA2 expands at most MAX_RATIO times (7,000x measured for
100 MB of zeros), so `check_sizes` refuses a declared size the payload cannot hold.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass

import numba
import numpy as np

from ...errors import CorruptFileError
from ...storage import container
from .. import Decoded, Encoded, Section

METHODS = {0: "stored", 1: "lzma"}  # codes written in the side information, never reused
TRANSFORMS = {0: "rgb", 1: "gray", 2: "palette", 3: "subtract-green"}
FILTERS = {0: "none", 1: "left", 2: "up", 3: "med"}
LAYOUTS = {0: "planar", 1: "interleaved"}
MAX_RATIO, RATIO_SLACK = 8192, 1 << 16  # LZMA2 output bytes <= MAX_RATIO * input + RATIO_SLACK
# the (transform, filter, layout) tried for an image of more than 256 colours, ranked by a fast LZMA2
# pass; gray planes try every filter, palette indexes none (indexes are not ordinal)
RGB_CANDIDATES = (("subtract-green", "med", "planar"), ("rgb", "none", "interleaved"), ("rgb", "left", "interleaved"),
                  ("rgb", "up", "interleaved"), ("subtract-green", "med", "interleaved"))


@dataclass(frozen=True)
class Layout:
    """How the pixels become the bytes LZMA2 codes: a colour transform, a filter per channel, and the
    order of the bytes (planes one after another, or pixels with their channels side by side)."""

    transform: str
    filter: str = "none"
    layout: str = "planar"
    table: bytes = b""  # the palette (transform palette)


def channels_of(image: np.ndarray) -> tuple[str, bytes, np.ndarray]:
    """(transform, palette table, uint8 (H, W, C)) of a uint8 (H, W, 3) image: gray (one channel),
    palette (<= 256 colours: index channel and table) or RGB (three channels)."""
    r, g, b = (image[..., c] for c in range(3))
    if np.array_equal(r, g) and np.array_equal(g, b):
        return "gray", b"", r[..., None].copy()
    colours, index = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
    if len(colours) <= 256:
        return "palette", colours.astype(np.uint8).tobytes(), index.reshape(*image.shape[:2], 1).astype(np.uint8)
    return "rgb", b"", image


def to_channels(transform: str, rgb: np.ndarray) -> np.ndarray:
    if transform == "subtract-green":
        r, g, b = (rgb[..., c] for c in range(3))
        return np.stack([g, r - g, b - g], axis=-1).astype(np.uint8)
    return rgb


def image_of(layout: Layout, channels: np.ndarray) -> np.ndarray:
    """The uint8 (H, W, 3) image of decoded channels (the inverse of `channels_of` and `to_channels`)."""
    if layout.transform == "gray":
        return np.repeat(channels, 3, axis=2)
    if layout.transform == "palette":
        colours = np.frombuffer(layout.table, np.uint8).reshape(-1, 3)
        if channels.max(initial=0) >= len(colours):
            raise CorruptFileError("corrupt classic file: a palette index past the table")
        return colours[channels[..., 0]]
    if layout.transform == "subtract-green":
        g, rg, bg = (channels[..., c] for c in range(3))
        return np.stack([rg + g, g, bg + g], axis=-1).astype(np.uint8)
    return channels


def med_residuals(plane: np.ndarray) -> np.ndarray:
    """(x - MED prediction) mod 256 of a uint8 (H, W) plane (prediction 0 at the corner, the left or
    upper neighbour on the first row or column)."""
    x = plane.astype(np.int16)
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    c = np.zeros_like(x)
    a[:, 1:], b[1:, :], c[1:, 1:] = x[:, :-1], x[:-1, :], x[:-1, :-1]
    prediction = np.where(c >= np.maximum(a, b), np.minimum(a, b), np.where(c <= np.minimum(a, b), np.maximum(a, b),
                                                                             a + b - c))
    prediction[0, 1:] = x[0, :-1]
    prediction[1:, 0] = x[:-1, 0]
    return ((x - prediction) & 255).astype(np.uint8)


@numba.njit(cache=True)
def med_restore(residuals: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The inverse of `med_residuals` (a row-major pass: each prediction reads decoded pixels)."""
    h, w = residuals.shape
    x = np.empty((h, w), np.uint8)
    for i in range(h):
        for j in range(w):
            if i == 0 and j == 0:
                p = 0
            elif i == 0:
                p = np.int64(x[i, j - 1])
            elif j == 0:
                p = np.int64(x[i - 1, j])
            else:
                a, b, c = np.int64(x[i, j - 1]), np.int64(x[i - 1, j]), np.int64(x[i - 1, j - 1])
                if c >= max(a, b):
                    p = min(a, b)
                elif c <= min(a, b):
                    p = max(a, b)
                else:
                    p = a + b - c
            x[i, j] = (np.int64(residuals[i, j]) + p) & 255
    return x


def apply_filter(name: str, channels: np.ndarray) -> np.ndarray:
    """Residuals mod 256 of uint8 (H, W, C) channels: none, left or upper neighbour, or MED."""
    x = channels.astype(np.int16)
    if name == "left":
        x[:, 1:] -= channels[:, :-1]
    elif name == "up":
        x[1:] -= channels[:-1]
    elif name == "med":
        return np.stack([med_residuals(channels[..., c]) for c in range(channels.shape[2])], axis=-1)
    return (x & 255).astype(np.uint8)


def undo_filter(name: str, residuals: np.ndarray) -> np.ndarray:
    if name == "left":
        return np.cumsum(residuals, axis=1, dtype=np.uint8)  # sums wrap mod 256: the exact inverse
    if name == "up":
        return np.cumsum(residuals, axis=0, dtype=np.uint8)
    if name == "med":
        return np.stack([med_restore(np.ascontiguousarray(residuals[..., c])) for c in range(residuals.shape[2])],
                        axis=-1)
    return residuals


def serialize(layout: Layout, residuals: np.ndarray) -> bytes:
    return (np.moveaxis(residuals, 2, 0) if layout.layout == "planar" else residuals).tobytes()


def deserialize(layout: Layout, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = shape
    array = np.frombuffer(data, np.uint8)
    return np.ascontiguousarray(np.moveaxis(array.reshape(c, h, w), 0, 2) if layout.layout == "planar"
                                else array.reshape(h, w, c))


def _filters(size: int, preset: int = 9) -> list[dict]:
    dictionary = max(1 << 16, min(1 << 26, 1 << max(size - 1, 1).bit_length()))
    return [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dictionary}]


def _lzma(data: bytes, preset: int = 9) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_filters(len(data), preset))


def candidates(transform: str, table: bytes) -> list[Layout]:
    if transform == "gray":
        return [Layout("gray", f) for f in FILTERS.values()]
    if transform == "palette":
        return [Layout("palette", table=table)]
    return [Layout(*c) for c in RGB_CANDIDATES]


def bases_of(image: np.ndarray) -> list[tuple[str, bytes, np.ndarray]]:
    """The (transform, table, channels) the methods choose from: `channels_of`, and for a palette
    also plain RGB (its table can cost more than it saves on a small image)."""
    transform, table, channels = channels_of(image)
    return [(transform, table, channels)] + ([("rgb", b"", image)] if transform == "palette" else [])


def encode_payload(method: str, bases: list[tuple[str, bytes, np.ndarray]]) -> tuple[Layout, bytes]:
    """(the layout, the pixel-data payload) of `method` for an image's `bases_of`: stored keeps the
    channels as they are; lzma ranks the candidate layouts by a fast LZMA2 pass and codes the best."""
    if method == "stored":
        t, tab, ch = min(bases, key=lambda base: base[2].size + len(base[1]))
        layout = Layout(t, table=tab)
        return layout, serialize(layout, ch)
    options = [(o, ch) for t, tab, ch in bases for o in candidates(t, tab)]
    data = [serialize(o, apply_filter(o.filter, to_channels(o.transform, ch))) for o, ch in options]
    best = min(range(len(options)), key=lambda i: len(_lzma(data[i], 1)) + len(options[i][0].table)
               if len(options) > 1 else 0)
    return options[best][0], _lzma(data[best])


def decode_payload(method: str, layout: Layout, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    size = int(np.prod(shape))
    if method == "stored":
        data = payload
    else:
        inflater = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_filters(size))
        try:
            data = inflater.decompress(payload, max_length=size + 1)
        except lzma.LZMAError as exc:
            raise CorruptFileError(f"corrupt classic file: the LZMA stream does not decode ({exc})") from exc
        if not inflater.eof or inflater.unused_data:
            raise CorruptFileError("corrupt classic file: the LZMA stream is truncated or has extra bytes")
    if len(data) != size:
        raise CorruptFileError(f"corrupt classic file: {len(data)} pixel bytes, the image needs {size}")
    return undo_filter(layout.filter, deserialize(layout, data, shape))


def _code(table: dict[int, str], name: str) -> int:
    return next(code for code, value in table.items() if value == name)


def side_info(method: str, layout: Layout) -> bytes:
    """method, transform, filter, layout (a byte each), then for a palette: its size - 1 and table."""
    head = bytes([_code(METHODS, method), _code(TRANSFORMS, layout.transform), _code(FILTERS, layout.filter),
                  _code(LAYOUTS, layout.layout)])
    return head + (bytes([len(layout.table) // 3 - 1]) + layout.table if layout.transform == "palette" else b"")


def read_side_info(payload: bytes) -> tuple[str, Layout]:
    tables = (METHODS, TRANSFORMS, FILTERS, LAYOUTS)
    if len(payload) < 4 or any(code not in table for code, table in zip(payload, tables)):
        raise CorruptFileError("corrupt classic file: unknown codes in the side information")
    method, transform, filter_, order = (table[code] for code, table in zip(payload, tables))
    palette = transform == "palette" and len(payload) > 4
    expected = 5 + 3 * (payload[4] + 1) if palette else 4
    if len(payload) != expected or (transform == "palette") != palette:
        raise CorruptFileError(f"corrupt classic file: side information of {len(payload)} bytes, expected {expected}")
    return method, Layout(transform, filter_, order, payload[5:] if palette else b"")


def n_channels(transform: str) -> int:
    return 1 if transform in ("gray", "palette") else 3


def encode(image: np.ndarray, methods, fields: dict) -> Encoded:
    """The smallest encoding of a uint8 (H, W, 3) image among `methods` (METHODS names)."""
    bases = bases_of(image)  # once: np.unique over the pixels is the slow part of finding a palette
    tried = []
    for method in methods:
        layout, payload = encode_payload(method, bases)
        info = side_info(method, layout)
        tried.append(Encoded(fields, [Section(container.SIDE_INFO, info, 8.0 * len(info)),
                                      Section(container.PIXEL_DATA, payload, 8.0 * len(payload))],
                             {"method": method, "transform": layout.transform, "filter": layout.filter,
                              "layout": layout.layout}))
    return min(tried, key=lambda e: sum(len(s.payload) for s in e.sections))


def check_sizes(header: container.Header, sections: list[tuple[int, bytes]]) -> None:
    """The layout, and the declared size against what the pixel data can hold (module docstring)."""
    if [kind for kind, _ in sections] != [container.SIDE_INFO, container.PIXEL_DATA]:
        raise CorruptFileError(f"unexpected section layout {[kind for kind, _ in sections]} for a classic file")
    method, layout = read_side_info(sections[0][1])
    need = n_channels(layout.transform) * header.height * header.width
    have = len(sections[1][1])
    if (method == "stored" and have != need) or (method == "lzma" and need > MAX_RATIO * have + RATIO_SLACK):
        raise CorruptFileError(f"corrupt classic file: {have} bytes of {method} pixel data cannot hold a "
                               f"{header.width}x{header.height} image")


def decode(header: container.Header, sections: list[tuple[int, bytes]]) -> Decoded:
    check_sizes(header, sections)
    method, layout = read_side_info(sections[0][1])
    shape = (header.height, header.width, n_channels(layout.transform))
    image = image_of(layout, decode_payload(method, layout, sections[1][1], shape))
    return Decoded(image, [Section(kind, payload, 8.0 * len(payload)) for kind, payload in sections],
                   {"method": method, "transform": layout.transform, "filter": layout.filter, "layout": layout.layout})
