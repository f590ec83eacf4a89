"""The superresolving CNN decoder: size schedule, seed image, stages and head (report 3.2, 4.1).

Data flow of one decode (sizes for a 768x512 image, default config)::

    seed (20, 16, 16) --crop--> (20, 10, 10)
      stage k (shared weights), repeated n times:
        upsample x2 -> crop last row/col? -> pre: conv3x3 20->40, relu, conv3x3 40->20
        -> channels 0..4 give the widths (entropy) of 5 encodings per pixel
        -> concat cos/sin of the 5 encodings -> post: conv3x3 30->40, relu, conv3x3 40->20
        -> + residual (upsampled input, cropped by 4 on each side)
      head (own weights): pre -> widths -> encodings -> post: conv3x3 30->40, relu, conv3x3 40->6
    -> per pixel and color: Cauchy location and log2 scale (see diffcode.cauchy)

Every convolution is 3x3 and valid (no padding), so each block of four shrinks the image by 8.
The arithmetic (float torch for fitting, exact fixed point for coding) is a *backend*
(`backends.py` here); this module only knows the wiring, so both paths share it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable, Protocol

from ...errors import ImageError

SHRINK_PER_BLOCK = 8  # four valid 3x3 convolutions
MAX_SIDE = 65535


@dataclass(frozen=True)
class DecoderConfig:
    """Layer sizes of the superresolver and the head (defaults as in report 4.1)."""

    channels: int = 20
    hidden: int = 40
    encodings_per_pixel: int = 5
    seed_size: int = 16
    out_channels: int = 6
    residual: bool = True

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DecoderConfig":
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Stage:
    """One superresolution stage: input size, whether to drop the last row/column, output size."""

    in_hw: tuple[int, int]
    crop_hw: tuple[int, int]
    out_hw: tuple[int, int]

    @property
    def up_hw(self) -> tuple[int, int]:
        """Size after upsampling and the optional crop."""
        return (2 * self.in_hw[0] - self.crop_hw[0], 2 * self.in_hw[1] - self.crop_hw[1])

    @property
    def encodings_hw(self) -> tuple[int, int]:
        """Size of the per-pixel encoding grid (after the two pre convolutions)."""
        return (self.up_hw[0] - 4, self.up_hw[1] - 4)


@dataclass(frozen=True)
class Schedule:
    """Sizes for one image: seed crop, superresolution stages, head input and output."""

    seed_hw: tuple[int, int]
    stages: tuple[Stage, ...]
    image_hw: tuple[int, int]

    @property
    def head_in_hw(self) -> tuple[int, int]:
        return (self.image_hw[0] + SHRINK_PER_BLOCK, self.image_hw[1] + SHRINK_PER_BLOCK)

    @property
    def head_encodings_hw(self) -> tuple[int, int]:
        return (self.image_hw[0] + 4, self.image_hw[1] + 4)

    def encoding_grids(self) -> list[tuple[int, int]]:
        """(h, w) of the encoding grid of every stage, then of the head."""
        return [s.encodings_hw for s in self.stages] + [self.head_encodings_hw]


def _previous_size(size: int) -> tuple[int, int]:
    """Input size and crop (0/1) of the stage whose output is `size`."""
    prev = (size + SHRINK_PER_BLOCK + 1) // 2
    return prev, 2 * prev - SHRINK_PER_BLOCK - size


def size_schedule(height: int, width: int, config: DecoderConfig) -> Schedule:
    """Compute the stage sizes backwards from the image size (report 3.2).

    Sizes shrink roughly by half per stage until both fit inside the seed image, which is then
    cropped to the first stage's input size. At least one stage is always used.
    """
    for side in (height, width):
        if not (1 <= side <= MAX_SIDE):
            raise ImageError(f"image size {width}x{height} is not supported (each side 1..{MAX_SIDE})")
    target = (height + SHRINK_PER_BLOCK, width + SHRINK_PER_BLOCK)  # the head eats 8
    stages: list[Stage] = []
    while True:
        (ph, ch), (pw, cw) = _previous_size(target[0]), _previous_size(target[1])
        stages.append(Stage(in_hw=(ph, pw), crop_hw=(ch, cw), out_hw=target))
        target = (ph, pw)
        if ph <= config.seed_size and pw <= config.seed_size:
            break
    return Schedule(seed_hw=target, stages=tuple(reversed(stages)), image_hw=(height, width))


class Backend(Protocol):
    """The arithmetic of a decoder pass: float torch (fitting) or exact fixed point (coding)."""

    def seed(self, hw: tuple[int, int]): ...
    def upsample(self, x, crop_hw: tuple[int, int]): ...
    def pre(self, block: str, x): ...
    def entropy(self, h, n: int): ...
    def post(self, block: str, h, features): ...
    def residual(self, x_up, y): ...


# Called once per stage (index k, the head is k = len(stages)) with the decoder-computed
# entropies of that stage's encodings; returns the cos/sin features to concatenate.
EncodingHook = Callable[[int, object], object]


def run_decoder(schedule: Schedule, backend: Backend, hook: EncodingHook, config: DecoderConfig):
    """Wire seed, stages and head together; return the head's 6-channel output."""
    n_enc = config.encodings_per_pixel
    x = backend.seed(schedule.seed_hw)
    for k, stage in enumerate(schedule.stages):
        x_up = backend.upsample(x, stage.crop_hw)
        h = backend.pre("stage", x_up)
        y = backend.post("stage", h, hook(k, backend.entropy(h, n_enc)))
        x = backend.residual(x_up, y) if config.residual else y
    h = backend.pre("head", x)
    return backend.post("head", h, hook(len(schedule.stages), backend.entropy(h, n_enc)))
