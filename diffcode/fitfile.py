"""The .fit file: a fit result of any family (`diffcode.families.Fit`), as an .npz without pickles.

Arrays: `image` uint8 (H, W, 3), the fit's arrays under their own names (per-pixel:
`centers_<k>` float32 (n, h_k, w_k) radians per stage; weights: `centers` float64 (N,) and
`level_index` int64 (G,)), and `meta`, a UTF-8 JSON document: fit-file version, variant, model
hash, preset, seed, source path, fit seconds, loss history (bpsp per step), colour mode and
palette, and the family's own meta keys (per-pixel: `config`). Version 1 files (before the
protocol) name the model hash `checkpoint_hash` (per-pixel) or `mlp_hash` (weights); they load.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .errors import DiffcodeError
from .families import Fit
from .image import ColorMode, write_bytes_atomic

FIT_FILE_VERSION = 2  # 2: meta names the model `model_hash` and the fit's `preset` (issue 11's protocol)
READABLE_VERSIONS = (1, 2)
RESERVED = ("image", "meta")
_GENERIC = ("fit_file_version", "variant", "model_hash", "checkpoint_hash", "mlp_hash", "preset", "seed", "source",
            "seconds", "history", "color_mode", "palette")


def save(path: str | Path, fit: Fit, source: str = "", overwrite: bool = False) -> None:
    clash = [name for name in fit.arrays if name in RESERVED]
    if clash:
        raise DiffcodeError(f"fit arrays may not be called {clash}")
    color = fit.color or ColorMode()
    meta = {"fit_file_version": FIT_FILE_VERSION, "variant": fit.family, "model_hash": fit.model_hash,
            "preset": fit.preset, "seed": fit.seed, "source": source, "seconds": fit.seconds, "history": fit.history,
            "color_mode": color.mode, "palette": color.palette.hex() if color.palette else None, **fit.meta}
    buf = io.BytesIO()
    np.savez_compressed(buf, image=fit.image, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **fit.arrays)
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def load(path: str | Path) -> tuple[Fit, dict]:
    """Read a fit file; returns the fit result and its metadata."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            arrays = {k: z[k] for k in z.files if k not in RESERVED}
            image = z["image"]
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file ({exc})") from exc
    if meta.get("fit_file_version") not in READABLE_VERSIONS:
        raise DiffcodeError(f"{path}: fit file version {meta.get('fit_file_version')} is not supported")
    try:
        model_hash = meta.get("model_hash") or meta.get("checkpoint_hash") or meta["mlp_hash"]
        color = ColorMode(meta.get("color_mode", "RGB"), bytes.fromhex(meta["palette"]) if meta.get("palette") else None)
        fit = Fit(meta.get("variant", "per-pixel"), image, arrays, {k: v for k, v in meta.items() if k not in _GENERIC},
                  model_hash, meta.get("preset", "default"), meta["seed"], meta["history"], meta["seconds"], color)
    except (KeyError, ValueError, TypeError) as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file (meta: {exc})") from exc
    return fit, meta
