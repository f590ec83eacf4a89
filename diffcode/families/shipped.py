"""The shared models a family ships in the package, listed and pinned by SHA-256.

A family's shared model (the per-pixel decoder, the weights MLP) is a file in `diffcode/data/`.
Its `hash` is a hex SHA-256 that the model's own type defines (per-pixel: its configuration and
integer arrays; weights: its sizes and integer arrays); the first 16 bytes of it name the model in
every file header (`decoder_hash`, `header_hash`)::

    MODELS = ShippedModels("decoder checkpoint", {"51dc...": "data/per_pixel_default.npz"},
                           current="51dc...", parse=Checkpoint.from_bytes)
    MODELS.load(None)          # the current shipped model, its hash checked against the pin
    MODELS.load(path)          # a model file of the user's (research, training): not pinned
    MODELS.shipped(sha256)     # one shipped model by its full hash, checked
    MODELS.find(hash16)        # the shipped model a header names, or None
    MODELS.named(hash16, m)    # the model to decode a file with: m, or the shipped one the header
                               # names when m is itself a shipped model (the default)

A new shipped model is added to the list, never put in place of one: files that name an earlier
model keep decoding with it (`named`), and `current` names the one new files use. A shipped file
whose hash is not its pin is a damaged package (DecoderMismatchError, before any decode).

`families/pyramid/prior.py` uses it as `MODELS = ShippedModels("pyramid prior", SHIPPED, CURRENT, parse)`
(its hash is the file's SHA-256; it also reads $DIFFCODE_PYRAMID_PRIOR and caches by path); its
`exact.check_header` keeps its own policy of looking a header's prior up whatever model was loaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable, Generic, Protocol, TypeVar

from ..errors import DecoderMismatchError, DiffcodeError


class Model(Protocol):
    hash: str  # hex SHA-256


M = TypeVar("M", bound=Model)


def header_hash(model: Model) -> bytes:
    """The 16 bytes that name a model in a file header (`decoder_hash`): its SHA-256's first half."""
    return bytes.fromhex(model.hash[:32])


class ShippedModels(Generic[M]):
    """The models of one kind in the package: SHA-256 -> file (under `diffcode/`), and the current one."""

    def __init__(self, what: str, files: dict[str, str], current: str, parse: Callable[[bytes, str], M]):
        """what: the model's name in messages; files: hex SHA-256 -> package path (never remove one);
        current: the SHA-256 new files use; parse: (file bytes, name for messages) -> model."""
        if current not in files:
            raise ValueError(f"the current {what} {current[:16]} is not among the shipped ones")
        self.what, self.files, self.current, self.parse = what, dict(files), current, parse

    def load(self, path: str | Path | None = None) -> M:
        """The model in the file at `path` (not pinned), or None: the current shipped one (pinned)."""
        if path is None:
            return self.shipped(self.current)
        return self._parse(lambda: Path(path).read_bytes(), str(path))

    def shipped(self, sha256: str) -> M:
        """The shipped model with this SHA-256, read from the package and checked against it."""
        name = self.files[sha256]
        model = self._parse(lambda: resources.files("diffcode").joinpath(name).read_bytes(), Path(name).name)
        if model.hash != sha256:
            raise DecoderMismatchError(f"the shipped {self.what} {name} has SHA-256 {model.hash}, expected "
                                       f"{sha256}: the package is damaged")
        return model

    def find(self, hash16: bytes) -> M | None:
        """The shipped model whose SHA-256 starts with these 16 bytes (a header's decoder_hash), or None."""
        for sha256 in self.files:
            if bytes.fromhex(sha256)[:16] == hash16:
                return self.shipped(sha256)
        return None

    def named(self, hash16: bytes, loaded: M) -> M | None:
        """The model a header's `hash16` names: `loaded` if it is that one; else, if `loaded` is a shipped
        model (the default, not one the caller chose), the shipped model with that hash; else None."""
        if header_hash(loaded) == hash16:
            return loaded
        return self.find(hash16) if loaded.hash in self.files else None

    def _parse(self, read: Callable[[], bytes], name: str) -> M:
        try:
            return self.parse(read(), name)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise DiffcodeError(f"cannot load {self.what} {name}: {exc}") from exc
