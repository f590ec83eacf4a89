"""experiments/bench_speed.py runs end to end on a tiny image (no timing assertions)."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcode import families
from diffcode.image import write_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments import bench_speed, merge_tables, time_process  # noqa: E402

pytestmark = pytest.mark.slow  # subprocesses or a benchmark: seconds each (pytest -m 'not slow' skips them)


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


def test_merge_tables_keeps_rows_and_recomputes_only_the_mean(tmp_path):
    """Two evaluate tables of parts of a split -> one table with source and machine columns and a new mean."""
    from diffcode import report
    from diffcode.evaluate import with_mean


    a = [{"image": "kodim01", "bpsp": 2.0, "bit_exact": True}, {"image": "kodim02", "bpsp": 4.0, "bit_exact": True}]
    b = [{"image": "kodim03", "bpsp": 6.0, "bit_exact": True, "n_weights": 7}]
    report.write_table(with_mean(a), tmp_path / "a", "evaluate a", ["image", "bpsp", "bit_exact"])
    report.write_table(with_mean(b), tmp_path / "b", "evaluate b", ["image", "bpsp", "bit_exact", "n_weights"])
    for name, machine in (("a", "AMD EPYC (avx2), x86_64, 2 CPUs"), ("b", "x86_64, 2 CPUs")):  # b: an older line
        path = tmp_path / f"{name}.csv"
        path.write_text("".join(f"# machine: {machine}\n" if line.startswith("# machine:") else line + "\n"
                                for line in path.read_text().splitlines()))
    merge_tables.main(["--name", "ab", "--out-dir", str(tmp_path), str(tmp_path / "a.csv"), str(tmp_path / "b.csv")])
    _, columns, rows = merge_tables.read_table(tmp_path / "ab.csv")
    assert columns[:3] == ["image", "source", "machine"] and [r["image"] for r in rows] == ["kodim01", "kodim02", "kodim03"]
    assert [r["machine"] for r in rows] == ["AMD EPYC (avx2)", "AMD EPYC (avx2)", "?"]  # each row's own table's CPU
    assert rows[2]["source"].startswith("b @ ")
    # merging a merged table keeps its rows' sources and CPUs (not the merge's own provenance)
    report.write_table(with_mean([{"image": "kodim04", "bpsp": 1.0, "bit_exact": True}]), tmp_path / "c", "evaluate c",
                       ["image", "bpsp", "bit_exact"])
    merge_tables.main(["--name", "abc", "--out-dir", str(tmp_path), str(tmp_path / "ab.csv"), str(tmp_path / "c.csv")])
    _, columns, again = merge_tables.read_table(tmp_path / "abc.csv")
    assert columns.count("source") == 1 and columns.count("machine") == 1
    assert [(r["source"], r["machine"]) for r in again[:3]] == [(r["source"], r["machine"]) for r in rows]
    mean = [r for r in csv.DictReader(line for line in (tmp_path / "ab.csv").read_text().splitlines()
                                      if not line.startswith("#")) if r["image"] == "mean"][0]
    assert float(mean["bpsp"]) == 4.0 and mean["bit_exact"] == "True" and mean["n_weights"] == ""
    with pytest.raises(SystemExit, match="more than one"):
        merge_tables.main(["--name", "aa", "--out-dir", str(tmp_path), str(tmp_path / "a.csv"), str(tmp_path / "a.csv")])


def test_merge_tables_renames_an_older_tables_columns(tmp_path):
    """--rename files an old column under its new name, so both tables fill one column and its mean."""
    from diffcode import report
    from diffcode.evaluate import with_mean

    old = [{"image": "kodim01", "encodings_bytes": 10, "bpsp": 2.0, "bit_exact": True}]
    new = [{"image": "kodim02", "weight_encodings_bytes": 30, "bpsp": 4.0, "bit_exact": True}]
    report.write_table(with_mean(old), tmp_path / "old", "evaluate old", ["image", "encodings_bytes", "bpsp", "bit_exact"])
    report.write_table(with_mean(new), tmp_path / "new", "evaluate new", ["image", "weight_encodings_bytes", "bpsp", "bit_exact"])
    merge_tables.main(["--name", "both", "--out-dir", str(tmp_path), "--rename", "encodings_bytes=weight_encodings_bytes",
                       str(tmp_path / "old.csv"), str(tmp_path / "new.csv")])
    provenance, columns, rows = merge_tables.read_table(tmp_path / "both.csv")
    assert "encodings_bytes" not in columns and [r["weight_encodings_bytes"] for r in rows] == [10, 30]
    assert "--rename encodings_bytes=weight_encodings_bytes" in provenance["command"]
    mean = [r for r in csv.DictReader(line for line in (tmp_path / "both.csv").read_text().splitlines()
                                      if not line.startswith("#")) if r["image"] == "mean"][0]
    assert float(mean["weight_encodings_bytes"]) == 20.0
    with pytest.raises(SystemExit, match="both the old and the new name"):
        merge_tables.main(["--name", "x", "--out-dir", str(tmp_path), "--rename", "bpsp=encodings_bytes",
                           str(tmp_path / "old.csv")])
