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

    result = api.fit(image, variant="pyramid" | "per-pixel" | "weights")   # the encoder (Adam)
    data, report = api.store(result)               # fit result -> .dfc bytes, size report

A fit result (`diffcode.families.Fit`) names its family, so `store` needs no flag; each step goes
through the family's protocol (`diffcode.families`). The CLI is a thin layer over these.
"""

from __future__ import annotations

import os

import numpy as np

from . import codec, families, limits
from .errors import DiffcodeError, ImageError, UsageError
from .families import Fit, auto
from .image import ColorMode, read_image_data, read_image_mode, read_pil_image, to_pil, validate_array
from .options import check_device, check_options

VARIANTS = families.names()

IMAGE_INPUTS = ("a path, the bytes of an image file, a PIL image, or a numpy array: uint8 (H, W, 3) RGB, "
                "uint8 (H, W) gray or bool (H, W) black and white")


def image_and_mode(image, name: str = "image") -> tuple[np.ndarray, ColorMode]:
    """Any input `compress` takes (see the module doc) -> uint8 (H, W, 3) RGB pixels and the mode to
    keep; ImageError for anything else."""
    if isinstance(image, (str, os.PathLike)):
        return read_image_mode(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return read_image_data(bytes(image), name)
    if isinstance(image, np.ndarray):
        if image.ndim == 2 and image.dtype in (np.uint8, np.bool_):
            mode = "1" if image.dtype == np.bool_ else "L"
            gray = np.where(image, np.uint8(255), np.uint8(0)) if mode == "1" else image
            return validate_array(np.repeat(gray[:, :, None], 3, axis=2), name), ColorMode(mode)
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            return validate_array(image, name), ColorMode()
        raise ImageError(f"{name}: a {image.dtype} array of shape {image.shape}; diffcode takes {IMAGE_INPUTS}")
    from PIL import Image

    if isinstance(image, Image.Image):
        return read_pil_image(image, name)
    raise ImageError(f"{name}: a {type(image).__name__}; diffcode takes {IMAGE_INPUTS}")


def fit(image, *, variant: str = "pyramid", model=None, color: ColorMode | None = None,
        preset: str = "default", steps: int | None = None, seed: int | None = None, generator=None,
        device: str = "cpu", progress=None, **options) -> Fit:
    """Fit one image: any input `compress` takes (a path, a PIL image, an array; see the module doc).

    Args:
        variant: the family ("pyramid", the default; "per-pixel", "weights": the report's; `diffcode.families.names()`).
        model: the family's shared model (decoder checkpoint, MLP); None: the shipped one.
        preset: the family's fit preset (pyramid: default, fast, instant; per-pixel: "default"; weights: default,
            report, tiny).
        steps, seed: override the preset's values (steps >= 1; weights: `steps` rescales its three phases).
        generator: torch.Generator of the fit's noise (None: one seeded with `seed`).
        color: the mode to give an RGB image back in (default: the input's own mode; L, 1 and P are coded
            as RGB); a different mode than a gray, black and white or palette input has is refused.
        progress: optional callable(step, bpsp).
        options: the family's own (per-pixel: config (FitConfig), storage).

    Raises UsageError, before any work, for options the CLI refuses (`diffcode.options.check_options`).
    """
    family = check_options(variant, preset=preset, steps=steps, seed=seed, storage=options.get("storage"),
                           device=device)
    image, mode = image_and_mode(image)
    if color is not None and mode != ColorMode() and color != mode:
        raise UsageError(f"image: mode {mode.mode}, but color says mode {color.mode}")
    limits.check("fit", image.shape[0], image.shape[1], family.memory, device)
    model = model if model is not None else family.load_model()
    result = family.fit(image, model, preset=preset, steps=steps, seed=seed, generator=generator,
                        progress=progress, device=device, **options)
    result.color = color or mode
    return result


def store(result: Fit, *, model=None, device: str = "cpu", progress=None, verify: bool = True,
          **options) -> tuple[bytes, codec.SizeReport]:
    """A fit result -> (.dfc bytes, size report: theoretical bits vs real bytes per section).

    Per-pixel fits store with the scheme they prepared for unless `storage` says otherwise
    (`budget_nats`: randseed's segment budget); `progress` is callable(done, total). The file is
    decoded before it is returned (`verify`), so a file that would decode wrong is never handed out.
    """
    check_options(result.family, storage=options.get("storage"), budget_nats=options.get("budget_nats"),
                  device=device)
    return codec.store(result, model, verify=verify, device=device, progress=progress, **options)


def compress(image, *, variant: str = "auto", model=None, preset: str = "default", steps: int | None = None,
             seed: int | None = None, storage: str | None = None, budget_nats: float | None = None,
             device: str = "cpu", progress=None, **options) -> bytes:
    """Fit and store an image; returns the bytes of a .dfc file (`fit` and `store` say more).

    image: a path, the bytes of an image file, a PIL image (RGB, L, 1, P), or a numpy array: uint8
    (H, W, 3) RGB, uint8 (H, W) gray (mode L), bool (H, W) (mode 1). The file keeps the mode.
    storage, budget_nats: the scheme the fit prepares for and stores with (per-pixel: dither, the
    default, or randseed with its segment budget in nats).
    """
    if variant == auto.NAME:
        check_options(auto.NAME, preset=preset, steps=steps, seed=seed, storage=storage, budget_nats=budget_nats,
                      device=device)
        if options:
            raise UsageError(f"the {auto.NAME} variant takes no {', '.join(sorted(options))} option; name a variant")
        image, mode = image_and_mode(image)
        return choose(image, preset=preset, steps=steps, seed=seed, device=device, progress=progress, model=model,
                      color=mode)[0]
    family = check_options(variant, preset=preset, steps=steps, seed=seed, storage=storage, device=device)
    budget = {}
    if budget_nats is not None:  # checked with the storage it goes with: the one named, else the variant's
        # default (a per-pixel `config` may name another: its encode checks that case)
        check_options(variant, storage=storage or (None if "config" in options else family.storages[0]),
                      budget_nats=budget_nats)
        budget = {"budget_nats": budget_nats}
    model = model if model is not None else family.load_model()
    result = fit(image, variant=variant, model=model, preset=preset, steps=steps, seed=seed, storage=storage,
                 device=device, progress=progress, **options)
    data, _ = store(result, model=model, device=device, **budget)
    return data


def choose(image, *, preset: str = "default", steps: int | None = None, seed: int | None = None,
           device: str = "cpu", progress=None, stage_progress=None, model=None, color: ColorMode | None = None,
           metadata=None) -> tuple[bytes, codec.SizeReport]:
    """The mode decision (`diffcode.families.auto`): (the smallest .dfc bytes, its size report) of
    the classic family's file, the photo model's unfitted (`instant`) file and, where
    `auto.worth_fitting` says it can win, the photo model fitted with `preset`.
    model: the photo model's shared model (None: the shipped one); metadata: kept in the file."""
    family = check_options(auto.NAME, preset=preset, steps=steps, seed=seed, device=device)
    candidates = [store(fit(image, variant=auto.CLASSIC, color=color), metadata=metadata)]
    model = model if model is not None else family.load_model()
    instant = fit(image, variant=auto.MODEL, model=model, color=color, preset="instant", seed=seed, device=device)
    candidates.append(store(instant, model=model, device=device, progress=stage_progress, metadata=metadata))
    if family.fit_steps(preset, steps) > 0 and auto.worth_fitting(len(candidates[1][0]), len(candidates[0][0])):
        fitted = fit(image, variant=auto.MODEL, model=model, color=color, preset=preset, steps=steps, seed=seed,
                     device=device, progress=progress)
        candidates.append(store(fitted, model=model, device=device, progress=stage_progress, metadata=metadata))
    return min(candidates, key=lambda candidate: len(candidate[0]))


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


__all__ = ["VARIANTS", "Fit", "compress", "decompress", "fit", "store"]
