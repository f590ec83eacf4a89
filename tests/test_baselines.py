"""Tests of diffcode.baselines: round trips, patch/grayscale accounting, missing codecs, tables."""

import csv
import dataclasses
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from diffcode import baselines
from diffcode.errors import DiffcodeError


def _noise(h=16, w=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(h=16, w=24):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 9, y * 13, (x + y) * 5], axis=-1).astype(np.uint8)


def _read_csv(path):
    with open(path, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


@pytest.mark.parametrize("grayscale", [False, True])
@pytest.mark.parametrize("make", [_noise, _gradient])
def test_every_codec_round_trips(make, grayscale):
    image = make()
    rows = baselines.measure(image, "tiny", grayscale=grayscale)
    assert [r["codec"] for r in rows] == list(baselines.CODEC_NAMES)
    channels = 1 if grayscale else 3
    for row in rows:
        assert set(row) == set(baselines.ROW_COLUMNS)
        assert row["subpixels"] == 16 * 24 * channels
        assert row["color"] == ("gray" if grayscale else "rgb")
        if row["note"] is None:  # available: measured and checked
            assert row["bytes"] > 0 and row["encode_seconds"] >= 0 and row["decode_seconds"] >= 0
            assert row["bpsp"] == pytest.approx(row["bytes"] * 8 / row["subpixels"])
        else:
            assert row["bytes"] is None and row["bpsp"] is None
    raw = rows[0]
    assert raw["bytes"] == image[..., :channels].size and raw["bpsp"] == 8.0


LIBRARY_CODECS = [name for name in baselines.CODEC_NAMES if name not in baselines.CJXL_OPTIONS]
JXL_TOOLS_MISSING = shutil.which("cjxl") is None or shutil.which("djxl") is None


def test_codecs_installed_here():
    """The baselines extra is installed in CI, so every library codec should run (the cjxl
    codecs need a system package, libjxl-tools: see the tests below)."""
    assert baselines.unavailable_codecs(LIBRARY_CODECS) == {}


def test_cjxl_missing_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no cjxl, no djxl
    missing = baselines.unavailable_codecs()
    assert set(missing) == set(baselines.CJXL_OPTIONS) == {"cjxl-e7", "cjxl-e9", "cjxl-max"}
    assert missing["cjxl-e7"] == "cjxl and djxl not found on PATH; apt-get install libjxl-tools"
    rows = {r["codec"]: r for r in baselines.measure(_noise(), "x", codecs=["png", "cjxl-max"])}
    assert rows["cjxl-max"]["bytes"] is None and rows["cjxl-max"]["note"] == missing["cjxl-max"]
    assert rows["png"]["bytes"] > 0
    assert "cjxl" not in baselines.library_versions()


def test_cjxl_without_djxl_names_djxl(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(baselines.shutil, "which", lambda t: None if t == "djxl" else real(t))
    reason = baselines.unavailable_codecs(["cjxl-e9"]).get("cjxl-e9", "")
    assert reason.startswith("djxl not found") or reason.startswith("cjxl and djxl not found")


@pytest.mark.skipif(JXL_TOOLS_MISSING, reason="cjxl/djxl not on PATH (apt-get install libjxl-tools)")
@pytest.mark.parametrize("grayscale", [False, True])
def test_cjxl_round_trips(grayscale):
    rows = baselines.measure(_gradient(), "tiny", grayscale=grayscale,
                             codecs=list(baselines.CJXL_OPTIONS))
    for row in rows:  # measure decoded each file with djxl and compared the samples
        assert row["note"] is None and 0 < row["bpsp"] < 8.0, row
    cjxl_max = baselines.CODECS["cjxl-max"]
    data = cjxl_max.encode(_noise())
    assert data[:2] == b"\xff\x0a" or data[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n"
    assert np.array_equal(cjxl_max.decode(data, (16, 24, 3)), _noise())
    assert "-E 3 -I 100 -g 3 --num_threads=1" in cjxl_max.settings
    assert "cjxl v" in baselines.library_versions()


@pytest.mark.skipif(JXL_TOOLS_MISSING, reason="cjxl/djxl not on PATH (apt-get install libjxl-tools)")
def test_failing_tool_raises(tmp_path):
    with pytest.raises(DiffcodeError, match="exit status"):
        baselines.CODECS["cjxl-e7"].decode(b"not a JPEG XL stream", (4, 4, 3))


def test_cli_codecs_option(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import cli

    Image.fromarray(_gradient()).save(tmp_path / "g.png")
    monkeypatch.setenv("PATH", str(tmp_path))  # the cjxl codec is then reported, not fatal
    runner = CliRunner()
    stem = tmp_path / "t"
    result = runner.invoke(cli.app, ["baselines", str(tmp_path / "g.png"), "--codecs", "png,cjxl-e7",
                                     "--out", str(stem)])
    assert result.exit_code == 0, result.output
    assert list(_read_csv(tmp_path / "t.csv")[0]) == ["image", "png", "cjxl-e7"]
    assert "libjxl-tools" in result.output
    result = runner.invoke(cli.app, ["baselines", str(tmp_path / "g.png"), "--codecs", "png,nope",
                                     "--out", str(tmp_path / "u")])
    assert result.exit_code == 1 and "unknown codec nope" in result.output


def test_compressors_compress_a_gradient():
    rows = {r["codec"]: r for r in baselines.measure(_gradient(32, 48), "g")}
    for name in ("gzip", "bzip2", "lzma", "zstd19", "zstd22", "png", "webp", "jpegxl"):
        assert rows[name]["bpsp"] < 8.0, name


def test_wrong_decode_raises(monkeypatch):
    png = baselines.CODECS["png"]
    broken = dataclasses.replace(png, decode=lambda data, shape: np.zeros(shape, np.uint8))
    monkeypatch.setitem(baselines.CODECS, "png", broken)
    with pytest.raises(DiffcodeError, match="round trip"):
        baselines.measure(_noise(), "x", codecs=["png"])


def test_gray_decoded_as_rgb_needs_equal_channels(monkeypatch):
    """A grayscale piece may come back as RGB with equal channels (WebP has no grayscale mode)."""
    gray = _noise()[..., 0]
    png = baselines.CODECS["png"]

    def decoding_to(decoded):
        monkeypatch.setitem(baselines.CODECS, "png", dataclasses.replace(png, decode=lambda data, shape: decoded))

    rgb = np.repeat(gray[..., None], 3, axis=2)
    decoding_to(rgb)
    assert baselines.measure_codec("png", [gray])["bytes"] > 0
    bad = rgb.copy()
    bad[0, 0, 1] ^= 1
    decoding_to(bad)
    with pytest.raises(DiffcodeError, match="round trip"):
        baselines.measure_codec("png", [gray])


def test_patch_accounting():
    image = _noise(70, 130)  # 2 x 2 complete 32x64 patches; the border rest is dropped
    patches = baselines.cut_patches(image)
    assert len(patches) == 4 and all(p.shape == (32, 64, 3) for p in patches)
    assert np.array_equal(patches[1], image[0:32, 64:128])
    assert np.array_equal(patches[2], image[32:64, 0:64])
    for grayscale, channels in ((False, 3), (True, 1)):
        rows = {r["codec"]: r for r in baselines.measure(image, "p", patches=True,
                                                          grayscale=grayscale,
                                                          codecs=["raw", "gzip", "png"])}
        raw = rows["raw"]
        assert raw["patches"] == 4 and raw["subpixels"] == 4 * 32 * 64 * channels
        assert raw["bytes"] == raw["subpixels"] and raw["bpsp"] == 8.0
        assert (raw["height"], raw["width"]) == (70, 130)


def test_patch_sizes_are_summed():
    image = _gradient(64, 128)
    whole = {r["codec"]: r for r in baselines.measure(image, "w", codecs=["png"])}
    split = {r["codec"]: r for r in baselines.measure(image, "s", patches=True, codecs=["png"])}
    each = sum(baselines.measure(p, "q", codecs=["png"])[0]["bytes"]
               for p in baselines.cut_patches(image))
    assert split["png"]["bytes"] == each
    assert split["png"]["bytes"] > whole["png"]["bytes"]  # four headers instead of one


def test_too_small_for_a_patch():
    with pytest.raises(DiffcodeError, match="no complete 32x64 patch"):
        baselines.measure(_noise(31, 200), "x", patches=True)


def test_grayscale_is_pillow_luma():
    image = _noise()
    gray = baselines.to_grayscale(image)
    assert gray.shape == (16, 24) and gray.dtype == np.uint8
    assert np.array_equal(gray, np.asarray(Image.fromarray(image).convert("L")))
    rgb = image.astype(np.int64)
    expected = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114) / 1000
    assert np.abs(gray - expected).max() <= 1


def test_unavailable_codecs_give_none(monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard -> ImportError
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    monkeypatch.setattr(baselines.features, "check", lambda name: False)
    missing = baselines.unavailable_codecs()
    library_missing = set(missing) - set(baselines.CJXL_OPTIONS)  # cjxl: tested below
    assert library_missing == {"zstd19", "zstd22", "webp", "jpeg2000", "jpegxl"}
    assert "zstandard" in missing["zstd19"] and "imagecodecs" in missing["jpegxl"]
    assert "WebP" in missing["webp"]
    rows = {r["codec"]: r for r in baselines.measure(_noise(), "x")}
    for name, reason in missing.items():
        assert rows[name]["bytes"] is None and rows[name]["note"] == reason
    assert rows["png"]["bytes"] > 0 and rows["png"]["note"] is None
    summary = {r["codec"]: r for r in baselines.summarize(list(rows.values()))}
    assert summary["jpegxl"]["mean_bpsp"] is None and summary["jpegxl"]["note"]


def test_imagecodecs_without_a_codec(monkeypatch):
    imagecodecs = pytest.importorskip("imagecodecs")
    monkeypatch.setattr(imagecodecs.JPEGXL, "available", False, raising=False)
    assert "without JPEG XL" in baselines.unavailable_codecs(["jpegxl"])["jpegxl"]


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown codec"):
        baselines.run([], codecs=["nope"])


def test_run_on_files_and_tables(tmp_path):
    paths = []
    for name, image in (("a", _noise()), ("b", _gradient())):
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    rows = baselines.run(paths, progress=False, codecs=["raw", "png", "zstd19"])
    assert [(r["image"], r["codec"]) for r in rows] == [
        ("a", "raw"), ("a", "png"), ("a", "zstd19"), ("b", "raw"), ("b", "png"), ("b", "zstd19")]

    summary = {r["codec"]: r for r in baselines.summarize(rows)}
    png = [r["bpsp"] for r in rows if r["codec"] == "png"]
    assert summary["png"]["mean_bpsp"] == pytest.approx(np.mean(png))
    assert summary["png"]["images"] == 2 and summary["raw"]["mean_bpsp"] == 8.0
    assert summary["raw"]["total_bytes"] == 2 * 16 * 24 * 3

    stem = tmp_path / "baselines-x"
    written = baselines.write(rows, stem, "pytest", note="Agrees with the reference.")
    assert all(p.exists() for p in written) and len(written) == 6
    per_image = _read_csv(tmp_path / "baselines-x.csv")
    assert list(per_image[0]) == ["image", "raw", "png", "zstd19"]
    assert [r["image"] for r in per_image] == ["a", "b"]
    assert float(per_image[0]["png"]) == pytest.approx(png[0])
    assert list(_read_csv(tmp_path / "baselines-x-summary.csv")[0]) == baselines.SUMMARY_COLUMNS
    assert list(_read_csv(tmp_path / "baselines-x-rows.csv")[0]) == baselines.ROW_COLUMNS
    md = (tmp_path / "baselines-x-summary.md").read_text()
    assert "- command: `pytest`" in md and md.rstrip().endswith("Agrees with the reference.")


def test_wide_and_default_stem(tmp_path):
    rows = baselines.measure(_noise(), "n", codecs=["raw", "png"])
    assert baselines.wide(rows) == [{"image": "n", "raw": 8.0, "png": rows[1]["bpsp"]}]
    assert baselines.default_stem("test", results_dir=tmp_path) == tmp_path / "baselines-test"
    assert baselines.default_stem("test", True, True, tmp_path).name == "baselines-test-patches-gray"
    assert baselines.default_stem("all").parent.name == "results"
