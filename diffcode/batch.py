"""Many images, one command: batch compress and decode, here, in local processes or on Dask.

    inputs (files, folders, globs) --expand_inputs--> sources
    sources --plan--> tasks (source -> target, every target checked before any work)
    task + input bytes --compress_data / decode_data (here with per-step progress; in jobs=N
        spawned processes; or on a dask.distributed cluster)--> outcome + output bytes
    outcome: bytes, bpsp, seconds, bit-exact, or the one-line error of that file
    output bytes --written atomically by the process that runs the batch--> target

A file that fails (bad image, corrupt .dfc, ...) is reported and the batch goes on; what succeeded
is kept. Workers read and write no files: they get the input's bytes and return the output's, so
a worker that dies leaves nothing on disk, and cluster workers need no shared file system. An exception that is not a `DiffcodeError` is a bug: it is reported as
"internal error" with its type, not as bad input, and it fails that file only.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from .errors import DiffcodeError, UsageError

IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pbm", ".pnm", ".bmp", ".tif", ".tiff", ".webp")
DFC_SUFFIXES = (".dfc",)


@dataclass(frozen=True)
class Task:
    """One file of a batch (picklable: sent to worker processes)."""

    source: str
    target: str
    options: dict = field(default_factory=dict)  # compress: variant, preset, steps, seed, storage, checkpoint
    overwrite: bool = False
    device: str = "cpu"
    threads: int = 0  # torch threads in a worker process (0: leave as is)


@dataclass
class Outcome:
    """What became of one task: sizes and time, or the error that stopped it."""

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

    def as_dict(self) -> dict:
        return asdict(self)


def expand_inputs(items: list[str], suffixes: tuple[str, ...]) -> list[Path]:
    """Files, folders (their files with one of `suffixes`, sorted, not recursive) and glob patterns
    -> distinct paths in the order given. UsageError for an item that names nothing."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
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
         overwrite: bool = False, **task_fields) -> list[Task]:
    """One task per source: target `out` (one source only), else SOURCE_STEM + suffix in `out_dir`
    or next to the source. Every target is checked before any work (distinct, folder writable,
    not existing unless `overwrite`)."""
    from .outputs import check_output

    if out is not None and len(sources) != 1:
        raise UsageError(f"-o names one output, but {len(sources)} inputs are given; use --out-dir")
    targets = [out] if out is not None else [(out_dir or s.parent) / (s.stem + suffix) for s in sources]
    seen: dict[Path, Path] = {}
    for source, target in zip(sources, targets):
        if target in seen:
            raise UsageError(f"{seen[target]} and {source} would both be written to {target}; use separate folders")
        seen[target] = source
    for target in targets:
        check_output(target, overwrite, inputs=sources)
    return [Task(str(s), str(t), overwrite=overwrite, **task_fields) for s, t in zip(sources, targets)]


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
    """Fit and store the image file `source` (bytes); returns the outcome and the .dfc bytes (the
    store decodes its own file: bit-exact). Reads and writes no file, so it runs anywhere."""
    def work():
        from . import api, families
        from .image import read_image_data

        _threads(task)
        o = dict(task.options)
        t0 = time.perf_counter()
        array, color = read_image_data(source, task.source)
        family = families.get(o.get("variant", "per-pixel"))
        model = family.load_model(o.get("checkpoint"))
        result = api.fit(array, variant=family.name, model=model, color=color, preset=o.get("preset", "default"),
                         steps=o.get("steps"), seed=o.get("seed", 0), storage=o.get("storage"), device=task.device,
                         progress=progress)
        data, _ = api.store(result, model=model, device=task.device, progress=stage_progress)
        h, w, _ = array.shape
        return Outcome(task.source, task.target, ok=True, file_bytes=len(data), bpsp=8.0 * len(data) / (3 * h * w),
                       seconds=time.perf_counter() - t0, bit_exact=True, width=w, height=h), data

    return _guarded(work, task)


def decode_data(task: Task, source: bytes, progress=None, stage_progress=None) -> tuple[Outcome, bytes]:
    """Decode the .dfc file `source` (bytes); returns the outcome and the image file's bytes in the
    format task.target names (pixels checked against the file's hash: bit-exact)."""
    def work():
        from . import codec
        from .image import encode_image, output_format

        _threads(task)
        t0 = time.perf_counter()
        family, model_hash = codec.model_of(source)
        checkpoint = task.options.get("checkpoint")
        model = family.load_model(checkpoint) if checkpoint else None
        if model is not None and not model.hash.startswith(model_hash):
            model = None  # --checkpoint is another family's or another model: the file's shipped one
        image, color = codec.load_image(source, model, device=task.device)
        data = encode_image(image, color, output_format(task.target))
        h, w, _ = image.shape
        return Outcome(task.source, task.target, ok=True, file_bytes=len(source),
                       bpsp=8.0 * len(source) / (3 * h * w), seconds=time.perf_counter() - t0, bit_exact=True,
                       width=w, height=h), data

    return _guarded(work, task)


def _threads(task: Task) -> None:
    if task.threads:
        from . import fixedpoint

        fixedpoint.set_threads(task.threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(task.threads)
        else:  # a fit imports torch later, which reads this; a decode never pays the import
            os.environ["OMP_NUM_THREADS"] = str(task.threads)


WORKERS = {"compress": compress_data, "decode": decode_data}


def _read_source(task: Task) -> bytes | Outcome:
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
            write_bytes_atomic(task.target, data, overwrite=task.overwrite, inputs=[task.source])
        except DiffcodeError as exc:
            return replace(outcome, ok=False, error=str(exc))
    return outcome


def run(tasks: list[Task], command: str, *, jobs: int = 1, scheduler: str | None = None,
        on_done: Callable[[Outcome], None] | None = None,
        progress_factory: Callable[[Task], tuple] | None = None) -> list[Outcome]:
    """Run every task; returns the outcomes in task order. A failed file never stops the others.

    command: "compress" or "decode". jobs > 1: that many spawned local processes, each with
    cpu_count // jobs torch threads (the per-file progress bars need jobs == 1). scheduler: the
    address of a dask.distributed scheduler to run the files on (its workers need diffcode, not
    this machine's files: they get the input bytes and return the output bytes).
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
    if scheduler:
        _run_dask(worker, todo, sources, scheduler, done)
    elif jobs <= 1 or len(todo) <= 1:
        for task in todo:
            bars = progress_factory(task) if progress_factory else (None, None)
            done(task, *worker(task, sources.pop(task.target), *bars))
    else:
        import multiprocessing

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(worker, replace(task, threads=threads), sources.pop(task.target)): task
                       for task in todo}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    done(task, *future.result())
                except Exception as exc:  # the worker process died (killed, out of memory): this file only
                    done(task, _lost(task, exc), b"")
    return [outcomes[task.target] for task in tasks]


def _lost(task: Task, exc: BaseException) -> Outcome:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return Outcome(task.source, task.target, ok=False,
                   error=f"{task.source}: its worker failed ({type(exc).__name__}: {first_line})")


def _run_dask(worker, tasks: list[Task], sources: dict, scheduler: str, done) -> None:
    """The tasks on a dask.distributed cluster; a task whose worker dies is retried by the scheduler
    (`distributed.scheduler.allowed-failures` times) and then reported as failed."""
    from dask.distributed import as_completed as dask_completed

    with dask_client(scheduler) as client:
        futures = {client.submit(worker, task, sources.pop(task.target), pure=False): task for task in tasks}
        for future in dask_completed(futures):
            task = futures[future]
            try:
                done(task, *future.result())
            except Exception as exc:
                done(task, _lost(task, exc), b"")


CONNECT_SECONDS = 20  # how long to try to reach a scheduler before giving up


def dask_client(scheduler: str):
    """A client of the dask.distributed scheduler at `scheduler` (host:port or tcp://host:port)."""
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise UsageError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from exc
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the dask scheduler at {scheduler} ({exc})") from exc


def summary_lines(outcomes: list[Outcome], what: str) -> list[str]:
    """The summary table: one line per file (bytes of the .dfc, bpsp, seconds, bit-exact), then totals."""
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
                 f"{sum(o.seconds for o in outcomes):.1f} s")
    return lines
