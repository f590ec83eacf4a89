"""Store and decode files of the weights variant (report 4.2); `diffcode.codec` dispatches here.

    fitted centers (N,) + width levels j (G,) --store-->
        side info:        preset code byte + j of every group (diffcode.storage.side_info)
        weight encodings: dithered storage, n = LEVELS[j] grid points per interval, shared offsets
                          dither.offsets(N, seed, WEIGHTS_STAGE); indexes via dither.pack_uniform
        stored positions --exact MLP + per-image CNN (variants.weights.fixed_pass)--> Cauchy indexes
        error table:      rANS (as per-pixel)
    --> .dfc = header (decoder_hash = the MLP's hash, pixel SHA-256) + those sections [+ palette]

Decoding reads the same sections in the same order and checks the pixels against the header.
The encoder decodes its own file before returning it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import cauchy, limits
from .codec import ERROR_MODEL, StoreReport, _symbols, checked_pixels, pixel_hash
from .errors import ChecksumError, CorruptFileError, DecoderMismatchError
from .image import ColorMode, to_pil, validate_array
from .storage import container, dither, rans, side_info
from .storage.rng import RNG_VERSION
from .variants import weights as wv

STORAGE = "dither"


@dataclass(frozen=True)
class WeightsStoreReport(StoreReport):
    """StoreReport plus the side information; `encodings_*` are the weight encodings."""

    side_info_bytes: int = 0
    side_info_theoretical_bytes: float = 0.0
    preset: str = ""
    n_weights: int = 0

    @property
    def theoretical_bytes(self) -> float:
        return self.side_info_theoretical_bytes + self.encodings_theoretical_bytes + self.error_table_theoretical_bytes

    def as_dict(self) -> dict:
        d = super().as_dict()
        d["theoretical_bytes_without_side_info"] = self.encodings_theoretical_bytes + self.error_table_theoretical_bytes
        d["theoretical_bpsp_without_side_info"] = 8.0 * d["theoretical_bytes_without_side_info"] / (3 * self.height * self.width)
        return d


@dataclass
class DecodedWeights:
    """What the weights decode path computed (pixels, Cauchy indexes, widths, sections)."""

    image: np.ndarray
    params: np.ndarray
    levels: np.ndarray  # int64 (G,) j of every group
    preset: wv.Preset
    sections: list[tuple[int, bytes]]
    color: ColorMode = ColorMode()

    def report(self) -> WeightsStoreReport:
        h, w, _ = self.image.shape
        kinds = {k: len(p) for k, p in self.sections}
        n = per_weight_levels(self.preset, self.levels)
        return WeightsStoreReport(
            file_bytes=container.header_bytes(len(self.sections)) + sum(len(p) for _, p in self.sections),
            encodings_bytes=kinds.get(container.WEIGHT_ENCODINGS, 0),
            error_table_bytes=kinds.get(container.ERROR_TABLE, 0),
            header_bytes=container.header_bytes(len(self.sections)),
            encodings_theoretical_bytes=float(np.log2(n.astype(np.float64)).sum()) / 8.0,
            error_table_theoretical_bytes=cauchy.bits_float(_symbols(self.image), self.params) / 8.0,
            height=h, width=w, encodings_model_bytes=float(np.log2(n.astype(np.float64)).sum()) / 8.0,
            variant=wv.NAME, storage=STORAGE, side_info_bytes=kinds.get(container.SIDE_INFO, 0),
            side_info_theoretical_bytes=(8 + side_info.theoretical_bits(self.levels, wv.N_LEVELS)) / 8.0,
            preset=self.preset.name, n_weights=len(n))


def per_weight_levels(p: wv.Preset, levels: np.ndarray) -> np.ndarray:
    """int64 (N,) grid size n of every weight from the level index j of every group."""
    return wv.LEVELS[np.asarray(levels, dtype=np.int64)][wv.group_of_weight(wv.layout(p))]


def encode_positions(centers: np.ndarray, n: np.ndarray, seed: int) -> tuple[bytes, np.ndarray]:
    """Dithered storage of centers float (N,) in [0, 1) on grids of n points: (bytes, positions uint32)."""
    c = (np.round(np.asarray(centers, np.float64) * 2.0**32).astype(np.int64) % (1 << 32)).astype(np.uint32)
    u = dither.offsets(len(n), seed, wv.WEIGHTS_STAGE)
    k = dither.nearest_index(c, u, n)
    return dither.pack_uniform(k, n), dither.grid_values(u, k, n).astype(np.uint32)


def decode_positions(data: bytes, n: np.ndarray, seed: int) -> np.ndarray:
    k = dither.unpack_uniform(bytes(data), n)
    return dither.grid_values(dither.offsets(len(n), seed, wv.WEIGHTS_STAGE), k, n).astype(np.uint32)


def store(image: np.ndarray, centers: np.ndarray, levels: np.ndarray, preset: wv.Preset, mlp: wv.MLPCheckpoint,
          seed: int = 0, *, verify: bool = True, color: ColorMode = ColorMode()) -> tuple[bytes, WeightsStoreReport]:
    """Serialize a weights-variant fit into a .dfc file (see the module docstring).

    Args:
        image: uint8 (H, W, 3), the image that was fitted.
        centers: float (N,) interval centers in [0, 1), in `layout(preset)` order.
        levels: int (G,) width level j of every group.
    """
    image = validate_array(image)
    h, w, _ = image.shape
    limits.check("store", h, w, wv.NAME)
    levels = np.asarray(levels, dtype=np.int64)
    n_groups = wv.n_groups(wv.layout(preset))
    if levels.shape != (n_groups,):
        raise ValueError(f"{levels.shape} width levels given, preset {preset.name} has {n_groups} groups")
    n = per_weight_levels(preset, levels)
    if np.shape(centers) != n.shape:
        raise ValueError(f"{np.shape(centers)} centers given, preset {preset.name} has {n.shape} weights")
    side = bytes([preset.code]) + side_info.encode(levels, wv.N_LEVELS)
    enc, values = encode_positions(centers, n, seed)
    params = wv.fixed_pass(mlp, preset, values, h, w)
    sections = [(container.SIDE_INFO, side), (container.WEIGHT_ENCODINGS, enc),
                (container.ERROR_TABLE, rans.encode(_symbols(image), params, cauchy.CauchyModel()))]
    if color.mode == "P":
        sections.append((container.PALETTE, color.palette))
    to_pil(image, color)  # raises now if the pixels do not fit the mode
    header = container.Header(wv.NAME, STORAGE, RNG_VERSION, ERROR_MODEL, h, w, seed, 0,
                              bytes.fromhex(mlp.hash[:32]), pixel_hash(image), color.mode)
    data = container.pack(header, sections)
    if verify and not np.array_equal(decode(data, mlp).image, image):
        raise ChecksumError("internal error: the stored file does not decode to the image")
    return data, DecodedWeights(image, params, levels, preset, sections, color).report()


def decode(data: bytes, mlp: wv.MLPCheckpoint | None = None) -> DecodedWeights:
    """Decode a weights-variant file; raises on any corruption or mismatch."""
    header, sections = container.unpack(data)
    limits.check("decode", header.height, header.width, header.variant)  # before any allocation
    return decode_sections(header, sections, mlp)


def decode_sections(header: container.Header, sections: list[tuple[int, bytes]],
                    mlp: wv.MLPCheckpoint | None = None) -> DecodedWeights:
    """The decode path, from a parsed container."""
    mlp = mlp or wv.MLPCheckpoint.load()
    if header.decoder_hash != bytes.fromhex(mlp.hash[:32]):
        raise DecoderMismatchError(f"this file was made with weights MLP {header.decoder_hash.hex()}, but the "
                                   f"loaded MLP is {mlp.hash[:32]}")
    if header.segment_budget_cnats != 0:
        raise CorruptFileError(f"the weights variant has no segment budget, the header says "
                               f"{header.segment_budget_cnats / 100} nats: the file is corrupt")
    if header.rng_version != RNG_VERSION or header.storage != STORAGE:
        raise CorruptFileError(f"weights files use {STORAGE} storage and shared-randomness version {RNG_VERSION}; "
                               f"this one says {header.storage} / {header.rng_version}")
    palette = [container.PALETTE] if header.color_mode == "P" else []
    kinds = [kind for kind, _ in sections]
    if kinds != [container.SIDE_INFO, container.WEIGHT_ENCODINGS, container.ERROR_TABLE] + palette:
        raise CorruptFileError(f"unexpected section layout {kinds} for a weights file")
    try:
        color = ColorMode(header.color_mode, sections[-1][1] if palette else None)
    except ValueError as exc:
        raise CorruptFileError(f"bad color mode section: {exc}") from exc
    side = sections[0][1]
    if not side or side[0] not in wv.PRESET_BY_CODE:
        raise CorruptFileError(f"unknown weights preset code {side[0] if side else None}")
    preset = wv.PRESET_BY_CODE[side[0]]
    levels = side_info.decode(side[1:], wv.n_groups(wv.layout(preset)), wv.N_LEVELS)
    if levels.size and levels.max() >= wv.N_LEVELS:
        raise CorruptFileError("width level out of range")
    values = decode_positions(sections[1][1], per_weight_levels(preset, levels), header.seed)
    params = wv.fixed_pass(mlp, preset, values, header.height, header.width)
    symbols = rans.decode(sections[2][1], params, cauchy.CauchyModel())
    image = checked_pixels(symbols, header, color)
    return DecodedWeights(image, params, levels, preset, sections, color)


def theoretical_bits_summary(report: WeightsStoreReport) -> str:
    """One line: theoretical bytes with and without side information."""
    d = report.as_dict()
    return (f"{d['theoretical_bytes']:,.0f} B theoretical ({d['theoretical_bytes_without_side_info']:,.0f} B "
            f"without {report.side_info_theoretical_bytes:,.0f} B side info); file {report.file_bytes:,} B "
            f"({math.nan if not report.file_bytes else 100 * (report.file_bytes / d['theoretical_bytes'] - 1):+.2f} %)")
