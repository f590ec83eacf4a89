"""The .dfc file format, declared in one place.

Layout (all integers little-endian)::

    offset size field
    0      4    magic              b"\\x89DFC"
    4      1    format_version     FORMAT_VERSION
    5      1    variant            VARIANTS (1 = per-pixel, 2 = weights, 3 = pyramid, 4 = classic)
    6      1    storage            STORAGES (1 = randseed: the report's random-seed segments,
                                                2 = dither: dithered quantization, diffcode.storage.dither)
    7      1    rng_version        diffcode.storage.rng.RNG_VERSION
    8      1    error_model        ERROR_MODELS (1 = cauchy: quantized folded Cauchy, rANS 24 bit)
    9      1    color_mode         COLOR_MODES (0 = RGB, 1 = L, 2 = 1, 3 = P)   [version 2 only]
    10     2    height             1..65535
    12     2    width              1..65535
    14     4    seed               shared-randomness seed
    18     2    segment_budget     random-seed segment budget in 1/100 nat (0 for dither)
    20     16   decoder_hash       first 16 bytes of the decoder checkpoint's SHA-256
    36     16   pixel_hash         first 16 bytes of SHA-256 of the HxWx3 uint8 RGB pixels
    52     2    n_sections
    54     9*n  sections           (kind u8, length u32, crc32 u32) each
    ..     4    header_crc32       CRC-32 of every header byte before it
    ..          payloads           the sections' bytes, in order

Sections: one `ENCODINGS` section per superresolution stage and one for the head, in decode
order, then one `ERROR_TABLE` section, then (mode P only) one `PALETTE` section: the image's
1 to 256 RGB entries, 3 bytes each (files before issue 14 always had 256; readers before it refuse
shorter palettes rather than misread them, so the format version stayed 2).
Variant `weights` (diffcode.families.weights.spec; decoder_hash names its shared MLP): one
`SIDE_INFO` section (preset code byte, then the width levels), one `WEIGHT_ENCODINGS` section,
one `ERROR_TABLE` section, then the palette as above. Variant `pyramid` (diffcode.families.pyramid;
decoder_hash names its shared prior; storage 0 = none, error model 2 = logistic: quantized
discretized logistics, one rANS stream): one `SIDE_INFO` section (preset code, adapt code, for a
prior whose meta lists online choices the file's online adaptation code, a scale index per adapted tensor), one `WEIGHT_DELTAS` section if the file has per-image weights, one
`ERROR_TABLE` section, then the palette as above. Variant `classic` (diffcode.families.classic;
decoder_hash names its coder's specification; storage 0 = none, error model 0 = none): one
`SIDE_INFO` section (method, transform, palette table) and one `PIXEL_DATA` section (stored
planes, or LZMA2 of their residuals), then the palette as above. Any file may end with one `METADATA` section
(the source image's ICC profile, EXIF, XMP, text chunks and dpi: diffcode.metadata), after the
palette; the codec takes it off before the family sees the sections. Adding variants, codes and
section kinds did not change the layout, so it kept format version 2 (older readers refuse the
variant code, and a file with metadata as an unexpected section layout).

Version policy: FORMAT_VERSION is bumped whenever a change would make an old decoder misread a
new file. Every version listed in READABLE_VERSIONS decodes; any other version is refused with
its number. Version 1 is version 2 without the color_mode byte (always RGB).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import CorruptFileError

MAGIC = b"\x89DFC"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
VARIANTS = {1: "per-pixel", 2: "weights", 3: "pyramid", 4: "classic"}
STORAGES = {0: "none", 1: "randseed", 2: "dither"}
ERROR_MODELS = {0: "none", 1: "cauchy", 2: "logistic"}
SECTION_KINDS = {1: "encodings", 2: "error-table", 3: "palette", 4: "side-info", 5: "weight-encodings",
                 6: "weight-deltas", 7: "metadata", 8: "pixel-data"}
ENCODINGS, ERROR_TABLE, PALETTE, SIDE_INFO, WEIGHT_ENCODINGS, WEIGHT_DELTAS, METADATA, PIXEL_DATA = range(1, 9)
COLOR_MODES = {0: "RGB", 1: "L", 2: "1", 3: "P"}

_FIXED_V1 = struct.Struct("<4sBBBBBHHIH16s16sH")
_FIXED = struct.Struct("<4sBBBBBBHHIH16s16sH")
_FIXED_BY_VERSION = {1: _FIXED_V1, 2: _FIXED}


def fixed_layout(version: int) -> struct.Struct:
    """The fixed header part of a format version (the current one for an unknown version)."""
    return _FIXED_BY_VERSION.get(version, _FIXED)


_SECTION = struct.Struct("<BII")
_CRC = struct.Struct("<I")


def _code(table: dict[int, str], name: str, what: str) -> int:
    for code, value in table.items():
        if value == name:
            return code
    raise ValueError(f"unknown {what} {name!r}; known: {sorted(table.values())}")


@dataclass(frozen=True)
class Header:
    """Everything a decoder needs before it reads the payloads."""

    variant: str
    storage: str
    rng_version: int
    error_model: str
    height: int
    width: int
    seed: int
    segment_budget_cnats: int
    decoder_hash: bytes
    pixel_hash: bytes
    color_mode: str = "RGB"

    def check(self) -> None:
        """Range checks of every field (raises ValueError)."""
        if not (1 <= self.height <= 65535 and 1 <= self.width <= 65535):
            raise ValueError(f"image size {self.width}x{self.height} out of range")
        if not (0 <= self.seed < 2**32):
            raise ValueError(f"seed {self.seed} does not fit in 32 bits")
        if not (0 <= self.segment_budget_cnats < 2**16):
            raise ValueError(f"segment budget {self.segment_budget_cnats} out of range")
        if len(self.decoder_hash) != 16 or len(self.pixel_hash) != 16:
            raise ValueError("hashes must be 16 bytes")


def pack(header: Header, sections: list[tuple[int, bytes]]) -> bytes:
    """Serialize a header and its (kind, payload) sections into a file."""
    header.check()
    fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, _code(VARIANTS, header.variant, "variant"),
                        _code(STORAGES, header.storage, "storage"), header.rng_version,
                        _code(ERROR_MODELS, header.error_model, "error model"),
                        _code(COLOR_MODES, header.color_mode, "color mode"), header.height,
                        header.width, header.seed, header.segment_budget_cnats, header.decoder_hash,
                        header.pixel_hash, len(sections))
    table = b"".join(_SECTION.pack(kind, len(data), zlib.crc32(data)) for kind, data in sections)
    head = fixed + table
    return head + _CRC.pack(zlib.crc32(head)) + b"".join(data for _, data in sections)


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise CorruptFileError(f"file truncated: {len(data)} bytes, {what} needs {end}")


def _lookup(table: dict[int, str], code: int, what: str) -> str:
    if code not in table:
        raise CorruptFileError(f"unknown {what} code {code} (this diffcode knows {table})")
    return table[code]


def unpack_header(data: bytes) -> tuple[Header, list[tuple[int, int, int]], int]:
    """Parse and verify the header; returns (header, [(kind, length, crc)], payload offset)."""
    prefix = data[:len(MAGIC)]
    if prefix != MAGIC[:len(prefix)]:  # a short prefix of the magic is a truncated file
        raise CorruptFileError("not a diffcode file (bad magic bytes)")
    _need(data, len(MAGIC) + 1, "the header")
    version = data[len(MAGIC)]
    if version not in READABLE_VERSIONS:
        raise CorruptFileError(f"format version {version} is not supported (this diffcode reads versions "
                               f"{', '.join(map(str, READABLE_VERSIONS))})")
    fixed = _FIXED_BY_VERSION[version]
    _need(data, fixed.size, "the header")
    if version == 1:
        magic, version, variant, storage, rng, model, h, w, seed, budget, dhash, phash, n = fixed.unpack_from(data)
        color = 0
    else:
        magic, version, variant, storage, rng, model, color, h, w, seed, budget, dhash, phash, n = fixed.unpack_from(data)
    end = fixed.size + n * _SECTION.size
    _need(data, end + _CRC.size, "the section table")
    (crc,) = _CRC.unpack_from(data, end)
    if crc != zlib.crc32(data[:end]):
        raise CorruptFileError("header checksum mismatch: the file is corrupt")
    sections = [_SECTION.unpack_from(data, fixed.size + i * _SECTION.size) for i in range(n)]
    header = Header(_lookup(VARIANTS, variant, "variant"), _lookup(STORAGES, storage, "storage"), rng,
                    _lookup(ERROR_MODELS, model, "error model"), h, w, seed, budget, dhash, phash,
                    _lookup(COLOR_MODES, color, "color mode"))
    try:  # the writer's range checks, so that a bad field is a corrupt file, not another error later
        header.check()
    except ValueError as exc:
        raise CorruptFileError(f"corrupt header: {exc}") from exc
    return header, sections, end + _CRC.size


def unpack(data: bytes) -> tuple[Header, list[tuple[int, bytes]]]:
    """Parse a file; every section's length and CRC are checked."""
    header, table, offset = unpack_header(data)
    sections = []
    for i, (kind, length, crc) in enumerate(table):
        _need(data, offset + length, f"section {i}")
        payload = data[offset:offset + length]
        if zlib.crc32(payload) != crc:
            raise CorruptFileError(f"section {i} ({SECTION_KINDS.get(kind, kind)}) checksum mismatch: the file is corrupt")
        sections.append((kind, payload))
        offset += length
    if offset != len(data):
        raise CorruptFileError(f"{len(data) - offset} unexpected bytes after the last section")
    return header, sections


def header_bytes(n_sections: int, version: int = FORMAT_VERSION) -> int:
    """Size of the header of a file with n sections."""
    return _FIXED_BY_VERSION[version].size + n_sections * _SECTION.size + _CRC.size
