"""Baseline codec sizes and result tables that say what made them. No torch.

Baselines (each checks that its own round trip gives back identical pixels):

    png_size   Pillow PNG, optimize=True
    webp_size  Pillow WebP lossless, method=6, quality=100   (None if unavailable)
    jxl_size   imagecodecs JPEG XL lossless, effort=9         (None if unavailable)

`write_table` writes <stem>.csv and <stem>.md, both headed by the command, the
git commit, the date and the machine.
"""

from __future__ import annotations

import csv
import datetime
import importlib.metadata
import io
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, features

from diffcode.errors import DiffcodeError
from diffcode.image import encode_png, validate_array
from diffcode.outputs import write_bytes_atomic

REPO_ROOT = Path(__file__).resolve().parent.parent


def bpsp(size_bytes: int, h: int, w: int) -> float:
    """Bits per subpixel: size_bytes * 8 / (h * w * 3)."""
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {w}x{h}")
    return size_bytes * 8 / (h * w * 3)


def _check_round_trip(codec: str, original: np.ndarray, decoded: np.ndarray) -> None:
    """Raise DiffcodeError unless a baseline codec gave back identical pixels."""
    if decoded.shape != original.shape or not np.array_equal(decoded, original):
        raise DiffcodeError(
            f"{codec} round trip changed the pixels (decoded shape {decoded.shape}, "
            f"original {original.shape}); its size is not a valid lossless baseline"
        )


def _decode_with_pillow(data: bytes) -> np.ndarray:
    """Decode image bytes with Pillow to a uint8 RGB array."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def png_size(array: np.ndarray) -> int:
    """Size in bytes of `array` as a PNG (Pillow, optimize=True)."""
    array = validate_array(array)
    data = encode_png(array, optimize=True)
    _check_round_trip("PNG", array, _decode_with_pillow(data))
    return len(data)


def webp_size(array: np.ndarray) -> int | None:
    """Size in bytes of lossless WebP (method=6, quality=100); None without WebP support."""
    array = validate_array(array)
    if not features.check("webp"):
        return None
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(
        buffer, format="WEBP", lossless=True, method=6, quality=100, exact=True
    )
    data = buffer.getvalue()
    _check_round_trip("WebP", array, _decode_with_pillow(data))
    return len(data)


def jxl_size(array: np.ndarray) -> int | None:
    """Size in bytes of lossless JPEG XL (effort 9); None without imagecodecs' JPEG XL."""
    array = validate_array(array)
    try:
        import imagecodecs
    except ImportError:
        return None
    if not imagecodecs.JPEGXL.available:
        return None
    data = imagecodecs.jpegxl_encode(array, lossless=True, effort=9)
    _check_round_trip("JPEG XL", array, np.asarray(imagecodecs.jpegxl_decode(data)))
    return len(data)


def git_commit(repo: Path = REPO_ROOT) -> str:
    """Short commit hash of `repo`, plus '-dirty' if the code differs from it.

    The code differs if a tracked file changed or an untracked, non-ignored
    Python file exists (new code the commit does not hold). Untracked data and
    result files do not count. Returns 'unknown' outside a git checkout.
    """
    try:
        commit = _git(repo, "rev-parse", "--short", "HEAD")
        status = _git(repo, "status", "--porcelain", "--untracked-files=all")
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return "unknown"
    return commit + ("-dirty" if _code_differs(status.splitlines()) else "")


def _code_differs(status_lines: list[str]) -> bool:
    """True if `git status --porcelain` lines show changed tracked files or new .py files."""
    return any(not line.startswith("??") or line.endswith(".py") for line in status_lines)


def _git(repo: Path, *args: str) -> str:
    """Run a git command in `repo` and return its stripped standard output."""
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


def machine_description() -> str:
    """CPU model, architecture and count, the vector extensions the fits' arithmetic depends on,
    Python version and torch version (without importing torch). Timings differ several-fold between
    CPUs of the same kind of machine (bfloat16 convolutions need AVX512-BF16 or AMX)."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return (
        f"{cpu_model()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch_version}"
    )


def cpu_model() -> str:
    """The CPU's model name and its widest vector extensions, from /proc/cpuinfo ("unknown CPU" elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{names[0] if names else 'unknown CPU'} ({' '.join(vector) or 'no AVX2'})"


def provenance(command: str) -> dict[str, str]:
    """What made a result: command, git commit, UTC date and machine."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "command": command,
        "commit": git_commit(),
        "date": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": machine_description(),
    }


def write_table(rows: list[dict], path_stem: Path, command: str, columns: list[str]) -> None:
    """Write rows as <path_stem>.csv and <path_stem>.md, headed by their provenance.

    The CSV starts with '# key: value' comment lines (read it with
    pandas.read_csv(path, comment='#')); the Markdown file lists the same
    lines above the table. Missing or None values are left blank; floats are
    written in full in the CSV and with 4 decimals in the Markdown. Existing
    files are replaced atomically.

    Args:
        rows: one dict per table row; keys not in `columns` are ignored.
        path_stem: output path without extension.
        command: the command line that produced the rows.
        columns: column names, in order.
    """
    if not columns:
        raise ValueError("write_table needs at least one column")
    header = provenance(command)
    path_stem = Path(path_stem)
    csv_text = _csv_text(rows, columns, header)
    md_text = _markdown_text(rows, columns, header)
    for suffix, text in ((".csv", csv_text), (".md", md_text)):
        path = path_stem.with_name(path_stem.name + suffix)
        write_bytes_atomic(path, text.encode("utf-8"), overwrite=True)


def _csv_text(rows: list[dict], columns: list[str], header: dict[str, str]) -> str:
    """CSV with '# key: value' provenance lines before the column header."""
    buffer = io.StringIO()
    buffer.writelines(f"# {key}: {value}\n" for key, value in header.items())
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return buffer.getvalue()


def _markdown_text(rows: list[dict], columns: list[str], header: dict[str, str]) -> str:
    """Markdown provenance list followed by a pipe table."""
    lines = [f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}"
             for key, value in header.items()]
    lines += ["", _markdown_row(columns), _markdown_row(["---"] * len(columns))]
    lines += [_markdown_row([_format_cell(row.get(c)) for c in columns]) for row in rows]
    return "\n".join(lines) + "\n"


def _markdown_row(cells: list[str]) -> str:
    """One Markdown table row, with '|' in cells escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _format_cell(value: object) -> str:
    """Text of one Markdown cell: blank for None, 4 decimals for floats."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)
