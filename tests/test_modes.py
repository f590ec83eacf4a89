"""Every image mode Pillow opens is either coded exactly (and given back in its mode) or refused."""

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from diffcode import codec
from diffcode.errors import ImageError
from diffcode.families.per_pixel.fit import fit_image
from diffcode.image import encode_image, read_image_mode, to_pil
from tests.conftest import QUICK_FIT

FAST = replace(QUICK_FIT, steps=2, maximize_steps=0, freeze_stages=False)
rng = np.random.default_rng(3)


def _palette_image(transparency: bool = False) -> Image.Image:
    im = Image.fromarray(rng.integers(0, 16, (9, 11), dtype=np.uint8), mode="P")
    im.putpalette([v for i in range(256) for v in (i, (7 * i) % 256, 255 - i)])
    if transparency:
        im.info["transparency"] = 3
    return im


ACCEPTED = {
    "RGB": lambda: Image.fromarray(rng.integers(0, 256, (7, 10, 3), dtype=np.uint8), mode="RGB"),
    "L": lambda: Image.fromarray(rng.integers(0, 256, (8, 6), dtype=np.uint8), mode="L"),
    "1": lambda: Image.fromarray(rng.integers(0, 2, (5, 9), dtype=np.uint8) * 255, mode="L").convert("1"),
    "P": _palette_image,
}
REFUSED = {
    "RGBA": lambda: Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), mode="RGBA"),
    "LA": lambda: Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), mode="RGBA").convert("LA"),
    "P with transparency": lambda: _palette_image(transparency=True),
    "I;16": lambda: Image.fromarray(rng.integers(0, 65535, (4, 4), dtype=np.uint16)),
    "CMYK": lambda: Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), mode="RGB").convert("CMYK"),
}


def _save(im: Image.Image, path):
    im.save(path, format="TIFF" if im.mode == "CMYK" else "PNG", **({"transparency": im.info["transparency"]}
                                                                  if "transparency" in im.info else {}))
    return path


@pytest.mark.parametrize("mode", list(ACCEPTED))
def test_accepted_modes_come_back_in_their_mode(mode, tmp_path, checkpoint):
    original = ACCEPTED[mode]()
    path = _save(original, tmp_path / "in.png")
    array, color = read_image_mode(path)
    assert color.mode == mode
    fit = fit_image(array, checkpoint, FAST)
    data, _ = codec.store(fit, checkpoint, color=color)
    decoded, back = codec.load_image(data, checkpoint)
    assert back == color and codec.info(data)["color_mode"] == mode
    restored = to_pil(decoded, back)
    with Image.open(path) as reread:
        assert restored.mode == reread.mode
        assert np.array_equal(np.asarray(restored), np.asarray(reread))
        if mode == "P":
            assert restored.getpalette()[:48] == reread.getpalette()[:48]
    out = tmp_path / "out.png"
    out.write_bytes(encode_image(decoded, back))
    with Image.open(out) as written, Image.open(path) as reread:
        assert written.mode == reread.mode and np.array_equal(np.asarray(written), np.asarray(reread))


@pytest.mark.parametrize("mode", list(REFUSED))
def test_other_modes_are_refused_with_a_reason(mode, tmp_path):
    path = _save(REFUSED[mode](), tmp_path / "in.png")
    with pytest.raises(ImageError) as err:
        read_image_mode(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_palette_with_a_repeated_color_is_refused(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    im.putpalette([9, 9, 9] * 256)
    with pytest.raises(ImageError, match="same color"):
        read_image_mode(_save(im, tmp_path / "p.png"))


@pytest.mark.parametrize("content", ["missing", "text", "truncated"])
def test_unreadable_inputs_are_clear_errors(content, tmp_path):
    path = tmp_path / "x.png"
    if content == "text":
        path.write_text("not an image")
    elif content == "truncated":
        data = encode_image(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        read_image_mode(path)


@pytest.mark.parametrize("shape", [(1, 1), (1, 53), (53, 1), (61, 7)])
def test_thin_and_prime_sizes_round_trip(shape, checkpoint):
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    fit = fit_image(image, checkpoint, FAST)
    data, _ = codec.store(fit, checkpoint)
    assert np.array_equal(codec.load(data, checkpoint), image)


def test_pixels_that_do_not_fit_the_mode_are_refused_before_writing(checkpoint):
    image = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    fit = fit_image(image, checkpoint, FAST)
    from diffcode.image import ColorMode

    with pytest.raises(ImageError):
        codec.store(fit, checkpoint, color=ColorMode("L"))


@pytest.mark.parametrize("entries", [1, 4, 17, 256])
def test_a_short_palette_comes_back_with_its_length(entries, tmp_path, checkpoint):
    """A 4-entry palette once came back padded to 256 entries (issue 14, defect 10); with both
    variants, through the file and the written PNG."""
    im = Image.fromarray((np.arange(30).reshape(5, 6) % entries).astype(np.uint8), mode="P")
    im.putpalette([v for i in range(entries) for v in (i, 255 - i, (3 * i) % 256)])
    path = _save(im, tmp_path / "in.png")
    array, color = read_image_mode(path)
    assert len(color.palette) == 3 * entries
    from diffcode import api

    for variant, options in (("per-pixel", {"config": FAST, "model": checkpoint}),
                             ("weights", {"preset": "tiny", "steps": 3})):
        data, _ = api.store(api.fit(array, variant=variant, color=color, **options), model=options.get("model"))
        decoded, back = codec.load_image(data, options.get("model"))
        out = tmp_path / f"{variant}.png"
        out.write_bytes(encode_image(decoded, back))
        with Image.open(out) as written, Image.open(path) as original:
            assert written.getpalette() == original.getpalette() and len(written.getpalette()) == 3 * entries
            assert np.array_equal(np.asarray(written), np.asarray(original))


def test_an_index_beyond_the_palette_is_refused():
    """Pillow reads such an index as black, which cannot be told apart from a black entry.
    (Pillow does not write such files, so the image is made in memory.)"""
    from diffcode.image import read_pil_image

    im = Image.fromarray(np.array([[0, 1], [1, 5]], np.uint8), mode="P")
    im.putpalette([200, 10, 10, 10, 200, 10])
    with pytest.raises(ImageError, match="index 5 but its palette has 2 entries"):
        read_pil_image(im, "in-memory")


def test_a_used_color_that_repeats_an_earlier_index_is_refused(tmp_path):
    """Palette [red, red, blue] with indexes 1 and 2 once came back as 0 and 2 (pixels and palette
    exact, indexes not): such a palette is refused, an unused later duplicate is fine."""
    import numpy as np
    from PIL import Image

    from diffcode.errors import ImageError
    from diffcode.image import read_image_mode

    def palette_image(entries, indexes, name):
        im = Image.fromarray(np.array(indexes, np.uint8), mode="P")
        im.putpalette(sum(entries, []))
        im.save(tmp_path / name)
        return tmp_path / name

    red, blue = [255, 0, 0], [0, 0, 255]
    with pytest.raises(ImageError, match="earlier index"):
        read_image_mode(palette_image([red, red, blue], [[1, 2], [2, 1]], "ambiguous.png"))
    array, color = read_image_mode(palette_image([red, blue, red], [[0, 1], [1, 0]], "fine.png"))
    assert color.mode == "P" and np.array_equal(np.asarray(to_pil_of(array, color)), [[0, 1], [1, 0]])


def to_pil_of(array, color):
    from diffcode.image import to_pil

    return to_pil(array, color)
