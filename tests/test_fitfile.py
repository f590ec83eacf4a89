"""Fit files: one format for every family's fit, and the version-1 files written before the protocol.

Damaged, edited and foreign .fit files are one-line errors naming the file (issue 14, defect 6):
many truncations and byte flips of a small fit file of each variant, every metadata field
removed or given a wrong type, and files that are not zip archives. `fitfile.load` either returns a
result whose generic fields are checked, or raises DiffcodeError naming the path.
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
from typer.testing import CliRunner

import cli

from diffcode import api, fitfile
from diffcode.errors import DiffcodeError
from diffcode.families import Fit
from diffcode.families.per_pixel.config import FitConfig
from diffcode.image import ColorMode

IMAGE = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def test_any_fit_round_trips(tmp_path):
    fit = Fit("pyramid-like", IMAGE, {"weights": np.linspace(0, 1, 7), "levels": np.arange(3, dtype=np.int64)},
              {"stages": 4, "note": "json"}, "ab" * 32, "fast", 9, [{"step": 0, "bpsp": 3.5}], 1.5,
              ColorMode("P", bytes(range(256)) * 3))
    fitfile.save(tmp_path / "a.fit", fit)
    again, meta = fitfile.load(tmp_path / "a.fit")
    assert meta["fit_file_version"] == fitfile.FIT_FILE_VERSION
    assert (again.family, again.model_hash, again.preset, again.seed, again.meta) == (
        fit.family, fit.model_hash, fit.preset, fit.seed, fit.meta)
    assert np.array_equal(again.image, IMAGE) and again.color == fit.color and again.history == fit.history
    assert set(again.arrays) == set(fit.arrays)
    for name, array in fit.arrays.items():
        assert np.array_equal(again.arrays[name], array) and again.arrays[name].dtype == array.dtype
    with pytest.raises(DiffcodeError, match="may not be called"):
        fitfile.save(tmp_path / "b.fit", Fit("x", IMAGE, {"meta": np.zeros(1)}, {}, "00", "default", 0))


def _v1(path, meta: dict, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, image=IMAGE, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    path.write_bytes(buf.getvalue())


def test_version_1_files_load(tmp_path):
    common = {"fit_file_version": 1, "seed": 3, "source": "x.png", "seconds": 2.0, "history": [], "color_mode": "RGB",
              "palette": None}
    _v1(tmp_path / "p.fit", {**common, "variant": "per-pixel", "checkpoint_hash": "cd" * 32,
                             "config": {"steps": 5}}, centers_0=np.zeros((5, 2, 2), np.float32))
    fit, _ = fitfile.load(tmp_path / "p.fit")
    assert (fit.family, fit.model_hash, fit.preset, fit.meta) == ("per-pixel", "cd" * 32, "default", {"config": {"steps": 5}})
    assert list(fit.arrays) == ["centers_0"]
    _v1(tmp_path / "w.fit", {**common, "variant": "weights", "mlp_hash": "ef" * 32, "preset": "tiny"},
        centers=np.zeros(4), level_index=np.zeros(2, np.int64))
    fit, _ = fitfile.load(tmp_path / "w.fit")
    assert (fit.family, fit.model_hash, fit.preset) == ("weights", "ef" * 32, "tiny")
    _v1(tmp_path / "bad.fit", {**common, "fit_file_version": 7, "variant": "weights"})
    with pytest.raises(DiffcodeError, match="version 7"):
        fitfile.load(tmp_path / "bad.fit")


NOISE = np.random.default_rng(5).integers(0, 256, (6, 8, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def fit_files(tmp_path_factory, checkpoint) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fits")
    fits = {"per-pixel": api.fit(NOISE, variant="per-pixel", config=FitConfig(steps=2, maximize_steps=1), model=checkpoint),
            "weights": api.fit(NOISE, variant="weights", preset="tiny", steps=3)}
    out = {}
    for variant, fit in fits.items():
        fitfile.save(folder / f"{variant}.fit", fit)
        out[variant] = (folder / f"{variant}.fit").read_bytes()
    return out


def outcome(path) -> str:
    try:
        fit, _ = fitfile.load(path)
    except DiffcodeError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return "refused"
    assert fit.image.shape == NOISE.shape
    return "loaded"


@pytest.mark.slow  # a sweep: hundreds of loads a family (the quick loop keeps the field-by-field checks)
@pytest.mark.parametrize("variant", ["per-pixel", "weights"])
def test_every_truncation_is_refused(tmp_path, fit_files, variant):
    data, path = fit_files[variant], tmp_path / "cut.fit"
    # every length within 300 bytes of either end (zip headers, central directory), every 4th between
    for n in sorted(set(range(0, len(data), 4)) | set(range(300)) | set(range(len(data) - 300, len(data)))):
        path.write_bytes(data[:n])
        assert outcome(path) == "refused", n


@pytest.mark.slow  # a sweep: hundreds of loads a family
@pytest.mark.parametrize("variant", ["per-pixel", "weights"])
def test_every_byte_flip_is_refused_or_harmless(tmp_path, fit_files, variant):
    data, path = fit_files[variant], tmp_path / "flip.fit"
    seen = set()
    # every byte of the zip headers at both ends, every 5th byte of the compressed members in between
    for i in sorted(set(range(0, len(data), 5)) | set(range(64)) | set(range(len(data) - 200, len(data)))):
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
        seen.add(outcome(path))
    assert "refused" in seen


def _edit_meta(data: bytes, edit) -> bytes:
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    edit(meta)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return buf.getvalue()


BAD_VALUES = [None, "x", -1, 2**40, 1.5, [], {}, {"a": 1}]


@pytest.mark.parametrize("variant", ["per-pixel", "weights"])
def test_edited_metadata_is_refused(tmp_path, fit_files, variant):
    data, path = fit_files[variant], tmp_path / "edited.fit"
    with np.load(io.BytesIO(data)) as z:
        keys = [k for k in json.loads(z["meta"].tobytes()) if k not in ("source", "fit_file_version", "variant")]
    for key in keys:
        path.write_bytes(_edit_meta(data, lambda m: m.pop(key)))
        removed = outcome(path)
        # absent: RGB, the default preset, or family meta (checked by the family's encode; conv_dtype
        # only records the fit's arithmetic)
        assert removed == "refused" or key in ("color_mode", "palette", "preset", "config", "storage",
                                               "conv_dtype"), (key, variant)
        for value in BAD_VALUES:
            path.write_bytes(_edit_meta(data, lambda m: m.__setitem__(key, value)))
            outcome(path)  # refused, or loaded with checked types


def test_files_that_are_not_zip_archives(tmp_path):
    for name, data in {"object": pickle.dumps({"image": 1}), "text": b"hello", "empty": b"",
                       "npy": b"\x93NUMPY\x01\x00"}.items():
        path = tmp_path / f"{name}.fit"
        path.write_bytes(data)
        with pytest.raises(DiffcodeError, match="not a diffcode fit file") as info:
            fitfile.load(path)
        assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)


def test_store_of_a_damaged_fit_is_a_one_line_error(tmp_path, fit_files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cut.fit").write_bytes(fit_files["weights"][:-40])
    result = CliRunner().invoke(cli.app, ["store", "cut.fit"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert "cut.fit" in result.output and not (tmp_path / "cut.dfc").exists()
