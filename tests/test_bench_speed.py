"""experiments/bench_speed.py runs end to end on a tiny image (no timing assertions)."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcode import families
from diffcode.image import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments import bench_speed, time_process  # noqa: E402


def test_bench_speed_writes_a_row_per_family_phase_and_coder(tmp_path):
    rng = np.random.default_rng(0)
    image = tmp_path / "tiny.png"
    write_png(image, rng.integers(0, 256, (20, 18, 3), dtype=np.uint8))
    bench_speed.main(["--images", str(image), "--repeats", "1", "--fit-steps", "3", "--coder-symbols", "3000",
                      "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path), "--name", "speed"])
    with open(tmp_path / "speed.csv") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for family in families.names():
        phases = [r["phase"] for r in rows if r["family"] == family]
        assert phases[0] in ("fit", "fit (projected)") and phases[1:3] == ["store", "decode"], (family, phases)
        assert all(r["size"] == "18x20" and r["runs"] == "1" for r in rows if r["family"] == family
                   and r["phase"] != "decode floor")
    assert all(r["device"] == "cpu" for r in rows)
    decodes = [r for r in rows if r["phase"] == "decode" and r["family"] != "coder"]
    assert all(r["note"] == "bit-exact" for r in decodes)
    coders = [r for r in rows if r["family"] == "coder"]
    assert sorted(r["phase"] for r in coders) == ["decode", "decode", "encode", "encode"]
    assert all(float(r["symbols_per_s"]) > 0 for r in coders)
    floors = [r for r in rows if r["phase"] == "decode floor"]
    assert {r["family"] for r in floors} == {"per-pixel", "weights"}  # the families with exact convolutions
    assert all(" GMAC " in r["note"] for r in floors)
    assert (tmp_path / "speed.md").read_text().startswith("- command: `python experiments/bench_speed.py")


def test_time_process_reports_min_median_max(capsys):
    """experiments/time_process.py times a command as a whole process and refuses a failing one."""
    time_process.main(["-n", "2", "--warmup", "0", "--", sys.executable, "-c", "pass"])
    out = capsys.readouterr().out
    assert "2 runs of" in out and all(f"{name}" in out for name in ("wall s", "cpu s", "peak MiB"))
    with pytest.raises(SystemExit, match="exited with 3"):
        time_process.main(["-n", "1", "--warmup", "0", "--", sys.executable, "-c", "raise SystemExit(3)"])
