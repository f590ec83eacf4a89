"""Tests of diffcode.image: strict reading, validation, atomic writing, pixel hashes."""

import hashlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from diffcode.errors import ImageError, OutputExistsError
from diffcode.image import pixel_sha256, read_image, validate_array, write_png


@pytest.fixture
def rgb():
    """A small random 8-bit RGB image with odd sides."""
    return np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)


def _png_rgb16(path, height=2, width=3):
    """Write a 16-bit-per-sample RGB PNG by hand (Pillow cannot write one)."""
    raw = b"".join(b"\x00" + bytes(range(6 * width)) for _ in range(height))

    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_png_round_trip(tmp_path, rgb):
    write_png(tmp_path / "a.png", rgb)
    back = read_image(tmp_path / "a.png")
    assert back.dtype == np.uint8 and back.flags.c_contiguous
    np.testing.assert_array_equal(back, rgb)


def test_ppm_is_read(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.ppm")
    np.testing.assert_array_equal(read_image(tmp_path / "a.ppm"), rgb)


def test_palette_is_expanded_losslessly(tmp_path, rgb):
    palette_image = Image.fromarray(rgb).quantize(colors=16)
    palette_image.save(tmp_path / "p.png")
    expected = np.asarray(palette_image.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.png")


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path)


def test_garbage_bytes(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(ImageError, match="not an image Pillow can read"):
        read_image(tmp_path / "junk.png")


def test_truncated_png(tmp_path, rgb):
    write_png(tmp_path / "a.png", rgb)
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        read_image(tmp_path / "cut.png")


@pytest.mark.parametrize(
    "mode, message",
    [("RGBA", "RGBA.*alpha"), ("LA", "LA"), ("CMYK", "CMYK")],
)
def test_wrong_modes_rejected(tmp_path, mode, message):
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    Image.new(mode, (4, 3)).save(path)
    with pytest.raises(ImageError, match=message):
        read_image(path)


def test_grayscale_is_read_as_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    array = read_image(tmp_path / "g.png")
    assert array.shape == (3, 4, 3) and all(np.array_equal(array[:, :, c], gray) for c in range(3))


def test_16bit_grayscale_rejected(tmp_path):
    Image.fromarray(np.full((3, 4), 1000, dtype=np.uint16)).save(tmp_path / "g16.png")
    with pytest.raises(ImageError, match="I;16"):
        read_image(tmp_path / "g16.png")


def test_16bit_rgb_png_rejected(tmp_path):
    _png_rgb16(tmp_path / "rgb16.png")
    with pytest.raises(ImageError, match="16 or more bits"):
        read_image(tmp_path / "rgb16.png")


def test_16bit_ppm_rejected(tmp_path):
    (tmp_path / "x.ppm").write_bytes(b"P6\n2 2\n65535\n" + bytes(24))
    with pytest.raises(ImageError, match="maxval 65535"):
        read_image(tmp_path / "x.ppm")


def test_jpeg_rejected(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.jpg")
    with pytest.raises(ImageError, match="JPEG"):
        read_image(tmp_path / "x.jpg")


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[[0, 0, 0]]], "numpy array"),
        (np.zeros((2, 2, 3), np.uint16), "uint8"),
        (np.zeros((2, 2), np.uint8), "shape"),
        (np.zeros((2, 2, 4), np.uint8), "shape"),
        (np.zeros((0, 2, 3), np.uint8), r"\[1, 65535\]"),
        (np.zeros((1, 65536, 3), np.uint8), r"\[1, 65535\]"),
    ],
)
def test_validate_array_rejects(bad, message):
    with pytest.raises(ImageError, match=message):
        validate_array(bad)


def test_validate_array_makes_contiguous(rgb):
    view = rgb[:, ::2]
    out = validate_array(view)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


def test_write_refuses_existing(tmp_path, rgb):
    target = tmp_path / "a.png"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_png(target, rgb)
    assert target.read_bytes() == b"keep me"
    write_png(target, rgb, overwrite=True)
    np.testing.assert_array_equal(read_image(target), rgb)


def test_write_leaves_nothing_on_error(tmp_path):
    with pytest.raises(ImageError):
        write_png(tmp_path / "bad.png", np.zeros((2, 2), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_pixel_sha256_is_hash_of_row_major_bytes(rgb):
    assert pixel_sha256(rgb) == hashlib.sha256(rgb.tobytes()).hexdigest()
    assert pixel_sha256(np.asfortranarray(rgb)) == pixel_sha256(rgb)


def test_pillow_bomb_warning_is_not_printed(monkeypatch):
    """diffcode's own limits decide what is too large; Pillow's two-line warning stays off stderr."""
    import io
    import warnings

    from PIL import Image

    from diffcode.image import encode_image, read_image_data

    array = np.zeros((40, 40, 3), np.uint8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1,600 pixels: over the limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning fails the test
        assert np.array_equal(read_image_data(encode_image(array), "x.png")[0], array)
