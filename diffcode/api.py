"""The Python API: compress and decompress an image in one call, or fit and store it step by step.

    import diffcode

    data = diffcode.compress("photo.png")                 # a path, a PIL image or a numpy array -> .dfc bytes
    data = diffcode.compress(array, preset="fast", seed=7)   # the CLI's options, refused as the CLI refuses them
    pixels = diffcode.decompress(data)                    # or a .dfc path; numpy, shaped by the file's mode
    image = diffcode.decompress("photo.dfc", as_pil=True)  # a PIL image in its own mode (P: with its palette)
    diffcode.__version__

Inputs of `compress` and `fit`, and the mode each is kept in (the file's colour mode, as
`diffcode compress` keeps it):

    a path (str, os.PathLike) or the bytes of an image file   the file's mode: RGB, L, 1 or P
    a PIL image                                               its mode: RGB, L, 1 or P (no transparency)
    a numpy uint8 (H, W, 3) array                             RGB
    a numpy uint8 (H, W) array                                L (8-bit gray)
    a numpy bool (H, W) array                                 1 (black and white)

Other modes (alpha, 16-bit, CMYK, ...) are refused with ImageError, JPEG files too (their pixels
depend on the decoder library).

`decompress` returns what `np.array(image)` gives for the image as Pillow holds it in its own
mode, bit-exact: RGB a uint8 (H, W, 3) array, L a uint8 (H, W) array, 1 a bool (H, W) array, P
a uint8 (H, W) array of palette indexes, whose palette comes with `as_pil=True` (the
`PIL.Image.Image` itself, `.getpalette()`). Each of these arrays, and the PIL image, compresses back
to the same pixels and mode (a P index array alone, without its palette, compresses as L).

Options are checked before any work, by the checks the CLI makes (`diffcode.options.check_options`):
an unknown variant, a preset or storage the variant does not have, steps < 1, a seed outside
0..2**32-1, a segment budget without randseed storage or an unknown device raise UsageError.

`compress` defaults to variant "auto", as `diffcode compress` does: the family that writes the
smallest file (`choose`, `diffcode.families.auto`). Step by step, whatever the model family (the
header's variant):

    result = api.fit(image, variant=...)           # any of `diffcode.families.names()`; the encoder (Adam)
    data, report = api.store(result)               # fit result -> .dfc bytes, size report

A fit result (`diffcode.families.Fit`) names its family, so `store` needs no flag; each step goes
through the family's protocol (`diffcode.families`). `fit`, `store` and `choose` are those of the
job runner (`diffcode.jobs`) that the CLI, its batches and `evaluate` go through too.
"""

from __future__ import annotations

import os

import numpy as np

from . import codec, families, jobs
from .errors import DiffcodeError, UsageError
from .families import Fit
from .image import image_and_mode, to_pil
from .jobs import choose, fit, store
from .options import check_device

VARIANTS = families.names()


def compress(image, *, variant: str = families.AUTO, model=None, preset: str = "default", steps: int | None = None,
             seed: int | None = None, storage: str | None = None, budget_nats: float | None = None,
             device: str = "cpu", progress=None, **options) -> bytes:
    """Fit and store an image; returns the bytes of a .dfc file (`diffcode.jobs.compress` says more).

    image: a path, the bytes of an image file, a PIL image (RGB, L, 1, P), or a numpy array: uint8
    (H, W, 3) RGB, uint8 (H, W) gray (mode L), bool (H, W) (mode 1). The file keeps the mode.
    variant: a family, or "auto" (the default): the family that writes the smallest file (`choose`).
    preset, steps, seed: the family's fit preset (`Family.presets`) and its overrides.
    storage, budget_nats: the scheme the fit prepares for and stores with (per-pixel: dither, the
    default, or randseed with its segment budget in nats). progress: callable(step, bpsp) during the fit.
    """
    return jobs.compress(image, variant=variant, model=model, preset=preset, steps=steps, seed=seed, storage=storage,
                         budget_nats=budget_nats, device=device, progress=progress, **options)[0]


def decompress(data, *, model=None, device: str = "cpu", as_pil: bool = False):
    """Decode a .dfc file (its bytes, or its path) to the image in its own mode, bit-exact.

    Returns (see the module doc) `np.array` of the image as Pillow holds it: RGB uint8 (H, W, 3),
    L uint8 (H, W), 1 bool (H, W), P uint8 (H, W) palette indexes; with `as_pil=True` the
    `PIL.Image.Image` itself (mode P with its palette: `.getpalette()`).
    model: the shared model of the file's family (None: the shipped one).
    """
    check_device(device)
    name = None
    if isinstance(data, (str, os.PathLike)):
        name = os.fspath(data)
        data = _read_file(name)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise UsageError(f"decompress takes the bytes of a .dfc file or its path, not a {type(data).__name__}")
    try:
        pixels, color = codec.load_image(bytes(data), model, device=device)
    except DiffcodeError as exc:
        if name is None or str(exc).startswith(name):
            raise
        raise type(exc)(f"{name}: {exc}") from exc
    if as_pil:
        return to_pil(pixels, color)
    return pixels if color.mode == "RGB" else np.array(to_pil(pixels, color))


def _read_file(path: str) -> bytes:
    if not os.path.isfile(path):
        raise DiffcodeError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise DiffcodeError(f"{path}: cannot read ({exc})") from exc


__all__ = ["VARIANTS", "Fit", "choose", "compress", "decompress", "fit", "image_and_mode", "store"]
