"""Tests of diffcode.figures on tiny synthetic maps: the files exist and are valid PNGs."""

import numpy as np
import pytest
from PIL import Image

from diffcode import figures

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install -e '.[test]')")


def _maps(h=24, w=40, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    loc = (image.transpose(2, 0, 1) + rng.normal(0, 5, (3, h, w))).astype(np.float32)
    loc[0, 0, 0] = -20.0  # outside 0..255: must be clipped, not wrapped
    bits = rng.gamma(2.0, 2.0, (3, h, w)).astype(np.float32)
    stages = [rng.random((max(h >> k, 1), max(w >> k, 1))).astype(np.float32)
              for k in (3, 2, 1, 0)]
    return {"image": image, "loc": loc, "bits": bits, "stage_bits": stages}


def _assert_png(path):
    assert path.is_file() and path.stat().st_size < 300_000
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        assert im.width > 50 and im.height > 50


def test_image_figures(tmp_path):
    paths = figures.image_figures(_maps(), tmp_path / "tiny")
    assert [p.name for p in paths] == ["tiny-means.png", "tiny-residuals.png",
                                       "tiny-encodings.png"]
    for path in paths:
        _assert_png(path)


def test_image_figures_portrait_and_one_stage(tmp_path):
    maps = _maps(40, 24, seed=1)
    maps["stage_bits"] = maps["stage_bits"][-1:]
    for path in figures.image_figures(maps, tmp_path / "p"):
        _assert_png(path)


def test_image_figures_rejects_bad_maps(tmp_path):
    maps = _maps()
    with pytest.raises(ValueError, match="loc"):
        figures.image_figures({**maps, "loc": maps["loc"][:, :-1]}, tmp_path / "x")
    with pytest.raises(ValueError, match="lacks bits"):
        figures.image_figures({k: v for k, v in maps.items() if k != "bits"}, tmp_path / "x")
    with pytest.raises(ValueError, match="stage_bits"):
        figures.image_figures({**maps, "stage_bits": []}, tmp_path / "x")


def test_large_figure_is_quantized_under_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "MAX_PNG_BYTES", 1_000)  # force the palette path
    path = figures.bpsp_plot([{"image": "a", "bpsp": 3.0, "png": 4.0}], tmp_path / "q.png")
    _assert_png(path)
    with Image.open(path) as im:
        assert im.mode == "P"


def test_bpsp_plot(tmp_path):
    rows = [
        {"image": "kodim17", "bpsp": 3.1, "png": 4.4, "webp": 3.2, "jpegxl": 2.9},
        {"image": "kodim18", "bpsp": 3.5, "png": 4.6, "webp": None, "jpegxl": float("nan")},
        {"image": "kodim19", "bpsp": None, "png": "4.2", "webp": 3.0},  # CSV strings are fine
    ]
    path = figures.bpsp_plot(rows, tmp_path / "bpsp.png", title="tiny")
    assert path == tmp_path / "bpsp.png"
    _assert_png(path)


def test_bpsp_plot_other_keys_and_empty(tmp_path):
    rows = [{"image": "a", "theoretical_bpsp": 3.0, "png_bpsp": 4.0, "jxl_bpsp": 2.8}]
    _assert_png(figures.bpsp_plot(rows, tmp_path / "k.png", ours_key="theoretical_bpsp"))
    _assert_png(figures.bpsp_plot([], tmp_path / "empty.png"))
