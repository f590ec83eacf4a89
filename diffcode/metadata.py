"""An image's metadata: ICC profile, EXIF, XMP, PNG text chunks and resolution, kept in a .dfc file.

    image file --Pillow--> Metadata --pack (zlib)--> the file's optional METADATA section
    METADATA section --unpack--> Metadata --save options--> the decoded PNG (or TIFF) file

The pixels are what diffcode codes; the metadata rides along byte for byte in a section of its
own, checksummed like every section (CRC-32; the pixel hash does not cover it) and counted in the
file's size. `--strip` leaves it out. What each output format can hold is written back:

| output | kept |
|---|---|
| PNG | everything: ICC profile, EXIF (eXIf), XMP (iTXt `XML:com.adobe.xmp`), text chunks (tEXt, or iTXt when not Latin-1; zTXt comes back as tEXt), dpi (pHYs) |
| TIFF | ICC profile, EXIF, dpi |
| BMP, PPM | nothing (the formats have no place for it) |

Section payload: one version byte (1), then zlib of the items, each
`kind u8, name length u16, name (UTF-8), data length u32, data`, kinds ITEM_KINDS; `dpi` data is two
float64 (x, y), `text` data is the UTF-8 value of the chunk named `name`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .errors import CorruptFileError, UsageError

VERSION = 1
ITEM_KINDS = {1: "icc", 2: "exif", 3: "xmp", 4: "text", 5: "dpi"}
MAX_UNPACKED = 64 << 20  # a section that inflates beyond this is corrupt (a zlib bomb is refused)
XMP_KEY = "XML:com.adobe.xmp"  # the PNG iTXt keyword XMP travels under
MAX_DPI = (2**32 - 0.5) * 0.0254  # PNG's pHYs holds round(dpi / 0.0254) in 32 bits; TIFF refuses negative dpi
_ITEM = struct.Struct("<BH")
_LENGTH = struct.Struct("<I")
_DPI = struct.Struct("<dd")


@dataclass(frozen=True)
class Metadata:
    """What an image file carries besides its pixels (all optional; empty: nothing to keep)."""

    icc: bytes = b""
    exif: bytes = b""
    xmp: bytes = b""
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks, keyword -> value
    dpi: tuple[float, float] | None = None

    def __bool__(self) -> bool:
        return bool(self.icc or self.exif or self.xmp or self.text or self.dpi)


def from_pil(im) -> Metadata:
    """The metadata of an opened Pillow image (XMP of a PNG is its `XML:com.adobe.xmp` text chunk)."""
    info = im.info
    text = {str(k): str(v) for k, v in getattr(im, "text", {}).items()} if im.format == "PNG" else {}
    xmp = b"" if XMP_KEY in text else _bytes(info.get("xmp", b""))
    dpi = info.get("dpi")
    dpi = (float(dpi[0]), float(dpi[1])) if dpi else None
    return Metadata(icc=_bytes(info.get("icc_profile") or b""), exif=_bytes(info.get("exif", b"")), xmp=xmp,
                    text=text, dpi=dpi if dpi and _writable_dpi(dpi) else None)  # no output could write another


def _writable_dpi(dpi: tuple[float, float]) -> bool:
    return all(0.0 <= d < MAX_DPI for d in dpi)  # also False for NaN


def _bytes(value) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def save_options(metadata: Metadata | None, format: str) -> dict:
    """Pillow `save` keywords that write `metadata` in `format` (what the format can hold)."""
    if not metadata or format not in ("PNG", "TIFF"):
        return {}
    options = {k: v for k, v in (("icc_profile", metadata.icc), ("exif", metadata.exif)) if v}
    if format == "TIFF" and metadata.exif and not _tiff_holds_exif(metadata.exif):
        from .errors import ImageError

        raise ImageError(f"the file's EXIF ({len(metadata.exif)} bytes) is not a TIFF structure a TIFF can hold; "
                         "decode to .png, which keeps it as it is")
    if metadata.dpi:
        options["dpi"] = metadata.dpi
    if format == "PNG" and (metadata.text or metadata.xmp):
        from PIL import PngImagePlugin

        chunks = PngImagePlugin.PngInfo()
        for key, value in {**({XMP_KEY: metadata.xmp.decode("utf-8", "replace")} if metadata.xmp else {}),
                           **metadata.text}.items():
            if key == XMP_KEY or not _latin1(value):  # XMP is always iTXt (its specification's chunk)
                chunks.add_itxt(key, value)
            else:
                chunks.add_text(key, value)
        options["pnginfo"] = chunks
    return options


def _tiff_holds_exif(exif: bytes) -> bool:
    """Whether Pillow writes and reads back a TIFF with this EXIF (it parses it as a TIFF structure,
    and raises SyntaxError, struct.error or TypeError on one it cannot)."""
    import io
    import warnings

    from PIL import Image

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.new("L", (1, 1)).save(buffer, format="TIFF", exif=exif)
            with Image.open(io.BytesIO(buffer.getvalue())) as back:
                back.load()
    except Exception:  # noqa: BLE001 - whatever Pillow raises on a malformed structure
        return False
    return True


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


def pack(metadata: Metadata) -> bytes:
    """The METADATA section's payload (module docstring); UsageError for what `unpack` would refuse."""
    if metadata.dpi and not _writable_dpi(metadata.dpi):
        raise UsageError(f"dpi {metadata.dpi} cannot be kept: outside 0..{MAX_DPI:.0f}")
    if not all(_latin1(key) for key in metadata.text):
        raise UsageError("text keywords must be Latin-1 (PNG keywords are)")
    items = [(1, "", metadata.icc), (2, "", metadata.exif), (3, "", metadata.xmp)]
    items += [(4, key, value.encode("utf-8")) for key, value in metadata.text.items()]
    items += [(5, "", _DPI.pack(*metadata.dpi))] if metadata.dpi else []
    body = b"".join(_ITEM.pack(kind, len(name.encode())) + name.encode() + _LENGTH.pack(len(data)) + data
                    for kind, name, data in items if data)
    if len(body) > MAX_UNPACKED:  # a reader refuses more (a zlib bomb): say so now, and what to do
        raise UsageError(f"the image carries {len(body) / (1 << 20):.0f} MiB of metadata, more than the 64 MiB a "
                         "file keeps; pass --strip to leave it out")
    return bytes([VERSION]) + zlib.compress(body, 9)


def unpack(payload: bytes) -> Metadata:
    """Parse a METADATA section; CorruptFileError for anything but a well-formed one."""
    if not payload or payload[0] != VERSION:
        raise CorruptFileError(f"metadata section of unknown version {payload[:1].hex() or 'none'}")
    body = _inflate(payload[1:])
    fields: dict = {"text": {}}
    offset = 0
    while offset < len(body):
        kind, name, data, offset = _item(body, offset)
        if kind == "text":
            if not _latin1(name):  # PNG keywords are Latin-1: Pillow could not write this one back
                raise CorruptFileError(f"corrupt metadata section: a text keyword that is not Latin-1 ({name[:40]!r})")
            fields["text"][name] = data.decode("utf-8", "replace")
        elif kind == "dpi":
            if len(data) != _DPI.size:
                raise CorruptFileError("corrupt metadata section: a dpi item of the wrong size")
            fields["dpi"] = _DPI.unpack(data)
            if not _writable_dpi(fields["dpi"]):
                raise CorruptFileError(f"corrupt metadata section: dpi {fields['dpi']} outside 0..{MAX_DPI:.0f}")
        else:
            fields[kind] = data
    return Metadata(**fields)


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(data, MAX_UNPACKED)
    except zlib.error as exc:
        raise CorruptFileError(f"corrupt metadata section ({exc})") from exc
    if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
        raise CorruptFileError("corrupt metadata section (larger than 64 MiB, truncated or with extra bytes)")
    return body


def _item(body: bytes, offset: int) -> tuple[str, str, bytes, int]:
    """(kind, name, data, next offset) of the item at `offset`."""
    try:
        code, name_length = _ITEM.unpack_from(body, offset)
        offset += _ITEM.size
        name = body[offset:offset + name_length].decode("utf-8")
        (length,) = _LENGTH.unpack_from(body, offset + name_length)
        start = offset + name_length + _LENGTH.size
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"corrupt metadata section ({exc})") from exc
    if code not in ITEM_KINDS or start + length > len(body):
        raise CorruptFileError("corrupt metadata section (an unknown item or one past the end)")
    return ITEM_KINDS[code], name, body[start:start + length], start + length
