"""Fitted intervals -> bytes -> image: store, load and verification.

    image --fit (float torch, diffcode.fit_per_pixel)--> FitResult (centers per stage)
          --store: exact fixed-point decoder pass, stage by stage:
                entropies (decoder-known) -> random-seed search -> stored angles -> next stage
                head -> Cauchy table indexes -> rANS error table
          --> .dfc bytes (diffcode.storage.container)
          --load: the same fixed-point pass, reading tries instead of searching
          --> pixels, checked against the header's pixel hash

The encoder decodes its own file before returning it (`verify=True`), so a file that would
decode wrong is never written. The decode path never imports the fitting code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from . import cauchy, limits
from .decoder import Checkpoint
from .encodings import angles_to_u32
from .errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError, ImageError
from .image import ColorMode, to_pil, validate_array
from .storage import container, randseed, rans, schemes
from .storage.entropy_units import UNITS_PER_BIT
from .storage.rng import RNG_VERSION
from .superres import size_schedule
from .variants import per_pixel

STORAGE = schemes.DEFAULT
ERROR_MODEL = "cauchy"


@dataclass(frozen=True)
class StoreReport:
    """Theoretical entropy next to the real size of one stored file (bytes unless said)."""

    file_bytes: int
    encodings_bytes: int
    error_table_bytes: int
    header_bytes: int
    encodings_theoretical_bytes: float  # what the storage scheme's model pays (dither: sum log2 n)
    error_table_theoretical_bytes: float
    height: int
    width: int
    encodings_model_bytes: float = 0.0  # the decoder's continuous entropies, sum of e (before the scheme)
    variant: str = per_pixel.NAME
    storage: str = STORAGE

    @property
    def theoretical_bytes(self) -> float:
        return self.encodings_theoretical_bytes + self.error_table_theoretical_bytes

    def as_dict(self) -> dict:
        """The keys used wherever results are written (`--json`, experiment tables)."""
        subpixels = 3 * self.height * self.width
        d = dict(self.__dict__)
        d["theoretical_bytes"] = self.theoretical_bytes
        d["overhead_percent"] = 100.0 * (self.file_bytes / self.theoretical_bytes - 1.0)
        d["bpsp"] = 8.0 * self.file_bytes / subpixels
        d["theoretical_bpsp"] = 8.0 * self.theoretical_bytes / subpixels
        return d


def pixel_hash(image: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).digest()[:16]


def _symbols(image: np.ndarray) -> np.ndarray:
    """Pixels in coding order: color plane, row, column (matches the head's channel layout)."""
    return image.transpose(2, 0, 1).reshape(-1).astype(np.int64)


def store(image: np.ndarray, centers: list[np.ndarray], checkpoint: Checkpoint, seed: int = 0, *,
          storage: str = STORAGE, budget_nats: float | None = None, verify: bool = True,
          device: str = "cpu", progress=None, color: ColorMode = ColorMode()) -> tuple[bytes, StoreReport]:
    """Serialize fitted encodings and the error table into a .dfc file.

    Args:
        image: uint8 (H, W, 3), the image that was fitted.
        color: the mode to give the image back in (L, 1 and P images are coded as RGB).
        centers: fitted centers per stage (head last), radians, shapes (n, h_k, w_k).
        progress: optional callable(stages_done, stages_total), called after each stage.
    """
    scheme = schemes.get(storage, budget_nats)
    image = validate_array(image)
    h, w, _ = image.shape
    limits.check("store", h, w, per_pixel.NAME, device)
    schedule = size_schedule(h, w, checkpoint.config)
    if len(centers) != len(schedule.encoding_grids()):
        raise ValueError(f"{len(centers)} encoding stages given, the decoder needs {len(schedule.encoding_grids())}")
    sections, stage_units = [], []

    def provide(k: int, units: np.ndarray) -> np.ndarray:
        c = angles_to_u32(np.asarray(centers[k], dtype=np.float64))
        data, values = scheme.encode_stage(c.reshape(-1), units.reshape(-1), seed, k)
        sections.append((container.ENCODINGS, data))
        stage_units.append(units)
        if progress is not None:
            progress(k + 1, len(centers))
        return values.reshape(units.shape)

    params = per_pixel.fixed_pass(checkpoint, schedule, provide, device)
    symbols = _symbols(image)
    sections.append((container.ERROR_TABLE, rans.encode(symbols, params, cauchy.CauchyModel())))
    if color.mode == "P":
        sections.append((container.PALETTE, color.palette))
    from .image import to_pil

    to_pil(image, color)  # raises now, not at decode time, if the pixels do not fit the mode
    header = container.Header(per_pixel.NAME, scheme.name, RNG_VERSION, ERROR_MODEL, h, w, seed,
                              round(scheme.budget_nats * 100), bytes.fromhex(checkpoint.hash[:32]), pixel_hash(image),
                              color.mode)
    data = container.pack(header, sections)
    if verify and not np.array_equal(load(data, checkpoint, device=device), image):
        raise ChecksumError("internal error: the stored file does not decode to the image")
    return data, _report(Decoded(image, params, stage_units, sections, scheme, color))


def check_decoder(header: container.Header, checkpoint: Checkpoint) -> None:
    if header.decoder_hash != bytes.fromhex(checkpoint.hash[:32]):
        raise DecoderMismatchError(
            f"this file was made with decoder {header.decoder_hash.hex()}, but the loaded decoder is "
            f"{checkpoint.hash[:32]}; pass the matching checkpoint with --checkpoint")


def load(data: bytes, checkpoint: Checkpoint | None = None, *, device: str = "cpu") -> np.ndarray:
    """Decode a .dfc file to uint8 (H, W, 3) pixels; raises on any corruption or mismatch."""
    return _decode(data, checkpoint or Checkpoint.load(), device).image


def load_image(data: bytes, checkpoint: Checkpoint | None = None, *, device: str = "cpu") -> tuple[np.ndarray, ColorMode]:
    """Decode a .dfc file to RGB pixels and the mode (and palette) the image came in."""
    d = _decode(data, checkpoint or Checkpoint.load(), device)
    return d.image, d.color


def analyze(data: bytes, checkpoint: Checkpoint | None = None, *, device: str = "cpu") -> StoreReport:
    """Decode a file and account for it: theoretical entropy next to the real sizes."""
    return _report(_decode(data, checkpoint or Checkpoint.load(), device))


@dataclass
class Decoded:
    """Everything the decode path computed: the pixels and the model behind each coded symbol."""

    image: np.ndarray  # uint8 (H, W, 3)
    params: np.ndarray  # int64 (3*H*W, 2) Cauchy table indexes, C-H-W order
    stage_units: list[np.ndarray]  # per stage: int64 (n, h_k, w_k) entropy units (1/256 bit)
    sections: list[tuple[int, bytes]]
    scheme: object  # the storage scheme (diffcode.storage.schemes)
    color: ColorMode = ColorMode()

    @property
    def units_total(self) -> int:
        return int(sum(int(u.sum()) for u in self.stage_units))

    @property
    def encodings_theoretical_bits(self) -> float:
        return sum(self.scheme.theoretical_bits(u.reshape(-1)) for u in self.stage_units)

    def maps(self) -> dict:
        """Per-pixel views for figures: predicted means, cost in bits, encodings' bits per stage."""
        h, w, _ = self.image.shape
        loc, _ = cauchy.loc_sigma_of_params(self.params)
        symbols = _symbols(self.image)
        model = cauchy.CauchyModel()
        freq = model.cdf(self.params, symbols + 1) - model.cdf(self.params, symbols)
        bits = cauchy.PRECISION_BITS - np.log2(freq.astype(np.float64))
        return {"image": self.image, "loc": loc.reshape(3, h, w).astype(np.float32),
                "bits": bits.reshape(3, h, w).astype(np.float32),
                "stage_bits": [(u.sum(axis=0) / UNITS_PER_BIT).astype(np.float32) for u in self.stage_units]}


def decode_details(data: bytes, checkpoint: Checkpoint | None = None, *, device: str = "cpu") -> Decoded:
    """Decode a file and keep what the decoder computed on the way (for analysis and figures)."""
    return _decode(data, checkpoint or Checkpoint.load(), device)


def _report(d: "Decoded") -> StoreReport:
    if not isinstance(d, Decoded):  # another variant's decode result accounts for itself
        return d.report()
    h, w, _ = d.image.shape
    sections = d.sections
    return StoreReport(
        file_bytes=container.header_bytes(len(sections)) + sum(len(p) for _, p in sections),
        encodings_bytes=sum(len(p) for kind, p in sections if kind == container.ENCODINGS),
        error_table_bytes=sum(len(p) for kind, p in sections if kind == container.ERROR_TABLE),
        header_bytes=container.header_bytes(len(sections)),
        encodings_theoretical_bytes=d.encodings_theoretical_bits / 8.0,
        error_table_theoretical_bytes=cauchy.bits_float(_symbols(d.image), d.params) / 8.0, height=h, width=w,
        encodings_model_bytes=d.units_total / UNITS_PER_BIT / 8.0, storage=d.scheme.name)


def _decode(data: bytes, checkpoint: Checkpoint, device: str) -> Decoded:
    """The decode path."""
    header, sections = container.unpack(data)
    limits.check("decode", header.height, header.width, header.variant, device)  # before any allocation
    if header.variant != per_pixel.NAME:  # the weights variant (report 4.2) has its own decoder
        from . import weights_codec

        return weights_codec.decode_sections(header, sections)
    check_decoder(header, checkpoint)
    if header.rng_version != RNG_VERSION:
        raise CorruptFileError(f"file uses shared-randomness version {header.rng_version}, this diffcode has {RNG_VERSION}")
    schedule = size_schedule(header.height, header.width, checkpoint.config)
    n_stages = len(schedule.encoding_grids())
    kinds = [kind for kind, _ in sections]
    palette = [container.PALETTE] if header.color_mode == "P" else []
    if kinds != [container.ENCODINGS] * n_stages + [container.ERROR_TABLE] + palette:
        raise CorruptFileError(f"unexpected section layout {kinds} for a {header.width}x{header.height} image")
    try:
        color = ColorMode(header.color_mode, sections[-1][1] if palette else None)
    except ValueError as exc:
        raise CorruptFileError(f"bad color mode section: {exc}") from exc
    try:
        scheme = schemes.get(header.storage, header.segment_budget_cnats / 100.0)
        if header.storage == "randseed":
            randseed.budget_units(scheme.budget_nats)
        elif header.segment_budget_cnats != 0:
            raise ValueError(f"{header.storage} storage has no segment budget, the header says "
                             f"{header.segment_budget_cnats / 100} nats")
    except ValueError as exc:
        raise CorruptFileError(f"bad storage parameters in the header: {exc}") from exc
    stage_units = []

    def provide(k: int, units: np.ndarray) -> np.ndarray:
        stage_units.append(units)
        values = scheme.decode_stage(sections[k][1], units.reshape(-1), header.seed, k)
        return values.reshape(units.shape)

    try:
        params = per_pixel.fixed_pass(checkpoint, schedule, provide, device)
        symbols = rans.decode(sections[n_stages][1], params, cauchy.CauchyModel())
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if not isinstance(exc, MemoryError) and "allocate" not in str(exc) and "out of memory" not in str(exc):
            raise
        raise DiffcodeError(f"not enough memory to decode this {header.width}x{header.height} image (the "
                            f"memory a decode needs grows with the image size): {str(exc)[:200]}") from exc
    image = checked_pixels(symbols, header, color)
    return Decoded(image, params, stage_units, sections, scheme, color)


def checked_pixels(symbols: np.ndarray, header: container.Header, color: ColorMode) -> np.ndarray:
    """Decoded symbols -> uint8 (H, W, 3) pixels, checked against the header's hash and color mode."""
    if symbols.min(initial=0) < 0 or symbols.max(initial=0) > 255:
        raise CorruptFileError("error table decoded to out-of-range pixel values")
    image = symbols.astype(np.uint8).reshape(3, header.height, header.width).transpose(1, 2, 0).copy()
    if pixel_hash(image) != header.pixel_hash:
        raise ChecksumError("decoded pixels do not match the file's checksum: the file is corrupt "
                            "or was decoded with a different decoder arithmetic")
    if color.mode != "RGB":  # the pixel hash does not cover the header's color mode: it must fit the pixels
        try:
            to_pil(image, color)
        except ImageError as exc:
            raise CorruptFileError(f"the file's color mode {color.mode} does not fit its pixels ({exc}): "
                                   "the file is corrupt") from exc
    return image


def info(data: bytes) -> dict:
    """Header fields and section sizes of a file, without decoding it."""
    header, table, offset = container.unpack_header(data)
    return {
        "format_version": data[4], "variant": header.variant, "storage": header.storage,
        "color_mode": header.color_mode,
        "rng_version": header.rng_version, "error_model": header.error_model, "height": header.height,
        "width": header.width, "seed": header.seed, "segment_budget_nats": header.segment_budget_cnats / 100,
        "decoder_hash": header.decoder_hash.hex(), "pixel_hash": header.pixel_hash.hex(),
        "header_bytes": offset, "file_bytes": len(data),
        "sections": [{"kind": container.SECTION_KINDS.get(k, str(k)), "bytes": n, "crc32": f"{c:08x}"}
                     for k, n, c in table],
    }
