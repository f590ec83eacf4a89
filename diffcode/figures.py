"""Figures like the report's Figures 2-5, and a bpsp-per-image comparison. No torch.

matplotlib is imported inside the functions, and only its object-oriented API with the Agg
canvas is used (no pyplot, no global backend switch), so importing this module costs nothing
and works without a display. Figures are small (DPI 100, panels at most 3.2 inches on their
long side); a PNG that would exceed MAX_PNG_BYTES is stored with a 256-colour palette instead,
so committed figures stay well under 300 KB.

    image_figures(maps, out_stem)  -> <out_stem>-means.png, -residuals.png, -encodings.png
    bpsp_plot(rows, path)          -> one grouped bar chart of bpsp per image
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from diffcode.outputs import write_bytes_atomic

DPI = 100
PANEL_INCHES = 3.2
"""Long side of one image panel, in inches (320 pixels at DPI 100)."""
MAX_PNG_BYTES = 250_000

LABELS = {
    "bpsp": "diffcode",
    "theoretical_bpsp": "diffcode (theoretical)",
    "raw": "raw",
    "gzip": "gzip -9",
    "bzip2": "bzip2 -9",
    "lzma": "xz -9e",
    "zstd19": "zstd -19",
    "zstd22": "zstd -22",
    "png": "PNG",
    "png_bpsp": "PNG",
    "webp": "WebP",
    "webp_bpsp": "WebP",
    "jpeg2000": "JPEG 2000",
    "jpeg2000_bpsp": "JPEG 2000",
    "jpegxl": "JPEG XL",
    "jxl_bpsp": "JPEG XL",
}
"""Legend labels of known column names; other columns are labelled by their name."""

DEFAULT_BASELINES = ("png", "webp", "jpeg2000", "jpegxl", "png_bpsp", "webp_bpsp", "jxl_bpsp")
"""Baseline columns plotted by default: those of baselines.wide rows (png, webp, ...) and those
of experiments/kodak_table.py rows (png_bpsp, ...). Columns absent from every row are left out."""


def image_figures(maps: Mapping[str, object], out_stem: str | Path,
                  residual_gain: float = 4.0) -> list[Path]:
    """Write the means, residuals and encodings figures of one coded image.

    Args:
        maps: {"image": uint8 (H, W, 3) original,
               "loc": float (3, H, W) predicted Cauchy locations on the 0..255 scale,
               "bits": float (3, H, W) cost of each subpixel in bits,
               "stage_bits": list of float (h_k, w_k) arrays, the encodings' entropy in bits
                             at each position of each stage (the last one is the head)}.
        out_stem: path without extension; the files are <out_stem>-means.png,
            <out_stem>-residuals.png and <out_stem>-encodings.png (replaced if present).
        residual_gain: the residual image shows residual_gain * |image - loc|, clipped to
            0..255, so that small errors are visible (the title states the gain).

    Returns:
        The three paths, in that order.

    Raises:
        ValueError: a map is missing or has the wrong shape.
    """
    image, loc, bits, stages = _check_maps(maps)
    out_stem = Path(out_stem)
    paths = [out_stem.with_name(out_stem.name + f"-{kind}.png")
             for kind in ("means", "residuals", "encodings")]
    stage_total = float(sum(s.sum() for s in stages))
    error_total = float(bits.sum())
    subpixels = image.size

    means = np.clip(np.rint(loc.transpose(1, 2, 0)), 0, 255).astype(np.uint8)
    fig, axes = _figure(image.shape[:2], 2)
    _show(axes[0], image, "original")
    _show(axes[1], means, f"predicted means\nencodings {_bits_text(stage_total)}")
    fig.suptitle(f"total {_bits_text(stage_total + error_total)} "
                 f"({(stage_total + error_total) / subpixels:.3f} bpsp)", fontsize=9)
    _save(fig, paths[0])

    residual = np.abs(image.astype(np.float64) - loc.transpose(1, 2, 0))
    fig, axes = _figure(image.shape[:2], 2, colorbar=True)
    gain = f" x {residual_gain:g}" if residual_gain != 1 else ""
    _show(axes[0], np.clip(np.rint(residual * residual_gain), 0, 255).astype(np.uint8),
          f"|image - mean|{gain}\nmean {residual.mean():.2f} levels")
    cost = bits.sum(axis=0)
    heat = axes[1].imshow(cost, cmap="magma", interpolation="nearest")
    axes[1].set_title(f"cost, bits per pixel\nerrors {_bits_text(error_total)}", fontsize=8)
    axes[1].set_axis_off()
    fig.colorbar(heat, ax=axes[1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
    _save(fig, paths[1])

    _save(_encodings_figure(stages, stage_total), paths[2])
    return paths


def bpsp_plot(rows: Sequence[Mapping[str, object]], path: str | Path, ours_key: str = "bpsp",
              baseline_keys: Sequence[str] = DEFAULT_BASELINES, title: str | None = None) -> Path:
    """Grouped bars of bits per subpixel per image (plus their mean): ours next to baselines.

    Args:
        rows: one dict per image with "image" and numeric bpsp columns (e.g. the rows of
            experiments/kodak_table.py, or diffcode.baselines.wide(rows) merged with ours).
        path: output PNG (replaced if present).
        ours_key: column of diffcode's bpsp (drawn first).
        baseline_keys: baseline columns; legend labels come from LABELS. A column missing from
            every row is left out; a missing or None value leaves its bar out. The "mean"
            group averages each column over the images where it is present.

    Returns:
        `path`.
    """
    from matplotlib.figure import Figure

    keys = [k for k in dict.fromkeys([ours_key, *baseline_keys])
            if any(_number(r.get(k)) is not None for r in rows)]
    images = [str(r.get("image", r.get("file", i))) for i, r in enumerate(rows)]
    values = np.array([[_number(r.get(k)) for k in keys] for r in rows], dtype=float).reshape(
        len(rows), len(keys))
    if len(rows):
        with np.errstate(invalid="ignore"):
            means = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan
                              for c in values.T])
        values = np.vstack([values, means])
        images.append("mean")

    groups = max(len(images), 1)
    fig = Figure(figsize=(min(max(2.0 + groups * (0.25 + 0.12 * len(keys)), 4.0), 12.0), 3.4),
                 dpi=DPI)
    ax = fig.subplots()
    width = 0.8 / max(len(keys), 1)
    x = np.arange(len(images))
    for j, key in enumerate(keys):
        column = values[:, j]
        shown = np.isfinite(column)
        ax.bar(x[shown] + (j - (len(keys) - 1) / 2) * width, column[shown], width,
               label=LABELS.get(key, key), edgecolor="black" if key == ours_key else "none",
               linewidth=0.6)
    if len(rows) and keys:
        for j in range(len(keys)):  # the mean group's values, above its bars
            if np.isfinite(values[-1, j]):
                ax.text(x[-1] + (j - (len(keys) - 1) / 2) * width, values[-1, j],
                        f"{values[-1, j]:.2f}", ha="center", va="bottom", fontsize=5,
                        rotation=90)
        top = np.nanmax(values) if np.isfinite(values).any() else 1.0
        ax.set_ylim(0, top * 1.3)
    ax.set_xticks(x)
    ax.set_xticklabels(images, rotation=45 if len(images) > 6 else 0, ha="right"
                       if len(images) > 6 else "center", fontsize=7)
    ax.set_ylabel("bits per subpixel", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", linewidth=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=9)
    if keys:
        ax.legend(fontsize=7, ncol=min(len(keys), 6), loc="upper center", framealpha=0.9)
    else:
        ax.text(0.5, 0.5, "no bpsp values", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path = Path(path)
    _save(fig, path)
    return path


# ---- helpers --------------------------------------------------------------------------------

def _number(value: object) -> float | None:
    """A finite float, or None for missing, None, empty, non-numeric or NaN values."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_maps(maps: Mapping[str, object]):
    missing = [k for k in ("image", "loc", "bits", "stage_bits") if k not in maps]
    if missing:
        raise ValueError(f"image_figures: maps lacks {', '.join(missing)}")
    image = np.asarray(maps["image"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    expected = (3, *image.shape[:2])
    loc = np.asarray(maps["loc"], dtype=np.float64)
    bits = np.asarray(maps["bits"], dtype=np.float64)
    for name, array in (("loc", loc), ("bits", bits)):
        if array.shape != expected:
            raise ValueError(f"{name} must have shape {expected} (3, H, W), got {array.shape}")
    stages = [np.asarray(s, dtype=np.float64) for s in maps["stage_bits"]]
    if not stages or any(s.ndim != 2 or 0 in s.shape for s in stages):
        raise ValueError("stage_bits must be a non-empty list of 2-D (h, w) arrays, "
                         f"got shapes {[np.shape(s) for s in maps['stage_bits']]}")
    return image, loc, bits, stages


def _bits_text(bits: float) -> str:
    """'123,456 bits (15.1 KiB)'."""
    return f"{bits:,.0f} bits ({bits / 8 / 1024:.1f} KiB)"


def _panel_inches(hw: tuple[int, int]) -> tuple[float, float]:
    """(width, height) in inches of one image panel, long side PANEL_INCHES."""
    h, w = hw
    scale = PANEL_INCHES / max(h, w)
    return max(w * scale, 0.8), max(h * scale, 0.8)


def _figure(hw: tuple[int, int], panels: int, colorbar: bool = False):
    from matplotlib.figure import Figure

    pw, ph = _panel_inches(hw)
    fig = Figure(figsize=(panels * pw + (0.7 if colorbar else 0.2), ph + 0.8), dpi=DPI)
    axes = fig.subplots(1, panels)
    fig.subplots_adjust(left=0.02, right=0.9 if colorbar else 0.98, bottom=0.02, top=0.82,
                        wspace=0.08)
    return fig, np.atleast_1d(axes)


def _show(ax, array: np.ndarray, title: str) -> None:
    ax.imshow(array, interpolation="antialiased")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _encodings_figure(stages: list[np.ndarray], total: float):
    from matplotlib.figure import Figure

    n = len(stages)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    pw, ph = _panel_inches(stages[-1].shape)
    pw, ph = min(pw, 2.2), min(ph, 2.2)
    fig = Figure(figsize=(cols * (pw + 0.5), rows * (ph + 0.6) + 0.4), dpi=DPI)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for k, (ax, stage) in enumerate(zip(axes, stages)):
        name = "head" if k == n - 1 and n > 1 else f"stage {k}"
        heat = ax.imshow(stage, cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name}: {stage.shape[1]}x{stage.shape[0]}\n{_bits_text(float(stage.sum()))}",
                     fontsize=7)
        ax.set_axis_off()
        fig.colorbar(heat, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle(f"encodings: {_bits_text(total)}, bits per position", fontsize=9)
    fig.tight_layout()
    return fig


def _save(fig, path: Path) -> None:
    """Render `fig` to PNG; palette-quantize it if larger than MAX_PNG_BYTES; write atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    data = buffer.getvalue()
    if len(data) > MAX_PNG_BYTES:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            small = im.convert("RGB").quantize(colors=256)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
    write_bytes_atomic(Path(path), data, overwrite=True)
