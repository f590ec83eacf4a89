"""The mode decision of `diffcode compress` (issue 26): the family that writes the smallest file.

    image --classic (no model: stored, or MED residuals + LZMA2)---------------> file A
          --pyramid, `instant` (the shared prior, nothing fitted)--------------> file B
          --pyramid with the preset's fit, only if B <= A x (1 + FIT_MARGIN)---> file C
    --> the smallest of A, B, C (its header names its family: every decoder reads each)

File A is not made when a sample of it says it cannot win (`outclassed`): on a photo its LZMA2 pass at preset 9,
about 1.2 s of CPU per megapixel, is most of an `instant` compress on one thread.

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
# the classic file is not made when its estimate (`classic.exact.estimate`) is above the photo model's unfitted
# file by more than SKIP_MARGIN and the estimate's sample codes to at least SKIP_DENSITY bits per subpixel: on
# dense (photographic) data the estimate was within -3 % and +7 % of the real file (Kodak, eight photos), so a
# skipped file would have been at least 7 % larger than the photo model's; on sparse data (text, charts,
# gradients) the estimate can be several times too large, and the file is always made
SKIP_MARGIN, SKIP_DENSITY = 0.15, 1.0


def presets() -> tuple[str, ...]:
    """The presets `auto` takes: the photo model's."""
    return get(MODEL).presets


def fit_steps(preset: str, steps: int | None) -> int:
    return get(MODEL).fit_steps(preset, steps)


def classic_estimate(image) -> tuple[int, float]:
    """The classic file's estimated bytes and its sample's bits per subpixel (`classic.exact.estimate`)."""
    from .classic import exact

    return exact.estimate(image)


def outclassed(estimate: tuple[int, float], instant_bytes: int) -> bool:
    """Whether the classic file cannot win against the photo model's unfitted file of `instant_bytes`, by its
    `classic_estimate` (SKIP_MARGIN, SKIP_DENSITY)."""
    estimated_bytes, density = estimate
    return density >= SKIP_DENSITY and estimated_bytes > instant_bytes * (1 + SKIP_MARGIN)


def worth_fitting(instant_bytes: int, classic_bytes: int) -> bool:
    """Whether the photo model's fit can win: its unfitted file is within FIT_MARGIN of the classic one."""
    return instant_bytes <= classic_bytes * (1 + FIT_MARGIN)
