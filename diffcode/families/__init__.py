"""Model families: the protocol every family implements, and the registry that finds them.

A family turns an image into sections of a .dfc file and back. It is one folder under
`diffcode/families/`, and `diffcode.codec` knows nothing else about it::

    image --Family.fit (torch, float)--> Fit (numpy arrays + JSON meta; fitfile saves any Fit)
          --Family.encode (exact)------> Encoded: header fields + [Section(kind, payload, bits)]
          --codec: colour mode, palette, header, container, the encoder decodes its own file
    .dfc  --codec: container, palette--> header + sections
          --Family.decode (exact, numpy/torch integers, never the fitting code)--> Decoded pixels
          --codec: pixel hash, colour mode--> image

The family's name is its `container.VARIANTS` entry, whose key is the code written in the header:
codes are declared there, once, and never reused (1 per-pixel, 2 weights, 3 pyramid, 4 classic).
Register a family by adding `name: Entry(module, steps)` to `REGISTERED`; modules are
imported only when a file or a command names the family, so decoding one family never loads
another (nor does `--help`, whose preset and step counts come from the entries). A module exposes
`FAMILY`, an object with the attributes and methods of `Family`. Nothing outside this folder names
a family: defaults are `DEFAULT` and `AUTO_*` here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from ..errors import DiffcodeError
from ..image import ColorMode
from ..storage import container

@dataclass(frozen=True)
class Entry:
    """A registered family: its module, and what `--help` says of it without importing the module."""

    module: str
    steps: dict[str, int]  # preset -> its fit steps, the default preset first (FAMILY.presets, fit_steps:
    # tests/test_architecture.py checks that they agree)


REGISTERED = {
    "per-pixel": Entry("diffcode.families.per_pixel", {"default": 150}),
    "weights": Entry("diffcode.families.weights", {"default": 1000, "tiny": 24, "report": 5700}),
    "pyramid": Entry("diffcode.families.pyramid", {"default": 500, "fast": 300, "instant": 0, "max": 1500}),
    "classic": Entry("diffcode.families.classic", {"default": 0}),
}

# the variant of `fit`, `evaluate` and `train` when none is named: the best photo model
DEFAULT = "pyramid"
# `compress`'s default: not a family but the choice of one (diffcode.families.auto), between a coder
# without a model and the photo model, whose presets it takes
AUTO, AUTO_CLASSIC, AUTO_MODEL = "auto", "classic", DEFAULT

# progress(step, bpsp) during a fit; progress(done, total) during an encode
Progress = Callable[[int, float], None]


@dataclass(frozen=True)
class Section:
    """One section of a file: its container kind code, its bytes, and what its model says it costs."""

    kind: int  # a key of container.SECTION_KINDS
    payload: bytes
    theoretical_bits: float  # the ideal code length under the family's model


@dataclass
class Fit:
    """What a family's fit produced, in numpy and JSON only, so any family's fit saves the same way.

    arrays: the fitted parameters by name (float or int numpy arrays), read back by the family's
    encode; meta: JSON-able settings (the fit config, storage the fit prepared for, ...).
    """

    family: str
    image: np.ndarray  # uint8 (H, W, 3), the image that was fitted
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    model_hash: str  # hex SHA-256 of the shared model the fit used (decoder, MLP, prior)
    preset: str
    seed: int
    history: list[dict] = field(default_factory=list)  # {step, bpsp, ...} per step
    seconds: float = 0.0
    color: ColorMode | None = None  # the mode to give the image back in (None = RGB)


@dataclass
class Encoded:
    """A family's exact encoding: its header fields and sections (the palette is the codec's)."""

    fields: dict[str, Any]  # container.Header fields the family owns (see FAMILY_FIELDS)
    sections: list[Section]
    extras: dict[str, Any] = field(default_factory=dict)  # extra report columns (JSON-able)
    # what the encoder's exact pass computed, for `codec.store`'s check of its own file (a `Replay`);
    # None: the codec checks the file by decoding it
    replay: Replay | None = None


@dataclass
class Decoded:
    """A family's exact decode: the pixels, the sections with their theoretical bits, and details."""

    image: np.ndarray  # uint8 (H, W, 3), not yet checked against the header's pixel hash
    sections: list[Section]
    extras: dict[str, Any] = field(default_factory=dict)
    details: Any = None  # whatever the family's `maps` needs (figures), or None


# The header fields a family sets; the codec sets variant, height, width, pixel_hash, color_mode.
FAMILY_FIELDS = ("storage", "rng_version", "error_model", "seed", "segment_budget_cnats", "decoder_hash")


class Replay(Protocol):
    """What a family's exact encoder computed (`Encoded.replay`): `codec.store` checks the encoder's own
    file against it rather than decoding the file, which would run the deterministic pass again."""

    def check(self, header: container.Header, sections: list[tuple[int, bytes]], model: Model) -> Decoded:
        """Read every section back (ChecksumError where one differs from what the encoder wrote) and give
        the pixels the file's error table holds under the encoder's own model; CorruptFileError and
        DecoderMismatchError as `Family.decode`."""


class Model(Protocol):
    """A family's shared model (decoder checkpoint, MLP, prior); `hash` names it in headers."""

    hash: str


class Family(Protocol):
    """What a family declares and does. See docs/architecture.md, "How to add a family"."""

    name: str  # its container.VARIANTS name
    presets: tuple[str, ...]  # what fit(preset=...) takes; the first is the default
    storages: tuple[str, ...]  # what fit/encode take as storage (container.STORAGES names); the first is the default
    memory: dict[str, Any]  # "fit" / "store" / "decode" -> limits.Linear (peak memory model)
    memory_table: str  # experiments/results/ table the memory model bounds ("" until measured; tests/test_limits.py)
    golden: dict[str, dict]  # label -> api.fit options of its golden files (tests/golden/make_golden.py)
    budget_nats: tuple[float, float] | None  # the randseed segment budget's range, None without randseed storage

    def load_model(self, path: str | None = None) -> Model:
        """The shared model from a file, or the shipped one (pinned hash) when path is None."""

    def find_model(self, hash: str) -> Model | None:
        """The shipped model whose hex SHA-256 starts with `hash` (a fit's, or the 32 digits of a header's
        decoder_hash), or None: files and fits of earlier shipped models keep working (`diffcode.jobs`)."""

    def preset_settings(self, preset: str) -> dict:
        """What the preset stands for (JSON-able): evaluate's cache is keyed by it, so changing a
        preset's definition never reuses fits made with the old one."""

    def fit_steps(self, preset: str, steps: int | None) -> int:
        """How many progress calls a fit with these settings makes."""

    def fit(self, image: np.ndarray, model: Model, *, preset: str, steps: int | None, seed: int,
            generator: Any, progress: Progress | None, device: str, **options) -> Fit:
        """Fit one uint8 (H, W, 3) image (float, torch); randomness only from `generator`."""

    def encode(self, fit: Fit, model: Model, *, device: str, progress: Callable[[int, int], None] | None,
               **options) -> Encoded:
        """The exact encoding of a fit; raises DiffcodeError for options it does not take."""

    def decode(self, header: container.Header, sections: list[tuple[int, bytes]], model: Model, *,
               device: str, progress: Callable[[int, int], None] | None = None) -> Decoded:
        """The exact decode; raises CorruptFileError / DecoderMismatchError, never another error.

        progress: optional callable(done, total) while it decodes (a family that reports none calls it never)."""

    def check_sizes(self, header: container.Header, sections: list[tuple[int, bytes]]) -> None:
        """Refuse (CorruptFileError, one line), from the header and the section lengths alone, before
        the model is loaded or anything is allocated, a file that cannot hold the image its header
        declares: the section layout where it does not depend on the model, and the error table's
        length against the number of subpixels (every subpixel costs a valid rANS stream a minimum
        number of bits, `diffcode.storage.rans.min_symbol_bits`). A crafted header cannot make the
        decoder run: a 19,755-byte weights file declaring 2000x2000 once ran 20 s in 2.6 GB first.
        Must never refuse a file the decoder would accept."""

    def header_fields(self, header: container.Header) -> dict[str, Any]:
        """The header fields this family reads, by name, as `info` prints them."""

    def train(self, *, steps: int | None, crop: int | None, kodak_dir: str | None, log) -> Model:
        """Train the shared model (the `train` command), or raise DiffcodeError saying what trains it."""

    def maps(self, decoded: Decoded) -> dict | None:
        """Per-pixel views for figures (diffcode.figures), or None."""


def names() -> tuple[str, ...]:
    return tuple(REGISTERED)


def get(name: str) -> Family:
    """The registered family of that name (imports its module on first use)."""
    if name not in REGISTERED:
        raise DiffcodeError(f"unknown variant {name!r}; known: {', '.join(REGISTERED)}")
    return importlib.import_module(REGISTERED[name].module).FAMILY


def presets_help() -> str:
    """Every family's presets, as `--help` gives them: "auto and pyramid: default, fast, instant, max; ..."."""
    def label(name: str) -> str:
        return f"{AUTO} and {name}" if name == AUTO_MODEL else name

    return "; ".join(f"{label(name)}: {', '.join(entry.steps)}" for name, entry in REGISTERED.items())


def steps_help() -> str:
    """Every family's default step counts, as `--help` gives them: "pyramid default 500, fast 300, ..."."""
    return "; ".join(f"{name} " + ", ".join(f"{preset} {steps}" for preset, steps in entry.steps.items())
                     for name, entry in REGISTERED.items())


def take_options(options: dict, allowed: dict[str, tuple | None], family: str) -> dict:
    """options with None values dropped, refused unless named in `allowed` with an allowed value.

    allowed: option name -> the values a family takes (None: any value).
    """
    given = {k: v for k, v in options.items() if v is not None}
    for key, value in given.items():
        if key not in allowed:
            raise DiffcodeError(f"the {family} variant takes no {key} option")
        if allowed[key] is not None and value not in allowed[key]:
            raise DiffcodeError(f"the {family} variant takes {key} {' or '.join(map(str, allowed[key]))}, "
                                f"not {value!r}")
    return given
