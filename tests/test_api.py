"""The Python API dispatches on the variant: fit, store and decompress work the same for both. It
takes what the CLI takes (paths, PIL images, gray and black-and-white arrays), gives images back in
their own mode, and refuses what the CLI refuses (issue 23)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import QUICK_FIT
from diffcode import api, codec
from diffcode.errors import DecoderMismatchError, DiffcodeError, ImageError, UsageError
from diffcode.families import Fit
from diffcode.families.per_pixel.config import FitConfig
from diffcode.image import ColorMode


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(60, 200, (9, 11, 3), dtype=np.uint8)


def test_per_pixel_fit_store_decompress(image, checkpoint):
    result = api.fit(image, variant="per-pixel", config=QUICK_FIT, model=checkpoint, storage="randseed", seed=5)
    assert isinstance(result, Fit) and result.family == "per-pixel"
    assert result.meta["config"]["storage"] == "randseed" and result.seed == 5
    data, report = api.store(result, model=checkpoint)
    assert report.storage == "randseed"  # the scheme the fit prepared for
    assert np.array_equal(api.decompress(data, model=checkpoint), image)


def test_weights_fit_store_decompress(image, checkpoint):
    result = api.fit(image, variant="weights", preset="tiny", steps=6, color=ColorMode())
    assert isinstance(result, Fit) and result.family == "weights" and len(result.history) == 6
    data, report = api.store(result)
    assert report.as_dict()["file_bytes"] == len(data)
    assert np.array_equal(api.decompress(data), image)
    with pytest.raises(DecoderMismatchError):  # a per-pixel decoder is not this file's model
        api.decompress(data, model=checkpoint)
    assert np.array_equal(api.decompress(api.compress(image, variant="weights", preset="tiny", steps=3)), image)


def test_store_refuses_a_fit_from_another_decoder(image, checkpoint, other_checkpoint):
    result = api.fit(image, variant="per-pixel", config=QUICK_FIT, model=checkpoint)
    with pytest.raises(DecoderMismatchError, match="the loaded one is"):
        api.store(result, model=other_checkpoint)


def test_bad_arguments_are_refused(image):
    with pytest.raises(DiffcodeError, match="unknown variant"):
        api.fit(image, variant="jpeg")
    for seed in (-1, 2**32):
        with pytest.raises(DiffcodeError, match="seed"):
            api.fit(image, variant="per-pixel", seed=seed)
    with pytest.raises(DiffcodeError, match="takes storage dither"):
        api.fit(image, variant="weights", preset="tiny", storage="randseed")
    with pytest.raises(DiffcodeError, match="takes preset"):
        api.fit(image, variant="weights", preset="huge")
    with pytest.raises(DiffcodeError, match="no randseed storage, so no segment budget"):
        api.store(api.fit(image, variant="weights", preset="tiny", steps=3), budget_nats=8.0)


def test_public_names_are_not_shadowed_by_submodules():
    """`diffcode.fit(...)` from the README works after any API call (issue 14, defect 3)."""
    import pkgutil

    import diffcode
    from diffcode import api as api_module  # imports the per-pixel fitter, which once was `diffcode.fit`

    assert not set(diffcode.__all__) & {m.name for m in pkgutil.iter_modules(diffcode.__path__)}
    for name in diffcode.__all__:
        assert getattr(diffcode, name) is getattr(api_module, name)


def test_steps_below_the_maximize_phase_change_the_fit(image, checkpoint):
    """`--steps 20` or less once left every step in the entropy-maximizing phase, whose loss does not
    reach the head's encodings, so such fits stored the same file (issue 14, defect 4)."""
    heads = {}
    for steps in (1, 4, 12):
        result = api.fit(image, variant="per-pixel", steps=steps, model=checkpoint)
        config = FitConfig(**result.meta["config"])
        assert config.steps == steps and len(result.history) == steps
        assert config.maximize_steps < steps or steps == 1
        heads[steps] = result.arrays[f"centers_{len(result.arrays) - 1}"].tobytes()
    assert len(set(heads.values())) == 3
    assert [FitConfig().with_steps(n).maximize_steps for n in (1, 20, 200, 400)] == [0, 2, 20, 40]
    with pytest.raises(ValueError, match="at least 1 step"):
        FitConfig().with_steps(0)


FAST = {"variant": "pyramid", "preset": "instant"}  # no fitting step: the fastest way to a real file
RNG = np.random.default_rng(23)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
BLACK_AND_WHITE = RNG.integers(0, 2, (5, 7)).astype(bool)


def _palette_image() -> Image.Image:
    im = Image.fromarray((np.arange(35, dtype=np.uint8).reshape(5, 7) * 5) % 6, mode="P")
    im.putpalette([v for i in range(6) for v in (40 * i, 255 - 40 * i, 7 * i)])  # 6 distinct entries
    return im


def _png(im: Image.Image) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    im.save(buffer, format="PNG")
    return buffer.getvalue()


# input -> the PIL image it stands for (the mode the file keeps, and what decompress gives back)
WIDER_INPUTS = {
    "gray array": lambda tmp: (GRAY, Image.fromarray(GRAY, mode="L")),
    "bool array": lambda tmp: (BLACK_AND_WHITE, Image.fromarray(BLACK_AND_WHITE)),
    "PIL RGB": lambda tmp: (Image.fromarray(RGB), Image.fromarray(RGB)),
    "PIL L": lambda tmp: (Image.fromarray(GRAY, mode="L"), Image.fromarray(GRAY, mode="L")),
    "PIL 1": lambda tmp: (Image.fromarray(BLACK_AND_WHITE), Image.fromarray(BLACK_AND_WHITE)),
    "PIL P": lambda tmp: (_palette_image(), _palette_image()),
    "str path of a P png": lambda tmp: (str(_saved(_palette_image(), tmp / "p.png")), _palette_image()),
    "Path of an RGB png": lambda tmp: (_saved(Image.fromarray(RGB), tmp / "rgb.png"), Image.fromarray(RGB)),
    "bytes of an L png": lambda tmp: (_png(Image.fromarray(GRAY, mode="L")), Image.fromarray(GRAY, mode="L")),
}


def _saved(im: Image.Image, path: Path) -> Path:
    im.save(path)
    return path


@pytest.mark.parametrize("kind", list(WIDER_INPUTS))
def test_compress_takes_paths_pil_images_and_arrays_of_every_mode(kind, tmp_path):
    """The API once took uint8 (H, W, 3) arrays only, and gave gray and palette images back as RGB."""
    given, expected = WIDER_INPUTS[kind](tmp_path)
    data = api.compress(given, **FAST)
    assert codec.info(data)["color_mode"] == expected.mode
    pixels = api.decompress(data)
    want = np.array(expected)
    assert pixels.dtype == want.dtype and pixels.shape == want.shape and np.array_equal(pixels, want)
    back = api.decompress(data, as_pil=True)
    assert back.mode == expected.mode and np.array_equal(np.array(back), want)
    assert back.getpalette() == expected.getpalette()  # None but for P
    assert api.compress(back, **FAST) == data  # what decompress gives compresses to the same file


def test_decompress_takes_a_path(tmp_path):
    """`decompress(path)` once raised `TypeError: string argument without an encoding`."""
    data = api.compress(GRAY, **FAST)
    (tmp_path / "g.dfc").write_bytes(data)
    for path in (tmp_path / "g.dfc", str(tmp_path / "g.dfc")):
        assert np.array_equal(api.decompress(path), GRAY)
    assert np.array_equal(api.decompress(bytearray(data)), GRAY)
    with pytest.raises(DiffcodeError, match="no such file"):
        api.decompress(tmp_path / "missing.dfc")
    (tmp_path / "bad.dfc").write_bytes(data[:-3])
    with pytest.raises(DiffcodeError, match="bad.dfc: "):  # the path names the file in the message
        api.decompress(tmp_path / "bad.dfc")


def test_the_api_writes_the_file_the_cli_writes(tmp_path):
    from typer.testing import CliRunner

    from diffcode import cli

    source = _saved(_palette_image(), tmp_path / "p.png")
    result = CliRunner().invoke(cli.app, ["compress", str(source), "-o", str(tmp_path / "p.dfc"),
                                          "--variant", "pyramid", "--preset", "instant"])
    assert result.exit_code == 0, result.output
    assert api.compress(source, **FAST) == (tmp_path / "p.dfc").read_bytes()


def test_version_is_pyproject_s():
    tomllib = pytest.importorskip("tomllib")
    import diffcode

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert diffcode.__version__ == tomllib.loads(pyproject.read_text())["project"]["version"]


@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "steps must be at least 1"),
    ({"steps": -2}, "steps must be at least 1"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"variant": "jpeg"}, "unknown variant"),
    ({"preset": "huge"}, "takes presets default, fast, instant or max, not 'huge'"),
    ({"storage": "randseed"}, "takes storage none, not 'randseed'"),
    ({"budget_nats": 8.0}, "pyramid variant has no randseed storage"),
    ({"variant": "per-pixel", "preset": "default", "budget_nats": 8.0}, "dither storage has no segment budget"),
    ({"variant": "per-pixel", "preset": "default", "storage": "randseed", "budget_nats": 100.0},
     "budget_nats must be in"),
    ({"device": "gpu"}, "expected cpu or cuda"),
    ({"steps": 3}, "instant preset fits nothing per image"),  # once fitted 3 steps and stored none of them
])
def test_options_the_cli_refuses_are_refused_before_any_work(options, message, tmp_path):
    """`steps=0` was once accepted by the API, unlike on the CLI. The image named does not exist: the
    options are refused before it is read."""
    options = {**FAST, **options}
    missing = tmp_path / "missing.png"
    with pytest.raises(UsageError, match=message):
        api.compress(missing, **options)
    if "budget_nats" not in options:
        with pytest.raises(UsageError, match=message):
            api.fit(missing, **options)


def test_store_and_decompress_check_their_options_too():
    result = api.fit(RGB, **FAST)
    for options, message in (({"storage": "dither"}, "takes storage none"), ({"device": "tpu"}, "expected cpu"),
                             ({"budget_nats": 4.0}, "no segment budget")):
        with pytest.raises(UsageError, match=message):
            api.store(result, **options)
    with pytest.raises(UsageError, match="expected cpu"):
        api.decompress(b"", device="tpu")
    with pytest.raises(UsageError, match="bytes of a .dfc file or its path"):
        api.decompress(RGB)


@pytest.mark.parametrize("image, message", [
    (RGB.astype(np.float32), "a float32 array of shape"),
    (np.zeros((3, 4, 4), np.uint8), r"uint8 \(H, W\) gray or bool \(H, W\)"),
    (Image.new("RGBA", (3, 2)), "image mode is RGBA.*alpha"),
    (Image.new("I;16", (3, 2)), "16 bits"),
    ([[1, 2]], "a list; diffcode takes a path"),
])
def test_images_it_cannot_code_exactly_are_refused_with_what_it_takes(image, message):
    with pytest.raises(ImageError, match=message):
        api.compress(image, **FAST)


def test_a_mode_the_input_does_not_have_is_refused():
    from diffcode.image import ColorMode

    with pytest.raises(UsageError, match="mode L, but color says mode P"):
        api.fit(GRAY, color=ColorMode("P", bytes(range(30))), **FAST)
    assert api.fit(RGB, color=ColorMode("RGB"), **FAST).color == ColorMode()
