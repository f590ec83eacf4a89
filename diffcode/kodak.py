"""The Kodak test set: names, splits, checksums, locating and verifying the images.

The images are never part of the repository. `find_kodak_dir` looks for a folder
holding all 24 of kodim01.png .. kodim24.png, and `load` checks each image's
pixels against the checksums shipped in diffcode/data/kodak_manifest.json (the
same file as kodak/manifest.json at the repository root).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from diffcode.errors import ImageError, UsageError
from diffcode.image import pixel_sha256, read_image

TRAIN = tuple(f"kodim{i:02d}" for i in range(1, 9))
VALIDATION = tuple(f"kodim{i:02d}" for i in range(9, 17))
TEST = tuple(f"kodim{i:02d}" for i in range(17, 25))
ALL = TRAIN + VALIDATION + TEST
SPLITS = {"train": TRAIN, "validation": VALIDATION, "test": TEST, "all": ALL}
_SPLIT_ALIASES = {"val": "validation"}

ENV_VAR = "DIFFCODE_KODAK"
REPO_ROOT = Path(__file__).resolve().parent.parent
FETCHED_DIR = REPO_ROOT / "kodak" / "images"
SHARED_DIR = REPO_ROOT.parent / "shared" / "kodak"

CROP_PLACES = ("center", "top_left", "top_right", "bottom_left", "bottom_right")


@dataclass(frozen=True)
class KodakEntry:
    """One image of the manifest; sizes in pixels, hashes as lowercase hex."""

    name: str
    split: str
    height: int
    width: int
    pixel_sha256: str
    file_sha256: str


@functools.lru_cache(maxsize=1)
def _manifest_entries() -> tuple[KodakEntry, ...]:
    """Parse the packaged manifest once."""
    text = resources.files("diffcode").joinpath("data/kodak_manifest.json").read_text()
    return tuple(KodakEntry(**image) for image in json.loads(text)["images"])


def manifest() -> dict[str, KodakEntry]:
    """Return the manifest as {name: entry}, in order kodim01 .. kodim24."""
    return {entry.name: entry for entry in _manifest_entries()}


def image_name(name: str) -> str:
    """Normalize 'kodim01' or 'kodim01.png' to 'kodim01'; ImageError if not a Kodak name."""
    stem = name[:-4] if name.endswith(".png") else name
    if stem not in ALL:
        raise ImageError(f"unknown Kodak image {name!r}; expected kodim01 .. kodim24")
    return stem


def split(name: str) -> list[str]:
    """Image names of a split: 'train', 'validation' (or 'val'), 'test' or 'all'."""
    key = _SPLIT_ALIASES.get(name, name)
    if key not in SPLITS:
        raise UsageError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}, val")
    return list(SPLITS[key])


def _missing_images(folder: Path) -> list[str]:
    """Names of the Kodak PNG files not present in `folder`."""
    return [f"{name}.png" for name in ALL if not (folder / f"{name}.png").is_file()]


def _describe_problem(folder: Path) -> str | None:
    """Why `folder` cannot serve as the Kodak folder, or None if it can."""
    if not folder.is_dir():
        return "not a directory"
    missing = _missing_images(folder)
    if missing:
        return f"missing {len(missing)} of 24 images, e.g. {missing[0]}"
    return None


def _candidates(explicit: str | os.PathLike | None) -> list[tuple[str, Path]]:
    """Folders to try in order, each with where it came from.

    An explicit folder or the environment variable, when given, is the only
    candidate: a user who names a folder should not silently get another one.
    """
    if explicit is not None:
        return [("--kodak-dir", Path(explicit))]
    if os.environ.get(ENV_VAR):
        return [(f"${ENV_VAR}", Path(os.environ[ENV_VAR]))]
    return [("fetched images", FETCHED_DIR), ("shared copy", SHARED_DIR)]


def find_kodak_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Locate a folder holding kodim01.png .. kodim24.png.

    Order: `explicit` (the --kodak-dir option), else $DIFFCODE_KODAK, else
    <repo>/kodak/images (filled by kodak/fetch.py), else ../shared/kodak next to
    the repository.

    Raises:
        ImageError: no candidate holds all 24 images; the message lists each
            folder tried and what was wrong with it.
    """
    tried = []
    for origin, folder in _candidates(explicit):
        problem = _describe_problem(folder)
        if problem is None:
            return folder
        tried.append(f"  {origin}: {folder} ({problem})")
    raise ImageError(
        "cannot find the Kodak images. Tried:\n" + "\n".join(tried) + "\n"
        f"Run `python kodak/fetch.py`, or set ${ENV_VAR} / --kodak-dir to a folder "
        "holding kodim01.png .. kodim24.png"
    )


def load(name: str, kodak_dir: str | os.PathLike | None = None, verify: bool = True) -> np.ndarray:
    """Read one Kodak image, checking its pixels against the manifest.

    Args:
        name: 'kodim01' .. 'kodim24' (a '.png' suffix is allowed).
        kodak_dir: folder holding the images; found with `find_kodak_dir` if None.
        verify: compare the pixel SHA-256 with the manifest.

    Returns:
        uint8 array of shape (H, W, 3).

    Raises:
        ImageError: unknown name, folder not found, unreadable file, or pixels
            that differ from the manifest.
    """
    stem = image_name(name)
    path = find_kodak_dir(kodak_dir) / f"{stem}.png"
    array = read_image(path)
    if verify:
        _verify_pixels(array, manifest()[stem], path)
    return array


def _verify_pixels(array: np.ndarray, entry: KodakEntry, path: Path) -> None:
    """Raise ImageError unless `array` has the size and pixel hash of `entry`."""
    expected = (entry.height, entry.width)
    if array.shape[:2] != expected:
        raise ImageError(f"{path}: size {array.shape[:2]} differs from the manifest's {expected}")
    actual = pixel_sha256(array)
    if actual != entry.pixel_sha256:
        raise ImageError(
            f"{path}: pixel SHA-256 {actual} differs from the manifest's {entry.pixel_sha256}; "
            "the file is corrupt or a different image. Re-fetch it with `python kodak/fetch.py`"
        )


def crop(array: np.ndarray, size: int | tuple[int, int], where: str = "center") -> np.ndarray:
    """Return a contiguous (h, w) crop of an (H, W, C) array.

    Args:
        array: image of shape (H, W, C).
        size: (h, w), or one int for a square crop.
        where: 'center' (rounded towards the top left), 'top_left', 'top_right',
            'bottom_left' or 'bottom_right'.

    Raises:
        ImageError: the crop is empty or larger than the image.
        ValueError: unknown `where`.
    """
    h, w = (size, size) if isinstance(size, int) else size
    height, width = array.shape[:2]
    if not (1 <= h <= height and 1 <= w <= width):
        raise ImageError(f"cannot crop {w}x{h} from a {width}x{height} image")
    top, left = _crop_origin(height - h, width - w, where)
    return np.ascontiguousarray(array[top : top + h, left : left + w])


def _crop_origin(spare_rows: int, spare_cols: int, where: str) -> tuple[int, int]:
    """Top-left corner of a crop given the rows and columns left over."""
    if where not in CROP_PLACES:
        raise UsageError(f"unknown crop position {where!r}; expected one of {CROP_PLACES}")
    if where == "center":
        return spare_rows // 2, spare_cols // 2
    vertical, horizontal = where.split("_")
    return (0 if vertical == "top" else spare_rows), (0 if horizontal == "left" else spare_cols)
