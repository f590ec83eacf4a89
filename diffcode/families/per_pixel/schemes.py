"""Storage schemes for interval encodings, behind one interface.

A scheme turns one stage's fitted centers (uint32 angles) and decoder-known entropies (int64,
1/256 bit) into bytes plus the values the decoder will see, and back:

    encode_stage(centers, entropy_units, seed, stage) -> (bytes, values uint32)
    decode_stage(data, entropy_units, seed, stage)    -> values uint32
    theoretical_bits(entropy_units)                   -> the bits this scheme's model pays

- ``dither`` (default): dithered quantization on a grid of n = 1/width points; the file pays
  sum(log2 n) up to ~0.03 % (diffcode.storage.dither).
- ``randseed``: the report's segmented random-seed scheme, with a segment budget in nats
  (diffcode.families.per_pixel.randseed); it pays about one nat per segment on top of the entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import UsageError
from ...storage import dither
from ...storage.entropy_units import UNITS_PER_BIT
from . import randseed

DEFAULT = "dither"
NAMES = ("dither", "randseed")


@dataclass(frozen=True)
class Dither:
    name: str = "dither"
    budget_nats: float = 0.0  # unused; kept so every scheme has the header field

    def encode_stage(self, centers, entropy_units, seed, stage):
        return dither.encode_stage(centers, entropy_units, seed, stage)

    def decode_stage(self, data, entropy_units, seed, stage):
        return dither.decode_stage(data, entropy_units, seed, stage)

    def theoretical_bits(self, entropy_units) -> float:
        return dither.theoretical_bits(entropy_units)


@dataclass(frozen=True)
class RandomSeed:
    name: str = "randseed"
    budget_nats: float = randseed.DEFAULT_BUDGET_NATS

    def encode_stage(self, centers, entropy_units, seed, stage):
        return randseed.encode_stage(centers, entropy_units, seed, stage, self.budget_nats)

    def decode_stage(self, data, entropy_units, seed, stage):
        return randseed.decode_stage(data, entropy_units, seed, stage, self.budget_nats)

    def theoretical_bits(self, entropy_units) -> float:
        return float(np.asarray(entropy_units, dtype=np.int64).sum()) / UNITS_PER_BIT


def get(name: str, budget_nats: float | None = None):
    """The scheme called `name` (randseed takes a segment budget in nats)."""
    if name == "dither":
        return Dither()
    if name == "randseed":
        budget = randseed.DEFAULT_BUDGET_NATS if budget_nats is None else float(budget_nats)
        randseed.budget_units(budget)  # refuses a budget out of range now, not in the middle of a store
        return RandomSeed(budget_nats=budget)
    raise UsageError(f"unknown storage scheme {name!r}; known: {', '.join(NAMES)}")
