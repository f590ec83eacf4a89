"""Lossless baseline codecs on RGB images: size, encode and decode time, checked round trip.

No torch. Every codec comes from a maintained library or its command-line tool; nothing here is
a hand-written codec.

    codec     library and settings
    raw       the interleaved 8-bit samples themselves (H*W*C bytes)
    gzip      stdlib gzip, compresslevel=9, mtime=0           (gzip -9)
    bzip2     stdlib bz2, compresslevel=9                     (bzip2 -9)
    lzma      stdlib lzma (.xz), preset=9|PRESET_EXTREME      (xz -9e)
    zstd19    zstandard.ZstdCompressor(level=19)              (zstd -19)
    zstd22    zstandard.ZstdCompressor(level=22)              (zstd --ultra -22)
    png       Pillow PNG, optimize=True
    webp      Pillow WebP lossless, method=6, quality=100, exact=True
    jpeg2000  imagecodecs.jpeg2k_encode (OpenJPEG), level=0, reversible=True: JP2 file,
              reversible 5/3 wavelet and reversible colour transform, one quality layer
    jpegxl    imagecodecs.jpegxl_encode (libjxl), lossless=True, effort=9 (bare codestream)
    cjxl-e7   cjxl -d 0 -e 7                      (libjxl's command-line tools, e.g. Debian
    cjxl-e9   cjxl -d 0 -e 9                       libjxl-tools 0.7; decoded with djxl; both
    cjxl-max  cjxl -d 0 -e 9 -E 3 -I 100 -g 3      with --num_threads=1)

cjxl-max is JPEG XL's strongest lossless setting: effort 9, three previous channels as extra
MA-tree properties (-E 3), every pixel used to learn the trees (-I 100), 1024x1024 groups (-g 3).
The cjxl codecs write the samples to a temporary PNG (stored, zlib level 0), run cjxl on it, run
djxl on the .jxl to a PNG and read that back: their seconds are whole processes (start-up, PNG
reading and writing included), as a user of the tools would measure them, and bytes are the .jxl
file's size. They run only where cjxl and djxl are on PATH; elsewhere they are reported
unavailable like a missing library.

The general-purpose compressors (gzip .. zstd22) compress the raw row-major interleaved bytes
(R, G, B, R, G, B, ... ; one byte per pixel for grayscale). zstd's command line asks for
--ultra before levels 20-22; the library API has no such switch and takes level 22 directly
(zstandard.MAX_COMPRESSION_LEVEL is 22). Image codecs and general compressors run single-threaded
where the library lets us choose, so the timings compare like with like.

Every encode is decoded again and compared with the input; a difference raises DiffcodeError.
A codec whose library is missing (or built without it) is reported, not fatal: its row has
bytes/bpsp/seconds None and the reason in `note`.

Two options reproduce the critique of "language models compress images" (Deletang et al. 2023,
"Language modeling is compression", coded ImageNet as 32x64 grayscale patches):

- patches=True: the image is cut into non-overlapping patches of height 32 and width 64, from
  the top-left corner; incomplete patches at the right and bottom borders are dropped. Each
  patch is compressed on its own and the sizes (and times) are summed. The bpsp denominator
  counts only the subpixels in the kept patches. A 768x512 or 512x768 Kodak image gives 192
  patches and loses no pixels.
- grayscale=True: the image is first converted with Pillow's "L" mode (ITU-R 601-2 luma,
  L = R*299/1000 + G*587/1000 + B*114/1000), and bpsp counts one subpixel per pixel. WebP has no
  grayscale mode: Pillow stores the gray image as RGB with three equal channels, and the check
  requires every decoded channel to equal the gray input.
Both can be combined (the critique's setting).

Rows: `run` returns one dict per (image, codec), in the order images x CODEC_NAMES, with keys
ROW_COLUMNS. `summarize` turns them into one row per codec (mean bpsp, totals) and `wide`
into one row per image with a bpsp column per codec (for tables and plots).

A command line needs ten lines:

    rows = baselines.run(kodak.split(split), kodak_dir=kodak_dir, patches=patches,
                         grayscale=grayscale)
    baselines.write(rows, baselines.default_stem(split, patches, grayscale), command)
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, features

from diffcode import report
from diffcode.errors import DiffcodeError
from diffcode.image import read_image, validate_array
from diffcode.outputs import write_bytes_atomic

PATCH_HEIGHT = 32
PATCH_WIDTH = 64

RESULTS_DIR = report.REPO_ROOT / "experiments" / "results"

ROW_COLUMNS = ["image", "codec", "settings", "color", "height", "width", "patches", "subpixels",
               "bytes", "bpsp", "encode_seconds", "decode_seconds", "note"]
"""Keys of the rows `run` returns (and the columns of <stem>-rows.csv/.md).

color is "rgb" or "gray"; patches is the number of 32x64 patches coded (0: the whole image);
subpixels is the bpsp denominator; bytes and seconds are sums over the patches.
"""

SUMMARY_COLUMNS = ["codec", "settings", "color", "images", "patches", "subpixels", "total_bytes",
                   "total_kib", "mean_bpsp", "pooled_bpsp", "encode_seconds", "decode_seconds",
                   "note"]
"""Keys of the rows `summarize` returns (and the columns of <stem>-summary.csv/.md)."""


@dataclass(frozen=True)
class Codec:
    """A lossless codec: how to test for it, encode an array and decode bytes.

    encode takes a C-contiguous uint8 array of shape (H, W, 3) or (H, W) and returns bytes;
    decode takes those bytes and the input's shape and returns an array that must equal it.
    """

    name: str
    settings: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes, tuple], np.ndarray]
    unavailable: Callable[[], str | None]


# ---- availability ---------------------------------------------------------------------------

def _always_available() -> str | None:
    return None


def _zstandard_missing() -> str | None:
    try:
        import zstandard  # noqa: F401
    except ImportError as e:
        return f"zstandard is not installed ({e}); pip install zstandard"
    return None


def _pillow_webp_missing() -> str | None:
    if not features.check("webp"):
        return "Pillow was built without WebP support"
    return None


def _imagecodecs_missing(attribute: str, label: str) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            import imagecodecs
        except ImportError as e:
            return f"imagecodecs is not installed ({e}); pip install imagecodecs"
        if not getattr(getattr(imagecodecs, attribute, None), "available", False):
            return f"imagecodecs {imagecodecs.__version__} was built without {label}"
        return None

    return check


def _tools_missing(tools: Sequence[str], package: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            return f"{' and '.join(missing)} not found on PATH; apt-get install {package}"
        return None

    return check


# ---- general-purpose compressors of the raw bytes -------------------------------------------

def _from_bytes(data: bytes, shape: tuple) -> np.ndarray:
    expected = int(np.prod(shape))
    if len(data) != expected:
        raise DiffcodeError(f"decompressed {len(data)} bytes, expected {expected}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _byte_codec(name: str, settings: str, compress: Callable[[bytes], bytes],
                decompress: Callable[[bytes], bytes],
                unavailable: Callable[[], str | None] = _always_available) -> Codec:
    return Codec(
        name=name,
        settings=settings,
        encode=lambda a: compress(a.tobytes()),
        decode=lambda data, shape: _from_bytes(decompress(data), shape),
        unavailable=unavailable,
    )


def _zstd_compress(level: int) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        import zstandard

        return zstandard.ZstdCompressor(level=level, threads=0).compress(data)

    return compress


def _zstd_decompress(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data)


# ---- image codecs ---------------------------------------------------------------------------

def _pillow_image(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a, mode="L" if a.ndim == 2 else "RGB")


def _pillow_decode(data: bytes, shape: tuple) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def _png_encode(a: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    _pillow_image(a).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _webp_encode(a: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    _pillow_image(a).save(buffer, format="WEBP", lossless=True, method=6, quality=100, exact=True)
    return buffer.getvalue()


def _jpeg2000_encode(a: np.ndarray) -> bytes:
    import imagecodecs

    return imagecodecs.jpeg2k_encode(a, level=0, reversible=True, numthreads=1)


def _jpeg2000_decode(data: bytes, shape: tuple) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpeg2k_decode(data, numthreads=1)


def _jpegxl_encode(a: np.ndarray) -> bytes:
    import imagecodecs

    return imagecodecs.jpegxl_encode(a, lossless=True, effort=9, numthreads=1)


def _jpegxl_decode(data: bytes, shape: tuple) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegxl_decode(data, numthreads=1)


CJXL_OPTIONS: dict[str, tuple[str, ...]] = {
    "cjxl-e7": ("-d", "0", "-e", "7"),
    "cjxl-e9": ("-d", "0", "-e", "9"),
    "cjxl-max": ("-d", "0", "-e", "9", "-E", "3", "-I", "100", "-g", "3"),
}
"""cjxl options of each command-line JPEG XL codec (before --num_threads=1 --quiet)."""

JXL_TOOLS = ("cjxl", "djxl")
JXL_TOOL_OPTIONS = ("--num_threads=1", "--quiet")
"""Options of both tools: one worker thread (djxl's 0 would mean the machine's default), no log."""


def _run_tool(args: Sequence[str]) -> None:
    """Run a command-line codec; a failure raises DiffcodeError with its exit status and stderr."""
    result = subprocess.run(list(args), capture_output=True)
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise DiffcodeError(f"{shlex.join(args)} failed with exit status {result.returncode}: "
                            f"{stderr or 'no message'}")


def _cjxl_encode(options: Sequence[str]) -> Callable[[np.ndarray], bytes]:
    def encode(a: np.ndarray) -> bytes:
        with tempfile.TemporaryDirectory(prefix="diffcode-cjxl-") as folder:
            source, target = Path(folder) / "input.png", Path(folder) / "output.jxl"
            _pillow_image(a).save(source, format="PNG", compress_level=0)
            _run_tool(["cjxl", str(source), str(target), *options, *JXL_TOOL_OPTIONS])
            return target.read_bytes()

    return encode


def _djxl_decode(data: bytes, shape: tuple) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="diffcode-djxl-") as folder:
        source, target = Path(folder) / "input.jxl", Path(folder) / "output.png"
        source.write_bytes(data)
        _run_tool(["djxl", str(source), str(target), *JXL_TOOL_OPTIONS])
        return _pillow_decode(target.read_bytes(), shape)


def _cjxl_codec(name: str) -> Codec:
    command = shlex.join(["cjxl", *CJXL_OPTIONS[name], *JXL_TOOL_OPTIONS])
    return Codec(name, f"JPEG XL lossless ({command}; djxl; via temporary PNG files)",
                 _cjxl_encode(CJXL_OPTIONS[name]), _djxl_decode,
                 _tools_missing(JXL_TOOLS, "libjxl-tools"))


def _codecs() -> dict[str, Codec]:
    codecs = [
        Codec("raw", "interleaved 8-bit samples, no compression", lambda a: a.tobytes(),
              _from_bytes, _always_available),
        _byte_codec("gzip", "gzip -9 (stdlib gzip, compresslevel=9, mtime=0) of raw bytes",
                    lambda d: gzip.compress(d, compresslevel=9, mtime=0), gzip.decompress),
        _byte_codec("bzip2", "bzip2 -9 (stdlib bz2, compresslevel=9) of raw bytes",
                    lambda d: bz2.compress(d, 9), bz2.decompress),
        _byte_codec("lzma", "xz -9e (stdlib lzma, preset=9|PRESET_EXTREME) of raw bytes",
                    lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        _byte_codec("zstd19", "zstd -19 (zstandard, level=19) of raw bytes",
                    _zstd_compress(19), _zstd_decompress, _zstandard_missing),
        _byte_codec("zstd22", "zstd --ultra -22 (zstandard, level=22) of raw bytes",
                    _zstd_compress(22), _zstd_decompress, _zstandard_missing),
        Codec("png", "PNG (Pillow, optimize=True)", _png_encode, _pillow_decode,
              _always_available),
        Codec("webp", "WebP lossless (Pillow, method=6, quality=100, exact=True)", _webp_encode,
              _pillow_decode, _pillow_webp_missing),
        Codec("jpeg2000", "JPEG 2000 lossless (imagecodecs/OpenJPEG, JP2, level=0, reversible=True)",
              _jpeg2000_encode, _jpeg2000_decode, _imagecodecs_missing("JPEG2K", "JPEG 2000")),
        Codec("jpegxl", "JPEG XL lossless (imagecodecs/libjxl, lossless=True, effort=9)",
              _jpegxl_encode, _jpegxl_decode, _imagecodecs_missing("JPEGXL", "JPEG XL")),
        *(_cjxl_codec(name) for name in CJXL_OPTIONS),
    ]
    return {c.name: c for c in codecs}


CODECS: dict[str, Codec] = _codecs()
CODEC_NAMES: tuple[str, ...] = tuple(CODECS)


def unavailable_codecs(names: Iterable[str] = CODEC_NAMES) -> dict[str, str]:
    """{codec name: reason} for each of `names` that cannot run here (empty if all can)."""
    reasons = {name: _codec(name).unavailable() for name in names}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def library_versions() -> str:
    """Versions of the libraries behind the codecs, for a results note."""
    import zlib

    parts = [f"Pillow {Image.__version__} (libwebp {features.version('webp')}, "
             f"zlib {features.version('zlib')})", f"Python zlib {zlib.ZLIB_RUNTIME_VERSION}",
             f"bz2/lzma from Python {sys.version.split()[0]}"]
    try:
        import zstandard

        parts.append(f"zstandard {zstandard.__version__} (zstd "
                     f"{'.'.join(map(str, zstandard.ZSTD_VERSION))})")
    except ImportError:
        pass
    try:
        import imagecodecs

        parts.append(f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpeg2k_version()}, "
                     f"{imagecodecs.jpegxl_version()})")
    except (ImportError, AttributeError):
        pass
    if _tools_missing(JXL_TOOLS, "libjxl-tools")() is None:
        parts += [_tool_version(tool) for tool in JXL_TOOLS]
    return "; ".join(parts)


def _tool_version(tool: str) -> str:
    """First line of `tool --version`, e.g. 'cjxl v0.7.0 [AVX2,SSE4,SSSE3,Unknown]'."""
    result = subprocess.run([tool, "--version"], capture_output=True, text=True)
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else f"{tool} (version unknown)"


def _codec(name: str) -> Codec:
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; expected one of {', '.join(CODEC_NAMES)}")
    return CODECS[name]


# ---- preparing the samples ------------------------------------------------------------------

def to_grayscale(array: np.ndarray) -> np.ndarray:
    """Pillow "L" conversion (ITU-R 601-2 luma) of an RGB uint8 array; shape (H, W)."""
    array = validate_array(array)
    return np.asarray(Image.fromarray(array, mode="RGB").convert("L"))


def cut_patches(array: np.ndarray, height: int = PATCH_HEIGHT,
                width: int = PATCH_WIDTH) -> list[np.ndarray]:
    """Non-overlapping height x width patches in row-major order; incomplete border ones dropped.

    Raises:
        DiffcodeError: the image is smaller than one patch.
    """
    rows, cols = array.shape[0] // height, array.shape[1] // width
    if rows == 0 or cols == 0:
        raise DiffcodeError(
            f"a {array.shape[0]}x{array.shape[1]} image holds no complete {height}x{width} patch"
        )
    return [np.ascontiguousarray(array[r * height:(r + 1) * height, c * width:(c + 1) * width])
            for r in range(rows) for c in range(cols)]


def prepare(array: np.ndarray, *, patches: bool = False, grayscale: bool = False) -> list[np.ndarray]:
    """The arrays each codec compresses separately: the whole image, or its patches."""
    array = validate_array(array)
    samples = to_grayscale(array) if grayscale else array
    return cut_patches(samples) if patches else [samples]


# ---- measuring ------------------------------------------------------------------------------

def _check_equal(codec: str, original: np.ndarray, decoded: np.ndarray) -> None:
    """Raise DiffcodeError unless `decoded` holds exactly the samples of `original`.

    A grayscale (H, W) input may come back as (H, W, 1) or as (H, W, 3) with equal channels
    (WebP has no grayscale mode).
    """
    decoded = np.asarray(decoded)
    if original.ndim == 2 and decoded.ndim == 3:
        ok = decoded.dtype == np.uint8 and decoded.shape[:2] == original.shape and all(
            np.array_equal(decoded[..., k], original) for k in range(decoded.shape[2]))
    else:
        ok = decoded.shape == original.shape and np.array_equal(decoded, original)
    if not ok:
        raise DiffcodeError(
            f"{codec} round trip changed the samples (decoded {decoded.dtype} {decoded.shape}, "
            f"original {original.dtype} {original.shape}); its size is not a lossless baseline"
        )


def measure_codec(name: str, pieces: Sequence[np.ndarray]) -> dict:
    """Compress each piece with codec `name`, check each round trip, and sum up.

    Returns:
        {"codec", "settings", "bytes", "encode_seconds", "decode_seconds", "note"}; bytes and
        seconds are None, and note says why, if the codec is unavailable here.

    Raises:
        DiffcodeError: a decode differs from its input.
    """
    codec = _codec(name)
    result = {"codec": name, "settings": codec.settings, "bytes": None,
              "encode_seconds": None, "decode_seconds": None, "note": codec.unavailable()}
    if result["note"] is not None:
        return result
    size, encode_seconds, decode_seconds = 0, 0.0, 0.0
    for piece in pieces:
        t0 = time.perf_counter()
        data = bytes(codec.encode(piece))
        t1 = time.perf_counter()
        decoded = codec.decode(data, piece.shape)
        t2 = time.perf_counter()
        _check_equal(codec.settings, piece, decoded)
        size += len(data)
        encode_seconds += t1 - t0
        decode_seconds += t2 - t1
    result.update(bytes=size, encode_seconds=encode_seconds, decode_seconds=decode_seconds)
    return result


def measure(array: np.ndarray, image: str = "array", *, patches: bool = False,
            grayscale: bool = False, codecs: Sequence[str] = CODEC_NAMES) -> list[dict]:
    """One row per codec for one RGB uint8 (H, W, 3) image; keys ROW_COLUMNS.

    bpsp = bytes * 8 / subpixels, where subpixels = (pixels in the coded pieces) * channels,
    channels being 3 for RGB and 1 with grayscale=True.
    """
    array = validate_array(array, name=image)
    pieces = prepare(array, patches=patches, grayscale=grayscale)
    subpixels = sum(p.size for p in pieces)
    common = {"image": image, "color": "gray" if grayscale else "rgb",
              "height": array.shape[0], "width": array.shape[1],
              "patches": len(pieces) if patches else 0, "subpixels": subpixels}
    rows = []
    for name in codecs:
        row = {**common, **measure_codec(name, pieces)}
        row["bpsp"] = None if row["bytes"] is None else row["bytes"] * 8 / subpixels
        rows.append({c: row[c] for c in ROW_COLUMNS})
    return rows


def _load(name_or_path: str | os.PathLike, kodak_dir) -> tuple[str, np.ndarray]:
    """A Kodak name (checked against the manifest) or an image file path -> (label, array)."""
    from diffcode import kodak

    text = os.fspath(name_or_path)
    stem = text[:-4] if text.endswith(".png") else text
    if stem in kodak.ALL and not Path(text).is_file():
        return stem, kodak.load(stem, kodak_dir)
    return Path(text).stem, read_image(text)


def run(names_or_paths: Iterable[str | os.PathLike], *, kodak_dir=None, patches: bool = False,
        grayscale: bool = False, progress: bool = True,
        codecs: Sequence[str] = CODEC_NAMES) -> list[dict]:
    """Measure every codec on every image; one row per (image, codec), keys ROW_COLUMNS.

    Args:
        names_or_paths: Kodak names ('kodim17', e.g. from kodak.split('test')), whose pixels
            are checked against the manifest, or paths of image files.
        kodak_dir: folder of the Kodak images (found with kodak.find_kodak_dir if None).
        patches: code 32x64 patches separately (see the module docstring).
        grayscale: code the Pillow "L" luma instead of RGB.
        progress: print one line per image to stderr.
        codecs: which codecs, by name (default all, CODEC_NAMES).

    Raises:
        DiffcodeError: an image cannot be read, or a codec's round trip is not exact.
    """
    for name in codecs:
        _codec(name)
    names = list(names_or_paths)
    rows = []
    for i, item in enumerate(names, 1):
        label, array = _load(item, kodak_dir)
        t0 = time.perf_counter()
        image_rows = measure(array, label, patches=patches, grayscale=grayscale, codecs=codecs)
        rows += image_rows
        if progress:
            sizes = ", ".join(f"{r['codec']} {r['bpsp']:.3f}" for r in image_rows
                              if r["bpsp"] is not None)
            print(f"[{i}/{len(names)}] {label} ({time.perf_counter() - t0:.1f} s): {sizes}",
                  file=sys.stderr, flush=True)
    return rows


# ---- tables ---------------------------------------------------------------------------------

def summarize(rows: Sequence[dict]) -> list[dict]:
    """One row per codec (in first-seen order); keys SUMMARY_COLUMNS.

    mean_bpsp is the mean of the per-image bpsp (the usual Kodak figure); pooled_bpsp is total
    bits over total subpixels (equal to it when all images have the same size). Seconds are
    totals over all images. An unavailable codec gets None figures and its reason in note.
    """
    by_codec: dict[str, list[dict]] = {}
    for row in rows:
        by_codec.setdefault(row["codec"], []).append(row)
    summary = []
    for codec, group in by_codec.items():
        done = [r for r in group if r["bytes"] is not None]
        notes = sorted({r["note"] for r in group if r.get("note")})
        out = {"codec": codec, "settings": group[0]["settings"], "color": group[0]["color"],
               "images": len(done), "patches": sum(r["patches"] for r in done),
               "subpixels": sum(r["subpixels"] for r in done),
               "note": "; ".join(notes) or None}
        if done:
            total = sum(r["bytes"] for r in done)
            out.update(total_bytes=total, total_kib=total / 1024,
                       mean_bpsp=float(np.mean([r["bpsp"] for r in done])),
                       pooled_bpsp=total * 8 / out["subpixels"],
                       encode_seconds=sum(r["encode_seconds"] for r in done),
                       decode_seconds=sum(r["decode_seconds"] for r in done))
        summary.append({c: out.get(c) for c in SUMMARY_COLUMNS})
    return summary


def wide(rows: Sequence[dict], value: str = "bpsp") -> list[dict]:
    """One row per image: {"image": name, <codec>: row[value], ...}, e.g. for figures.bpsp_plot."""
    by_image: dict[str, dict] = {}
    for row in rows:
        by_image.setdefault(row["image"], {"image": row["image"]})[row["codec"]] = row[value]
    return list(by_image.values())


def default_stem(split: str, patches: bool = False, grayscale: bool = False,
                 results_dir: Path = RESULTS_DIR) -> Path:
    """experiments/results/baselines-<split>[-patches][-gray]."""
    suffix = ("-patches" if patches else "") + ("-gray" if grayscale else "")
    return Path(results_dir) / f"baselines-{split}{suffix}"


TABLE_SUFFIXES = ("", "-summary", "-rows")


def output_paths(stem: str | os.PathLike) -> list[Path]:
    """Every file `write` writes for `stem` (so that a command can check them before any work)."""
    stem = Path(stem)
    return [stem.with_name(stem.name + t + s) for t in TABLE_SUFFIXES for s in (".csv", ".md")]


def write(rows: Sequence[dict], stem: str | os.PathLike, command: str,
          note: str | None = None) -> list[Path]:
    """Write the tables of `rows` (from `run`), each as .csv and .md with provenance.

    Files:
        <stem>.csv/.md          per image, columns: image + one bpsp column per codec
        <stem>-summary.csv/.md  per codec, columns SUMMARY_COLUMNS
        <stem>-rows.csv/.md     every (image, codec) row, columns ROW_COLUMNS (bytes, times)
    `note`, if given, is appended as a paragraph to the summary's Markdown file.

    Returns:
        The paths written.
    """
    stem = Path(stem)
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    tables = [
        (stem, wide(rows), ["image", *codecs]),
        (stem.with_name(stem.name + "-summary"), summarize(rows), SUMMARY_COLUMNS),
        (stem.with_name(stem.name + "-rows"), list(rows), ROW_COLUMNS),
    ]
    paths = []
    for path_stem, table, columns in tables:
        report.write_table(table, path_stem, command, columns)
        paths += [path_stem.with_name(path_stem.name + s) for s in (".csv", ".md")]
    if note:
        md = tables[1][0].with_name(tables[1][0].name + ".md")
        text = md.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + note.strip() + "\n"
        write_bytes_atomic(md, text.encode("utf-8"), overwrite=True)
    return paths
