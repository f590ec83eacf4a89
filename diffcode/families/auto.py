"""The mode decision of `diffcode compress` (issue 26): the family that writes the smallest file.

    image --classic (no model: stored, or MED residuals + LZMA2)---------------> file A
          --pyramid, `instant` (the shared prior, nothing fitted)--------------> file B
          --pyramid with the preset's fit, only if B <= A x (1 + FIT_MARGIN)---> file C
    --> the smallest of A, B, C (its header names its family: every decoder reads each)

The cheap candidates run first; a photo model is fitted only when its unfitted prior comes within
FIT_MARGIN of the classic coder, since per-image fitting gained 3-8 % over `instant` on photos
(docs/results.md): screenshots, charts, pixel art and noise, where the prior is far behind, skip
the fit and take seconds. Photos keep the pyramid's file, never a larger one.
"""

from __future__ import annotations

from . import AUTO as NAME  # noqa: F401  (the pseudo-variant that asks for this decision)
from . import AUTO_CLASSIC as CLASSIC  # the candidates: a coder without a model ...
from . import AUTO_MODEL as MODEL  # ... and the photo model
from . import get
FIT_MARGIN = 0.10


def presets() -> tuple[str, ...]:
    """The presets `auto` takes: the photo model's."""
    return get(MODEL).presets


def fit_steps(preset: str, steps: int | None) -> int:
    return get(MODEL).fit_steps(preset, steps)


def compress(image, *, preset: str, steps=None, seed=None, device: str = "cpu", progress=None,
             stage_progress=None, model=None, color=None, metadata=None) -> tuple[bytes, object]:
    """(the smallest .dfc bytes, its size report) of a uint8 (H, W, 3) image (or any input
    `diffcode.api.fit` takes); `model`: the photo model's shared model (None: the shipped one);
    color, metadata: as `diffcode.api.fit` and `diffcode.codec.store` take them."""
    from .. import api

    candidates = [api.store(api.fit(image, variant=CLASSIC, color=color), metadata=metadata)]
    model = model if model is not None else get(MODEL).load_model()
    instant = api.fit(image, variant=MODEL, model=model, color=color, preset="instant", seed=seed, device=device)
    candidates.append(api.store(instant, model=model, device=device, metadata=metadata))
    fits = get(MODEL).fit_steps(preset, steps) > 0
    if fits and len(candidates[1][0]) <= len(candidates[0][0]) * (1 + FIT_MARGIN):
        fitted = api.fit(image, variant=MODEL, model=model, color=color, preset=preset, steps=steps, seed=seed,
                         device=device, progress=progress)
        candidates.append(api.store(fitted, model=model, device=device, progress=stage_progress, metadata=metadata))
    return min(candidates, key=lambda candidate: len(candidate[0]))
