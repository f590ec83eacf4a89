"""Tests of diffcode.kodak: manifest, splits, locating and verifying the images, cropping."""

from pathlib import Path

import numpy as np
import pytest

from diffcode import kodak
from diffcode.errors import ImageError
from tests.conftest import kodak_dir_or_skip

REPO = Path(__file__).resolve().parent.parent




def test_manifest_has_24_images_with_correct_splits():
    entries = kodak.manifest()
    assert list(entries) == [f"kodim{i:02d}" for i in range(1, 25)]
    for i, entry in enumerate(entries.values(), start=1):
        expected = "train" if i <= 8 else "validation" if i <= 16 else "test"
        assert entry.split == expected
        assert {entry.height, entry.width} == {512, 768}
        assert len(entry.pixel_sha256) == 64 and len(entry.file_sha256) == 64


def test_packaged_manifest_matches_repository_copy():
    packaged = REPO / "diffcode" / "data" / "kodak_manifest.json"
    assert packaged.read_bytes() == (REPO / "kodak" / "manifest.json").read_bytes()


def test_splits():
    assert kodak.split("train") == [f"kodim{i:02d}" for i in range(1, 9)]
    assert kodak.split("val") == kodak.split("validation") == list(kodak.VALIDATION)
    assert kodak.split("test")[-1] == "kodim24"
    assert len(kodak.split("all")) == 24
    with pytest.raises(ValueError, match="unknown split"):
        kodak.split("dev")


def test_load_verifies_pixels():
    folder = kodak_dir_or_skip()
    image = kodak.load("kodim04.png", kodak_dir=folder)
    assert image.shape == (768, 512, 3) and image.dtype == np.uint8


def test_load_detects_wrong_pixels(tmp_path):
    folder = kodak_dir_or_skip()
    for name in kodak.ALL:
        (tmp_path / f"{name}.png").symlink_to(folder / f"{name}.png")
    (tmp_path / "kodim01.png").unlink()
    (tmp_path / "kodim01.png").symlink_to(folder / "kodim02.png")
    with pytest.raises(ImageError, match="pixel SHA-256"):
        kodak.load("kodim01", kodak_dir=tmp_path)
    assert kodak.load("kodim01", kodak_dir=tmp_path, verify=False).shape[2] == 3


def test_unknown_name():
    with pytest.raises(ImageError, match="unknown Kodak image"):
        kodak.load("lena")


def test_explicit_dir_without_images_lists_what_was_tried(tmp_path):
    with pytest.raises(ImageError, match=r"--kodak-dir: .*missing 24 of 24"):
        kodak.find_kodak_dir(tmp_path)


def test_environment_variable_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv(kodak.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(ImageError, match=r"\$DIFFCODE_KODAK: .*not a directory"):
        kodak.find_kodak_dir()


def test_crop_positions():
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    np.testing.assert_array_equal(kodak.crop(image, (3, 2)), image[1:4, 2:4])
    np.testing.assert_array_equal(kodak.crop(image, 2, "top_left"), image[:2, :2])
    np.testing.assert_array_equal(kodak.crop(image, (2, 3), "bottom_right"), image[3:, 3:])
    assert kodak.crop(image, (3, 2)).flags.c_contiguous


def test_crop_errors():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ImageError, match="cannot crop 4x5 from a 4x4"):
        kodak.crop(image, (5, 4))
    with pytest.raises(ValueError, match="unknown crop position"):
        kodak.crop(image, 2, "middle")
