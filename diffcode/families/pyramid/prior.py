"""The pyramid family's shared prior: float32 network arrays in an .npz, named by its SHA-256.

Shipped priors are listed in SHIPPED by SHA-256 (pinned); CURRENT is the one new files use. The
first 16 bytes of the hash are written in every file's header (decoder_hash); a file names its
prior, so files made with an earlier shipped prior keep decoding (`find`), and a file made with a
prior this package does not ship is refused before decoding. `DIFFCODE_PYRAMID_PRIOR` may point
to another prior file (research).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DiffcodeError
from ..common import open_model_npz
from ..shipped import ShippedModels
from .engine import OUTPUTS, Engine
from .layout import ORDERS
from .online import SETTINGS

ENV_VAR = "DIFFCODE_PYRAMID_PRIOR"
SHIPPED = {  # SHA-256 -> package file; never remove one (files that name it must keep decoding)
    "ea6396d18181957995497ccdc0bf60c2e583382569322f1570e8b8161a3ce93a": "data/pyramid_prior.npz",  # train_pyramid-w64.md
    # model 2: width 128, no Kodak image (train_pyramid-m2.md), float32 engine, order 3, online adaptation 1
    "db1b9dbadabae547653b15799be8c7aa40c94072645b6254bf34182c1d1c5c8b": "data/pyramid_prior_2.npz",
    # model 2's network and quantization with order 4: the error table in segments (bounded encoder memory)
    "9e19951e4b9d01de0e70b5aa833e1590a505f14de539f7b3367672ecda76d334": "data/pyramid_prior_3.npz",
    # a mixture of two logistics per subpixel, model 2's recipe otherwise (train_pyramid-mix2.md), order 4, online 1
    "04b1efcdbf0603656481bd96daaca9605503c54e87efc7cef713b2db0c6cea77": "data/pyramid_prior_4.npz",
    # prior 4's recipe trained twice as long, 16,000 steps (train_pyramid-mix2-16k.md), order 4, online 1
    "54d74d551674a40cd91ed5471c67014521ab2db9c3b240460054aab5df9f1423": "data/pyramid_prior_5.npz",
    # the same recipe trained for 32,000 steps (train_pyramid-mix2-32k.md), order 4; each file chooses its online
    # adaptation among 3 (censored bias), 2 (scale shifts only) and 0 (none) (online_ablation-prior6-val-default.md)
    "29638dfa453d5c3952003b290fcb2ad26390825162115dec5442e9c99906d044": "data/pyramid_prior_6.npz",
    # the same recipe and online choices, trained for 64,000 steps (train_pyramid-mix2-64k.md)
    "c8d6f3baf08219adcf46114718c592fbc88c6fd284e754cc997815caf80450b7": "data/pyramid_prior_7.npz",
}
CURRENT = "c8d6f3baf08219adcf46114718c592fbc88c6fd284e754cc997815caf80450b7"


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

    @property
    def order(self) -> int:
        """The pyramid order its network was trained for (`layout.ORDERS`; priors before orders: 1)."""
        return int(self.meta.get("order", 1))

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write the prior file atomically (never over an existing file unless asked)."""
        from ...outputs import write_bytes_atomic

        write_bytes_atomic(path, to_bytes(self.arrays, self.meta), overwrite=overwrite)


def from_bytes(data: bytes, what: str = "the pyramid prior") -> Prior:
    """Parse prior bytes (an .npz of float32 arrays plus a `meta` JSON string); `what` names them in errors."""
    with open_model_npz(data, what) as npz:
        arrays = {k: npz[k].astype(np.float32) for k in npz.files if k != "meta"}
        meta = json.loads(str(npz["meta"])) if "meta" in npz.files else {}
    return Prior(arrays, meta, hashlib.sha256(data).hexdigest())


def amended(prior: Prior, **meta) -> Prior:
    """The same network with meta fields added or replaced (a new file, so a new SHA-256): e.g. online=1."""
    return from_bytes(to_bytes(prior.arrays, {**prior.meta, **meta}))


def to_bytes(arrays: dict, meta: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True)),
             **{k: np.asarray(v, np.float32) for k, v in sorted(arrays.items())})
    return buffer.getvalue()


REQUIRED = ("phases.0.trunk1.weight", "phases.1.heads2.2.bias")  # a file without them is not a prior


def parse(data: bytes, name: str = "the pyramid prior") -> Prior:
    """Prior bytes, checked to be a prior this diffcode can run (DiffcodeError naming `name` if not)."""
    try:
        prior = from_bytes(data, name)
    except (ValueError, EOFError) as exc:
        raise DiffcodeError(f"{name} is not a readable pyramid prior ({exc})") from exc
    if not all(array in prior.arrays for array in REQUIRED):
        raise DiffcodeError(f"{name} is not a pyramid prior (no network arrays named phases.*)")
    if prior.order not in ORDERS or f"phases.{len(ORDERS[prior.order]) - 1}.trunk1.weight" not in prior.arrays:
        raise DiffcodeError(f"{name} is a pyramid prior of an unknown order or with too few phases")
    online, choices = prior.meta.get("online", 0), prior.meta.get("online_choices", [0])
    valid = (0, *SETTINGS)
    if not (type(online) is int and online in valid and isinstance(choices, list) and choices and
            all(type(c) is int and c in valid for c in choices) and len(set(choices)) == len(choices)):
        raise DiffcodeError(f"{name} names an unknown online adaptation ({online!r}, {choices!r}): made by a newer "
                            f"diffcode?")
    # the heads' outputs per channel: a logistic's two, or (float32 engine only) a mixture's five
    outputs = {np.shape(prior.arrays.get(f"phases.{p}.heads2.{c}.bias"))
               for p in range(len(ORDERS[prior.order])) for c in range(3)}
    if outputs - {(n,) for n in (OUTPUTS if "quant" in prior.meta else OUTPUTS[:1])}:
        raise DiffcodeError(f"{name} is a pyramid prior whose heads give {sorted(outputs)} numbers per channel, "
                            f"which this diffcode cannot code: made by a newer diffcode?")
    if "quant" in prior.meta:
        try:
            Engine(prior.arrays, prior.meta["quant"], prior.order)
        except (KeyError, TypeError, ValueError) as exc:
            raise DiffcodeError(f"{name} has a damaged quantization record ({exc!r})") from exc
    return prior


MODELS = ShippedModels("pyramid prior", SHIPPED, CURRENT, parse)


@functools.lru_cache(maxsize=4)
def _load_path(path: str) -> Prior:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DiffcodeError(f"{path} is not a readable pyramid prior ({exc})") from exc
    return parse(data, path)


def load(path: str | os.PathLike | None = None) -> Prior:
    """The prior at `path`, `$DIFFCODE_PYRAMID_PRIOR`, or the current shipped one."""
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        if not Path(explicit).is_file():
            raise DiffcodeError(f"pyramid prior {explicit} not found")
        return _load_path(str(explicit))
    return shipped(CURRENT)


@functools.lru_cache(maxsize=8)
def shipped(sha256: str) -> Prior:
    """The shipped prior with this SHA-256 (its file's hash is checked: DecoderMismatchError if damaged)."""
    return MODELS.shipped(sha256)


def find(hash16: bytes) -> Prior | None:
    """The shipped prior whose SHA-256 starts with these 16 bytes (a file header's decoder_hash), or None."""
    for sha256 in SHIPPED:
        if bytes.fromhex(sha256)[:16] == hash16:
            return shipped(sha256)
    return None
