"""Many images, one command: batch compress and decode, here, in local processes or on Dask.

    inputs (files, folders, globs) --expand_inputs--> sources
    sources --plan--> tasks (source -> target, every target checked before any work)
    task + input bytes --compress_data / decode_data (here with per-step progress; in jobs=N
        spawned processes; or on a dask.distributed cluster)--> outcome + output bytes
    outcome: bytes, bpsp, seconds, bit-exact, or the one-line error of that file
    output bytes --written atomically by the process that runs the batch--> target

A file that fails (bad image, corrupt .dfc, ...) is reported and the batch goes on; what succeeded
is kept. One file is a batch of one: the CLI's single-file commands and `--json` run through here
too, so every file has the same checks, the same model policy and the same keys. `-` as a source
is standard input and as a target standard output. Workers read and write no files: they get the input's bytes and return the output's, so
a worker that dies leaves nothing on disk, and cluster workers need no shared file system. An exception that is not a `DiffcodeError` is a bug: it is reported as
"internal error" with its type, not as bad input, and it fails that file only.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .errors import DiffcodeError, UsageError

IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pbm", ".pnm", ".bmp", ".tif", ".tiff", ".webp")
DFC_SUFFIXES = (".dfc",)
STDIO = "-"  # as a source: standard input; as a target: standard output


@dataclass(frozen=True)
class Task:
    """One file of a batch (picklable: sent to worker processes)."""

    source: str
    target: str
    options: dict = field(default_factory=dict)  # compress: variant, preset, steps, seed, storage, checkpoint, strip;
    # decode: checkpoint, strip (strip: leave the metadata out)
    overwrite: bool = False
    device: str = "cpu"
    threads: int = 0  # torch threads in a worker process (0: leave as is)


@dataclass
class Outcome:
    """What became of one task: sizes and time, or the error that stopped it.

    report: the file's keys as the single-file `--json` gives them (compress: the size report,
    `diffcode.codec.SizeReport.as_dict`; decode: variant, mode, size and the .dfc's bytes)."""

    source: str
    target: str
    ok: bool
    error: str = ""
    file_bytes: int = 0
    bpsp: float = float("nan")
    seconds: float = 0.0
    bit_exact: bool = False
    width: int = 0
    height: int = 0
    report: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """One `--json` object: `file` (the output written), `source`, `ok`, `error`, `seconds`,
        `bit_exact`, then the report's keys (for a failed file: no report)."""
        d = {"file": self.target, "source": self.source, "ok": self.ok, "error": self.error,
             "seconds": self.seconds, "bit_exact": self.bit_exact}
        if self.ok:
            d.update({"width": self.width, "height": self.height, "file_bytes": self.file_bytes, "bpsp": self.bpsp})
            d.update(self.report)
        return d


def expand_inputs(items: list[str], suffixes: tuple[str, ...], skipped: list[Path] | None = None) -> list[Path]:
    """Files, folders (their files with one of `suffixes`, sorted, not recursive) and glob patterns
    -> distinct paths in the order given; `-` (standard input) only alone. UsageError for an item that
    names nothing. A folder's other files are appended to `skipped` (for a note to the user)."""
    if STDIO in items:
        if len(items) > 1:
            raise UsageError("- (standard input) must be the only input")
        return [Path(STDIO)]
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            found = [p for p in files if p.suffix.lower() in suffixes]
            if skipped is not None:
                skipped += [p for p in files if p.suffix.lower() not in suffixes and not p.name.startswith(".")]
            if not found:
                raise UsageError(f"{item}: folder holds no {' / '.join(suffixes)} files")
        elif path.exists():
            found = [path]
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
            if not found:
                raise UsageError(f"{item}: no file matches")
        else:
            raise UsageError(f"{item}: no such file or folder")
        paths += [p for p in found if p not in paths]
    return paths


def plan(sources: list[Path], suffix: str, out: Path | None = None, out_dir: Path | None = None,
         overwrite: bool = False, skip_existing: bool = False, **task_fields) -> list[Task]:
    """One task per source: target `out` (one source only), else SOURCE_STEM + suffix in `out_dir`
    (created if missing) or next to the source; standard input goes to standard output unless `out`
    names a file. Every target is checked before any work (distinct, folder writable, not an input,
    not existing unless `overwrite`); with `skip_existing` a source whose target exists gets no task,
    so an interrupted batch continues where it stopped."""
    from .outputs import check_output, resolve

    if out is not None and out_dir is not None:
        raise UsageError("-o names the output of one file and --out-dir a folder for many; give one of them")
    if out is not None and len(sources) != 1:
        raise UsageError(f"-o names one output, but {len(sources)} inputs are given; use --out-dir")
    if overwrite and skip_existing:
        raise UsageError("--force replaces existing outputs and --skip-existing keeps them; give one of them")
    stdin = [Path(STDIO)] == sources
    if stdin and out_dir is not None:
        raise UsageError("standard input has no name to write in --out-dir; give -o FILE, or -o - (the default)")
    if out_dir is not None:
        _make_folder(out_dir)
    targets = [out] if out is not None else [Path(STDIO)] if stdin else [
        (out_dir or s.parent) / (s.stem + suffix) for s in sources]
    seen: dict[Path, Path] = {}
    for source, target in zip(sources, targets):
        if target in seen:
            raise UsageError(f"{seen[target]} and {source} would both be written to {target}; use separate folders")
        seen[target] = source
    pairs = list(zip(sources, targets))
    if skip_existing:
        pairs = [(s, t) for s, t in pairs if str(t) == STDIO or not resolve(t).exists]
    for _, target in pairs:
        if str(target) != STDIO:
            check_output(target, overwrite, inputs=sources)
    return [Task(str(s), str(t), overwrite=overwrite, **task_fields) for s, t in pairs]


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DiffcodeError(f"{folder}: cannot make the output folder ({e.strerror})") from e


def _guarded(work: Callable[[], tuple[Outcome, bytes]], task: Task) -> tuple[Outcome, bytes]:
    try:
        return work()
    except DiffcodeError as exc:
        message = str(exc) if str(exc).startswith(task.source) else f"{task.source}: {exc}"
        return Outcome(task.source, task.target, ok=False, error=message), b""
    except Exception as exc:  # a bug: this file fails, the batch goes on, and the report says which
        return Outcome(task.source, task.target, ok=False, error=f"{task.source}: internal error (a bug, please "
                       f"report it): {type(exc).__name__}: {exc}"), b""


def compress_data(task: Task, source: bytes, progress=None, stage_progress=None) -> tuple[Outcome, bytes]:
    """Fit and store the image file `source` (bytes) with the job runner (`diffcode.jobs.compress`);
    returns the outcome and the .dfc bytes (the store decodes its own file: bit-exact). Reads and
    writes no file, so it runs anywhere."""
    def work():
        from . import families, jobs
        from .image import read_image_meta

        _threads(task)
        o = dict(task.options)
        t0 = time.perf_counter()
        array, color, metadata = read_image_meta(source, task.source)
        variant = o["variant"]
        model = families.get(families.AUTO_MODEL if variant == families.AUTO else variant).load_model(
            o.get("checkpoint"))
        data, report = jobs.compress(array, variant=variant, model=model, color=color,
                                     metadata=None if o.get("strip") else metadata, preset=o.get("preset", "default"),
                                     steps=o.get("steps"), seed=o.get("seed", 0),
                                     storage=None if variant == families.AUTO else o.get("storage"),
                                     device=task.device, progress=progress, stage_progress=stage_progress)
        h, w, _ = array.shape
        return Outcome(task.source, task.target, ok=True, file_bytes=len(data), bpsp=8.0 * len(data) / (3 * h * w),
                       seconds=time.perf_counter() - t0, bit_exact=True, width=w, height=h,
                       report=report.as_dict()), data

    return _guarded(work, task)


def decode_data(task: Task, source: bytes, progress=None, stage_progress=None) -> tuple[Outcome, bytes]:
    """Decode the .dfc file `source` (bytes); returns the outcome and the image file's bytes in the
    format task.target names (pixels checked against the file's hash: bit-exact)."""
    def work():
        from . import codec, jobs
        from .image import encode_image, output_format

        _threads(task)
        t0 = time.perf_counter()
        family, model_hash = codec.model_of(source)
        model = jobs.model_named(family, model_hash, task.options.get("checkpoint"), task.source)
        image, color, metadata = codec.load_file(source, model, device=task.device, progress=stage_progress)
        data = encode_image(image, color, "PNG" if task.target == STDIO else output_format(task.target),
                            None if task.options.get("strip") else metadata)
        h, w, _ = image.shape
        return Outcome(task.source, task.target, ok=True, file_bytes=len(source),
                       bpsp=8.0 * len(source) / (3 * h * w), seconds=time.perf_counter() - t0, bit_exact=True,
                       width=w, height=h, report={"variant": family.name, "mode": color.mode}), data

    return _guarded(work, task)


def _threads(task: Task) -> None:
    if task.threads:
        from . import parallel

        parallel.set_threads(task.threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(task.threads)
        else:  # a fit imports torch later, which reads this; a decode never pays the import
            os.environ["OMP_NUM_THREADS"] = str(task.threads)


WORKERS = {"compress": compress_data, "decode": decode_data}


def _read_source(task: Task) -> bytes | Outcome:
    if task.source == STDIO:
        return sys.stdin.buffer.read()
    try:
        return Path(task.source).read_bytes()
    except OSError as exc:
        return Outcome(task.source, task.target, ok=False, error=f"{task.source}: cannot read ({exc.strerror})")


def _finish(task: Task, outcome: Outcome, data: bytes) -> Outcome:
    """Write a successful file's output (atomically: a failure leaves nothing); only the process that
    runs the batch writes, so a worker that dies leaves no file behind."""
    from .outputs import write_bytes_atomic

    if outcome.ok:
        try:
            if task.target == STDIO:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                write_bytes_atomic(task.target, data, overwrite=task.overwrite, inputs=[task.source])
        except DiffcodeError as exc:
            return replace(outcome, ok=False, error=str(exc))
    return outcome


def run(tasks: list[Task], command: str, *, jobs: int = 1, scheduler: str | None = None,
        on_done: Callable[[Outcome], None] | None = None,
        progress_factory: Callable[[Task], tuple] | None = None,
        on_note: Callable[[str], None] | None = None) -> list[Outcome]:
    """Run every task; returns the outcomes in task order. A failed file never stops the others.

    command: "compress" or "decode". jobs > 1: up to that many spawned local processes, each with
    cpu_count // jobs torch threads (the per-file progress bars need jobs == 1), and no more than the
    memory limit holds when each runs the largest file's predicted peak (`memory_jobs`; `on_note` is told
    when that lowers the count). scheduler: the address of a dask.distributed scheduler to run the files on
    (its workers need diffcode, not this machine's files: they get the input bytes and return the output bytes).
    progress_factory(task) -> (step progress, stage progress) callables, or Nones.
    """
    worker = WORKERS[command]
    outcomes: dict[str, Outcome] = {}

    def done(task: Task, outcome: Outcome, data: bytes) -> None:
        outcomes[task.target] = _finish(task, outcome, data)
        if on_done:
            on_done(outcomes[task.target])

    sources = {}
    for task in tasks:
        source = _read_source(task)
        if isinstance(source, Outcome):
            done(task, source, b"")
        else:
            sources[task.target] = source
    todo = [task for task in tasks if task.target in sources]
    if not scheduler and (jobs <= 1 or len(todo) <= 1):
        for task in todo:
            bars = progress_factory(task) if progress_factory else (None, None)
            done(task, *worker(task, sources.pop(task.target), *bars))
        return [outcomes[task.target] for task in tasks]
    from .jobs import in_parallel

    if not scheduler:
        fitting = memory_jobs(jobs, [peak_mib(task, sources[task.target], command) for task in todo])
        if fitting < min(jobs, len(todo)) and on_note:
            on_note(f"{fitting} file(s) at a time instead of {jobs}: {jobs} of the largest would need more memory "
                    "than the limit (--max-memory)")
        jobs = fitting
        threads = max(1, (os.cpu_count() or 1) // jobs)
        todo = [replace(task, threads=threads) for task in todo]
    calls = [(task, (task, sources.pop(task.target))) for task in todo]
    in_parallel(worker, calls, jobs=jobs, scheduler=scheduler, done=lambda task, result: done(task, *result),
                lost=lambda task, message: done(task, Outcome(task.source, task.target, ok=False,
                                                              error=f"{task.source}: {message}"), b""))
    return [outcomes[task.target] for task in tasks]


def peak_mib(task: Task, source: bytes, command: str) -> float:
    """The peak memory (MiB) the families' memory models predict for one file (`diffcode.limits`): the
    decode of a .dfc file, the fit and store of an image (with `auto`, of both candidates); 0 if its size
    cannot be read (its worker then reports why)."""
    from . import families, limits
    from .families import auto

    try:
        if command == "decode":
            from .storage import container

            header, _, _ = container.unpack_header(source)
            height, width, names, phases = header.height, header.width, [header.variant], ("decode",)
        else:
            import io

            from PIL import Image

            with Image.open(io.BytesIO(source)) as image:  # reads the header only
                width, height = image.size
            variant = task.options.get("variant", auto.NAME)
            names, phases = ([auto.CLASSIC, auto.MODEL] if variant == auto.NAME else [variant]), ("fit", "store")
        return max(limits.needed_mib(phase, height, width, families.get(name).memory)
                   for name in names for phase in phases)
    except Exception:  # noqa: BLE001 - not a file this batch can size: its worker gives the error
        return 0.0


def memory_jobs(jobs: int, peaks: list[float]) -> int:
    """How many of `jobs` local processes the memory limit holds (`limits.limit_mib`) when each needs the
    largest of `peaks` (MiB); at least 1 (a file too large even alone is refused by its own worker)."""
    from . import limits

    largest = max(peaks, default=0.0)
    if largest <= 0:
        return jobs
    return max(1, min(jobs, int(limits.limit_mib()[0] // largest)))


def summary_lines(outcomes: list[Outcome], what: str, wall_seconds: float) -> list[str]:
    """The summary table: one line per file (bytes of the .dfc, bpsp, seconds, bit-exact), then totals
    (the batch's wall time, not the sum of the files' times, which --jobs runs side by side)."""
    width = max([len(o.source) for o in outcomes] + [4])
    lines = [f"{'file':<{width}}  {'size':>9}  {'.dfc bytes':>12}  {'bpsp':>7}  {'seconds':>8}  bit-exact"]
    for o in outcomes:
        if o.ok:
            lines.append(f"{o.source:<{width}}  {f'{o.width}x{o.height}':>9}  {o.file_bytes:>12,}  {o.bpsp:7.4f}  "
                         f"{o.seconds:8.1f}  {'yes' if o.bit_exact else 'NO'}")
        else:
            lines.append(f"{o.source:<{width}}  FAILED: {o.error}")
    done = [o for o in outcomes if o.ok]
    total = sum(o.file_bytes for o in done)
    subpixels = sum(3 * o.width * o.height for o in done)
    mean = f"{8.0 * total / subpixels:.4f} bpsp overall" if subpixels else "no file"
    lines.append(f"{len(done)} of {len(outcomes)} files {what}, {total:,} bytes of .dfc files, {mean}, "
                 f"{wall_seconds:.1f} s")
    return lines
