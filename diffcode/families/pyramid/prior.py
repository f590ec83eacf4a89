"""The pyramid family's shared prior: float32 network arrays in an .npz, named by its SHA-256.

The shipped prior is `diffcode/data/pyramid_prior.npz`; its hash is pinned here, and the first 16
bytes of it are written in every file's header (decoder_hash), so a file made with another prior
is refused before decoding. `DIFFCODE_PYRAMID_PRIOR` may point to another prior file (research).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ...errors import DiffcodeError

ENV_VAR = "DIFFCODE_PYRAMID_PRIOR"
SHIPPED = "data/pyramid_prior.npz"
SHIPPED_SHA256 = "ea6396d18181957995497ccdc0bf60c2e583382569322f1570e8b8161a3ce93a"  # experiments/results/train_pyramid-w64.md


@dataclass(frozen=True)
class Prior:
    """Float32 network arrays by parameter name, the training metadata, and the file's SHA-256."""

    arrays: dict
    meta: dict
    sha256: str

    @property
    def hash(self) -> str:
        """The protocol's name for the model's hex SHA-256."""
        return self.sha256

    @property
    def hash16(self) -> bytes:
        return bytes.fromhex(self.sha256)[:16]


    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the prior file atomically (never over an existing file unless asked)."""
        from ...image import write_bytes_atomic

        write_bytes_atomic(path, to_bytes(self.arrays, self.meta), overwrite=overwrite)


def from_bytes(data: bytes) -> Prior:
    """Parse prior bytes (an .npz of float32 arrays plus a `meta` JSON string)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k].astype(np.float32) for k in npz.files if k != "meta"}
        meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    return Prior(arrays, meta, hashlib.sha256(data).hexdigest())


def to_bytes(arrays: dict, meta: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True)),
             **{k: np.asarray(v, np.float32) for k, v in sorted(arrays.items())})
    return buffer.getvalue()


@functools.lru_cache(maxsize=4)
def _load_path(path: str) -> Prior:
    return from_bytes(Path(path).read_bytes())


def load(path: str | os.PathLike | None = None) -> Prior:
    """The prior at `path`, `$DIFFCODE_PYRAMID_PRIOR`, or the shipped one (whose hash must match)."""
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        if not Path(explicit).is_file():
            raise DiffcodeError(f"pyramid prior {explicit} not found")
        return _load_path(str(explicit))
    shipped = resources.files("diffcode").joinpath(SHIPPED)
    if not shipped.is_file():
        raise DiffcodeError(f"the shipped pyramid prior {SHIPPED} is missing from the package")
    prior = _load_path(str(shipped))
    if prior.sha256 != SHIPPED_SHA256:
        raise DiffcodeError(f"the shipped pyramid prior has SHA-256 {prior.sha256[:16]}, expected "
                            f"{SHIPPED_SHA256[:16]}: the package is damaged")
    return prior
