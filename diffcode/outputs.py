"""Writing outputs without harming what is at the path. No torch, no numpy.

What happens to an output path depends on what is there (the README's "Inputs and outputs",
docs/reliability.md's "Outputs"):

| at the path | what diffcode does |
|---|---|
| nothing | a new file, written to `.NAME.XXXX.tmp` in the same folder and renamed into place |
| a regular file | the same, only with `overwrite` (`--force`); the file keeps its mode |
| a symlink | followed to its final target, which is written as above: the link stays a link |
| a character device or a FIFO (`/dev/null`, a named pipe) | written in place, without `overwrite`, as cwebp and zstd do |
| this process's standard output (`/dev/stdout`, `/dev/fd/1`, also when redirected to a file) | written to the open stream, without `overwrite` (a `>> log` keeps what it held) |
| a folder, a block device, a socket | refused |
| the same file as an input (same device and inode: hard links, `./a.png` and `a.png`) | refused, even with `overwrite` |

Every refusal is a one-line DiffcodeError (OutputExistsError for an existing file), raised by
`check_output` before any work and again by `write_bytes_atomic` before anything is written.
The rename is what makes a file write atomic: readers see the old file or the complete new one,
and an interrupted or failed write leaves no partial file (the temporary file is removed). Without
`overwrite` the temporary file is hard-linked into place, which fails if a file appeared there
meanwhile (another process), so nothing is ever replaced without `overwrite`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from .errors import DiffcodeError, OutputExistsError

PathLike = Union[str, os.PathLike]

_REFUSED_KINDS = {stat.S_IFDIR: "a folder; give a file name", stat.S_IFBLK: "a block device",
                  stat.S_IFSOCK: "a socket"}


@dataclass(frozen=True)
class Target:
    """Where writing an output path lands: `path` as given, `file` the path written (a symlink's
    final target), `stream` True for a character device or FIFO (written in place), `exists`
    True for an existing regular file."""

    path: Path
    file: Path
    stream: bool
    exists: bool
    stdout: bool = False  # the stream is this process's standard output: written through sys.stdout


def resolve(path: PathLike) -> Target:
    """What is at `path` and where a write goes; DiffcodeError for a folder, block device,
    socket or unreadable path (a symlink loop, a path through a regular file)."""
    path = Path(path)
    if _is_stdout(path):
        return Target(path, path, stream=True, exists=True, stdout=True)
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        return Target(path, Path(os.path.realpath(path)), stream=False, exists=False)
    except OSError as e:
        raise DiffcodeError(f"{path}: cannot write ({e.strerror})") from e
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return Target(path, path, stream=True, exists=True)
    if not stat.S_ISREG(mode):
        kind = _REFUSED_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise DiffcodeError(f"{path}: is {kind}; diffcode writes only files, character devices and FIFOs")
    return Target(path, Path(os.path.realpath(path)), stream=False, exists=True)


def _is_stdout(path: Path) -> bool:
    """True if `path` names this process's standard output (/dev/stdout, /dev/fd/1, ... whatever it is
    redirected to: opening it again would truncate a `>> log`, renaming over it would replace it)."""
    if str(path) not in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", f"/proc/{os.getpid()}/fd/1"):
        return False
    try:
        return os.path.samestat(os.stat(path), os.fstat(1))
    except OSError:
        return False


def is_stream(path: PathLike) -> bool:
    """True if `path` is (a symlink to) a character device or FIFO, written in place."""
    try:
        return resolve(path).stream
    except DiffcodeError:
        return False


def refuse_inputs(target: Target, inputs: Iterable[PathLike]) -> None:
    """DiffcodeError if `target` is the same file as one of `inputs` (by device and inode)."""
    if not target.exists or target.stream:
        return
    out = os.stat(target.file)
    for source in inputs:
        try:
            if os.path.samestat(out, os.stat(source)):
                raise DiffcodeError(f"{target.path}: is the input {source} itself; write the output elsewhere")
        except OSError:
            continue  # an input that cannot be read is reported by its reader, not here


def check_output(path: PathLike, overwrite: bool = False, inputs: Iterable[PathLike] = ()) -> Path:
    """Refuse, before any work, an output that cannot be written; returns `path` as a Path.

    Checks what is at `path` (see the module docstring), that it is none of `inputs`, that an
    existing file is only replaced with `overwrite`, and that the folder of a file output exists
    and accepts a new file (a probe file is created and removed: this also catches read-only file
    systems and ACLs, which permission bits do not show). Messages name `path`.

    Raises:
        OutputExistsError: `path` is an existing file and `overwrite` is False.
        DiffcodeError: anything else that keeps the output from being written.
    """
    target = _checked(path, overwrite, inputs)
    if not target.stream:
        folder = _folder(target)
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe.", suffix=".tmp")
        except OSError as e:
            raise DiffcodeError(f"{target.path}: cannot write to folder {folder} ({e.strerror})") from e
        os.close(fd)
        os.unlink(probe)
    return target.path


def write_bytes_atomic(path: PathLike, data: bytes, overwrite: bool = False, inputs: Iterable[PathLike] = ()) -> None:
    """Write `data` to `path` as the module docstring says: a file through a temporary file and a
    rename (a new file gets the mode open() would give it, 0o666 minus the umask; a replaced file
    keeps its mode), a character device or FIFO in place.

    Raises:
        OutputExistsError: `path` is an existing file and `overwrite` is False.
        DiffcodeError: the path is refused or the write failed (nothing is left behind).
    """
    target = _checked(path, overwrite, inputs)
    if target.stdout:
        _write_stdout(data)
    elif target.stream:
        _write_stream(target.path, data)
    else:
        _write_file(target, data, overwrite)


def _checked(path: PathLike, overwrite: bool, inputs: Iterable[PathLike]) -> Target:
    target = resolve(path)
    refuse_inputs(target, inputs)
    if target.exists and not target.stream and not overwrite:
        raise OutputExistsError(f"{target.path}: already exists; pass overwrite (--force) to replace it")
    return target


def _folder(target: Target) -> Path:
    folder = target.file.parent
    if not folder.is_dir():
        raise DiffcodeError(f"{target.path}: cannot write, folder {folder} does not exist")
    return folder


def _write_stdout(data: bytes) -> None:
    import sys

    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_stream(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise DiffcodeError(f"{path}: write failed ({e.strerror or e})") from e


def _new_file_mode(path: Path) -> int:
    """The mode `path` gets: an existing file's mode, else 0o666 minus the umask (as open() gives)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)  # the only portable way to read the umask is to set it
        os.umask(umask)
        return 0o666 & ~umask


def _write_file(target: Target, data: bytes, overwrite: bool) -> None:
    folder = _folder(target)
    mode = _new_file_mode(target.file)
    try:  # a short prefix: a name of up to 255 bytes still leaves room for the temporary file's
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.file.name[:100]}.", suffix=".tmp")
    except OSError as e:
        raise DiffcodeError(f"{target.path}: cannot write to folder {folder} ({e.strerror})") from e
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _put_in_place(tmp_name, target, overwrite)
    except BaseException as e:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise DiffcodeError(f"{target.path}: write failed ({e.strerror or e})") from e
        raise


def _put_in_place(tmp_name: str, target: Target, overwrite: bool) -> None:
    """Rename over the target with `overwrite`; else hard-link, which refuses a file that appeared
    since the check (on a file system without hard links: a last check, then the rename)."""
    if overwrite:
        os.replace(tmp_name, target.file)
        return
    try:
        os.link(tmp_name, target.file)
    except FileExistsError:
        raise OutputExistsError(f"{target.path}: appeared while diffcode worked; pass overwrite (--force) to "
                                "replace it") from None
    except OSError:
        if target.file.exists():
            raise OutputExistsError(f"{target.path}: already exists; pass overwrite (--force) to replace it") from None
        os.replace(tmp_name, target.file)
        return
    os.unlink(tmp_name)

