"""Decoder weights (seed, superresolver, head) and their checkpoint.

A checkpoint holds the weights *quantized* to fixed point (see `diffcode.fixedpoint`), so the
float model used for fitting and the exact integer model used for coding have the same weights.
Its hash names the decoder in every file header.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import DiffcodeError
from .fixedpoint import FRAC_BITS, quantize_tensor
from .superres import DecoderConfig

DEFAULT_CHECKPOINT = "per_pixel_default.npz"
LAYERS = ("pre1", "pre2", "post1", "post2")


def _layer_shapes(config: DecoderConfig, block: str) -> dict[str, tuple[int, int]]:
    c, h, e = config.channels, config.hidden, 2 * config.encodings_per_pixel
    out = config.out_channels if block == "head" else c
    return {"pre1": (c, h), "pre2": (h, c), "post1": (c + e, h), "post2": (h, out)}


class DecoderWeights(nn.Module):
    """All learned parts of the decoder: seed image, superresolver block, head block."""

    def __init__(self, config: DecoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        s = config.seed_size
        self.seed = nn.Parameter(0.5 * torch.randn(1, config.channels, s, s, generator=generator))
        self.blocks = nn.ModuleDict({b: self._block(b) for b in ("stage", "head")})

    def _block(self, block: str) -> nn.ModuleDict:
        convs = {n: nn.Conv2d(cin, cout, 3) for n, (cin, cout) in _layer_shapes(self.config, block).items()}
        if block == "stage":  # start the residual stages close to identity
            nn.init.zeros_(convs["post2"].weight)
            nn.init.zeros_(convs["post2"].bias)
        return nn.ModuleDict(convs)

    def conv(self, block: str, layer: str) -> nn.Conv2d:
        return self.blocks[block][layer]

    # -- checkpoint ---------------------------------------------------------------------------
    def quantized_arrays(self) -> dict[str, np.ndarray]:
        """Weights in fixed point: conv weights * 2^F, biases * 2^2F, seed * 2^F (int64)."""
        arrays = {"seed": quantize_tensor(self.seed, FRAC_BITS)}
        for block, layers in self.blocks.items():
            for name, conv in layers.items():
                arrays[f"{block}.{name}.weight"] = quantize_tensor(conv.weight, FRAC_BITS)
                arrays[f"{block}.{name}.bias"] = quantize_tensor(conv.bias, 2 * FRAC_BITS)
        return arrays

    def load_quantized(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the float weights to exactly the dequantized checkpoint values."""
        with torch.no_grad():
            self.seed.copy_(torch.from_numpy(arrays["seed"] / 2.0**FRAC_BITS))
            for block, layers in self.blocks.items():
                for name, conv in layers.items():
                    conv.weight.copy_(torch.from_numpy(arrays[f"{block}.{name}.weight"] / 2.0**FRAC_BITS))
                    conv.bias.copy_(torch.from_numpy(arrays[f"{block}.{name}.bias"] / 2.0 ** (2 * FRAC_BITS)))


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

    def weights(self) -> DecoderWeights:
        model = DecoderWeights(self.config)
        model.load_quantized(self.arrays)
        return model

    @classmethod
    def from_weights(cls, model: DecoderWeights, meta: dict | None = None) -> "Checkpoint":
        return cls(model.config, model.quantized_arrays(), meta)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the checkpoint atomically (temporary file, then rename); refuses an existing path."""
        import json

        from .image import write_bytes_atomic

        buf = io.BytesIO()
        np.savez_compressed(buf, __config__=np.frombuffer(self.config.to_json().encode(), np.uint8),
                            __meta__=np.frombuffer(json.dumps(self.meta).encode(), np.uint8),
                            **{k: v.astype(np.int32) for k, v in self.arrays.items()})
        write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Checkpoint":
        """Load a checkpoint file; None loads the default one shipped in the package."""
        import json

        try:
            if path is None:
                data = resources.files("diffcode.data").joinpath(DEFAULT_CHECKPOINT).read_bytes()
            else:
                data = Path(path).read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                config = DecoderConfig.from_json(z["__config__"].tobytes().decode())
                meta = json.loads(z["__meta__"].tobytes().decode())
                arrays = {k: z[k].astype(np.int64) for k in z.files if not k.startswith("__")}
        except (OSError, ValueError, KeyError) as exc:
            raise DiffcodeError(f"cannot load decoder checkpoint {path or DEFAULT_CHECKPOINT}: {exc}") from exc
        return cls(config, arrays, meta)
