"""Fit files: one format for every family's fit, and the version-1 files written before the protocol."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from diffcode import fitfile
from diffcode.errors import DiffcodeError
from diffcode.families import Fit
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
