"""The per-pixel decoder's checkpoint: its config and integer weights (seed, superresolver, head).

A checkpoint holds the weights *quantized* to fixed point (see `diffcode.fixedpoint`), so the
float model used for fitting (`diffcode.families.per_pixel.model.DecoderWeights`) and the exact
integer model used for coding have the same weights. Its hash names the decoder in every file
header; the shipped decoders are listed by that hash in `SHIPPED` (`diffcode.families.shipped`).
This module is on the decode path: numpy only, no torch model.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from ..common import open_model_npz
from ..shipped import ShippedModels
from .superres import DecoderConfig


class Checkpoint:
    """A decoder checkpoint: config + quantized arrays + metadata; `hash` identifies it."""

    def __init__(self, config: DecoderConfig, arrays: dict[str, np.ndarray], meta: dict | None = None):
        self.config = config
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in arrays.items()}
        self.meta = meta or {}
        self.hash = self._hash()

    def _hash(self) -> str:
        h = hashlib.sha256(self.config.to_json().encode())
        for name in sorted(self.arrays):
            a = self.arrays[name]
            h.update(f"{name}:{a.shape}".encode())
            h.update(a.astype("<i8").tobytes())
        return h.hexdigest()

    @property
    def short_hash(self) -> str:
        return self.hash[:16]

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the checkpoint atomically (temporary file, then rename); refuses an existing path."""
        import json

        from ...outputs import write_bytes_atomic

        buf = io.BytesIO()
        np.savez_compressed(buf, __config__=np.frombuffer(self.config.to_json().encode(), np.uint8),
                            __meta__=np.frombuffer(json.dumps(self.meta).encode(), np.uint8),
                            **{k: v.astype(np.int32) for k, v in self.arrays.items()})
        write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> "Checkpoint":
        """Parse a checkpoint file's bytes (an .npz: __config__, __meta__ and the integer arrays)."""
        import json

        with open_model_npz(data, name) as z:
            config = DecoderConfig.from_json(z["__config__"].tobytes().decode())
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k].astype(np.int64) for k in z.files if not k.startswith("__")}
        return cls(config, arrays, meta)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Checkpoint":
        """Load a checkpoint file; None loads the current shipped one and checks its pinned hash."""
        return SHIPPED.load(path)


# SHA-256 (Checkpoint.hash) -> package file; never remove one: files that name it keep decoding
SHIPPED = ShippedModels("decoder checkpoint", {
    "51dcfa6c72d9ce38499e5a09a92057f276bb9268f1778f9b9cbf4efc4d857753": "data/per_pixel_default.npz",
}, current="51dcfa6c72d9ce38499e5a09a92057f276bb9268f1778f9b9cbf4efc4d857753", parse=Checkpoint.from_bytes)
