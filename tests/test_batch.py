"""Batch compress and decode (issue 14): several files, folders and globs, --out-dir, a summary
table, --jobs N local processes, and a failed file that does not stop the batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode import batch
from diffcode.errors import UsageError
from diffcode.image import read_image, write_png
from tests.conftest import image_folder, per_pixel_unless_named

runner = CliRunner()
CK = ["--checkpoint", "decoder.npz", "--steps", "2"]


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {f"im{k}": rng.integers(0, 256, (5 + k, 7 + 2 * k, 3), dtype=np.uint8) for k in range(4)}


@pytest.fixture()
def folder(tmp_path, checkpoint, monkeypatch) -> Path:
    return image_folder(tmp_path, checkpoint, monkeypatch, images())


def invoke(*args):
    result = runner.invoke(cli.app, per_pixel_unless_named(args))
    return result.exit_code, result.stdout, result.stderr


def test_compress_and_decode_a_folder(folder):
    (folder / "dfc").mkdir()
    (folder / "png").mkdir()
    code, out, err = invoke("compress", "imgs", "--out-dir", "dfc", *CK)
    assert code == 0, out + err
    assert sorted(p.name for p in (folder / "dfc").iterdir()) == [f"{n}.dfc" for n in images()]
    assert "4 of 4 files compressed" in out
    for name in images():  # one summary line per file: bytes and bit-exact
        line = next(l for l in out.splitlines() if l.startswith(f"imgs/{name}.png"))
        assert f"{(folder / 'dfc' / f'{name}.dfc').stat().st_size:,}" in line and line.endswith("yes")
    code, out, err = invoke("decode", "dfc", "--out-dir", "png", "--checkpoint", "decoder.npz")
    assert code == 0 and "4 of 4 files decoded" in out, out + err
    for name, array in images().items():
        assert np.array_equal(read_image(folder / "png" / f"{name}.png"), array)


def test_a_failed_file_does_not_stop_the_batch(folder):
    (folder / "dfc").mkdir()
    (folder / "png").mkdir()
    (folder / "imgs" / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    code, out, err = invoke("compress", "imgs/im0.png", "imgs/im1.png", "imgs/im2.png", "--out-dir", "dfc", *CK)
    assert code == 1
    assert sorted(p.name for p in (folder / "dfc").iterdir()) == ["im0.dfc", "im2.dfc"]  # kept, nothing partial
    assert "2 of 3 files compressed" in out and "imgs/im1.png  FAILED:" in out and "im1.png" in err
    assert "Traceback" not in out + err
    (folder / "dfc" / "im2.dfc").write_bytes((folder / "dfc" / "im2.dfc").read_bytes()[:-5])
    code, out, err = invoke("decode", "dfc/*.dfc", "--out-dir", "png", "--checkpoint", "decoder.npz")
    assert code == 1 and "1 of 2 files decoded" in out and "dfc/im2.dfc: " in out
    assert sorted(p.name for p in (folder / "png").iterdir()) == ["im0.png"]


@pytest.mark.slow  # two spawned processes
def test_jobs_give_the_same_files(folder):
    (folder / "one").mkdir()
    (folder / "two").mkdir()
    assert invoke("compress", "imgs/im0.png", "imgs/im3.png", "--out-dir", "one", *CK)[0] == 0
    code, out, err = invoke("compress", "imgs/im0.png", "imgs/im3.png", "--out-dir", "two", "--jobs", 2, *CK)
    assert code == 0, out + err
    for name in ("im0.dfc", "im3.dfc"):
        assert (folder / "one" / name).read_bytes() == (folder / "two" / name).read_bytes()


def test_json_lines(folder):
    (folder / "dfc").mkdir()
    code, out, _ = invoke("compress", "imgs/im0.png", "imgs/im2.png", "--out-dir", "dfc", "--json", *CK)
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and [r["source"] for r in rows] == ["imgs/im0.png", "imgs/im2.png"]
    assert rows[1]["file_bytes"] == (folder / "dfc" / "im2.dfc").stat().st_size and rows[1]["bit_exact"]


@pytest.mark.parametrize("args, message", [
    (["imgs/im0.png", "imgs/im1.png", "-o", "x.dfc"], "use --out-dir"),
    (["imgs/im0.png", "-o", "x.dfc", "--out-dir", "dfc"], "give one of them"),
    (["imgs", "--out-dir", "dfc", "--force", "--skip-existing"], "give one of them"),
    (["imgs", "--out-dir", "dfc", "--preset", "instant", "--variant", "pyramid"], "steps does not apply"),
    (["-", "imgs/im0.png"], "must be the only input"),
    (["imgs", "--out-dir", "dfc", "--scheduler", "notahost"], "expected host:port"),
    (["imgs", "--out-dir", "dfc", "--scheduler", "http://127.0.0.1:18786"], "expected host:port"),
    (["imgs", "--out-dir", "dfc", "--scheduler", "127.0.0.1"], "expected host:port"),
    (["imgs/nothing*.png"], "no file matches"),
    (["missing.png", "imgs/im0.png"], "no such file"),
    (["imgs", "--out-dir", "dfc", "--preset", "tiny"], "takes preset"),
])
def test_batch_problems_are_refused_before_any_work(folder, args, message):
    (folder / "dfc").mkdir()
    code, out, err = invoke("compress", *args, *CK)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list((folder / "dfc").iterdir())


def test_an_existing_output_stops_the_batch_before_any_work(folder):
    (folder / "dfc").mkdir()
    (folder / "dfc" / "im2.dfc").write_bytes(b"keep")
    code, out, err = invoke("compress", "imgs", "--out-dir", "dfc", *CK)
    assert code == 1 and "im2.dfc" in err and "exists" in err
    assert [p.name for p in (folder / "dfc").iterdir()] == ["im2.dfc"]


def test_inputs_expand_in_order_without_duplicates(folder):
    paths = batch.expand_inputs(["imgs/im2.png", "imgs", "imgs/im*.png"], batch.IMAGE_SUFFIXES)
    assert [p.name for p in paths] == ["im2.png", "im0.png", "im1.png", "im3.png"]
    with pytest.raises(UsageError, match="both be written"):
        (folder / "b").mkdir()
        write_png(folder / "b" / "im0.png", images()["im0"])
        batch.plan(batch.expand_inputs(["imgs/im0.png", "b/im0.png"], batch.IMAGE_SUFFIXES), ".dfc", out_dir=folder)


def test_jobs_are_lowered_to_what_the_memory_limit_holds(tmp_path, monkeypatch):
    """--jobs N runs at most as many files at once as the memory limit holds at the largest file's predicted
    peak (the families' memory models); a file whose size cannot be read does not lower it."""
    from diffcode import codec, families, limits
    from diffcode.families import auto

    monkeypatch.setenv(limits.ENV, "1")  # 1 GiB available
    assert batch.memory_jobs(4, [600.0, 300.0]) == 1 and batch.memory_jobs(4, [200.0]) == 4
    assert batch.memory_jobs(3, [5000.0]) == 1 and batch.memory_jobs(3, [0.0, 0.0]) == 3
    png = tmp_path / "a.png"
    write_png(png, np.zeros((40, 60, 3), np.uint8))
    task = batch.Task(str(png), str(tmp_path / "a.dfc"), {"variant": auto.NAME})
    expect = max(limits.needed_mib(phase, 40, 60, families.get(name).memory)
                 for name in (auto.CLASSIC, auto.MODEL) for phase in ("fit", "store"))
    assert batch.peak_mib(task, png.read_bytes(), "compress") == expect
    data = (Path(__file__).parent / "golden" / "pyramid-prior3-instant-v2-16x16.dfc").read_bytes()
    header_variant = codec.info(data)["variant"]
    assert batch.peak_mib(task, data, "decode") == limits.needed_mib("decode", 16, 16, families.get(header_variant).memory)
    assert batch.peak_mib(task, b"not an image", "compress") == 0.0
