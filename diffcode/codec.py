"""One codec for every model family: fit result -> .dfc bytes -> image, with a size report.

    Fit --store: validate, memory limits, colour mode
        --family.encode (exact)--> header fields + sections (kind, payload, theoretical bits)
        --+ palette (mode P), header (variant, size, pixel hash, colour mode) --> container.pack
        --the encoder decodes its own file (`verify`)--> .dfc bytes, SizeReport
    .dfc --container.unpack, memory limits, palette--> header + the family's sections
         --family.decode (exact)--> pixels --pixel hash, colour mode--> image

The codec knows families only through `diffcode.families` (the header's variant names one);
nothing here branches on a family. The decode path never imports fitting code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from . import families, limits
from .errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError, ImageError
from .families import Decoded, Fit, Replay, Section
from .image import ColorMode, to_pil, validate_array
from .metadata import Metadata
from .metadata import pack as pack_metadata
from .metadata import unpack as unpack_metadata
from .storage import container


@dataclass(frozen=True)
class SizeReport:
    """Theoretical bits next to the real bytes of one file, section by section."""

    variant: str
    storage: str
    height: int
    width: int
    header_bytes: int
    sections: tuple[Section, ...]
    extras: dict = field(default_factory=dict)  # the family's own columns (JSON-able)

    @property
    def file_bytes(self) -> int:
        return self.header_bytes + sum(len(s.payload) for s in self.sections)

    @property
    def theoretical_bytes(self) -> float:
        return sum(s.theoretical_bits for s in self.sections) / 8.0

    def by_kind(self) -> dict[str, tuple[int, float]]:
        """Section kind name -> (bytes, theoretical bytes), summed over its sections, in file order."""
        out: dict[str, tuple[int, float]] = {}
        for s in self.sections:
            name = kind_key(s.kind)
            n, bits = out.get(name, (0, 0.0))
            out[name] = (n + len(s.payload), bits + s.theoretical_bits / 8.0)
        return out

    def as_dict(self) -> dict:
        """The keys used wherever results are written (`--json`, evaluation tables):
        `<kind>_bytes` and `<kind>_theoretical_bytes` for every section kind in the file."""
        subpixels = 3 * self.height * self.width
        d = {"variant": self.variant, "storage": self.storage, "height": self.height, "width": self.width,
             "file_bytes": self.file_bytes, "header_bytes": self.header_bytes,
             "theoretical_bytes": self.theoretical_bytes}
        for name, (n, theoretical) in self.by_kind().items():
            d[f"{name}_bytes"], d[f"{name}_theoretical_bytes"] = n, theoretical
        d["overhead_percent"] = 100.0 * (self.file_bytes / self.theoretical_bytes - 1.0)
        d["bpsp"] = 8.0 * self.file_bytes / subpixels
        d["theoretical_bpsp"] = 8.0 * self.theoretical_bytes / subpixels
        return {**d, **self.extras}


def kind_key(kind: int) -> str:
    """A section kind's name as a key: "error-table" -> "error_table"."""
    return container.SECTION_KINDS.get(kind, str(kind)).replace("-", "_")


def pixel_hash(image: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).digest()[:16]


def store(fit: Fit, model=None, *, verify: bool = True, device: str = "cpu", progress=None,
          color: ColorMode | None = None, metadata: Metadata | None = None, **options) -> tuple[bytes, SizeReport]:
    """A fit -> (.dfc bytes, size report).

    Args:
        model: the family's shared model (None: the shipped one); it must be the one the fit used.
        color: the mode to give the image back in (default: the fit's; L, 1 and P are coded as RGB).
        metadata: the source file's ICC profile, EXIF, ... (diffcode.metadata), kept in a METADATA
            section at the end of the file (none: no section, the file is as without it).
        progress: optional callable(done, total) during the family's encode.
        options: the family's store options (per-pixel: storage, budget_nats).
        verify: read the file back before returning it and compare the pixels. With the encoder's
            `Encoded.replay`, its `check` reads every section back against what the encoder stored
            and gives the error table's pixels under the encoder's own model (per-pixel, weights:
            its Cauchy indexes; pyramid: its symbols and the image its walk rebuilt) rather than
            running the deterministic pass a second time; without one, the file is decoded.
    """
    family = families.get(fit.family)
    image = validate_array(fit.image)
    h, w, _ = image.shape
    limits.check("store", h, w, family.memory, "cpu")  # every family's exact pass runs on the CPU
    model = model if model is not None else family.load_model()
    if fit.model_hash != model.hash:
        raise DecoderMismatchError(f"the fit used {family.name} model {fit.model_hash[:16]}, the loaded one is "
                                   f"{model.hash[:16]}; pass the fit's model (--checkpoint)")
    color = color or fit.color or ColorMode()
    to_pil(image, color)  # raises now, not at decode time, if the pixels do not fit the mode
    encoded = family.encode(fit, model, device=device, progress=progress, **options)
    sections = encoded.sections + _trailer(color, pack_metadata(metadata) if metadata else b"")
    header = container.Header(variant=family.name, height=h, width=w, pixel_hash=pixel_hash(image),
                              color_mode=color.mode, **encoded.fields)
    data = container.pack(header, [(s.kind, s.payload) for s in sections])
    if verify and not np.array_equal(_decode(data, model, device, encoded.replay)[1].image, image):
        raise ChecksumError("internal error: the stored file does not decode to the image")
    return data, _report(header, sections, encoded.extras)


def _trailer(color: ColorMode, metadata_payload: bytes) -> list[Section]:
    """The sections after the family's: the palette (mode P), then the metadata section's payload (if
    any); both are stored as they are, so their theoretical bits are their bytes."""
    payloads = [(container.PALETTE, color.palette)] if color.mode == "P" else []
    payloads += [(container.METADATA, metadata_payload)] if metadata_payload else []
    return [Section(kind, payload, 8.0 * len(payload)) for kind, payload in payloads]


def _report(header: container.Header, sections: list[Section], extras: dict) -> SizeReport:
    return SizeReport(header.variant, header.storage, header.height, header.width,
                      container.header_bytes(len(sections)), tuple(sections), dict(extras))


def model_of(data: bytes):
    """(the family a file's header names, the hex hash prefix of its shared model); payloads not read."""
    header, _, _ = container.unpack_header(data)
    return families.get(header.variant), header.decoder_hash.hex()


def load(data: bytes, model=None, *, device: str = "cpu") -> np.ndarray:
    """Decode a .dfc file to uint8 (H, W, 3) pixels; raises on any corruption or mismatch.

    model: the shared model of the file's family (None: the shipped one).
    """
    return _decode(data, model, device)[1].image


def load_image(data: bytes, model=None, *, device: str = "cpu") -> tuple[np.ndarray, ColorMode]:
    """Decode a .dfc file to RGB pixels and the mode (and palette) the image came in."""
    _, decoded, color, _, _ = _decode(data, model, device)
    return decoded.image, color


def load_file(data: bytes, model=None, *, device: str = "cpu", progress=None
              ) -> tuple[np.ndarray, ColorMode, Metadata]:
    """`load_image`, and the metadata the file keeps (empty if none); progress: optional callable(done, total)
    while the family decodes."""
    _, decoded, color, metadata, _ = _decode(data, model, device, progress=progress)
    return decoded.image, color, metadata


def analyze(data: bytes, model=None, *, device: str = "cpu") -> SizeReport:
    """Decode a file and account for it: theoretical bits next to the real sizes."""
    header, decoded, color, _, raw = _decode(data, model, device)  # raw: the metadata as stored, not re-packed
    return _report(header, decoded.sections + _trailer(color, raw), decoded.extras)


def decode_details(data: bytes, model=None, *, device: str = "cpu") -> Decoded:
    """Decode a file and keep what the family computed on the way (`Family.maps` draws it)."""
    return _decode(data, model, device)[1]


def _decode(data: bytes, model, device: str, replay: Replay | None = None,
            progress=None) -> tuple[container.Header, Decoded, ColorMode, Metadata, bytes]:
    """The decode path; `replay`: the encoder's `Encoded.replay` when `store` checks its own file, whose
    `check` then stands in for the family's decode. Also returns the metadata and its section's
    payload as stored (b"" without one)."""
    header, sections = container.unpack(bytes(data))
    family = families.get(header.variant)
    metadata, raw = Metadata(), b""
    if sections and sections[-1][0] == container.METADATA:
        raw, sections = sections[-1][1], sections[:-1]
        metadata = unpack_metadata(raw)
    sections, color = _split_palette(header, sections)
    family.check_sizes(header, sections)  # a header that declares more than the file holds is corrupt
    limits.check("decode", header.height, header.width, family.memory, "cpu")  # before any allocation; exact
    # passes run on the CPU whatever the device
    model = model if model is not None else family.load_model()
    try:
        decoded = (family.decode(header, sections, model, device=device, progress=progress) if replay is None
                   else replay.check(header, sections, model))
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if not isinstance(exc, MemoryError) and "allocate" not in str(exc) and "out of memory" not in str(exc):
            raise
        raise DiffcodeError(f"not enough memory to decode this {header.width}x{header.height} image (the "
                            f"memory a decode needs grows with the image size): {str(exc)[:200]}") from exc
    check_pixels(decoded.image, header, color)
    return header, decoded, color, metadata, raw


def _split_palette(header: container.Header, sections: list[tuple[int, bytes]]):
    """(the family's sections, the colour mode): mode P files end with their palette section."""
    palette = None
    if header.color_mode == "P":
        if not sections or sections[-1][0] != container.PALETTE:
            raise CorruptFileError(f"unexpected section layout {[k for k, _ in sections]}: a mode P file "
                                   "ends with its palette")
        palette = sections[-1][1]
        sections = sections[:-1]
    try:
        return sections, ColorMode(header.color_mode, palette)
    except ValueError as exc:
        raise CorruptFileError(f"bad color mode section: {exc}") from exc


def check_pixels(image: np.ndarray, header: container.Header, color: ColorMode) -> None:
    """Decoded pixels against the header's hash and colour mode."""
    if image.shape != (header.height, header.width, 3) or pixel_hash(image) != header.pixel_hash:
        raise ChecksumError("decoded pixels do not match the file's checksum: the file is corrupt "
                            "or was decoded with a different decoder arithmetic")
    if color.mode != "RGB":  # the pixel hash does not cover the header's color mode: it must fit the pixels
        try:
            to_pil(image, color)
        except ImageError as exc:
            raise CorruptFileError(f"the file's color mode {color.mode} does not fit its pixels ({exc}): "
                                   "the file is corrupt") from exc


def info(data: bytes) -> dict:
    """Header fields and section sizes of a file, without decoding it."""
    header, table, offset = container.unpack_header(data)
    return {
        "format_version": data[len(container.MAGIC)], "variant": header.variant, "color_mode": header.color_mode,
        "height": header.height, "width": header.width, **families.get(header.variant).header_fields(header),
        "pixel_hash": header.pixel_hash.hex(), "header_bytes": offset, "file_bytes": len(data),
        "sections": [{"kind": container.SECTION_KINDS.get(k, str(k)), "bytes": n, "crc32": f"{c:08x}"}
                     for k, n, c in table],
    }
