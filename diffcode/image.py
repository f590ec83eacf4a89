"""Images on disk <-> uint8 arrays of shape (H, W, 3); input validation. No torch.

Every array that leaves this module is C-contiguous uint8 with shape (H, W, 3),
1 <= H, W <= 65535, channels in R, G, B order. Reading is strict: an image is
accepted only if Pillow can decode it to exactly those 8-bit values, so that the
pixels diffcode codes are the pixels in the file.

Modes: RGB is coded as is. L (8-bit gray), 1 (black and white) and P (palette, no
transparency) are expanded to RGB exactly and their mode (and palette) is kept in the file
(`ColorMode`), so that decoding gives back the same mode, values and palette indexes.
Everything else (alpha, 16-bit, CMYK, float, ...) is refused with a one-line reason.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dataclasses import dataclass

from diffcode.errors import ImageError
from diffcode.metadata import Metadata, from_pil, save_options
from diffcode.outputs import is_stream, write_bytes_atomic

MAX_SIDE = 65535
"""Largest height or width diffcode accepts (stored as 16-bit fields)."""

LOSSY_DECODE_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats whose decoded pixels can differ between decoder libraries."""

_MODE_HINTS = {
    "RGBA": "it has an alpha channel",
    "RGBa": "it has an alpha channel",
    "LA": "it is grayscale with an alpha channel",
    "PA": "it is a palette image with an alpha channel",
    "I;16": "it has 16 bits per sample",
    "I;16B": "it has 16 bits per sample",
    "I;16L": "it has 16 bits per sample",
    "I": "it has 32-bit integer samples",
    "F": "it has 32-bit float samples",
    "CMYK": "it is CMYK, not RGB",
}

PathLike = str | os.PathLike


COLOR_MODES = ("RGB", "L", "1", "P")
"""Modes diffcode stores exactly (everything else is refused)."""


@dataclass(frozen=True)
class ColorMode:
    """The mode an image came in, to give it back in: RGB, L, 1 or P (with its palette: 1 to 256 RGB
    entries, 3 bytes each, as many as the file had)."""

    mode: str = "RGB"
    palette: bytes | None = None

    def __post_init__(self) -> None:
        if self.mode not in COLOR_MODES:
            raise ValueError(f"unknown color mode {self.mode!r}")
        if (self.mode == "P") != (self.palette is not None) or (
                self.palette is not None and not (3 <= len(self.palette) <= 768 and len(self.palette) % 3 == 0)):
            raise ValueError("mode P needs a palette of 1 to 256 RGB entries (3 to 768 bytes), other modes none")


def read_image_mode(path: PathLike) -> tuple[np.ndarray, ColorMode]:
    """Read an image as uint8 (H, W, 3) RGB plus the mode to restore it in (see module doc)."""
    path = Path(path)
    _check_is_file(path)
    return _read(path, path)[:2]


def read_image_data(data: bytes, name: str) -> tuple[np.ndarray, ColorMode]:
    """`read_image_mode` of an image file's bytes (`name` is what messages call it)."""
    return _read(io.BytesIO(data), Path(name))[:2]


def read_image_meta(data: bytes, name: str) -> tuple[np.ndarray, ColorMode, Metadata]:
    """`read_image_data`, and the file's metadata (ICC profile, EXIF, XMP, text, dpi: diffcode.metadata)."""
    return _read(io.BytesIO(data), Path(name))


IMAGE_INPUTS = ("a path, the bytes of an image file, a PIL image, or a numpy array: uint8 (H, W, 3) RGB, "
                "uint8 (H, W) gray or bool (H, W) black and white")


def image_and_mode(image, name: str = "image") -> tuple[np.ndarray, ColorMode]:
    """Any image the Python API takes (`diffcode.api`) -> uint8 (H, W, 3) RGB pixels and the mode to
    keep; ImageError for anything else."""
    if isinstance(image, (str, os.PathLike)):
        return read_image_mode(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return read_image_data(bytes(image), name)
    if isinstance(image, np.ndarray):
        if image.ndim == 2 and image.dtype in (np.uint8, np.bool_):
            mode = "1" if image.dtype == np.bool_ else "L"
            gray = np.where(image, np.uint8(255), np.uint8(0)) if mode == "1" else image
            return validate_array(np.repeat(gray[:, :, None], 3, axis=2), name), ColorMode(mode)
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            return validate_array(image, name), ColorMode()
        raise ImageError(f"{name}: a {image.dtype} array of shape {image.shape}; diffcode takes {IMAGE_INPUTS}")
    if isinstance(image, Image.Image):
        return read_pil_image(image, name)
    raise ImageError(f"{name}: a {type(image).__name__}; diffcode takes {IMAGE_INPUTS}")


def read_pil_image(im: Image.Image, name: str = "image") -> tuple[np.ndarray, ColorMode]:
    """`read_image_mode` of a Pillow image already open or made in memory: the same modes and the
    same refusals (`name` is what messages call it)."""
    try:
        array, color = _decode_rgb8(im, Path(name))
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # a lazily opened file failing to load
        raise ImageError(f"{name}: not an image Pillow can read ({e})") from e
    return validate_array(array, name=name), color


def _open(source) -> Image.Image:
    """Image.open without Pillow's DecompressionBombWarning on stderr: diffcode's own checks
    (MAX_SIDE, the memory model) decide what is too large; Pillow's DecompressionBombError, for
    images over twice its limit, is still raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def _read(source, path: Path) -> tuple[np.ndarray, ColorMode, Metadata]:
    try:
        with _open(source) as im:
            array, color = _decode_rgb8(im, path)
            metadata = from_pil(im)  # after the pixels: PNG text chunks may follow the image data
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image Pillow can read (unknown format, or a damaged file)") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", str(path), str(e))  # name the file, not the buffer
        raise ImageError(f"{path}: not an image Pillow can read ({reason})") from e
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image is too large to read safely ({e})") from e
    return validate_array(array, name=str(path)), color, metadata


def to_pil(array: np.ndarray, color: ColorMode = ColorMode()) -> Image.Image:
    """The Pillow image of RGB pixels in their original mode (exact; raises ImageError if impossible)."""
    array = validate_array(array)
    if color.mode == "RGB":
        return Image.fromarray(array, mode="RGB")
    if color.mode in ("L", "1"):
        gray = array[:, :, 0]
        if not (np.array_equal(gray, array[:, :, 1]) and np.array_equal(gray, array[:, :, 2])):
            raise ImageError(f"pixels are not gray, cannot give them back in mode {color.mode}")
        if color.mode == "1":
            if not np.all((gray == 0) | (gray == 255)):
                raise ImageError("pixels are not black and white, cannot give them back in mode 1")
            return Image.fromarray(gray, mode="L").convert("1")
        return Image.fromarray(gray, mode="L")
    palette = np.frombuffer(color.palette, np.uint8).reshape(-1, 3).astype(np.int64)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    pix = array.astype(np.int64)
    pk = (pix[..., 0] << 16) | (pix[..., 1] << 8) | pix[..., 2]
    uniq, first = np.unique(keys, return_index=True)
    pos = np.clip(np.searchsorted(uniq, pk), 0, len(uniq) - 1)
    if not np.all(uniq[pos] == pk):
        raise ImageError("pixels use colors that are not in the palette")
    im = Image.fromarray(first[pos].astype(np.uint8), mode="P")
    im.putpalette(color.palette)
    return im


OUTPUT_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM",
                  ".pbm": "PPM", ".pnm": "PPM"}
"""Lossless formats a decoded image can be written in, by file suffix (others are refused)."""


def output_format(path: PathLike) -> str:
    """The format to write `path` in, from its suffix (PNG for a character device or FIFO without
    one); ImageError for lossy or unknown suffixes (a `x.jpg` once received PNG bytes)."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS and is_stream(path):
        return "PNG"  # /dev/null, /dev/stdout, a named pipe: PNG, as for '-'
    if suffix not in OUTPUT_FORMATS:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise ImageError(f"{path}: cannot write {suffix or 'a file without a suffix'} exactly; name the output "
                         f"{known} (lossless), or '-' for PNG on standard output")
    return OUTPUT_FORMATS[suffix]


# zlib level of the PNGs a decode writes: on kodim17 level 3 wrote in 0.037 s against level 6's (Pillow's default)
# 0.108 s, for a PNG 2.2 % larger (a throwaway timing, one thread, under load); the pixels are the same
PNG_LEVEL = 3


def encode_image(array: np.ndarray, color: ColorMode = ColorMode(), format: str = "PNG",
                 metadata: Metadata | None = None) -> bytes:
    """The bytes of RGB pixels in their original mode, as a `format` file (see OUTPUT_FORMATS) with
    what of `metadata` the format holds (diffcode.metadata), checked by reading them back:
    ImageError if the format cannot hold the mode exactly."""
    image = to_pil(array, color)
    buffer = io.BytesIO()
    level = {"compress_level": PNG_LEVEL} if format == "PNG" else {}
    try:
        image.save(buffer, format=format, **level, **save_options(metadata, format))
    except (OSError, ValueError) as e:
        raise ImageError(f"cannot write a mode {color.mode} image as {format} ({e}); use .png") from e
    with _open(io.BytesIO(buffer.getvalue())) as back:
        if back.mode != image.mode or not np.array_equal(np.asarray(back), np.asarray(image)) or (
                color.mode == "P" and back.getpalette() != image.getpalette()):
            raise ImageError(f"{format} does not hold this mode {color.mode} image exactly; use .png")
    return buffer.getvalue()


def write_image(path: PathLike, array: np.ndarray, color: ColorMode = ColorMode(), overwrite: bool = False) -> None:
    """Write RGB pixels in their original mode, in the format the suffix names (PNG, BMP, TIFF, PPM),
    atomically (see write_bytes_atomic)."""
    write_bytes_atomic(path, encode_image(array, color, output_format(path)), overwrite=overwrite)


def read_image(path: PathLike) -> np.ndarray:
    """Read an 8-bit RGB image file into an array.

    Accepts any format Pillow decodes exactly (PNG, PPM, BMP, TIFF, WebP, ...).
    Palette images without transparency are expanded to RGB; this is lossless
    because every palette entry is an exact 8-bit RGB triple.

    Args:
        path: image file to read.

    Returns:
        C-contiguous uint8 array of shape (H, W, 3).

    Raises:
        ImageError: the file is missing or unreadable, is JPEG, has more than
            8 bits per sample, has an alpha channel or transparency, is not RGB,
            has several frames, or has an unsupported size.
    """
    return read_image_mode(path)[0]


def _check_is_file(path: Path) -> None:
    """Raise ImageError unless `path` is an existing regular file."""
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file")


def _decode_rgb8(im: Image.Image, path: Path) -> tuple[np.ndarray, ColorMode]:
    """Decode an opened Pillow image to uint8 RGB and its mode, refusing anything lossy."""
    if im.format in LOSSY_DECODE_FORMATS:
        raise ImageError(
            f"{path}: {im.format} files are not accepted because their decoded pixels "
            "depend on the decoder library; convert to PNG with a fixed decoder first"
        )
    if getattr(im, "n_frames", 1) > 1:
        raise ImageError(f"{path}: has {im.n_frames} frames; save the frame you want as PNG")
    _check_source_depth(im, path)
    _check_mode(im, path)
    if im.mode == "P":
        palette = _palette(im, path)
        return np.asarray(im.convert("RGB"), dtype=np.uint8), ColorMode("P", palette)
    if im.mode in ("L", "1"):
        gray = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2), ColorMode(im.mode)
    return np.asarray(im, dtype=np.uint8), ColorMode()


def _palette(im: Image.Image, path: Path) -> bytes:
    """The RGB palette of a P image, as many entries as it has, whose used colors are distinct (else
    ImageError)."""
    if im.palette is None or im.palette.mode != "RGB":
        raise ImageError(f"{path}: palette image without an RGB palette")
    used = np.unique(np.asarray(im))
    raw = bytes(im.getpalette("RGB") or b"")[:768]
    if 3 * (int(used.max()) + 1) > len(raw):
        raise ImageError(f"{path}: uses palette index {int(used.max())} but its palette has {len(raw) // 3} "
                         "entries; convert it to RGB first")
    keys = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    _, first = np.unique(keys, return_index=True)  # the decoder maps a color to its first index (to_pil)
    if not np.array_equal(first[np.searchsorted(np.unique(keys), keys[used])], used):
        raise ImageError(f"{path}: its palette has the same color at two indexes, one of them used after the "
                         "other (an earlier index), so the indexes cannot be restored from the colors; convert it "
                         "to RGB first")
    return raw


def _check_source_depth(im: Image.Image, path: Path) -> None:
    """Reject files that Pillow would silently reduce to 8 bits per sample.

    Pillow opens 16-bit RGB PNGs and PPMs with maxval != 255 as mode "RGB" and
    rescales them, so the mode alone cannot tell; the raw decoder modes can.
    """
    for tile in getattr(im, "tile", ()):  # an image made in memory has no tiles (nor a source depth)
        args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
        rawmode = args[0] if args and isinstance(args[0], str) else ""
        if ";16" in rawmode or ";32" in rawmode:
            raise ImageError(
                f"{path}: has 16 or more bits per sample (raw mode {rawmode}); "
                "diffcode codes 8-bit RGB only"
            )
        if tile.codec_name == "ppm" and len(args) > 1 and args[1] != 255:
            raise ImageError(
                f"{path}: PPM with maxval {args[1]}; diffcode needs maxval 255 (8-bit samples)"
            )


def _check_mode(im: Image.Image, path: Path) -> None:
    """Accept modes RGB, L, 1, and P without transparency; raise ImageError otherwise."""
    if im.mode in ("RGB", "L", "1"):
        return
    if im.mode == "P" and "transparency" not in im.info:
        return
    reason = _MODE_HINTS.get(im.mode, "it is not 8-bit RGB")
    if im.mode == "P":
        reason = "it is a palette image with transparency"
    raise ImageError(
        f"{path}: image mode is {im.mode}; diffcode codes 8-bit RGB, L, 1 and P without transparency ({reason}). "
        "Convert it first, e.g. Image.open(p).convert('RGB').save('out.png'), "
        "and note that this drops alpha or bit depth"
    )


def validate_array(a: np.ndarray, name: str = "array") -> np.ndarray:
    """Check that `a` is an image array diffcode can code.

    Args:
        a: candidate image, uint8 of shape (H, W, 3) with 1 <= H, W <= 65535.
        name: what to call the array in error messages.

    Returns:
        `a` itself if it is C-contiguous, else a C-contiguous copy.

    Raises:
        ImageError: wrong type, dtype, number of dimensions, channels or size.
    """
    if not isinstance(a, np.ndarray):
        raise ImageError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise ImageError(f"{name}: expected dtype uint8, got {a.dtype}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ImageError(f"{name}: expected shape (H, W, 3), got {a.shape}")
    height, width = a.shape[:2]
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ImageError(
            f"{name}: height and width must be in [1, {MAX_SIDE}], got {width}x{height} (width x height)"
        )
    return np.ascontiguousarray(a)


def encode_png(array: np.ndarray, optimize: bool = False) -> bytes:
    """Return the bytes of `array` encoded as an 8-bit RGB PNG."""
    array = validate_array(array)
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def write_png(path: PathLike, array: np.ndarray, overwrite: bool = False) -> None:
    """Write `array` as a PNG file, atomically.

    Args:
        path: destination file.
        array: uint8 image of shape (H, W, 3).
        overwrite: replace `path` if it exists.

    Raises:
        ImageError: `array` is not a valid image.
        OutputExistsError: `path` exists and `overwrite` is False.
        DiffcodeError: the file could not be written (nothing is left behind).
    """
    write_bytes_atomic(path, encode_png(array), overwrite=overwrite)


def pixel_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of the row-major (H, W, 3) uint8 bytes, as in PIXELS.sha256."""
    return hashlib.sha256(validate_array(array).tobytes()).hexdigest()
