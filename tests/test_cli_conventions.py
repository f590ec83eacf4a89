"""The conventions of cwebp, cjxl and zstd (issue 23): `-` for standard input and output, -q, bars only
on a terminal, -V, options that cannot apply refused, batch folders made and resumed, one JSON schema,
an honest output suffix, `info` past a bad file, and a closed standard output ending quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode import batch
from diffcode.image import read_image_data
from tests.conftest import image_folder, per_pixel_unless_named
from tests.test_cli import JSON_KEYS

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
CK = ["--checkpoint", "decoder.npz"]
FIT = ["--steps", "2", *CK]


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {f"im{k}": rng.integers(0, 256, (5 + k, 6 + k, 3), dtype=np.uint8) for k in range(3)}


@pytest.fixture()
def folder(tmp_path, checkpoint, monkeypatch) -> Path:
    return image_folder(tmp_path, checkpoint, monkeypatch, images())


def invoke(*args, input: bytes | None = None):
    return runner.invoke(cli.app, per_pixel_unless_named(list(args)), input=input)


def test_standard_input_to_standard_output_both_ways(folder):
    png = (folder / "imgs" / "im1.png").read_bytes()
    compressed = invoke("compress", "-", *FIT, input=png)
    assert compressed.exit_code == 0, compressed.stderr
    assert compressed.stdout_bytes[:4] == b"\x89DFC"  # the file itself on stdout, the report on stderr
    assert "file" in compressed.stderr and "bpsp" in compressed.stderr
    decoded = invoke("decode", "-", *CK, input=compressed.stdout_bytes)
    assert decoded.exit_code == 0, decoded.stderr
    assert np.array_equal(read_image_data(decoded.stdout_bytes, "out")[0], images()["im1"])


def test_dash_o_dash_writes_standard_output_for_both_commands(folder):
    result = invoke("compress", "imgs/im0.png", "-o", "-", *FIT)
    assert result.exit_code == 0 and result.stdout_bytes[:4] == b"\x89DFC", result.stderr
    assert not Path("-").exists()  # once a file named '-'
    Path("im0.dfc").write_bytes(result.stdout_bytes)
    result = invoke("decode", "im0.dfc", "-o", "-", *CK)
    assert np.array_equal(read_image_data(result.stdout_bytes, "out")[0], images()["im0"])


@pytest.mark.parametrize("command", ["compress", "decode"])
def test_quiet_prints_nothing_and_bars_need_a_terminal(folder, command):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    args = {"compress": ["compress", "imgs/im1.png", *FIT], "decode": ["decode", "imgs/im0.dfc", *CK]}[command]
    suffix = {"compress": "dfc", "decode": "png"}[command]
    quiet = invoke(*args, "-o", f"quiet.{suffix}", "-q")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stdout + quiet.stderr
    loud = invoke(*args, "-o", f"loud.{suffix}")  # not a terminal: the report, and no progress bar
    assert loud.exit_code == 0 and f"loud.{suffix}" in loud.stdout and loud.stderr == "", loud.stderr


def test_quiet_still_prints_errors(folder):
    result = invoke("compress", "missing.png", "-q", *FIT)
    assert result.exit_code == 1 and "missing.png" in result.stderr


def test_single_and_batch_json_share_the_keys(folder):
    single = invoke("compress", "imgs/im0.png", "--json", *FIT)
    many = invoke("compress", "imgs/im1.png", "imgs/im2.png", "--out-dir", "out", "--json", *FIT)
    assert single.exit_code == 0 and many.exit_code == 0, single.stderr + many.stderr
    rows = [json.loads(single.stdout)] + [json.loads(line) for line in many.stdout.splitlines()]
    for row in rows:
        assert JSON_KEYS <= set(row), JSON_KEYS - set(row)
    assert rows[0]["file"] == "imgs/im0.dfc" and rows[2]["file"] == "out/im2.dfc"
    assert rows[2]["file_bytes"] == Path("out/im2.dfc").stat().st_size


def test_decode_json_is_json(folder):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    result = invoke("decode", "imgs/im0.dfc", "-o", "back.png", "--json", *CK)
    row = json.loads(result.stdout)
    assert row["file"] == "back.png" and row["source"] == "imgs/im0.dfc" and row["bit_exact"]
    assert (row["width"], row["height"], row["mode"], row["variant"]) == (6, 5, "RGB", "per-pixel")


def test_out_dir_is_made_and_an_interrupted_batch_resumes(folder):
    first = invoke("compress", "imgs", "--out-dir", "new/dfc", *FIT)
    assert first.exit_code == 0, first.stderr
    made = {p.name: p.stat().st_mtime_ns for p in Path("new/dfc").iterdir()}
    assert sorted(made) == ["im0.dfc", "im1.dfc", "im2.dfc"]
    Path("new/dfc/im1.dfc").unlink()  # as if the batch had stopped there
    again = invoke("compress", "imgs", "--out-dir", "new/dfc", "--skip-existing", *FIT)
    assert again.exit_code == 0, again.stderr
    assert "2 file(s) skipped" in again.stderr and "1 of 1 files compressed" in again.stdout
    after = {p.name: p.stat().st_mtime_ns for p in Path("new/dfc").iterdir()}
    assert sorted(after) == sorted(made) and all(after[n] == made[n] for n in ("im0.dfc", "im2.dfc"))


def test_a_missing_checkpoint_is_refused_before_any_work(folder):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    result = invoke("decode", "imgs/im0.dfc", "-o", "x.png", "--checkpoint", "/nonexistent.npz")
    assert result.exit_code == 2 and "does not exist" in result.stderr and not Path("x.png").exists()


def test_an_image_suffix_on_a_dfc_file_is_warned_about(folder):
    result = invoke("compress", "imgs/im0.png", "-o", "x.png", *FIT)
    assert result.exit_code == 0 and "warning: x.png" in result.stderr and ".dfc" in result.stderr


def test_a_folder_s_other_files_are_named(folder):
    Path("imgs/photo.jpg").write_bytes(b"jpeg")
    result = invoke("compress", "imgs", "--out-dir", "out", *FIT)
    assert result.exit_code == 0 and "skipped 1 file(s)" in result.stderr and "imgs/photo.jpg" in result.stderr


def test_batch_errors_name_the_file_not_a_buffer(folder):
    Path("imgs/im1.png").write_bytes(b"not a png at all")
    result = invoke("compress", "imgs", "--out-dir", "out", *FIT)
    assert result.exit_code == 1 and "imgs/im1.png: not an image" in result.stdout
    assert "BytesIO" not in result.stdout + result.stderr


def test_summary_time_is_wall_time():
    done = [batch.Outcome("a", "a.dfc", ok=True, file_bytes=9, seconds=5.0, width=1, height=1, bit_exact=True),
            batch.Outcome("b", "b.dfc", ok=True, file_bytes=9, seconds=5.0, width=1, height=1, bit_exact=True)]
    assert batch.summary_lines(done, "compressed", 6.0)[-1].endswith(", 6.0 s")  # not 10.0: the files overlapped


def test_info_goes_on_past_a_bad_file(folder):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    Path("bad.dfc").write_bytes(b"\x89DFC broken")
    result = invoke("info", "bad.dfc", "imgs/im0.dfc", "--header-only")
    assert result.exit_code == 1 and "bad.dfc" in result.stderr and "imgs/im0.dfc:" in result.stdout


def test_version():
    from diffcode import __version__

    for flag in ("-V", "--version"):
        result = runner.invoke(cli.app, [flag])
        assert result.exit_code == 0 and result.stdout.strip() == f"diffcode {__version__}"


@pytest.mark.slow  # a diffcode process
def test_a_closed_standard_output_ends_quietly(folder):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    args = [sys.executable, str(ROOT / "cli.py"), "info", "--header-only", *["imgs/im0.dfc"] * 3000]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == "", err


@pytest.mark.parametrize("command", ["compress", "decode"])
def test_max_memory_caps_the_work(folder, command):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    args = {"compress": ["compress", "imgs/im1.png", *FIT], "decode": ["decode", "imgs/im0.dfc", "-o", "x.png", *CK]}
    result = invoke(*args[command], "--max-memory", "0.01")
    assert result.exit_code == 1 and "--max-memory" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert invoke(*args[command]).exit_code == 0  # the cap is the command's own: the next one has the default


def test_baselines_refuses_existing_tables_before_any_work(folder, monkeypatch):
    from diffcode import baselines

    monkeypatch.setattr(baselines, "run", lambda *a, **k: pytest.fail("the codecs ran before the check"))
    Path("table-summary.md").write_text("an earlier table, keep me\n")
    result = runner.invoke(cli.app, ["baselines", "imgs/im0.png", "--out", "table"])
    assert result.exit_code == 1 and "table-summary.md" in result.stderr and "--force" in result.stderr
    assert Path("table-summary.md").read_text() == "an earlier table, keep me\n"


def test_a_file_that_is_no_model_is_named_as_such(folder):
    assert invoke("compress", "imgs/im0.png", *FIT).exit_code == 0
    for args in (["compress", "imgs/im1.png", "--steps", "2"], ["decode", "imgs/im0.dfc", "-o", "x.png"]):
        result = invoke(*args, "--checkpoint", "imgs/im2.png")
        assert result.exit_code == 1 and "imgs/im2.png: not a diffcode model file" in result.stderr, result.stderr
        assert "pickle" not in result.stderr


@pytest.mark.parametrize("variant, name", [("pyramid", "pyramid.npz"), ("per-pixel", "per_pixel.npz"),
                                           ("weights", "weights.npz")])
def test_train_names_its_output_after_the_variant(tmp_path, monkeypatch, variant, name):
    """`train --out` once defaulted to per_pixel.npz whatever the variant."""
    from diffcode import families

    class Trained:
        hash, meta = "ab" * 32, {}

        def save(self, path, overwrite=False):
            Path(path).write_bytes(b"model")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(type(families.get(variant)), "train", lambda self, **settings: Trained())
    result = runner.invoke(cli.app, ["train", "--variant", variant])
    assert result.exit_code == 0 and (tmp_path / name).read_bytes() == b"model", result.stderr


def test_data_on_stdout_sends_the_table_to_stderr(folder):
    """`compress one/ -o -` once printed the summary table into the .dfc it wrote to stdout."""
    Path("one").mkdir()
    Path("one/im0.png").write_bytes(Path("imgs/im0.png").read_bytes())
    result = invoke("compress", "one", "-o", "-", *FIT)
    assert result.exit_code == 0 and "1 of 1 files compressed" in result.stderr, result.stderr
    Path("one.dfc").write_bytes(result.stdout_bytes)
    back = invoke("decode", "one.dfc", "-o", "-", *CK)
    assert np.array_equal(read_image_data(back.stdout_bytes, "out")[0], images()["im0"])
    refused = invoke("compress", "-", "--out-dir", "od", *FIT, input=Path("imgs/im0.png").read_bytes())
    assert refused.exit_code == 1 and "--out-dir" in refused.stderr and not Path("od").exists()


@pytest.mark.slow  # a diffcode process
def test_dev_stdout_redirected_to_a_file_is_appended_to(folder):
    """`-o /dev/stdout >> log` once failed ("already exists") or, with --force, replaced the log."""
    Path("log.txt").write_bytes(b"LOG\n")
    with open("log.txt", "ab") as log:
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "compress", "imgs/im0.png", "--variant",
                               "classic", "-o", "/dev/stdout", "-q"], stdout=log, stderr=subprocess.PIPE,
                              cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)})
    data = Path("log.txt").read_bytes()
    assert proc.returncode == 0, proc.stderr
    assert data.startswith(b"LOG\n\x89DFC")


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    """The existence check and the write are two steps: a file another process made in between stays."""
    import tempfile

    from diffcode.errors import OutputExistsError
    from diffcode.outputs import write_bytes_atomic

    target = tmp_path / "race.dfc"
    real_mkstemp = tempfile.mkstemp

    def mkstemp_after_a_rival(*args, **kwargs):
        target.write_bytes(b"precious")  # another process, between the check and the write
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_after_a_rival)
    with pytest.raises(OutputExistsError):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"precious" and sorted(p.name for p in tmp_path.iterdir()) == ["race.dfc"]


def test_the_api_refuses_what_auto_cannot_honour():
    import diffcode
    from diffcode.errors import UsageError

    image = images()["im0"]
    for options in ({"storage": "dither"}, {"budget_nats": 5.0}, {"config": None, "foo": 1}):
        with pytest.raises(UsageError):
            diffcode.compress(image, **options)
