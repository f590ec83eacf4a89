"""Outputs: no writer replaces an existing file unless told to, and an interrupted write leaves nothing.

Writers: diffcode.outputs.write_bytes_atomic, diffcode.image.write_png, diffcode.fitfile.save, and the CLI
commands fit, store, decode and compress. For each:

- an existing output is refused without the overwrite flag, and left byte for byte (and mtime)
  as it was;
- a write interrupted midway (the file write or the final rename raising, or Ctrl-C) leaves no
  file at the target, no temporary file, and, with the overwrite flag, the old file intact;
- a process killed before the rename leaves at most a hidden `.NAME.*.tmp` file that no command
  picks up as input.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from diffcode import codec, fitfile
from diffcode.errors import DiffcodeError, OutputExistsError
from diffcode.families.per_pixel.fit import FitConfig, fit_image
from diffcode.image import read_image, write_png
from diffcode.outputs import write_bytes_atomic
from tests.conftest import per_pixel_unless_named

IMAGE = np.random.default_rng(3).integers(0, 256, (6, 8, 3), dtype=np.uint8)
OLD = b"an existing output, keep me\n"
runner = CliRunner()


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


class _Interrupted(OSError):
    pass


def fail_rename(monkeypatch, exc: BaseException | None = None):
    """Make the final step raise (default: a disk error): os.replace, or os.link for a new file."""
    def boom(*args, **kwargs):
        raise exc or _Interrupted(errno.EIO, "simulated I/O error during rename")

    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "link", boom)


def fail_midway(monkeypatch):
    """Make the temporary file's write stop halfway with 'no space left on device'."""
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise _Interrupted(errno.ENOSPC, "simulated: no space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))


INTERRUPTIONS = {
    "rename fails": lambda mp: fail_rename(mp),
    "write fails midway": fail_midway,
    "ctrl-c at rename": lambda mp: fail_rename(mp, KeyboardInterrupt()),
}


# ----------------------------------------------------------------------------- library writers


@pytest.fixture(scope="module")
def fit(checkpoint):
    return fit_image(IMAGE, checkpoint, FitConfig(steps=2, maximize_steps=1))


def _writers(fit):
    return {
        "write_bytes_atomic": lambda path, overwrite=False: write_bytes_atomic(path, b"new bytes", overwrite=overwrite),
        "write_png": lambda path, overwrite=False: write_png(path, IMAGE, overwrite=overwrite),
        "fitfile.save": lambda path, overwrite=False: fitfile.save(path, fit, overwrite=overwrite),
    }


WRITERS = ["write_bytes_atomic", "write_png", "fitfile.save"]


@pytest.mark.parametrize("writer", WRITERS)
def test_writer_refuses_an_existing_output(tmp_path, fit, writer):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    before = snapshot(target)
    with pytest.raises(OutputExistsError, match="exists"):
        _writers(fit)[writer](target)
    assert snapshot(target) == before and listing(tmp_path) == {"out.bin"}
    _writers(fit)[writer](target, overwrite=True)
    assert target.read_bytes() != OLD


@pytest.mark.parametrize("how", list(INTERRUPTIONS))
@pytest.mark.parametrize("writer", WRITERS)
def test_interrupted_write_leaves_nothing(tmp_path, fit, monkeypatch, writer, how):
    target = tmp_path / "out.bin"
    INTERRUPTIONS[how](monkeypatch)
    expected = KeyboardInterrupt if how.startswith("ctrl-c") else DiffcodeError
    with pytest.raises(expected):
        _writers(fit)[writer](target)
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("how", list(INTERRUPTIONS))
@pytest.mark.parametrize("writer", WRITERS)
def test_interrupted_overwrite_keeps_the_old_file(tmp_path, fit, monkeypatch, writer, how):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    INTERRUPTIONS[how](monkeypatch)
    with pytest.raises((DiffcodeError, KeyboardInterrupt)):
        _writers(fit)[writer](target, overwrite=True)
    assert target.read_bytes() == OLD and listing(tmp_path) == {"out.bin"}


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DiffcodeError, match="does not exist"):
        write_bytes_atomic(tmp_path / "no" / "out.dfc", b"x")
    assert listing(tmp_path) == set()


def test_killed_writer_leaves_only_a_hidden_tmp_file(tmp_path):
    """A process that dies before the rename cannot clean up; what it leaves must not pass for output."""
    script = ("import os, sys; from diffcode.outputs import write_bytes_atomic; "
              "os.replace = os.link = lambda *a: os._exit(9); "
              "write_bytes_atomic(sys.argv[1], b'partial fit file', overwrite=False)")
    target = tmp_path / "img.per-pixel.fit"
    proc = subprocess.run([sys.executable, "-c", script, str(target)], check=False, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 9
    left = listing(tmp_path)
    assert not target.exists() and len(left) == 1
    (name,) = left
    assert name.startswith(".img.per-pixel.fit.") and name.endswith(".tmp")
    # neither `store` (every *.fit) nor a *.dfc / *.png glob picks it up
    assert not [p for pattern in ("*.fit", "*.dfc", "*.png") for p in tmp_path.glob(pattern)]


# ----------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def materials(tmp_path_factory, checkpoint, fit) -> Path:
    """A decoder, an image, its fit file and its .dfc file, made once."""
    folder = tmp_path_factory.mktemp("materials")
    checkpoint.save(folder / "decoder.npz")
    write_png(folder / "img.png", IMAGE)
    fitfile.save(folder / "img.per-pixel.fit", fit, source="img.png")
    data, _ = codec.store(fit, checkpoint)
    (folder / "img.dfc").write_bytes(data)
    return folder


@pytest.fixture()
def workdir(tmp_path, materials, monkeypatch):
    for f in materials.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "outdir").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


CK = ["--checkpoint", "decoder.npz"]
# command line, and the output it writes
COMMANDS = {
    "fit": (["fit", "img.png", "--steps", "2", "--out", "out.fit"], "out.fit"),
    "store": (["store", "img.per-pixel.fit", "--out-dir", "outdir"], "outdir/img.per-pixel.dfc"),
    "decode": (["decode", "img.dfc", "-o", "out.png"], "out.png"),
    "compress": (["compress", "img.png", "-o", "out.dfc", "--steps", "2"], "out.dfc"),
}
OVERWRITE_FLAGS = ["--force", "--overwrite"]  # --force as the issue asks, --overwrite kept as an alias


def invoke(args):
    result = runner.invoke(cli.app, per_pixel_unless_named([*args, *CK]))
    return result.exit_code, result.output


def everything(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): snapshot(p) for p in folder.rglob("*") if p.is_file()}


def accepted_options(command: str) -> set[str]:
    import typer.main

    params = typer.main.get_command(cli.app).commands[command].params
    return {opt for p in params for opt in p.opts}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_refuses_an_existing_output(workdir, command):
    target = workdir / COMMANDS[command][1]
    target.write_bytes(OLD)
    before = everything(workdir)
    code, out = invoke(COMMANDS[command][0])
    assert code == 1 and "exists" in out, out
    assert len(out.strip().splitlines()) == 1, out  # a one-line error, no traceback
    assert everything(workdir) == before  # the output and every other file untouched
    # the message names the flag that replaces the output, and the command accepts it
    named = set(re.findall(r"--[a-z][a-z-]*", out))
    assert named and named <= accepted_options(command), (named, out)


@pytest.mark.parametrize("flag", OVERWRITE_FLAGS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_replaces_an_output_when_told(workdir, command, flag):
    assert flag in accepted_options(command)
    target = workdir / COMMANDS[command][1]
    target.write_bytes(OLD)
    code, out = invoke([*COMMANDS[command][0], flag])
    assert code == 0, out
    assert target.read_bytes() != OLD
    if command == "decode":
        assert np.array_equal(read_image(target), IMAGE)
    assert not [p for p in workdir.rglob("*.tmp")]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_interrupted_at_the_rename_leaves_nothing(workdir, monkeypatch, command):
    target = workdir / COMMANDS[command][1]
    before = everything(workdir)
    fail_rename(monkeypatch)
    code, out = invoke(COMMANDS[command][0])
    assert code == 1 and "write failed" in out, out
    assert not target.exists() and everything(workdir) == before


@pytest.mark.parametrize("command", ["store", "decode"])
def test_command_interrupted_midway_keeps_the_old_output(workdir, monkeypatch, command):
    target = workdir / COMMANDS[command][1]
    target.write_bytes(OLD)
    before = everything(workdir)
    fail_midway(monkeypatch)
    code, out = invoke([*COMMANDS[command][0], "--force"])
    assert code == 1 and "no space left" in out, out
    assert everything(workdir) == before


def test_checkpoint_save_is_atomic_and_refuses_existing(tmp_path, checkpoint):
    from diffcode.families.per_pixel.checkpoint import Checkpoint
    from diffcode.errors import OutputExistsError

    path = tmp_path / "decoder.npz"
    checkpoint.save(path)
    with pytest.raises(OutputExistsError):
        checkpoint.save(path)
    checkpoint.save(path, overwrite=True)
    assert Checkpoint.load(path).hash == checkpoint.hash
    assert [p.name for p in tmp_path.iterdir()] == ["decoder.npz"]  # no temporary file left behind


# ----------------------------------------------------------------------------- issue 14: outputs checked first


def deny_writes(monkeypatch):
    """Every new file is refused, as in a folder without write permission or on a read-only file system.

    (The tests run as root, whom permission bits do not stop, so the refusal is simulated where a
    file is created.)"""
    import tempfile

    def deny(*args, dir=None, prefix="", suffix="", **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir or ".", f"{prefix}XXXX{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", deny)


@pytest.fixture()
def no_fit(monkeypatch):
    """Fail the test if a command starts fitting or storing."""
    from diffcode import jobs

    calls = []
    monkeypatch.setattr(jobs, "fit", lambda *a, **k: calls.append("fit"))
    monkeypatch.setattr(jobs, "store", lambda *a, **k: calls.append("store"))
    return calls


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_output_is_refused_before_any_work(workdir, monkeypatch, no_fit, command):
    args, target = COMMANDS[command]
    deny_writes(monkeypatch)
    code, out = invoke(args)
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert target in out and "Permission denied" in out and ".tmp" not in out and "XXXX" not in out, out
    assert no_fit == []


MISSING_FOLDER = {
    "fit": ["fit", "img.png", "--steps", "2", "--out", "nodir/x.fit"],
    "decode": ["decode", "img.dfc", "-o", "nodir/x.png"],
    "compress": ["compress", "img.png", "-o", "nodir/x.dfc", "--steps", "2"],
}


@pytest.mark.parametrize("command", list(MISSING_FOLDER))
def test_missing_output_folder_is_refused_before_any_work(workdir, no_fit, command):
    code, out = invoke(MISSING_FOLDER[command])
    assert code == 1 and len(out.strip().splitlines()) == 1, out
    assert "nodir" in out and "does not exist" in out, out
    assert no_fit == [] and not (workdir / "nodir").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "a.dfc", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.dfc").stat().st_mode & 0o777 == mode


def test_replaced_outputs_keep_their_mode(tmp_path):
    target = tmp_path / "a.dfc"
    target.write_bytes(OLD)
    target.chmod(0o640)
    write_bytes_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640


def test_command_outputs_follow_the_umask(workdir):
    old = os.umask(0o022)
    try:
        code, out = invoke(["decode", "img.dfc", "-o", "out.png"])
    finally:
        os.umask(old)
    assert code == 0, out
    assert (workdir / "out.png").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- devices, pipes, links, inputs
# What is at the output path decides how it is written (diffcode/outputs.py, README "Inputs and outputs").

SPECIAL = {"compress": ["compress", "img.png", "--steps", "2"], "decode": ["decode", "img.dfc"]}


def special(command: str, out: str, *flags: str) -> tuple[int, str]:
    return invoke([*SPECIAL[command], "-o", out, *flags])


@pytest.mark.parametrize("flags", [(), ("--force",)])
@pytest.mark.parametrize("command", list(SPECIAL))
def test_dev_null_is_written_in_place(workdir, monkeypatch, command, flags):
    real_replace = os.replace

    def guarded(src, dst, *args, **kwargs):  # a regression fails this test instead of replacing the device
        if os.path.realpath(dst) == os.devnull:
            raise OSError(errno.EPERM, "the test refuses a rename over /dev/null")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", guarded)
    code, out = special(command, os.devnull, *flags)
    assert code == 0, out
    assert Path(os.devnull).is_char_device()  # still the device, not a regular file renamed over it


@pytest.mark.parametrize("command", list(SPECIAL))
def test_fifo_is_written_in_place(workdir, command, checkpoint):
    import threading

    fifo = workdir / "pipe.out"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    code, out = special(command, str(fifo))
    reader.join(timeout=60)
    assert code == 0, out
    assert fifo.is_fifo() and got and len(got[0]) > 0
    if command == "compress":
        assert np.array_equal(codec.load_image(got[0], checkpoint)[0], IMAGE)  # the reader got the whole file
    else:
        assert np.array_equal(read_image_from_bytes(got[0]), IMAGE)


def read_image_from_bytes(data: bytes) -> np.ndarray:
    from diffcode.image import read_image_data

    return read_image_data(data, "pipe")[0]


@pytest.mark.parametrize("command", list(SPECIAL))
def test_symlink_output_writes_its_target(workdir, command):
    name = "target.dfc" if command == "compress" else "target.png"
    target, link = workdir / name, workdir / f"link{Path(name).suffix}"
    target.write_bytes(OLD)
    link.symlink_to(name)
    code, out = special(command, link.name)
    assert code == 1 and "exists" in out and target.read_bytes() == OLD  # a file behind a link needs --force
    code, out = special(command, link.name, "--force")
    assert code == 0, out
    assert link.is_symlink() and os.readlink(link) == name  # the link stays a link ...
    assert target.read_bytes() != OLD  # ... and its target holds the output
    assert listing(workdir) >= {name, link.name} and not [p for p in listing(workdir) if p.endswith(".tmp")]


def test_dangling_symlink_output_creates_its_target(workdir):
    link = workdir / "link.dfc"
    link.symlink_to("made.dfc")
    code, out = special("compress", link.name)
    assert code == 0, out
    assert link.is_symlink() and (workdir / "made.dfc").stat().st_size > 0


@pytest.mark.parametrize("spelling", ["same", "dot", "absolute", "hardlink", "symlink"])
@pytest.mark.parametrize("flags", [(), ("--force",)])
def test_the_input_is_never_the_output(workdir, spelling, flags):
    source = workdir / "img.png"
    out = {"same": "img.png", "dot": "./img.png", "absolute": str(source)}.get(spelling)
    if spelling == "hardlink":
        os.link(source, workdir / "hard.png")
        out = "hard.png"
    if spelling == "symlink":
        (workdir / "soft.png").symlink_to("img.png")
        out = "soft.png"
    before = everything(workdir)
    code, text = special("compress", out, *flags)
    assert code == 1 and "is the input" in text and len(text.strip().splitlines()) == 1, text
    assert everything(workdir) == before


def test_batch_output_that_is_an_input_is_refused(workdir):
    from diffcode import batch

    (workdir / "b.png").write_bytes((workdir / "img.png").read_bytes())
    os.link(workdir / "b.png", workdir / "outdir" / "img.dfc")  # compress img.png -> outdir/img.dfc is b.png
    with pytest.raises(DiffcodeError, match="is the input"):
        batch.plan([workdir / "img.png", workdir / "b.png"], ".dfc", out_dir=workdir / "outdir", overwrite=True)


def test_folders_and_sockets_are_refused(tmp_path):
    import socket

    with pytest.raises(DiffcodeError, match="folder"):
        write_bytes_atomic(tmp_path, b"x", overwrite=True)
    sock_path = tmp_path / "s.dfc"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(DiffcodeError, match="socket"):
            write_bytes_atomic(sock_path, b"x", overwrite=True)
    assert sock_path.is_socket()


def test_a_symlink_loop_is_a_clear_error(tmp_path):
    (tmp_path / "a.dfc").symlink_to("b.dfc")
    (tmp_path / "b.dfc").symlink_to("a.dfc")
    with pytest.raises(DiffcodeError, match="a.dfc: cannot write"):
        write_bytes_atomic(tmp_path / "a.dfc", b"x", overwrite=True)


def test_long_output_names_leave_room_for_the_temporary_file(tmp_path):
    target = tmp_path / ("n" * 246 + ".dfc")  # 250 bytes: a valid name
    write_bytes_atomic(target, b"x")
    assert target.read_bytes() == b"x" and listing(tmp_path) == {target.name}
