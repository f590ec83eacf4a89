"""Metadata kept (issue 23): a PNG's ICC profile, EXIF, XMP, text chunks and dpi survive compress and
decode byte for byte, in a checksummed section counted in the file's size; --strip leaves them out,
and a file without metadata is the file diffcode wrote before."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin
from typer.testing import CliRunner

import cli
from diffcode import codec, metadata
from diffcode.errors import CorruptFileError
from diffcode.storage import container

runner = CliRunner()
PIXELS = np.random.default_rng(5).integers(0, 256, (9, 11, 3), dtype=np.uint8)
FAST = ["--variant", "pyramid", "--preset", "instant"]


def png_with_everything() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "a description"
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("Title", "plain Latin-1 text")
    chunks.add_itxt("Comment", "unicode ✓ text")
    chunks.add_text("Author", "compressed text", zip=True)
    chunks.add_itxt(metadata.XMP_KEY, "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "PNG", icc_profile=icc, exif=exif, pnginfo=chunks, dpi=(300, 150))
    return buffer.getvalue()


def info_of(path: Path) -> dict:
    with Image.open(path) as im:
        im.load()
        return dict(im.info)


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("meta.png").write_bytes(png_with_everything())
    Image.fromarray(PIXELS).save("plain.png")
    return tmp_path


def invoke(*args):
    result = runner.invoke(cli.app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return result


def test_every_kind_comes_back_byte_for_byte(folder):
    before = info_of(Path("meta.png"))
    assert {"icc_profile", "exif", "xmp", "Title", "Comment", "Author", "dpi"} <= set(before)
    report = json.loads(invoke("compress", "meta.png", *FAST, "--json").stdout)
    assert report["metadata_bytes"] > 0 and report["metadata_bytes"] == report["metadata_theoretical_bytes"]
    invoke("decode", "meta.dfc", "-o", "back.png")
    after = info_of(Path("back.png"))
    assert sorted(after) == sorted(before) and all(after[k] == before[k] for k in before), (before, after)
    assert np.array_equal(np.asarray(Image.open("back.png")), PIXELS)


def test_tiff_output_keeps_what_tiff_holds(folder):
    invoke("compress", "meta.png", *FAST)
    invoke("decode", "meta.dfc", "-o", "back.tif")
    before, after = info_of(Path("meta.png")), info_of(Path("back.tif"))
    assert after["icc_profile"] == before["icc_profile"] and np.allclose(after["dpi"], before["dpi"], atol=1e-3)
    with Image.open("back.tif") as im:  # TIFF holds EXIF as tags of its own directory
        assert im.getexif()[0x010E] == "a description"


def test_strip_leaves_it_out_and_files_without_metadata_are_unchanged(folder):
    invoke("compress", "meta.png", *FAST, "--strip", "-o", "stripped.dfc")
    invoke("compress", "plain.png", *FAST)
    assert Path("stripped.dfc").read_bytes() == Path("plain.dfc").read_bytes()  # no section, same bytes
    header, sections = container.unpack(Path("plain.dfc").read_bytes())
    assert container.METADATA not in [kind for kind, _ in sections]
    invoke("compress", "meta.png", *FAST)
    invoke("decode", "meta.dfc", "-o", "bare.png", "--strip")
    assert not {"icc_profile", "exif", "xmp", "dpi", "Title"} & set(info_of(Path("bare.png")))


def test_the_section_round_trips_and_damage_is_refused():
    meta = metadata.Metadata(icc=b"icc", exif=b"Exif\0\0MM", xmp=b"<x/>", text={"Title": "t", "Ü": "✓"},
                             dpi=(72.0, 96.5))
    assert metadata.unpack(metadata.pack(meta)) == meta
    payload = metadata.pack(meta)
    for bad in (b"", b"\x02" + payload[1:], payload[:-3], payload + b"x",
                b"\x01" + zlib.compress(b"\x09\x00\x00" + struct.pack("<I", 0)),  # an unknown item kind
                b"\x01" + zlib.compress(b"\x01\x00\x00" + struct.pack("<I", 99) + b"short"),  # past the end
                b"\x01" + zlib.compress(bytes(metadata.MAX_UNPACKED + 1))):  # a zlib bomb
        with pytest.raises(CorruptFileError):
            metadata.unpack(bad)


def test_a_damaged_metadata_section_fails_the_decode(folder):
    invoke("compress", "meta.png", *FAST)
    header, sections = container.unpack(Path("meta.dfc").read_bytes())
    kind, payload = sections[-1]
    assert kind == container.METADATA
    damaged = container.pack(header, sections[:-1] + [(kind, b"\x01" + payload[1:-4])])  # CRCs recomputed
    with pytest.raises(CorruptFileError, match="metadata"):
        codec.load_file(damaged)


def test_too_much_metadata_is_refused_when_written_not_blamed_on_the_file():
    from diffcode.errors import UsageError

    with pytest.raises(UsageError, match="--strip"):
        metadata.pack(metadata.Metadata(exif=bytes(metadata.MAX_UNPACKED + 1)))


def test_info_reports_the_metadata_section_as_stored(folder):
    invoke("compress", "meta.png", *FAST)
    header, sections = container.unpack(Path("meta.dfc").read_bytes())
    kind, payload = sections[-1]
    level0 = b"\x01" + zlib.compress(zlib.decompress(payload[1:]), 0)  # another zlib's choice of bytes
    data = container.pack(header, sections[:-1] + [(kind, level0)])
    report = codec.analyze(data).as_dict()
    assert report["metadata_bytes"] == len(level0) and report["file_bytes"] == len(data)
