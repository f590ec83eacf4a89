"""experiments/bench_codecs.py: its arguments, rounds, paired ratios and table, with `cp` as a stand-in codec
(no timing assertions); the end-to-end run of diffcode on a tiny image is slow."""

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcode.image import read_image, write_png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments import bench_codecs  # noqa: E402

COPY = bench_codecs.Codec("cp", bench_codecs.REFERENCE, ".copy.png", ("cp", "{input}", "{output}"),
                          ("cp", "{input}", "{output}"), ("cp",))


def read_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.png"
    write_png(path, np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8))
    return path


def test_arguments_split_lists_and_refuse_no_rounds():
    args = bench_codecs.parse_args(["--images", "kodim17,a.png", "--presets", "instant", "--repeats", "2"])
    assert args.images == ["kodim17", "a.png"] and args.presets == ["instant"] and args.repeats == 2
    assert bench_codecs.parse_args([]).presets == ["instant", "fast", "default"]
    with pytest.raises(SystemExit):
        bench_codecs.parse_args(["--repeats", "0"])


def test_missing_tools_are_named_and_their_codecs_left_out(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in ("cwebp", "dwebp") else f"/usr/bin/{tool}")
    kept, notes = bench_codecs.available(bench_codecs.reference_codecs())
    assert [c.name for c in kept] == ["cjxl -d 0 -e 7", "cjxl -d 0 -e 9"]
    assert notes == [f"{tool} not found (apt-get install webp): its rows are left out" for tool in ("cwebp", "dwebp")]


def test_rounds_give_medians_paired_ratios_and_a_table(tiny, tmp_path):
    images, originals = {"tiny": tiny}, {"tiny": read_image(tiny)}
    with bench_codecs.Launcher() as launcher:
        rounds = [bench_codecs.one_round(images, [COPY], tmp_path, bench_codecs.child_environment(), originals,
                                         launcher.run, log=lambda *a, **k: None) for _ in range(2)]
    assert 0 < launcher.floor_mib < 50
    rows = bench_codecs.rows_of(rounds, [COPY], images, {"tiny": (6, 5)}, tmp_path)
    assert [(r["command"], r["step"], r["runs"], r["size"]) for r in rows] == [
        ("cp", "compress", 2, "5x6"), (bench_codecs.REFERENCE, "decode", 2, "5x6")]
    assert rows[1]["wall_x_djxl"] == rows[1]["peak_x_djxl"] == 1.0 and rows[0]["file_bytes"] == tiny.stat().st_size
    bench_codecs.write_results(rows, tmp_path / "codecs", "python experiments/bench_codecs.py --x", ["a note"])
    md = (tmp_path / "codecs.md").read_text()
    assert md.startswith("- command: `python experiments/bench_codecs.py --x`") and md.endswith("- a note\n")
    assert [r["command"] for r in read_rows(tmp_path / "codecs.csv")] == ["cp", bench_codecs.REFERENCE]


def test_a_decode_that_changes_pixels_stops_the_run(tiny, tmp_path):
    other = tmp_path / "other.png"
    write_png(other, np.zeros((6, 5, 3), dtype=np.uint8))
    wrong = bench_codecs.Codec("cp", "cp back", ".copy.png", ("cp", "{input}", "{output}"),
                               ("cp", str(other), "{output}"))
    with pytest.raises(SystemExit, match="differ"), bench_codecs.Launcher() as launcher:
        bench_codecs.one_round({"tiny": tiny}, [wrong], tmp_path, bench_codecs.child_environment(),
                               {"tiny": read_image(tiny)}, launcher.run, log=lambda *a, **k: None)


def test_a_failing_or_missing_command_stops_the_run_with_its_message():
    with bench_codecs.Launcher() as launcher:
        with pytest.raises(SystemExit, match="exited with 3: boom"):
            launcher.run([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], {})
        with pytest.raises(SystemExit, match="No such file"):
            launcher.run(["no-such-command-here"], {"PATH": "/usr/bin:/bin"})


def test_peak_memory_is_the_commands_own_not_this_processs():
    """The launcher keeps this process's memory out of the children's ru_maxrss."""
    ballast = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB more in this process
    with bench_codecs.Launcher() as launcher:
        small = launcher.run([sys.executable, "-S", "-c", "pass"], {}).peak_mib
        large = launcher.run([sys.executable, "-S", "-c", "b = bytearray(100 << 20)"], {}).peak_mib
    assert ballast.sum() and small < 40 and 100 < large < 150


@pytest.mark.slow  # two diffcode processes: about 2 s on the loaded 2-core machine
def test_diffcode_end_to_end_on_a_tiny_image(tiny, tmp_path):
    bench_codecs.main(["--images", str(tiny), "--presets", "instant", "--repeats", "1", "--warmup", "0",
                       "--no-references", "--allow-jit", "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path)])
    rows = read_rows(tmp_path / "codecs.csv")
    assert [r["command"] for r in rows] == ["diffcode compress --preset instant", "diffcode decode (instant file)"]
    assert all(r["bit_exact"] == "True" and r["wall_x_djxl"] == "" for r in rows)
