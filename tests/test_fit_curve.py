"""experiments/fit_curve.py, plot_fit_curves.py and conv_layouts.py run end to end on tiny inputs (no timing assertions)."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcode.image import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments import fit_curve, plot_fit_curves  # noqa: E402


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.parametrize("family, extra", [("per-pixel", []), ("weights", ["--set", "conv_dtype=bfloat16"])])
def test_fit_curve_writes_a_row_per_step_count_and_the_history(tmp_path, family, extra):
    image = tmp_path / "tiny.png"
    write_png(image, np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8))
    args = ["--family", family, "--images", str(image), "--steps", "3,4", "--name", "t", "--out-dir", str(tmp_path),
            "--work-dir", str(tmp_path / "cache")] + extra
    fit_curve.main(args)
    rows = _rows(tmp_path / "fit_curve-t.csv")
    assert [r["steps"] for r in rows] == ["3", "4"]
    assert all(float(r["bpsp"]) > float(r["theoretical_bpsp"]) > 0 for r in rows)  # real bytes pay a little more
    history = _rows(tmp_path / "fit_curve-t-history.csv")
    assert [h["step"] for h in history] == ["0", "1", "2", "0", "1", "2", "3"]
    assert all(float(h["elapsed_s"]) > 0 for h in history)
    fit_curve.main(args)  # the second run reads the cache and writes the same rows
    assert [r["bpsp"] for r in _rows(tmp_path / "fit_curve-t.csv")] == [r["bpsp"] for r in rows]
    plot_fit_curves.main([str(tmp_path / "fit_curve-t"), "--out", str(tmp_path / "curves.png")])
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_conv_layouts_writes_a_row_per_family_layout_and_dtype(tmp_path):
    from experiments import conv_layouts

    conv_layouts.main(["--repeats", "1", "--scale", "32", "--out-dir", str(tmp_path)])
    rows = _rows(tmp_path / "conv_layouts.csv")
    assert [(r["family"], r["layout"], r["dtype"]) for r in rows] == [
        (f, layout, d) for f in ("per-pixel", "weights") for layout in ("contiguous", "channels-last")
        for d in ("float32", "bfloat16")] + [("cauchy loss", "nats_reference (torch)", "float32 in, float64 inside"),
                                             ("cauchy loss", "nats (numba)", "float32 in, float64 inside")]
    assert all(float(r["seconds"]) > 0 for r in rows)
