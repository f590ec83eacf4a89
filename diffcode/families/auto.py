"""The mode decision of `diffcode compress` (issue 26): the family that writes the smallest file.

    image --classic (no model: stored, or MED residuals + LZMA2)---------------> file A
          --pyramid, `instant` (the shared prior, nothing fitted)--------------> file B
          --pyramid with the preset's fit, only if B <= A x (1 + FIT_MARGIN)---> file C
    --> the smallest of A, B, C (its header names its family: every decoder reads each)

The cheap candidates run first; a photo model is fitted only when its unfitted prior comes within
FIT_MARGIN of the classic coder, since per-image fitting gained 3-8 % over `instant` on photos
(docs/results.md): screenshots, charts, pixel art and noise, where the prior is far behind, skip
the fit and take seconds. Photos keep the pyramid's file, never a larger one. The decision runs in
`diffcode.api.choose`; this module holds its policy.
"""

from __future__ import annotations

from . import AUTO, AUTO_CLASSIC, AUTO_MODEL, get

NAME = AUTO  # the pseudo-variant that asks for this decision
CLASSIC, MODEL = AUTO_CLASSIC, AUTO_MODEL  # the candidates: a coder without a model, and the photo model
FIT_MARGIN = 0.10


def presets() -> tuple[str, ...]:
    """The presets `auto` takes: the photo model's."""
    return get(MODEL).presets


def fit_steps(preset: str, steps: int | None) -> int:
    return get(MODEL).fit_steps(preset, steps)


def worth_fitting(instant_bytes: int, classic_bytes: int) -> bool:
    """Whether the photo model's fit can win: its unfitted file is within FIT_MARGIN of the classic one."""
    return instant_bytes <= classic_bytes * (1 + FIT_MARGIN)
