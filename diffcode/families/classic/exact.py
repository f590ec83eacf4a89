"""The classic family's coding: stored pixels, or planes predicted and LZMA-compressed (no network).

    image --planes: gray (R = G = B: one plane) | palette (<= 256 colours: a table and an index
            plane) | RGB (G, R - G, B - G, mod 256)
          --stored: the planes as they are
            lzma: gray and RGB planes as residuals of the median edge detector (LOCO-I's MED,
                  mod 256; indexes as they are), then LZMA2 (raw stream, preset 9, a dictionary
                  no larger than the data)
          --> SIDE_INFO (method, transform, palette) + PIXEL_DATA sections

Exactness: every step is an integer map with an exact inverse (MED reads only decoded pixels,
LZMA2 is lossless by construction), so any machine decodes the same pixels; the codec checks the
pixel hash anyway. A crafted header cannot make the decoder allocate beyond its size: stored data
must be exactly the planes' size, and LZMA2 expands at most MAX_RATIO times (7,000x measured for
100 MB of zeros), so `check_sizes` refuses a declared size the payload cannot hold.
"""

from __future__ import annotations

import lzma

import numba
import numpy as np

from ...errors import CorruptFileError
from ...storage import container
from .. import Decoded, Encoded, Section

METHODS = {0: "stored", 1: "lzma"}  # codes written in the side information, never reused
TRANSFORMS = {0: "rgb", 1: "gray", 2: "palette"}
MAX_RATIO, RATIO_SLACK = 8192, 1 << 16  # LZMA2 output bytes <= MAX_RATIO * input + RATIO_SLACK


def planes_of(image: np.ndarray) -> tuple[str, bytes, np.ndarray]:
    """(transform, palette table bytes, uint8 planes (P, H, W)) of a uint8 (H, W, 3) image."""
    r, g, b = (image[..., c] for c in range(3))
    if np.array_equal(r, g) and np.array_equal(g, b):
        return "gray", b"", r[None].copy()
    flat = image.reshape(-1, 3)
    colours, index = np.unique(flat, axis=0, return_inverse=True)
    if len(colours) <= 256:
        return "palette", colours.astype(np.uint8).tobytes(), index.reshape(1, *image.shape[:2]).astype(np.uint8)
    return "rgb", b"", np.stack([g, r - g, b - g]).astype(np.uint8)


def image_of(transform: str, table: bytes, planes: np.ndarray) -> np.ndarray:
    """The inverse of `planes_of`."""
    if transform == "gray":
        return np.repeat(planes[0][..., None], 3, axis=2)
    if transform == "palette":
        colours = np.frombuffer(table, np.uint8).reshape(-1, 3)
        if planes.max(initial=0) >= len(colours):
            raise CorruptFileError("corrupt classic file: a palette index past the table")
        return colours[planes[0]]
    g, rg, bg = planes.astype(np.uint8)
    return np.stack([rg + g, g, bg + g], axis=-1).astype(np.uint8)


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


def _filters(size: int) -> list[dict]:
    dictionary = max(1 << 16, min(1 << 26, 1 << max(size - 1, 1).bit_length()))
    return [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": dictionary}]


def encode_payload(method: str, transform: str, planes: np.ndarray) -> bytes:
    if method == "stored":
        return planes.tobytes()
    data = (planes if transform == "palette" else np.stack([med_residuals(p) for p in planes])).tobytes()
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_filters(len(data)))


def decode_payload(method: str, transform: str, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
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
    planes = np.frombuffer(data, np.uint8).reshape(shape)
    if method == "stored" or transform == "palette":
        return planes
    return np.stack([med_restore(p) for p in planes])


def side_info(method: str, transform: str, table: bytes) -> bytes:
    code = {v: k for k, v in METHODS.items()}[method], {v: k for k, v in TRANSFORMS.items()}[transform]
    return bytes(code) + (bytes([len(table) // 3 - 1]) + table if transform == "palette" else b"")


def read_side_info(payload: bytes) -> tuple[str, str, bytes]:
    if len(payload) < 2 or payload[0] not in METHODS or payload[1] not in TRANSFORMS:
        raise CorruptFileError("corrupt classic file: unknown method or transform in the side information")
    method, transform = METHODS[payload[0]], TRANSFORMS[payload[1]]
    table = payload[3:] if transform == "palette" else b""
    expected = 3 + 3 * (payload[2] + 1) if transform == "palette" and len(payload) > 2 else 2
    if len(payload) != expected:
        raise CorruptFileError(f"corrupt classic file: side information of {len(payload)} bytes, expected {expected}")
    return method, transform, table


def n_planes(transform: str) -> int:
    return 3 if transform == "rgb" else 1


def encode(image: np.ndarray, method: str, fields: dict) -> Encoded:
    transform, table, planes = planes_of(image)
    info = side_info(method, transform, table)
    payload = encode_payload(method, transform, planes)
    return Encoded(fields, [Section(container.SIDE_INFO, info, 8.0 * len(info)),
                            Section(container.PIXEL_DATA, payload, 8.0 * len(payload))],
                   {"method": method, "transform": transform})


def check_sizes(header: container.Header, sections: list[tuple[int, bytes]]) -> None:
    """The layout, and the declared size against what the pixel data can hold (module docstring)."""
    if [kind for kind, _ in sections] != [container.SIDE_INFO, container.PIXEL_DATA]:
        raise CorruptFileError(f"unexpected section layout {[kind for kind, _ in sections]} for a classic file")
    method, transform, _ = read_side_info(sections[0][1])
    need = n_planes(transform) * header.height * header.width
    have = len(sections[1][1])
    if (method == "stored" and have != need) or (method == "lzma" and need > MAX_RATIO * have + RATIO_SLACK):
        raise CorruptFileError(f"corrupt classic file: {have} bytes of {method} pixel data cannot hold a "
                               f"{header.width}x{header.height} image")


def decode(header: container.Header, sections: list[tuple[int, bytes]]) -> Decoded:
    check_sizes(header, sections)
    method, transform, table = read_side_info(sections[0][1])
    planes = decode_payload(method, transform, sections[1][1], (n_planes(transform), header.height, header.width))
    image = image_of(transform, table, planes)
    return Decoded(image, [Section(kind, payload, 8.0 * len(payload)) for kind, payload in sections],
                   {"method": method, "transform": transform})
