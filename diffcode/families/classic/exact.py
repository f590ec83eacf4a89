"""The classic family's coding: stored pixels, or filtered channels LZMA-compressed (no network).

    image --channels: gray (R = G = B: one channel) | palette (<= 256 colours: a table and an index
            channel) | RGB (three channels, or G, R - G, B - G mod 256: `subtract-green`)
          --stored: the channels as they are
            lzma: a filter per channel (none, the left or upper neighbour, or LOCO-I's median edge
                  detector, residuals mod 256; indexes unfiltered), the bytes planar or interleaved,
                  then LZMA2 (raw stream, preset 9, a dictionary no larger than the data). Gray
                  tries every filter, RGB the RGB_CANDIDATES layouts, ranked by a fast LZMA2 pass
                  (over the middle RANK_PIXELS pixels' rows of a larger image)
          --> SIDE_INFO (method, transform, filter, layout, palette) + PIXEL_DATA sections

Exactness: every step is an integer map with an exact inverse (filters read only decoded pixels,
LZMA2 is lossless by construction), so any machine decodes the same pixels; the codec checks the
pixel hash anyway. A crafted header cannot make the decoder allocate beyond its size: stored data
must be exactly the channels' size, and LZMA2 expands at most MAX_RATIO times (7,000x measured for
100 MB of zeros), so `check_sizes` refuses a declared size the payload cannot hold.

Cost (issue 27): the encoder reads the pixels once to find a palette (stopping at a 257th colour),
filters and serializes a band of rows at a time, and ranks on a band of at most about RANK_PIXELS
pixels, so its time is linear in pixels (the preset 9 LZMA2 pass: about 5 s of CPU per megapixel of
a photo) and its memory the image plus the larger of about 250 MiB for LZMA2 (ENCODER_DICTIONARY)
and the stored copy of the pixels. The decoder's LZMA2 window still follows the data size
(`_filters`), never smaller than the encoder's.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass

import numpy as np

from ... import kernels
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
# images of more pixels rank those layouts on a band of about this many pixels from their middle rows
# (2^21: every image up to 1448x1448, 1920x1080 and Kodak's 768x512 among them, is ranked whole)
RANK_PIXELS = 1 << 21
# the encoder's LZMA2 dictionary at most. Preset 9 on 72 MiB of residuals (25 MP) took 250 MiB with it,
# 710 MiB with 64 MiB; a 25 MP mosaic of 64 distinct photos came out 0.04 % smaller, one repeating
# photos with R and G swapped 1.3 % larger (matches farther back than 16 MiB are lost). It binds only
# above 16 MiB of channel data (5.6 MP RGB), far above RANK_PIXELS
ENCODER_DICTIONARY = 1 << 24
# the mode decision's estimate of the file (`estimate`): SAMPLE_BANDS bands of rows spread over the image, about
# SAMPLE_PIXELS pixels in all (an image of at most twice that is its own sample)
SAMPLE_BANDS, SAMPLE_PIXELS = 4, 1 << 16


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
    palette (<= 256 colours: index channel and table, colours in ascending (R, G, B) order) or RGB
    (three channels)."""
    r, g, b = (image[..., c] for c in range(3))
    if np.array_equal(r, g) and np.array_equal(g, b):
        return "gray", b"", r[..., None].copy()
    keys = colour_keys(image)
    if len(keys) <= 256:
        table = np.stack([keys >> 16, keys >> 8 & 255, keys & 255], axis=-1).astype(np.uint8).tobytes()
        return "palette", table, palette_indexes(image, keys)
    return "rgb", b"", image


@kernels.jit("int64[::1](uint8[:, :, :])")
def colour_keys(image: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The colours of a uint8 (H, W, 3) image as sorted int64 keys R << 16 | G << 8 | B (the order of
    np.unique over the pixels), or, as soon as a 257th colour turns up, 257 unsorted keys (no palette):
    a photo stops within its first rows. Memory: a 16 MiB table of the keys seen."""
    seen = np.zeros(1 << 24, np.bool_)
    keys = np.empty(257, np.int64)
    n = 0
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            key = np.int64(image[i, j, 0]) << 16 | np.int64(image[i, j, 1]) << 8 | np.int64(image[i, j, 2])
            if not seen[key]:
                seen[key] = True
                keys[n] = key
                n += 1
                if n > 256:
                    return keys
    return np.sort(keys[:n])


@kernels.jit("uint8[:, :, ::1](uint8[:, :, :], int64[::1])")
def palette_indexes(image: np.ndarray, keys: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The uint8 (H, W, 1) index channel of a uint8 (H, W, 3) image whose colours are all among `keys`
    (`colour_keys`: at most 256): each pixel's position in `keys`."""
    index_of = np.zeros(1 << 24, np.uint8)
    for k in range(len(keys)):
        index_of[keys[k]] = k
    index = np.empty((image.shape[0], image.shape[1], 1), np.uint8)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            index[i, j, 0] = index_of[np.int64(image[i, j, 0]) << 16 | np.int64(image[i, j, 1]) << 8
                                      | np.int64(image[i, j, 2])]
    return index


def to_channels(transform: str, rgb: np.ndarray) -> np.ndarray:
    if transform == "subtract-green":
        r, g, b = (rgb[..., c] for c in range(3))
        return np.stack([g, r - g, b - g], axis=-1)  # uint8: the differences wrap mod 256
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


@kernels.jit(inline="always")
def med_prediction(x: np.ndarray, i: int, j: int) -> int:  # pragma: no cover - compiled
    """LOCO-I's median edge detector at (i, j) of a uint8 (H, W) plane from its left, upper and
    upper-left neighbours (0 at the corner, the left or upper neighbour on the first row or column)."""
    if i == 0 and j == 0:
        return 0
    if i == 0:
        return np.int64(x[i, j - 1])
    if j == 0:
        return np.int64(x[i - 1, j])
    a, b, c = np.int64(x[i, j - 1]), np.int64(x[i - 1, j]), np.int64(x[i - 1, j - 1])
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c


@kernels.jit("void(uint8[:, :], int64, uint8[:, :], uint8[:, :])")
def med_walk(values: np.ndarray, sign: int, predicted_from: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """out[i, j] = (values[i, j] + sign * the MED prediction from `predicted_from` at (i, j)) mod 256, in
    row-major order, for uint8 (H, W) planes: `med_residuals` (sign -1, predicted from the plane) and
    its inverse `med_restore` (sign +1, predicted from `out` itself: each prediction reads the pixels
    already restored) are one relation, pixel = residual + prediction, walked both ways."""
    h, w = values.shape
    for i in range(h):
        for j in range(w):
            out[i, j] = (np.int64(values[i, j]) + sign * med_prediction(predicted_from, i, j)) & 255


def med_residuals(plane: np.ndarray) -> np.ndarray:
    """(x - MED prediction) mod 256 of a uint8 (H, W) plane."""
    residuals = np.empty_like(plane)
    med_walk(plane, -1, plane, residuals)
    return residuals


def med_restore(residuals: np.ndarray) -> np.ndarray:
    """The inverse of `med_residuals`."""
    plane = np.empty_like(residuals)
    med_walk(residuals, 1, plane, plane)
    return plane


def apply_filter(name: str, channels: np.ndarray) -> np.ndarray:
    """Residuals mod 256 of uint8 (H, W, C) channels: none, left or upper neighbour, or MED (uint8
    arithmetic wraps mod 256)."""
    if name == "med":
        return np.stack([med_residuals(np.ascontiguousarray(channels[..., c])) for c in range(channels.shape[2])],
                        axis=-1)
    residuals = channels.copy()
    if name == "left":
        np.subtract(channels[:, 1:], channels[:, :-1], out=residuals[:, 1:])
    elif name == "up":
        np.subtract(channels[1:], channels[:-1], out=residuals[1:])
    return residuals


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


def _lzma(pieces, size: int, preset: int = 9) -> bytes:
    """Raw LZMA2 of the concatenated byte strings `pieces` (`size` bytes in all), the dictionary of
    `_filters` capped at ENCODER_DICTIONARY (the decoder's window is never smaller). liblzma's output
    does not depend on how its input is split (checked from 1-byte pieces up, presets 1 and 9)."""
    (lzma2,) = _filters(size, preset)
    lzma2["dict_size"] = min(lzma2["dict_size"], ENCODER_DICTIONARY)
    compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=[lzma2])
    return b"".join([compressor.compress(piece) for piece in pieces] + [compressor.flush()])


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


def band_rows(width: int) -> int:
    """Rows of about RANK_PIXELS pixels (at least one)."""
    return max(1, RANK_PIXELS // width)


def rank_rows(height: int, width: int) -> slice:
    """The rows the fast LZMA2 pass ranks the layouts on: every row of an image of up to RANK_PIXELS
    pixels, else a band from the middle of about RANK_PIXELS pixels."""
    if height * width <= RANK_PIXELS:
        return slice(0, height)
    rows = band_rows(width)
    top = (height - rows) // 2
    return slice(top, top + rows)


def residual_pieces(layout: Layout, channels: np.ndarray):
    """The bytes LZMA2 codes for `layout` of uint8 (H, W, C) channels, in pieces (a generator): each
    plane (planar) or all channels (interleaved) in bands of `band_rows`, each band filtered with
    the row above it (the filters read no further), so no more than a band's residuals exist at once."""
    height, width, depth = channels.shape
    rows = band_rows(width)
    for group in ([[c] for c in range(depth)] if layout.layout == "planar" else [list(range(depth))]):
        for top in range(0, height, rows):
            above = min(top, 1)
            band = to_channels(layout.transform, channels[top - above:top + rows])[..., group]
            yield serialize(layout, apply_filter(layout.filter, band)[above:])


def fast_size(layout: Layout, channels: np.ndarray) -> int:
    """The bytes of the fast LZMA2 pass (preset 1) over `layout` of the channels, plus its table."""
    return len(_lzma(residual_pieces(layout, channels), channels.size, 1)) + len(layout.table)


def sample(channels: np.ndarray) -> np.ndarray:
    """SAMPLE_BANDS bands of rows of (H, W, C) channels, evenly spread (centred on the 1/8, 3/8, 5/8 and 7/8 of
    the height), together about SAMPLE_PIXELS pixels: the whole image when it is no larger than twice that."""
    height, width = channels.shape[:2]
    rows = max(8, -(-SAMPLE_PIXELS // (SAMPLE_BANDS * width)))
    if height * width <= 2 * SAMPLE_PIXELS or SAMPLE_BANDS * rows >= height:
        return channels
    tops = [round((height - rows) * (i + 0.5) / SAMPLE_BANDS) for i in range(SAMPLE_BANDS)]
    return np.concatenate([channels[top:top + rows] for top in tops])


def estimate(image: np.ndarray) -> tuple[int, float]:
    """What the classic file of a uint8 (H, W, 3) image would cost, for a tenth of its time: (bytes, bits per
    subpixel of the sample). The lzma method on `sample` (its layouts ranked there, then preset 9), scaled to the
    whole image, or the stored pixels if fewer. Exact when the image is its own sample; on the Kodak images and
    eight 0.8-1.3 MP photos within -3 % and +7 % of the lzma payload, but far from it (0.7x to 6x) on drawn
    images whose LZMA2 matches reach beyond a band (text, gradients): the decision trusts it only where the
    sample is dense (`auto.outclassed`)."""
    bases = bases_of(image)
    options = [(option, channels.size, sample(channels)) for transform, table, channels in bases
               for option in candidates(transform, table)]
    best, size, part = min(options, key=lambda option: fast_size(option[0], option[2]))
    coded = len(_lzma(residual_pieces(best, part), part.size)) + len(best.table)
    stored = min(base[2].size + len(base[1]) for base in bases)
    return min(round(coded * size / part.size), stored), 8.0 * coded / part.size


def encode_payload(method: str, bases: list[tuple[str, bytes, np.ndarray]]) -> tuple[Layout, bytes]:
    """(the layout, the pixel-data payload) of `method` for an image's `bases_of`: stored keeps the
    channels as they are; lzma ranks the candidate layouts by a fast LZMA2 pass over `rank_rows` and
    codes the best over the whole image (both a band at a time: `residual_pieces`)."""
    if method == "stored":
        t, tab, ch = min(bases, key=lambda base: base[2].size + len(base[1]))
        layout = Layout(t, table=tab)
        return layout, serialize(layout, ch)
    options = [(o, ch) for t, tab, ch in bases for o in candidates(t, tab)]
    rows = rank_rows(*bases[0][2].shape[:2])
    best, channels = min(options, key=lambda option: fast_size(option[0], option[1][rows]))
    return best, _lzma(residual_pieces(best, channels), channels.size)


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
    """The smallest encoding of a uint8 (H, W, 3) image among `methods` (METHODS names; a tie keeps
    the first). The last method is coded first: lzma's pass, the costly one, runs before the stored
    copy of the pixels exists."""
    bases = bases_of(image)  # once: finding a palette reads every pixel
    best = None
    for method in reversed(list(methods)):
        layout, payload = encode_payload(method, bases)
        info = side_info(method, layout)
        encoded = Encoded(fields, [Section(container.SIDE_INFO, info, 8.0 * len(info)),
                                   Section(container.PIXEL_DATA, payload, 8.0 * len(payload))],
                          {"method": method, "transform": layout.transform, "filter": layout.filter,
                           "layout": layout.layout})
        if best is None or size_of(encoded) <= size_of(best):
            best = encoded
    return best


def size_of(encoded: Encoded) -> int:
    return sum(len(section.payload) for section in encoded.sections)


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
