"""The classic family: images a photo model does not fit, coded without one (issue 26).

Stored pixels (incompressible data: raw size plus the header) or median-edge-detector residuals
under LZMA2, on one gray plane, a palette's index plane (<= 256 colours) or three RGB planes
(`exact.py`). Nothing is fitted: the encoder tries the methods and keeps the smaller file (or the
one the fit's `method` names). Its shared "model" is only a name, so files say which coder wrote
them. `diffcode compress` picks this family when it makes the smaller file (`diffcode.choose`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from ...errors import DecoderMismatchError, DiffcodeError
from ...limits import Linear
from .. import Decoded, Encoded, Fit, take_options
from . import exact

NAME = "classic"
SPEC = b"diffcode classic family: stored, MED + LZMA2 (format 1)"


@dataclass(frozen=True)
class ClassicModel:
    """No parameters: the hash of the coder's specification names it in the header."""

    hash: str = hashlib.sha256(SPEC).hexdigest()


class Classic:
    name = NAME
    presets = ("default",)
    storages = ("none",)
    budget_nats = None
    methods = ("best",) + tuple(exact.METHODS.values())
    # experiments/results/memory-classic.csv: lines above every measured peak (256x256 to 2048x2048;
    # least squares gave fit 291 + 6.6, store 344 + 46.1, decode 349 + 15.4 MiB per megapixel)
    memory = {"fit": Linear(320.0, 10.0), "store": Linear(360.0, 60.0), "decode": Linear(360.0, 32.0)}
    memory_table = "memory-classic.csv"
    golden = {"lzma": {"method": "lzma"}, "stored": {"method": "stored"}}

    def load_model(self, path=None) -> ClassicModel:
        if path is not None:
            raise DiffcodeError(f"the {NAME} variant has no shared model file; drop --checkpoint {path}")
        return ClassicModel()

    def find_model(self, hash: str) -> ClassicModel | None:
        return ClassicModel() if ClassicModel.hash.startswith(hash) else None

    def fit_steps(self, preset: str, steps: int | None) -> int:
        return 0

    def preset_settings(self, preset: str) -> dict:
        return {"preset": preset}

    def fit(self, image, model: ClassicModel, *, preset: str = "default", steps=None, seed=None, generator=None,
            progress=None, device: str = "cpu", method: str = "best", **options) -> Fit:
        """Nothing to fit: the fit records the method to use (`best`: the smaller file)."""
        take_options({"preset": preset, "method": method, **options},
                     {"preset": self.presets, "method": self.methods, "storage": self.storages}, NAME)
        return Fit(NAME, image, {}, {"method": method}, model.hash, preset, 0 if seed is None else seed, [], 0.0)

    def encode(self, fit: Fit, model: ClassicModel, *, device: str = "cpu", progress=None, **options) -> Encoded:
        take_options(options, {"storage": self.storages}, NAME)
        if fit.model_hash != model.hash:
            raise DecoderMismatchError(f"the fit names classic coder {fit.model_hash[:16]}, this one is {model.hash[:16]}")
        start = time.perf_counter()
        image = np.asarray(fit.image, np.uint8)
        fields = {"storage": "none", "rng_version": 0, "error_model": "none", "seed": 0,
                  "segment_budget_cnats": 0, "decoder_hash": bytes.fromhex(model.hash)[:16]}
        wanted = fit.meta.get("method", "best")
        best = exact.encode(image, exact.METHODS.values() if wanted == "best" else [wanted], fields)
        best.extras["encode_seconds"] = round(time.perf_counter() - start, 3)
        return best

    def check_sizes(self, header, sections) -> None:
        exact.check_sizes(header, sections)

    def decode(self, header, sections, model: ClassicModel, *, device: str = "cpu", progress=None) -> Decoded:
        if header.decoder_hash != bytes.fromhex(model.hash)[:16]:
            raise DecoderMismatchError(f"this file was made by classic coder {header.decoder_hash.hex()}, this "
                                       f"diffcode has {model.hash[:32]}")
        return exact.decode(header, sections)

    def header_fields(self, header) -> dict:
        return {"storage": header.storage, "error_model": header.error_model, "decoder_hash": header.decoder_hash.hex()}

    def train(self, **settings):
        raise DiffcodeError(f"the {NAME} variant has no shared model to train")

    def maps(self, decoded: Decoded) -> None:
        return None


FAMILY = Classic()
