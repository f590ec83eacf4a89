"""The .fit file: everything `store` needs from a fit (an .npz without pickles).

Arrays: `image` uint8 (H, W, 3), `centers_<k>` float32 (n, h_k, w_k) radians per stage (head
last), `meta` a UTF-8 JSON document: fit-file version, variant, checkpoint hash, seed, fit
config, source path, fit seconds and the loss history (bpsp per step).
Weights-variant fits (meta variant "weights") hold `image`, `centers` and `level_index` instead
(see `_save_weights`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from .errors import DiffcodeError
from .fit_per_pixel import FitConfig, FitResult
from .image import ColorMode, write_bytes_atomic

FIT_FILE_VERSION = 1


def save(path: str | Path, fit: FitResult, source: str = "", overwrite: bool = False) -> None:
    if getattr(fit, "variant", "per-pixel") == "weights":
        return _save_weights(path, fit, source, overwrite)
    meta = {"fit_file_version": FIT_FILE_VERSION, "variant": "per-pixel",
            "checkpoint_hash": fit.checkpoint_hash, "seed": fit.seed, "config": fit.config.to_dict(),
            "source": source, "seconds": fit.seconds, "history": fit.history,
            "color_mode": fit.color.mode if fit.color else "RGB",
            "palette": fit.color.palette.hex() if fit.color and fit.color.palette else None}
    arrays = {f"centers_{k}": c.astype(np.float32) for k, c in enumerate(fit.centers)}
    buf = io.BytesIO()
    np.savez_compressed(buf, image=fit.image, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def load(path: str | Path) -> tuple[FitResult, dict]:
    """Read a fit file; returns the FitResult and its metadata."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            n = sum(1 for k in z.files if k.startswith("centers_"))
            centers = [z[f"centers_{k}"] for k in range(n)]
            image = z["image"]
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file ({exc})") from exc
    if meta.get("fit_file_version") != FIT_FILE_VERSION:
        raise DiffcodeError(f"{path}: fit file version {meta.get('fit_file_version')} is not supported")
    if meta.get("variant") == "weights":
        return _load_weights(path, meta), meta
    # fit files older than the storage field were made for the random-seed scheme
    fit = FitResult(image=image, centers=centers, checkpoint_hash=meta["checkpoint_hash"],
                    config=FitConfig(**{"storage": "randseed", **meta["config"]}), seed=meta["seed"], history=meta["history"],
                    seconds=meta["seconds"],
                    color=ColorMode(meta.get("color_mode", "RGB"), bytes.fromhex(meta["palette"]) if meta.get("palette") else None))
    return fit, meta


def _color_meta(color) -> dict:
    return {"color_mode": color.mode if color else "RGB",
            "palette": color.palette.hex() if color and color.palette else None}


def _save_weights(path, fit, source: str, overwrite: bool) -> None:
    """Weights variant (diffcode.fit_weights.WeightsFitResult): arrays `image`, `centers` float64
    (N,), `level_index` int64 (G,); meta adds the preset name and the MLP hash."""
    meta = {"fit_file_version": FIT_FILE_VERSION, "variant": "weights", "preset": fit.preset,
            "mlp_hash": fit.mlp_hash, "seed": fit.seed, "source": source, "seconds": fit.seconds,
            "history": fit.history, **_color_meta(fit.color)}
    buf = io.BytesIO()
    np.savez_compressed(buf, image=fit.image, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                        centers=np.asarray(fit.centers, np.float64), level_index=np.asarray(fit.level_index, np.int64))
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)


def _load_weights(path, meta: dict):
    from .fit_weights import WeightsFitResult

    try:
        with np.load(Path(path), allow_pickle=False) as z:
            image, centers, levels = z["image"], z["centers"], z["level_index"]
        return WeightsFitResult(image=image, centers=centers, level_index=levels, mlp_hash=meta["mlp_hash"],
                                preset=meta["preset"], seed=meta["seed"], history=meta["history"],
                                seconds=meta["seconds"],
                                color=ColorMode(meta.get("color_mode", "RGB"),
                                                bytes.fromhex(meta["palette"]) if meta.get("palette") else None))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DiffcodeError(f"{path}: not a readable weights fit file ({exc})") from exc
