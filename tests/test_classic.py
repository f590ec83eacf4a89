"""The classic family and the mode decision (issue 26): images a photo model does not fit get a
file no larger than stored pixels or LZMA2 of their residuals, and `compress` keeps the smallest."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode import api, codec, families
from diffcode.errors import CorruptFileError
from diffcode.families import auto
from diffcode.families.classic import exact
from diffcode.storage import container

RNG = np.random.default_rng(26)
IMAGES = {
    "noise": RNG.integers(0, 256, (40, 48, 3), dtype=np.uint8),
    "gray": np.repeat(RNG.integers(0, 256, (17, 23, 1), dtype=np.uint8), 3, axis=2),
    "palette": np.array([[200, 10, 10], [10, 200, 10], [0, 0, 0], [255, 255, 255]], np.uint8)[
        np.kron(RNG.integers(0, 4, (6, 8)), np.ones((8, 8), int))],
    "gradient": (np.stack(np.broadcast_arrays(*np.ogrid[0:60, 0:300:3], 77), axis=-1) % 256).astype(np.uint8),
}


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize("method", ["best", "stored", "lzma"])
def test_every_method_and_transform_round_trips(name, method):
    image = np.ascontiguousarray(IMAGES[name])
    data, report = api.store(api.fit(image, variant="classic", method=method))
    assert np.array_equal(codec.load(data), image)
    expected = {"noise": {"rgb", "subtract-green"}, "gray": {"gray"}, "palette": {"palette"},
                "gradient": {"rgb", "subtract-green"}}[name]
    assert report.extras["transform"] in expected


@pytest.mark.parametrize("name", ["none", "left", "up", "med"])
def test_every_filter_inverts_exactly(name):
    channels = RNG.integers(0, 256, (9, 14, 3), dtype=np.uint8)
    assert np.array_equal(exact.undo_filter(name, exact.apply_filter(name, channels)), channels)


@pytest.mark.parametrize("candidate", exact.RGB_CANDIDATES)
def test_every_rgb_layout_round_trips(candidate):
    layout = exact.Layout(*candidate)
    image = IMAGES["gradient"]
    residuals = exact.apply_filter(layout.filter, exact.to_channels(layout.transform, image))
    back = exact.deserialize(layout, exact.serialize(layout, residuals), residuals.shape)
    assert np.array_equal(exact.image_of(layout, exact.undo_filter(layout.filter, back)), image)


def test_incompressible_data_costs_raw_size_plus_the_header():
    image = IMAGES["noise"]
    data, report = api.store(api.fit(image, variant="classic"))
    assert report.extras["method"] == "stored"
    assert len(data) <= image.size * 1.005 + 100  # issue 26, target 3


def test_residuals_invert_exactly():
    plane = RNG.integers(0, 256, (13, 11), dtype=np.uint8)
    assert np.array_equal(exact.med_restore(exact.med_residuals(plane)), plane)


def test_a_crafted_size_is_refused_before_decoding():
    data, _ = api.store(api.fit(IMAGES["gradient"], variant="classic", method="lzma"))
    header, sections = container.unpack(data)
    for height, width in ((60000, 60000), (61, 100)):
        crafted = container.pack(header.__class__(**{**header.__dict__, "height": height, "width": width}), sections)
        with pytest.raises(CorruptFileError):
            codec.load(crafted)
    stored, _ = api.store(api.fit(IMAGES["noise"], variant="classic", method="stored"))
    header, sections = container.unpack(stored)
    with pytest.raises(CorruptFileError, match="cannot hold"):
        codec.load(container.pack(header, [sections[0], (sections[1][0], sections[1][1][:-1])]))


def test_the_decision_keeps_the_smallest_and_fits_only_where_it_can_win(monkeypatch):
    fitted = []
    real_fit = families.get(auto.MODEL).fit

    def counting_fit(image, model, **kwargs):
        fitted.append(kwargs.get("preset"))
        return real_fit(image, model, **kwargs)

    monkeypatch.setattr(type(families.get(auto.MODEL)), "fit", lambda self, *a, **k: counting_fit(*a, **k))
    data, report = api.choose(IMAGES["noise"], preset="fast", steps=2)
    assert report.variant == "classic" and fitted == ["instant"]  # the prior is far behind: no fit
    classic, _ = api.store(api.fit(IMAGES["noise"], variant="classic"))
    assert len(data) == len(classic)


def test_a_photo_keeps_the_photo_model():
    from diffcode import kodak

    photo = kodak.crop(kodak.load("kodim23"), (48, 64))
    data, report = api.choose(photo, preset="instant")
    instant, _ = api.store(api.fit(photo, variant="pyramid", preset="instant"))
    assert report.variant == "pyramid" and data == instant


@pytest.mark.parametrize("name", ["noise", "palette", "gradient", "gray"])
def test_the_estimate_is_the_file_when_the_image_is_its_own_sample(name):
    image = IMAGES[name]
    assert exact.sample(image) is image
    data, report = api.store(api.fit(image, variant="classic", method="lzma"))
    stored, _ = api.store(api.fit(image, variant="classic", method="stored"))
    header, sections = container.unpack(data)
    table = len(sections[0][1]) - 4  # the side information's palette, if any, after its four code bytes
    lzma_bytes = len(sections[1][1]) + max(0, table - 1)
    _, stored_sections = container.unpack(stored)
    assert exact.estimate(image)[0] == min(lzma_bytes, len(stored_sections[1][1]) + max(0, table - 1))


def test_the_sample_is_four_bands_spread_over_a_large_image():
    image = np.broadcast_to(np.arange(1000)[:, None, None], (1000, 300, 3))  # each pixel holds its row
    part = exact.sample(image)
    rows = -(-exact.SAMPLE_PIXELS // (exact.SAMPLE_BANDS * 300))
    assert part.shape == (exact.SAMPLE_BANDS * rows, 300, 3)
    tops = part[::rows, 0, 0]
    assert np.array_equal(part[:, 0, 0], np.concatenate([np.arange(top, top + rows) for top in tops]))
    assert list(tops) == sorted(tops) and tops[0] < 250 - rows and tops[-1] > 750


def test_the_estimate_of_a_large_image_is_scaled_from_its_sample():
    noise = RNG.integers(0, 256, (400, 400, 3), dtype=np.uint8)  # sampled (160,000 pixels), incompressible
    estimated, density = exact.estimate(noise)
    assert exact.sample(noise).shape[0] < 400 and estimated == noise.size and density > 7.9  # the stored pixels
    ramp = np.ascontiguousarray(np.broadcast_to((np.arange(480) % 256).astype(np.uint8)[None, :, None], (400, 480, 3)))
    estimated, density = exact.estimate(ramp)
    data, _ = api.store(api.fit(ramp, variant="classic", method="lzma"))
    assert density < 1 and 0 < estimated < 4 * len(data)  # a sparse sample: scaled, and not trusted


def test_the_classic_file_is_skipped_only_where_dense_and_far_behind():
    assert auto.outclassed((1200, 2.5), 1000)
    assert not auto.outclassed((1100, 2.5), 1000)  # within the margin: made
    assert not auto.outclassed((5000, 0.5), 1000)  # a sparse sample: the estimate is not trusted


def test_a_photo_skips_the_classic_file_with_one_thread_or_two(monkeypatch):
    """The photo model's file wins by far: the classic one is not made, and one thread or two make the same file."""
    from diffcode import jobs, kodak, parallel

    photo = kodak.crop(kodak.load("kodim23"), (96, 128))
    made, real_fit = [], jobs.fit
    monkeypatch.setattr(jobs, "fit", lambda image, variant, **k: made.append(variant) or real_fit(image, variant=variant, **k))
    files = []
    for n in (1, 2):
        parallel.set_threads(n)
        try:
            files.append(api.choose(photo, preset="instant")[0])
        finally:
            parallel.set_threads(None)
    assert auto.outclassed(auto.classic_estimate(photo), len(files[0]))
    assert made == [auto.MODEL, auto.MODEL] and files[0] == files[1]


@pytest.mark.parametrize("name", ["noise", "palette"])
def test_the_decision_makes_the_same_file_with_one_thread_or_two(name):
    """With two threads the estimate runs beside the photo model and the network splits its rows: the same bytes."""
    from diffcode import parallel

    files = []
    for n in (1, 2):
        parallel.set_threads(n)
        try:
            files.append(api.choose(IMAGES[name], preset="instant")[0])
        finally:
            parallel.set_threads(None)
    assert files[0] == files[1]


def test_a_failure_of_the_estimate_in_its_thread_is_raised(monkeypatch):
    from diffcode import parallel

    def broken(image):
        raise RuntimeError("estimate failed")

    monkeypatch.setattr(auto, "classic_estimate", broken)
    parallel.set_threads(2)
    try:
        with pytest.raises(RuntimeError, match="estimate failed"):
            api.choose(IMAGES["palette"], preset="instant")
    finally:
        parallel.set_threads(None)


def test_compress_chooses_by_default(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.fromarray(IMAGES["palette"]).save("art.png")
    result = CliRunner().invoke(cli.app, ["compress", "art.png", "--preset", "instant", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"variant": "classic"' in result.stdout and (tmp_path / "art.dfc").stat().st_size < 400


def test_a_palette_never_costs_more_than_plain_rgb():
    """256 random colours on 16x16 pixels: the table alone costs more than it saves."""
    image = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    data, report = api.store(api.fit(image, variant="classic"))
    assert report.extras["transform"] == "rgb" and len(data) <= image.size * 1.005 + 100


@pytest.mark.parametrize("colours", [1, 2, 255, 256, 257, 5000])
def test_the_palette_is_the_sorted_colours_found_without_sorting_the_pixels(colours):
    """Issue 27: colours are counted in a 2^24 table (stopping at a 257th); a palette keeps the table
    and indexes np.unique over the pixels gave (ascending R, G, B), so earlier files do not change."""
    table = RNG.integers(0, 256, (colours, 3), dtype=np.uint8)
    table[-1] = table[0] ^ np.array([0, 0, 1], np.uint8)  # two colours one apart in blue
    image = table[RNG.integers(0, colours, (31, 45))][:, ::-1]  # a strided view
    unique, index = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
    transform, palette, channels = exact.channels_of(image)
    assert transform == ("palette" if len(unique) <= 256 else "rgb")
    if transform == "palette":
        assert palette == unique.tobytes() and np.array_equal(channels[..., 0], index.reshape(31, 45))


@pytest.mark.parametrize("layout", [exact.Layout(*c) for c in exact.RGB_CANDIDATES]
                         + [exact.Layout("rgb", f, order) for f in ("left", "up") for order in exact.LAYOUTS.values()])
@pytest.mark.parametrize("rank_pixels", [1, 7, 40, 1 << 21])
def test_bands_of_rows_give_the_bytes_of_the_whole_image(monkeypatch, layout, rank_pixels):
    """`residual_pieces` filters a band at a time (with the row above it): the same bytes as at once."""
    monkeypatch.setattr(exact, "RANK_PIXELS", rank_pixels)
    image = IMAGES["noise"][:13, :11]
    whole = exact.serialize(layout, exact.apply_filter(layout.filter, exact.to_channels(layout.transform, image)))
    assert b"".join(exact.residual_pieces(layout, image)) == whole


def test_a_large_image_is_ranked_on_its_middle_rows_and_round_trips(monkeypatch):
    """Above RANK_PIXELS the fast pass sees a band of whole rows from the middle; the file still holds
    every row, coded in bands with the encoder's smaller dictionary, and decodes exactly."""
    monkeypatch.setattr(exact, "RANK_PIXELS", 300)
    monkeypatch.setattr(exact, "ENCODER_DICTIONARY", 4096)  # LZMA2's least; the decoder's window: 64 KiB
    assert exact.rank_rows(60, 100) == slice(28, 31) and exact.rank_rows(3, 100) == slice(0, 3)
    assert exact.rank_rows(5, 1000) == slice(2, 3)  # a row wider than the band: one row
    ranked = []
    real_fast_size = exact.fast_size
    monkeypatch.setattr(exact, "fast_size", lambda layout, channels: ranked.append(channels.shape)
                        or real_fast_size(layout, channels))
    image = IMAGES["gradient"]
    data, report = api.store(api.fit(image, variant="classic", method="lzma"))
    assert set(ranked) == {(3, 100, 3)} and len(ranked) == len(exact.RGB_CANDIDATES)
    assert np.array_equal(codec.load(data), image)
