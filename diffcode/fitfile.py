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
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DiffcodeError, ImageError
from .families import Fit
from .image import ColorMode, validate_array
from .outputs import write_bytes_atomic
from .storage import container

FIT_FILE_VERSION = 2  # 2: meta names the model `model_hash` and the fit's `preset` (issue 11's protocol)
READABLE_VERSIONS = (1, 2)
# version 1 fits from before the second family name no variant: they are the first family's, the one
# the container's header code 1 names
FIRST_VARIANT = container.VARIANTS[1]
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


ZIP_MAGIC = b"PK\x03\x04"  # np.savez writes a zip archive; anything else is not a fit file
# What a damaged archive raises while numpy reads it: zipfile's errors, zlib's for a corrupt deflate
# stream, SyntaxError and TokenError from the ast/tokenize parse of an .npy member's header.
_ARCHIVE_ERRORS = (OSError, ValueError, KeyError, EOFError, SyntaxError, tokenize.TokenError, NotImplementedError,
                   zipfile.BadZipFile, zlib.error)


def load(path: str | Path) -> tuple[Fit, dict]:
    """Read a fit file; returns the fit result and its metadata.

    Raises:
        DiffcodeError: naming `path`, for a file that is missing, not a zip archive (numpy's advice
            to load pickles is never reached), truncated, damaged, or with malformed metadata.
    """
    path = Path(path)
    arrays = _read_arrays(path)
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if not isinstance(meta, dict):
            raise TypeError("the metadata is not a JSON object")
        if meta.get("fit_file_version") not in READABLE_VERSIONS:
            raise DiffcodeError(f"{path}: fit file version {meta.get('fit_file_version')} is not supported")
        image = arrays.pop("image")
        model_hash = meta.get("model_hash") or meta.get("checkpoint_hash") or meta["mlp_hash"]
        color = ColorMode(meta.get("color_mode", "RGB"), bytes.fromhex(meta["palette"]) if meta.get("palette") else None)
        fit = Fit(meta.get("variant", FIRST_VARIANT), image, arrays, {k: v for k, v in meta.items() if k not in _GENERIC},
                  model_hash, meta.get("preset", "default"), meta["seed"], meta["history"], meta["seconds"], color)
        return _checked(fit), meta
    except ImageError as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file ({exc})") from exc
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file (bad or missing field: "
                            f"{type(exc).__name__} {exc})") from exc


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path, "rb") as f:
            magic = f.read(len(ZIP_MAGIC))
    except OSError as exc:
        raise DiffcodeError(f"{path}: cannot read ({exc.strerror})") from exc
    if magic != ZIP_MAGIC:
        raise DiffcodeError(f"{path}: not a diffcode fit file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except _ARCHIVE_ERRORS as exc:
        raise DiffcodeError(f"{path}: not a readable diffcode fit file, truncated or damaged "
                            f"({type(exc).__name__}: {exc})") from exc


def _checked(fit: Fit) -> Fit:
    """The generic fields' types (ValueError, TypeError or ImageError otherwise); the family's encode
    checks its own arrays and meta."""
    validate_array(fit.image, "image")
    if not isinstance(fit.family, str) or not isinstance(fit.preset, str):
        raise TypeError("variant and preset must be names")
    if not isinstance(fit.model_hash, str) or len(fit.model_hash) != 64:
        raise ValueError("the model hash is not 64 hex digits")
    if type(fit.seed) is not int or not 0 <= fit.seed < 2**32:
        raise ValueError(f"seed {fit.seed!r} is not an integer in [0, 2^32)")
    if not isinstance(fit.history, list) or type(fit.seconds) not in (int, float):
        raise TypeError("history must be a list and seconds a number")
    if any(a.dtype.kind not in "fiu" for a in fit.arrays.values()):
        raise TypeError("fit arrays must be numbers")
    return fit
