"""The weights family's sections (report 4.2): stored weight positions -> Cauchy indexes.

    fitted centers (N,) + width levels j (G,) --encode-->
        SIDE_INFO:        preset code byte + j of every group (diffcode.families.weights.side_info)
        WEIGHT_ENCODINGS: dithered storage, n = LEVELS[j] grid points per interval, shared offsets
                          dither.offsets(N, seed, WEIGHTS_STAGE); indexes via dither.pack_uniform
        stored positions --exact MLP + per-image CNN (spec.fixed_pass)--> Cauchy indexes
        ERROR_TABLE:      rANS (diffcode.families.common)
    header: storage dither, shared-randomness version and seed, no segment budget,
            decoder_hash = the MLP's hash

Decoding reads the same sections in the same order. No fitting code and no torch model here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError
from ...storage import container
from ...storage.rng import RNG_VERSION
from .. import Decoded, Encoded, Section, common
from ..shipped import header_hash
from . import positions, side_info
from . import spec as wv

STORAGE = "dither"


def per_weight_levels(p: wv.Preset, levels: np.ndarray) -> np.ndarray:
    """int64 (N,) grid size n of every weight from the level index j of every group."""
    return wv.LEVELS[np.asarray(levels, dtype=np.int64)][wv.group_of_weight(wv.layout(p))]


def encode_positions(centers: np.ndarray, n: np.ndarray, seed: int) -> tuple[bytes, np.ndarray]:
    """Dithered storage of centers float (N,) in [0, 1) on grids of n points: (bytes, positions uint32)."""
    return positions.encode_positions(centers, n, seed, wv.WEIGHTS_STAGE)


def decode_positions(data: bytes, n: np.ndarray, seed: int) -> np.ndarray:
    return positions.decode_positions(data, n, seed, wv.WEIGHTS_STAGE)


def _side_sections(preset: wv.Preset, levels: np.ndarray, side: bytes, positions: bytes) -> list[Section]:
    n = per_weight_levels(preset, levels)
    return [Section(container.SIDE_INFO, side, 8 + side_info.theoretical_bits(levels, wv.N_LEVELS)),
            Section(container.WEIGHT_ENCODINGS, positions, float(np.log2(n.astype(np.float64)).sum()))]


def _extras(preset: wv.Preset, levels: np.ndarray) -> dict:
    return {"preset": preset.name, "n_weights": len(per_weight_levels(preset, levels))}


def encode(image: np.ndarray, centers: np.ndarray, levels: np.ndarray, preset: wv.Preset, mlp: wv.MLPCheckpoint,
           seed: int = 0) -> Encoded:
    """The sections of a fit (see the module docstring).

    Args:
        image: uint8 (H, W, 3), the image that was fitted.
        centers: float (N,) interval centers in [0, 1), in `layout(preset)` order.
        levels: int (G,) width level j of every group.
    """
    h, w, _ = image.shape
    levels = np.asarray(levels, dtype=np.int64)
    n_groups = wv.n_groups(wv.layout(preset))
    if levels.shape != (n_groups,):
        raise DiffcodeError(f"{levels.shape} width levels given, preset {preset.name} has {n_groups} groups")
    n = per_weight_levels(preset, levels)
    if np.shape(centers) != n.shape:
        raise DiffcodeError(f"{np.shape(centers)} centers given, preset {preset.name} has {n.shape} weights")
    side = bytes([preset.code]) + side_info.encode(levels, wv.N_LEVELS)
    positions, values = encode_positions(centers, n, seed)
    params = wv.fixed_pass(mlp, preset, values, h, w)
    sections = _side_sections(preset, levels, side, positions) + [common.error_table(image, params)]
    fields = {"storage": STORAGE, "rng_version": RNG_VERSION, "error_model": common.ERROR_MODEL, "seed": seed,
              "segment_budget_cnats": 0, "decoder_hash": header_hash(mlp)}
    return Encoded(fields, sections, _extras(preset, levels), Replay(preset, levels, values, params))


@dataclass
class Replay:
    """The encoder's exact pass (`Encoded.replay`): a file that reads back to the same preset, width
    levels and stored positions gives these Cauchy indexes (the pass is a deterministic integer
    function of them), so `codec.store`'s check of its own file need not run it again."""

    preset: wv.Preset
    levels: np.ndarray  # int64 (G,)
    values: np.ndarray  # uint32 (N,) stored positions
    params: np.ndarray  # int64 (3*H*W, 2)

    def check(self, header: container.Header, sections: list[tuple[int, bytes]], mlp: wv.MLPCheckpoint) -> Decoded:
        """The encoder's own file against this pass: the sections must read back to its preset, levels
        and positions (ChecksumError otherwise); the error table is then decoded with its indexes."""
        _, preset, levels, values = _read(header, sections, mlp)
        if preset != self.preset or not np.array_equal(levels, self.levels) or not np.array_equal(values, self.values):
            raise ChecksumError("internal error: the stored weight encodings read back differently")
        return _decoded(header, sections, preset, levels, self.params)


def check_header(header: container.Header, mlp: wv.MLPCheckpoint) -> wv.MLPCheckpoint:
    """The header fields this family reads, against what it writes (CorruptFileError, DecoderMismatchError),
    and the MLP the header names: `mlp`, or (when that is the shipped one) the shipped MLP with the
    header's hash (`spec.SHIPPED.named`)."""
    named = wv.SHIPPED.named(header.decoder_hash, mlp)
    if named is None:
        raise DecoderMismatchError(f"this file was made with weights MLP {header.decoder_hash.hex()}, but the "
                                   f"loaded MLP is {mlp.hash[:32]}")
    if header.segment_budget_cnats != 0:
        raise CorruptFileError(f"the weights variant has no segment budget, the header says "
                               f"{header.segment_budget_cnats / 100} nats: the file is corrupt")
    if header.rng_version != RNG_VERSION or header.storage != STORAGE:
        raise CorruptFileError(f"weights files use {STORAGE} storage and shared-randomness version {RNG_VERSION}; "
                               f"this one says {header.storage} / {header.rng_version}")
    return named


def check_sizes(header: container.Header, sections: list[tuple[int, bytes]]) -> None:
    """The section layout, the preset code, and an error table long enough for the declared size
    (`common.check_error_table_size`); the other sections' lengths do not depend on the image size
    and are checked exactly when they are read, before the per-image network runs."""
    common.check_layout([kind for kind, _ in sections],
                        [container.SIDE_INFO, container.WEIGHT_ENCODINGS, container.ERROR_TABLE], "a weights file")
    side = sections[0][1]
    if not side or side[0] not in wv.PRESET_BY_CODE:
        raise CorruptFileError(f"unknown weights preset code {side[0] if side else None}")
    common.check_error_table_size(header, sections)


def decode(header: container.Header, sections: list[tuple[int, bytes]], mlp: wv.MLPCheckpoint) -> Decoded:
    """Pixels of a weights file's sections (the palette already removed by the codec)."""
    mlp, preset, levels, values = _read(header, sections, mlp)
    return _decoded(header, sections, preset, levels, wv.fixed_pass(mlp, preset, values, header.height, header.width))


def _read(header: container.Header, sections: list[tuple[int, bytes]], mlp: wv.MLPCheckpoint):
    """(the MLP the header names, the preset, the width levels, the stored positions) of a file's sections."""
    mlp = check_header(header, mlp)
    common.check_layout([kind for kind, _ in sections],
                        [container.SIDE_INFO, container.WEIGHT_ENCODINGS, container.ERROR_TABLE], "a weights file")
    side = sections[0][1]
    if not side or side[0] not in wv.PRESET_BY_CODE:
        raise CorruptFileError(f"unknown weights preset code {side[0] if side else None}")
    preset = wv.PRESET_BY_CODE[side[0]]
    levels = side_info.decode(side[1:], wv.n_groups(wv.layout(preset)), wv.N_LEVELS)
    if levels.size and levels.max() >= wv.N_LEVELS:
        raise CorruptFileError("width level out of range")
    return mlp, preset, levels, decode_positions(sections[1][1], per_weight_levels(preset, levels), header.seed)


def _decoded(header: container.Header, sections: list[tuple[int, bytes]], preset: wv.Preset, levels: np.ndarray,
             params: np.ndarray) -> Decoded:
    """The pixels the error table gives under the Cauchy indexes `params`."""
    image, table = common.decode_error_table(sections[2][1], params, header.height, header.width)
    return Decoded(image, _side_sections(preset, levels, sections[0][1], sections[1][1]) + [table],
                   _extras(preset, levels), levels)
