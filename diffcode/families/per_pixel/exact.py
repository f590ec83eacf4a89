"""The per-pixel family's exact pass and sections (report 4.1): stored angles -> Cauchy indexes.

    fitted centers per stage (radians) --store, stage by stage on the exact decoder:
          entropies (decoder-known, 1/256 bit units) -> storage scheme (dither or random seeds)
          -> stored angles (uint32) -> cos/sin -> next stage
        head -> Cauchy table indexes -> error table (diffcode.families.common)
    sections: one ENCODINGS per stage (head last), then ERROR_TABLE
    header: storage scheme, shared-randomness version and seed, segment budget (randseed),
            decoder_hash = the checkpoint's hash

Decoding runs the same pass, reading the stored values instead of searching them. No fitting
code and no torch model is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ... import cauchy
from .fixed_backend import FixedBackend
from .checkpoint import SHIPPED, Checkpoint
from ...fixedpoint import angles_to_u32
from ...errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError
from ...fixedpoint import FRAC_BITS, cos_sin_stack
from ...storage import container
from ...storage.entropy_units import UNITS_PER_BIT
from ...storage.rng import RNG_VERSION
from . import randseed, schemes
from .superres import Schedule, run_decoder, size_schedule
from .. import Decoded, Encoded, Section, common
from ..shipped import header_hash

NAME = "per-pixel"

# provide(stage, entropy_units int64 (n, h, w)) -> stored values uint32 (n, h, w)
ValueProvider = Callable[[int, np.ndarray], np.ndarray]


class StopPass(Exception):
    """Raised by a value provider to end a fixed-point pass early (used to freeze stages)."""


def fixed_pass(checkpoint: Checkpoint, schedule: Schedule, provide: ValueProvider,
               device: str = "cpu") -> np.ndarray:
    """Exact coding-time pass; `provide` supplies each stage's stored encodings.

    Returns:
        int64 (3*H*W, 2) Cauchy table parameters (loc index, scale index) in C, H, W order.
    """
    def hook(k: int, units: np.ndarray) -> np.ndarray:
        return cos_sin_stack(provide(k, units))  # cos then sin of the stored angles

    out = run_decoder(schedule, FixedBackend(checkpoint, device=device), hook, checkpoint.config)
    out = out.astype(np.int64)
    return cauchy.params_from_fixed(out[:3].reshape(-1), out[3:].reshape(-1), FRAC_BITS)


@dataclass
class Details:
    """What the decode computed besides the pixels (for analysis and figures)."""

    params: np.ndarray  # int64 (3*H*W, 2) Cauchy table indexes, C-H-W order
    stage_units: list[np.ndarray]  # per stage: int64 (n, h_k, w_k) entropy units (1/256 bit)
    scheme: object  # the storage scheme (diffcode.families.per_pixel.schemes)


def _stage_sections(payloads: list[bytes], stage_units: list[np.ndarray], scheme) -> list[Section]:
    return [Section(container.ENCODINGS, data, scheme.theoretical_bits(units.reshape(-1)))
            for data, units in zip(payloads, stage_units)]


def _extras(stage_units: list[np.ndarray]) -> dict:
    """The decoder's continuous entropies, sum of e before the scheme's quantization."""
    return {"encodings_model_bytes": sum(int(u.sum()) for u in stage_units) / UNITS_PER_BIT / 8.0}


def encode(image: np.ndarray, centers: list[np.ndarray], checkpoint: Checkpoint, seed: int, scheme,
           device: str = "cpu", progress=None) -> Encoded:
    """Stored encodings and error table of fitted centers (radians, shapes (n, h_k, w_k), head last)."""
    h, w, _ = image.shape
    schedule = size_schedule(h, w, checkpoint.config)
    if len(centers) != len(schedule.encoding_grids()):
        raise DiffcodeError(f"{len(centers)} encoding stages given, the decoder needs "
                            f"{len(schedule.encoding_grids())}")
    payloads, stage_units, stage_values = [], [], []

    def provide(k: int, units: np.ndarray) -> np.ndarray:
        c = angles_to_u32(np.asarray(centers[k], dtype=np.float64))
        data, values = scheme.encode_stage(c.reshape(-1), units.reshape(-1), seed, k)
        payloads.append(data)
        stage_units.append(units)
        stage_values.append(values.reshape(-1))
        if progress is not None:
            progress(k + 1, len(centers))
        return values.reshape(units.shape)

    params = fixed_pass(checkpoint, schedule, provide, device)
    sections = _stage_sections(payloads, stage_units, scheme) + [common.error_table(image, params)]
    fields = {"storage": scheme.name, "rng_version": RNG_VERSION, "error_model": common.ERROR_MODEL, "seed": seed,
              "segment_budget_cnats": round(scheme.budget_nats * 100), "decoder_hash": header_hash(checkpoint)}
    return Encoded(fields, sections, _extras(stage_units), Replay(stage_units, stage_values, params))


@dataclass
class Replay:
    """What the encoder's exact pass computed (`Encoded.replay`): each stage's entropy units and
    stored values, and the Cauchy indexes. The pass is a deterministic integer function of the
    stored values (the same on every machine and thread count), so a decode of the encoder's own
    file that reads back the same values, stage by stage, would compute these indexes again."""

    stage_units: list[np.ndarray]  # int64 (n, h_k, w_k) per stage
    stage_values: list[np.ndarray]  # uint32 (n * h_k * w_k,) per stage
    params: np.ndarray  # int64 (3*H*W, 2)

    def check(self, header: container.Header, sections: list[tuple[int, bytes]], checkpoint: Checkpoint) -> Decoded:
        """The encoder's own file against this pass: every stage's payload, read with the encoder's
        entropy units, must give back exactly the values the encoder stored (ChecksumError otherwise);
        the error table is then decoded with the encoder's Cauchy indexes, without running the exact
        pass a second time (it would compute the same integers)."""
        _, _, scheme, read = _read(header, sections, checkpoint)
        n_stages = len(sections) - 1
        if len(self.stage_units) != n_stages or len(self.stage_values) != n_stages:
            raise ChecksumError(f"internal error: the encoder stored {len(self.stage_values)} stages, "
                                f"the file has {n_stages}")
        for k, (units, values) in enumerate(zip(self.stage_units, self.stage_values)):
            if not np.array_equal(read(k, units).reshape(-1), values):
                raise ChecksumError(f"internal error: the stored encodings of stage {k} read back differently")
        return _decoded(header, sections, scheme, self.stage_units, self.params)


def check_decoder(header: container.Header, checkpoint: Checkpoint) -> Checkpoint:
    """The decoder the header names: `checkpoint`, or (when that is the shipped one) the shipped
    decoder with the header's hash (`SHIPPED.named`); DecoderMismatchError if neither."""
    named = SHIPPED.named(header.decoder_hash, checkpoint)
    if named is None:
        raise DecoderMismatchError(
            f"this file was made with decoder {header.decoder_hash.hex()}, but the loaded decoder is "
            f"{checkpoint.hash[:32]}; pass the matching checkpoint with --checkpoint")
    return named


def header_scheme(header: container.Header):
    """The storage scheme the header names, with its range checks (CorruptFileError)."""
    if header.rng_version != RNG_VERSION:
        raise CorruptFileError(f"file uses shared-randomness version {header.rng_version}, this diffcode has {RNG_VERSION}")
    try:
        scheme = schemes.get(header.storage, header.segment_budget_cnats / 100.0)
        if header.storage == "randseed":
            randseed.budget_units(scheme.budget_nats)
        elif header.segment_budget_cnats != 0:
            raise ValueError(f"{header.storage} storage has no segment budget, the header says "
                             f"{header.segment_budget_cnats / 100} nats")
    except ValueError as exc:
        raise CorruptFileError(f"bad storage parameters in the header: {exc}") from exc
    return scheme


def decode(header: container.Header, sections: list[tuple[int, bytes]], checkpoint: Checkpoint,
           device: str = "cpu") -> Decoded:
    """Pixels of a per-pixel file's sections (the palette already removed by the codec)."""
    checkpoint, schedule, scheme, read = _read(header, sections, checkpoint)
    stage_units = []

    def provide(k: int, units: np.ndarray) -> np.ndarray:
        stage_units.append(units)
        return read(k, units)

    params = fixed_pass(checkpoint, schedule, provide, device)
    return _decoded(header, sections, scheme, stage_units, params)


def _read(header: container.Header, sections: list[tuple[int, bytes]], checkpoint: Checkpoint):
    """(the decoder the header names, its size schedule, the storage scheme, read(k, units): stage k's
    stored values, shaped as its entropy units) of a file whose section layout fits its size."""
    checkpoint = check_decoder(header, checkpoint)
    scheme = header_scheme(header)
    schedule = size_schedule(header.height, header.width, checkpoint.config)
    n_stages = len(schedule.encoding_grids())
    common.check_layout([kind for kind, _ in sections], [container.ENCODINGS] * n_stages + [container.ERROR_TABLE],
                        f"a {header.width}x{header.height} image")

    def read(k: int, units: np.ndarray) -> np.ndarray:
        return scheme.decode_stage(sections[k][1], units.reshape(-1), header.seed, k).reshape(units.shape)

    return checkpoint, schedule, scheme, read


def _decoded(header: container.Header, sections: list[tuple[int, bytes]], scheme, stage_units: list[np.ndarray],
             params: np.ndarray) -> Decoded:
    """The pixels the error table (the last section) gives under the Cauchy indexes `params`."""
    image, table = common.decode_error_table(sections[-1][1], params, header.height, header.width)
    stored = _stage_sections([payload for _, payload in sections[:-1]], stage_units, scheme) + [table]
    return Decoded(image, stored, _extras(stage_units), Details(params, stage_units, scheme))


def maps(decoded: Decoded) -> dict:
    """Per-pixel views for figures: predicted means, cost in bits, encodings' bits per stage."""
    h, w, _ = decoded.image.shape
    d = decoded.details
    loc, _ = cauchy.loc_sigma_of_params(d.params)
    values = common.symbols(decoded.image)
    model = cauchy.CauchyModel()
    freq = model.cdf(d.params, values + 1) - model.cdf(d.params, values)
    bits = cauchy.PRECISION_BITS - np.log2(freq.astype(np.float64))
    return {"image": decoded.image, "loc": loc.reshape(3, h, w).astype(np.float32),
            "bits": bits.reshape(3, h, w).astype(np.float32),
            "stage_bits": [(u.sum(axis=0) / UNITS_PER_BIT).astype(np.float32) for u in d.stage_units]}
