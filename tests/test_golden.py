"""Golden files: small .dfc files written by earlier diffcodes must keep decoding to the same pixels.

tests/golden/ holds files of every family made with its shipped model (tests/golden/make_golden.py)
and a manifest with the SHA-256 of each file and of its decoded pixels. Every file must decode with
the shipped models to exactly those pixels, unless its format version is no longer readable, in
which case it must be refused with an error that names the version. Every golden recipe of every
family (`Family.golden`) at the current format version must have golden files: after adding one,
run `python tests/golden/make_golden.py`, which adds the missing files and never replaces old ones.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from diffcode import codec
from diffcode.errors import CorruptFileError
from diffcode.image import pixel_sha256
from diffcode.storage import container
from diffcode.damage import refresh_crcs

GOLDEN = Path(__file__).resolve().parent / "golden"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())["files"]
READABLE = tuple(getattr(container, "READABLE_VERSIONS", (container.FORMAT_VERSION,)))


def test_manifest_lists_every_golden_file():
    assert {e["file"] for e in MANIFEST} == {p.name for p in GOLDEN.glob("*.dfc")}


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_golden_file_decodes_to_its_pixels(entry):
    data = (GOLDEN / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], "a golden file changed: they must never be edited"
    assert len(data) == entry["bytes"] and data[len(container.MAGIC)] == entry["format_version"]
    if entry["format_version"] not in READABLE:
        with pytest.raises(CorruptFileError, match=f"format version {entry['format_version']}"):
            codec.load(data)
        return
    image = codec.load(data)
    assert image.shape == (entry["height"], entry["width"], 3) and image.dtype == np.uint8
    assert pixel_sha256(image) == entry["pixels_sha256"]
    info = codec.info(data)
    assert (info["variant"], info["storage"], info["height"], info["width"]) == (
        entry["variant"], entry["storage"], entry["height"], entry["width"])


def test_every_recipe_of_every_family_has_golden_files():
    """A new family, golden recipe or format version needs golden files (run make_golden.py)."""
    have = {(e["variant"], e["label"], e["format_version"]) for e in MANIFEST}
    make = _make_golden()
    missing = [(family, label, container.FORMAT_VERSION) for family, label, _ in make.recipes()
               if (family, label, container.FORMAT_VERSION) not in have]
    assert not missing, f"no golden files for {missing}: run python tests/golden/make_golden.py and commit them"


@pytest.mark.parametrize("offset", [1, 7])
def test_unknown_format_version_is_refused_by_number(offset):
    entry = MANIFEST[0]
    data = bytearray((GOLDEN / entry["file"]).read_bytes())
    version = max(READABLE) + offset
    data[len(container.MAGIC)] = version
    with pytest.raises(CorruptFileError, match=f"format version {version}"):
        codec.load(refresh_crcs(bytes(data)))


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_golden_refuses_to_overwrite(tmp_path, capsys):
    make = _make_golden()
    family, label, _ = make.recipes()[0]
    name = make.file_name(family, label, container.FORMAT_VERSION, 6, 5)
    (tmp_path / name).write_bytes(b"an old golden file")
    assert make.main(["--out", str(tmp_path), "--sizes", "6x5", "--labels", label]) == 0
    assert (tmp_path / name).read_bytes() == b"an old golden file"
    assert not (tmp_path / "manifest.json").exists()  # nothing was made
    assert "refusing to overwrite" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["pyramid-instant-v2-6x5.dfc", "pyramid-prior2-fast-v2-6x5.dfc",
                                  "per-pixel-dither-v2-6x5.dfc", "weights-tiny-v2-11x16.dfc"])
def test_the_job_runner_finds_the_shipped_model_a_file_names(name):
    """Files of earlier shipped models decode through the CLI's lookup as through the API's: `diffcode decode`
    once refused the first two priors' files ("not the shipped one"), which `diffcode.decompress` read."""
    from diffcode import jobs

    data = (GOLDEN / name).read_bytes()
    family, wanted = codec.model_of(data)
    model = jobs.model_named(family, wanted, None, name)
    assert model.hash.startswith(wanted)
    assert np.array_equal(codec.load(data, model), codec.load(data))
