"""The command line: fit -> store -> decode -> info, compress, JSON keys, refusing to overwrite."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode.errors import DiffcodeError
from diffcode.image import read_image, write_png
from tests.conftest import per_pixel_unless_named, small_images

runner = CliRunner()
JSON_KEYS = {"file", "file_bytes", "theoretical_bytes", "encodings_theoretical_bytes",
             "error_table_theoretical_bytes", "height", "width", "variant", "storage"}


@pytest.fixture()
def workdir(tmp_path, checkpoint, monkeypatch):
    checkpoint.save(tmp_path / "decoder.npz")
    write_png(tmp_path / "img.png", small_images()["odd 37x23"])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    result = runner.invoke(cli.app, per_pixel_unless_named(args))
    return result.exit_code, result.output


def test_fit_store_decode_info(workdir):
    ck = ["--checkpoint", "decoder.npz"]
    code, out = invoke("fit", "img.png", "--variant", "per-pixel", "--steps", 4, *ck)
    assert code == 0, out
    assert (workdir / "img.per-pixel.fit").exists()
    code, out = invoke("store", "--json", *ck)  # every fit file in the current directory
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(record)
    assert record["file_bytes"] == (workdir / "img.per-pixel.dfc").stat().st_size
    code, out = invoke("decode", "img.per-pixel.dfc", "-o", "out.png", *ck)
    assert code == 0, out
    assert np.array_equal(read_image(workdir / "out.png"), read_image(workdir / "img.png"))
    code, out = invoke("info", "img.per-pixel.dfc", "--json", *ck)
    assert code == 0, out
    info = json.loads(out)
    assert JSON_KEYS <= set(info) and info["height"] == 23
    assert info["file_bytes"] == record["file_bytes"] and info["theoretical_bytes"] == record["theoretical_bytes"]
    code, out = invoke("info", "img.per-pixel.dfc", "--header-only")
    assert code == 0 and "decoder_hash" in out
    code, out = invoke("store", *ck)  # human-readable report, but the output exists now
    assert code == 1 and "exists" in out


def test_compress_and_refusing_existing_outputs(workdir):
    ck = ["--checkpoint", "decoder.npz"]
    code, out = invoke("compress", "img.png", "-o", "a.dfc", "--steps", 3, *ck)
    assert code == 0, out
    assert "overhead" in out
    code, out = invoke("compress", "img.png", "-o", "a.dfc", "--steps", 3, *ck)
    assert code == 1 and "exists" in out
    (workdir / "taken.png").write_bytes(b"keep me")
    code, out = invoke("decode", "a.dfc", "-o", "taken.png", *ck)
    assert code == 1 and (workdir / "taken.png").read_bytes() == b"keep me"


def test_bad_inputs_give_one_line_errors(workdir, other_checkpoint):
    ck = ["--checkpoint", "decoder.npz"]
    (workdir / "junk.dfc").write_bytes(b"hello world, not a file")
    code, out = invoke("decode", "junk.dfc", "-o", "x.png", *ck)
    assert code == 1 and "not a diffcode file" in out and not (workdir / "x.png").exists()
    (workdir / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    code, out = invoke("fit", "bad.png", "--steps", 1, *ck)
    assert code == 1 and "error" in out
    invoke("compress", "img.png", "-o", "a.dfc", "--steps", 2, *ck)
    other_checkpoint.save(workdir / "other.npz")
    code, out = invoke("decode", "a.dfc", "-o", "y.png", "--checkpoint", "other.npz")
    assert code == 1 and "decoder" in out and not (workdir / "y.png").exists()
    data = (workdir / "a.dfc").read_bytes()
    (workdir / "cut.dfc").write_bytes(data[: len(data) // 2])
    code, out = invoke("decode", "cut.dfc", "-o", "z.png", *ck)
    assert code == 1 and "truncated" in out and not (workdir / "z.png").exists()


def test_console_command_is_declared():
    """`pip install` makes a `diffcode` command running the same app as `python cli.py` (issue 14)."""
    import importlib
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["diffcode"].partition(":")
    main = getattr(importlib.import_module(module), function)
    assert main.__module__ == cli.app.registered_commands[0].callback.__module__
    code, out = invoke("--help")
    assert code == 0 and "compress" in out


def test_both_variants_of_one_image_store_to_their_own_files(workdir):
    """img.per-pixel.fit and img.weights.fit once both stored to img.dfc (issue 14, defect 9)."""
    ck = ["--checkpoint", "decoder.npz"]
    assert invoke("fit", "img.png", "--steps", 2, *ck)[0] == 0
    assert invoke("fit", "img.png", "--variant", "weights", "--preset", "tiny", "--steps", 3)[0] == 0
    code, out = invoke("store", *ck)
    assert code == 0, out
    for variant in ("per-pixel", "weights"):
        code, out = invoke("decode", f"img.{variant}.dfc", "-o", f"{variant}.png", *ck)
        assert code == 0, out
        assert np.array_equal(read_image(workdir / f"{variant}.png"), read_image(workdir / "img.png"))
        assert json.loads(invoke("info", f"img.{variant}.dfc", "--json", "--header-only")[1])["variant"] == variant


def test_store_makes_its_out_dir_as_compress_and_decode_do(workdir):
    ck = ["--checkpoint", "decoder.npz"]
    assert invoke("fit", "img.png", "--steps", 2, *ck)[0] == 0
    code, out = invoke("store", "img.per-pixel.fit", "--out-dir", "new/dir", *ck)
    assert code == 0 and (workdir / "new" / "dir" / "img.per-pixel.dfc").is_file(), out


def test_store_refuses_two_fits_with_one_target(workdir):
    ck = ["--checkpoint", "decoder.npz"]
    assert invoke("fit", "img.png", "--steps", 2, *ck)[0] == 0
    (workdir / "sub").mkdir()
    (workdir / "sub" / "img.per-pixel.fit").write_bytes((workdir / "img.per-pixel.fit").read_bytes())
    (workdir / "out").mkdir()
    code, out = invoke("store", "img.per-pixel.fit", "sub/img.per-pixel.fit", "--out-dir", "out", *ck)
    assert code == 1 and "would both be written to" in out and not list((workdir / "out").iterdir())


def test_sizes_are_printed_width_by_height(workdir, monkeypatch):
    """img.png is 37 pixels wide and 23 high: printed 37x23, as image tools do (issue 14, defect 13)."""
    ck = ["--checkpoint", "decoder.npz"]
    code, out = invoke("compress", "img.png", "-o", "a.dfc", "--steps", 2, *ck)
    assert code == 0 and "37x23" in out and "23x37" not in out, out
    code, out = invoke("decode", "a.dfc", "-o", "a.png", *ck)
    assert code == 0 and "37x23" in out and "23x37" not in out, out
    monkeypatch.setenv("DIFFCODE_MEMORY_GIB", "0.001")
    code, out = invoke("decode", "a.dfc", "-o", "b.png", *ck)
    assert code == 1 and "a 37x23 image is too large" in out, out


COMMANDS = ["fit", "store", "decode", "info", "compress", "evaluate", "baselines", "train"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_describes_every_option(command):
    """--help once showed `--help <bool>`, "default: FitConfig.steps" and options without a word
    (issue 14, defect 14)."""
    import typer.main

    code, out = invoke(command, "--help")
    assert code == 0 and "<bool>" not in out and "FitConfig" not in out, out
    params = typer.main.get_command(cli.app).commands[command].params
    assert [p.name for p in params if not getattr(p, "help", None)] == []


def test_help_names_the_default_step_counts():
    """--help's presets and step counts come from the registry (no family imported): they must be the families'."""
    from diffcode import cli as diffcode_cli, families

    for variant in families.names():
        family = families.get(variant)
        offered = [preset for preset in family.presets if preset != "default-v1"]  # kept for old files, not offered
        assert list(families.REGISTERED[variant].steps.items()) == [(preset, family.fit_steps(preset, None))
                                                                    for preset in offered], variant
        assert f"{variant} " + ", ".join(f"{p} {family.fit_steps(p, None)}" for p in offered) \
            in diffcode_cli.STEPS_OPTION.help, variant


def _failing_fit(*args, progress=None, **kwargs):
    for step in range(3):
        progress(step, 8.0)
    raise DiffcodeError("the fit failed midway")


@pytest.mark.parametrize("args", [["fit", "img.png", "--steps", "9"], ["compress", "img.png", "-o", "a.dfc",
                                                                        "--steps", "9"]])
def test_errors_start_their_own_line(workdir, monkeypatch, args):
    """An error once landed after a progress bar's text on the same line (issue 14, defect 14)."""
    from diffcode import jobs

    monkeypatch.setattr(jobs, "fit", _failing_fit)
    monkeypatch.setenv("DIFFCODE_PROGRESS", "always")  # the runner's stderr is not a terminal
    result = runner.invoke(cli.app, per_pixel_unless_named(args + ["--checkpoint", "decoder.npz"]))
    assert result.exit_code == 1
    assert "3/9" in result.stderr  # the bar was on screen
    assert re.search(r"error: (img\.png: )?the fit failed midway", result.stderr)  # compress names the file
    before = result.stderr[:result.stderr.index("error: ")]
    assert before == "" or before[-1] in "\r\n", repr(before[-80:])


@pytest.mark.parametrize("args", [["fit", "img.png", "--steps", "1", "--preset", "tiny"],
                                  ["fit", "img.png", "--variant", "weights", "--steps", "2", "--preset", "tiny"],
                                  ["compress", "img.png", "-o", "a.dfc", "--variant", "weights", "--storage",
                                   "randseed", "--preset", "tiny"]])
def test_a_refused_fit_shows_no_progress_bar(workdir, args):
    result = runner.invoke(cli.app, per_pixel_unless_named(args))
    assert result.exit_code != 0 and result.stderr.startswith("error:"), repr(result.stderr)


REFUSED_OPTIONS = {
    "steps 0": ["fit", "img.png", "--steps", "0"],
    "steps -5": ["compress", "img.png", "-o", "a.dfc", "--steps", "-5"],
    "seed -1": ["fit", "img.png", "--seed", "-1", "--steps", "2"],
    "seed 2^32": ["compress", "img.png", "-o", "a.dfc", "--seed", str(2**32), "--steps", "2"],
    "preset with per-pixel": ["fit", "img.png", "--preset", "tiny", "--steps", "2"],
    "randseed with weights": ["fit", "img.png", "--variant", "weights", "--storage", "randseed", "--steps", "3"],
    "evaluate jobs 0": ["evaluate", "img.png", "--jobs", "0"],
    "evaluate crop -1": ["evaluate", "img.png", "--crop", "-1"],
}


@pytest.mark.parametrize("case", list(REFUSED_OPTIONS))
def test_invalid_or_ignored_options_are_refused_before_any_work(workdir, monkeypatch, case):
    """(issue 14, defect 11)"""
    from diffcode.families import per_pixel, weights

    def fitted(*args, **kwargs):
        raise AssertionError("a fit started")

    monkeypatch.setattr("diffcode.families.per_pixel.fit.fit_image", fitted)
    monkeypatch.setattr("diffcode.families.weights.fit.fit_image", fitted)
    result = runner.invoke(cli.app, per_pixel_unless_named(REFUSED_OPTIONS[case]))
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    assert "error" in result.output.lower() and "a fit started" not in str(result.exception or ""), result.output
    assert not [p for p in workdir.iterdir() if p.suffix in (".fit", ".dfc")]


@pytest.mark.parametrize("args, message", [(["--storage", "dither", "--budget", "4"], "no segment budget"),
                                           (["--budget", "4"], "no segment budget"),
                                           (["--storage", "randseed", "--budget", "100"], "budget_nats must be in")])
def test_store_refuses_a_budget_it_cannot_use(workdir, args, message):
    ck = ["--checkpoint", "decoder.npz"]
    assert invoke("fit", "img.png", "--steps", 2, *ck)[0] == 0  # prepared for dither
    code, out = invoke("store", "img.per-pixel.fit", *args, *ck)
    assert code == 1 and message in out and len(out.strip().splitlines()) == 1, out
    assert not (workdir / "img.per-pixel.dfc").exists()


@pytest.fixture()
def stored(workdir):
    ck = ["--checkpoint", "decoder.npz"]
    assert invoke("compress", "img.png", "-o", "a.dfc", "--steps", 2, *ck)[0] == 0
    return workdir


@pytest.mark.parametrize("name, format", [("x.png", "PNG"), ("x.bmp", "BMP"), ("x.tif", "TIFF"), ("x.ppm", "PPM")])
def test_decode_writes_the_format_its_output_names(stored, name, format):
    """`decode -o x.jpg` once wrote PNG bytes under a JPEG name (issue 14, defect 12)."""
    from PIL import Image

    code, out = invoke("decode", "a.dfc", "-o", name, "--checkpoint", "decoder.npz")
    assert code == 0, out
    with Image.open(stored / name) as im:
        assert im.format == format
    assert np.array_equal(read_image(stored / name), read_image(stored / "img.png"))


@pytest.mark.parametrize("name", ["x.jpg", "x.JPEG", "x.webp", "x.gif", "noext"])
def test_decode_refuses_formats_that_would_change_the_pixels(stored, name):
    code, out = invoke("decode", "a.dfc", "-o", name, "--checkpoint", "decoder.npz")
    assert code == 1 and name in out and ".png" in out and len(out.strip().splitlines()) == 1, out
    assert not (stored / name).exists()


def test_decode_to_standard_output(stored):
    import io

    from PIL import Image

    result = runner.invoke(cli.app, ["decode", "a.dfc", "-o", "-", "--checkpoint", "decoder.npz"])
    assert result.exit_code == 0, result.output
    assert not (stored / "-").exists()
    with Image.open(io.BytesIO(result.stdout_bytes)) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im), read_image(stored / "img.png"))
    assert "37x23" in result.stderr


def test_errors_about_a_file_name_it(workdir):
    (workdir / "notes.txt").write_bytes(b"just some text, not a diffcode file")
    for args in (["info", "notes.txt"], ["info", "notes.txt", "--header-only"], ["decode", "notes.txt", "-o", "y.png"]):
        code, out = invoke(*args)
        assert code == 1 and "notes.txt" in out and "not a diffcode file" in out, (args, out)


def test_evaluate_does_not_replace_a_table_unless_told(workdir, monkeypatch):
    """evaluate once replaced its tables (committed ones too) silently (issue 14, defect 5)."""
    args = per_pixel_unless_named(["evaluate", "img.png", "--steps", "2", "--no-figures", "--name", "t", "--out-dir",
                                   "results", "--work-dir", "cache", "--checkpoint", "decoder.npz", "--baselines",
                                   "none.csv"])
    (workdir / "results").mkdir()
    (workdir / "results" / "t.md").write_text("a committed table\n")
    from diffcode import api

    with monkeypatch.context() as patch:
        patch.setattr(api, "fit", lambda *a, **k: pytest.fail("evaluate started fitting"))
        result = runner.invoke(cli.app, args)
    assert result.exit_code == 1 and "t.md exists" in result.output and "--overwrite" in result.output
    assert (workdir / "results" / "t.md").read_text() == "a committed table\n" and not (workdir / "cache").exists()
    result = runner.invoke(cli.app, args + ["--overwrite"])
    assert result.exit_code == 0, result.output
    assert "img" in (workdir / "results" / "t.md").read_text() and (workdir / "results" / "t.csv").exists()
