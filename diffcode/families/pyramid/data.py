"""Which images train and select the pyramid family's prior.

Training: folders of PNG photos (paths under the photos folder, e.g. `train`, `extra/bsd68`, or
absolute), each photo cropped to at most `crop` x `crop` (its centre crop, or `crops` random
crops), plus Kodak's training split (kodim01-08, whole) unless `kodak` is off.

Validation is fixed, whatever trains: Kodak's validation split (kodim09-16, whole) and centre
crops of at most 640 x 640 of `photos/val`, scored separately. Kodak's test split (kodim17-24)
is never read. A training image whose pixels are a validation image, a Kodak image outside the
training split, or any Kodak image when `kodak` is off, is refused (pixel SHA-256 of the whole
image).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ... import kodak
from ...errors import DiffcodeError
from ...image import pixel_sha256, read_image

PHOTOS_ENV = "DIFFCODE_PHOTOS"  # a folder holding train/ and val/ photos (PNG)
VAL_CROP = 640
VAL_FOLDER = "val"


@dataclass(frozen=True)
class DataSpec:
    """The training images: photo folders, Kodak's training split or not, and how photos are cropped."""

    folders: tuple[str, ...] = ("train",)
    kodak: bool = True
    crop: int = 640
    crops: int = 1  # 1: the centre crop; n > 1: n random crops of a photo larger than crop x crop
    seed: int = 0  # of the random crops (with the photo's file name)

    def describe(self) -> dict:
        return {**asdict(self), "folders": list(self.folders)}

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        """The spec of a `describe()` (or of a training description holding more keys)."""
        return cls(folders=tuple(d["folders"]), kodak=d["kodak"], crop=d["crop"], crops=d["crops"], seed=d["seed"])


def photos_root(photos_dir: str | os.PathLike | None) -> Path:
    """The photos folder: `photos_dir`, else $DIFFCODE_PHOTOS; it must hold train/ and val/."""
    root = photos_dir or os.environ.get(PHOTOS_ENV)
    if not root or not (Path(root) / "train").is_dir() or not (Path(root) / VAL_FOLDER).is_dir():
        raise DiffcodeError(f"the pyramid prior trains on photos: pass a photos folder or set {PHOTOS_ENV} to one "
                            f"holding train/ and val/ (for example ../shared/photos)")
    return Path(root)


def random_crops(image: np.ndarray, size: int, n: int, key: str, seed: int) -> list[np.ndarray]:
    """n crops of at most size x size at offsets drawn from (seed, key); the whole image if it fits."""
    h, w = min(size, image.shape[0]), min(size, image.shape[1])
    if (h, w) == image.shape[:2]:
        return [image]
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    tops = rng.integers(0, image.shape[0] - h + 1, n)
    lefts = rng.integers(0, image.shape[1] - w + 1, n)
    return [np.ascontiguousarray(image[t:t + h, l:l + w]) for t, l in zip(tops, lefts)]


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    return kodak.crop(image, (min(size, image.shape[0]), min(size, image.shape[1])))


def folder_photos(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file name, whole image) of every PNG in a folder, sorted by name."""
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise DiffcodeError(f"no PNG photos in {folder}")
    return [(path.name, read_image(path)) for path in paths]


def validation_images(photos_dir=None, kodak_dir=None) -> dict[str, list[np.ndarray]]:
    """{"kodak": kodim09-16 whole, "photos": centre crops of at most 640 of photos/val}."""
    photos = [centre_crop(image, VAL_CROP) for _, image in folder_photos(photos_root(photos_dir) / VAL_FOLDER)]
    return {"kodak": [kodak.load(n, kodak_dir) for n in kodak.VALIDATION], "photos": photos}


def _refused_hashes(data: DataSpec, photos_dir) -> dict[str, str]:
    """Pixel SHA-256 -> name of every image training must not hold."""
    allowed = set(kodak.TRAIN) if data.kodak else set()
    refused = {e.pixel_sha256: e.name for e in kodak.manifest().values() if e.name not in allowed}
    for name, image in folder_photos(photos_root(photos_dir) / VAL_FOLDER):
        refused[pixel_sha256(image)] = f"{VAL_FOLDER}/{name}"
    return refused


def _folder_crops(root: Path, folder: str, data: DataSpec, refused: dict[str, str]) -> tuple[list, int]:
    """(crops of every photo of one training folder, number of photos)."""
    if Path(folder).name == VAL_FOLDER:
        raise DiffcodeError(f"{folder}: the validation photos never train")
    photos, crops = folder_photos(root / folder), []
    for name, image in photos:
        if pixel_sha256(image) in refused:
            raise DiffcodeError(f"{folder}/{name} is {refused[pixel_sha256(image)]}, which never trains here")
        crops += ([centre_crop(image, data.crop)] if data.crops == 1 else
                  random_crops(image, data.crop, data.crops, f"{folder}/{name}", data.seed))
    return crops, len(photos)


def _source(folder: str, photos: int, crops: list[np.ndarray]) -> dict:
    return {"folder": folder, "photos": photos, "crops": len(crops),
            "pixels": int(sum(c.shape[0] * c.shape[1] for c in crops))}


def training_images(data: DataSpec, photos_dir=None, kodak_dir=None) -> tuple[list[np.ndarray], dict]:
    """(training images, description: the spec, per source its photos, crops and pixels, and the
    SHA-256 of the crops' pixel hashes in order, which a resumed run checks)."""
    root, refused = photos_root(photos_dir), _refused_hashes(data, photos_dir)
    images, sources = [], []
    if data.kodak:
        images += [kodak.load(n, kodak_dir) for n in kodak.TRAIN]
        sources.append(_source("kodak (kodim01-08, whole)", len(kodak.TRAIN), images))
    for folder in data.folders:
        crops, photos = _folder_crops(root, folder, data, refused)
        images += crops
        sources.append(_source(folder, photos, crops))
    fingerprint = hashlib.sha256("".join(pixel_sha256(image) for image in images).encode()).hexdigest()
    return images, {**data.describe(), "sources": sources, "pixels_sha256": fingerprint}
