"""The `diffcode` command (and `python cli.py`): train, fit, store, decode, info, compress, evaluate, baselines.

    python cli.py fit kodim17.png --variant per-pixel     # -> kodim17.per-pixel.fit
    python cli.py store                                   # every .fit here -> .dfc (kodim17.per-pixel.dfc)
    python cli.py decode kodim17.per-pixel.dfc -o out.png
    python cli.py info kodim17.per-pixel.dfc
    python cli.py compress kodim17.png -o kodim17.dfc     # fit + store
    python cli.py train --variant per-pixel               # train the shared decoder
    python cli.py evaluate --split test                   # Kodak table: entropy vs file size
    python cli.py baselines --split test                  # PNG, WebP, JPEG XL, ... on the same images
"""

from __future__ import annotations

import functools
import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from diffcode import families
from diffcode.errors import DiffcodeError
from diffcode.options import check_options

# plain help (rich_markup_mode=None): the rich layout printed `--help <bool>` and `--force <bool>` for flags
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="diffcode: lossless image compression with differentiable entropy codes.")


# the registered model families (diffcode.families), by their header names
Variant = Enum("Variant", {name.replace("-", "_"): name for name in families.names()}, type=str)
DEFAULT_VARIANT = Variant(families.DEFAULT)
# compress also takes `auto` (its default): the family that writes the smallest file (families/auto.py)
CompressVariant = Enum("CompressVariant", {families.AUTO: families.AUTO,
                                           **{n.replace("-", "_"): n for n in families.names()}}, type=str)
# Options that mean the same in every command that takes them are declared once, here; a command
# declares in its signature only the options whose help is its own (decode's and compress's --out,
# --out-dir and --jobs say what each writes: `duplicates` pairs those two signatures by shape, the
# declared typer boilerplate of two batch commands).
DEVICE_OPTION = typer.Option("cpu", help="cpu, or cuda[:N] when present")
# the families' presets and step counts from the registry, so that --help imports no family
STEPS_OPTION = typer.Option(None, min=1, help="fit steps; the phases scale with them (default: the preset's: "
                            f"{families.steps_help()})")
PRESET_OPTION = typer.Option("default", help=f"the variant's fit preset ({families.presets_help()})")
SEED_OPTION = typer.Option(0, min=0, max=2**32 - 1, help="seed of the fit's noise and of the stored file's shared "
                           "randomness")
# the memory cap (diffcode.limits): an image or file that would need more is refused before any work
MAX_MEMORY_OPTION = typer.Option(None, "--max-memory", metavar="GIB", help="refuse work that would need more than "
                                 "this many GiB (default 16, or $DIFFCODE_MAX_MEMORY; what is free limits too)")
STRIP_OPTION = typer.Option(False, "--strip", help="leave out the image's metadata (ICC profile, EXIF, XMP, text "
                            "chunks, dpi), kept by default")
QUIET_OPTION = typer.Option(False, "-q", "--quiet", help="print nothing but errors (and --json output)")
SKIP_EXISTING_OPTION = typer.Option(False, "--skip-existing", help="leave the files whose output exists alone and do "
                                    "the others (resumes an interrupted batch)")
OVERWRITE_OPTION = typer.Option(False, "--force", "--overwrite", help="replace existing outputs")
# every --checkpoint must name a file that exists: a missing one is refused before any work
CHECKPOINT_OPTION = typer.Option(None, exists=True, dir_okay=False, help="the variant's shared model file, e.g. the "
                                 "decoder checkpoint (default: the shipped one)")


def _family(variant):
    return families.get(variant.value)


def _model(variant, path: Optional[Path]):
    """The variant's shared model: its file at `path`, or the shipped one."""
    return _family(variant).load_model(path)


def _any_model(path: Optional[Path]) -> None:
    """Refuse, before any work, a --checkpoint for files of any family that no family can load (a file
    of another family's model is fine: it serves that family's files, the shipped models the rest)."""
    if path is None:
        return
    problems = []
    for name in families.names():
        try:
            families.get(name).load_model(path)
            return
        except DiffcodeError as exc:
            problems.append(str(exc))
    raise DiffcodeError(problems[0] if len(set(problems)) == 1 else
                        f"{path}: no variant can load it as its shared model ({problems[0]})")


def _file_model(data: bytes, path: Optional[Path], name: Path):
    """The shared model a .dfc file's header names (the job runner's policy: `diffcode.jobs.model_named`)."""
    from diffcode import codec, jobs

    family, decoder_hash = codec.model_of(data)
    return jobs.model_named(family, decoder_hash, str(path) if path else None, f"{name}")


class Storage(str, Enum):
    """Storage schemes (diffcode.families.per_pixel.schemes; `none` for families that store no encodings)."""

    dither = "dither"
    randseed = "randseed"
    none = "none"


def _storage(variant, storage) -> str:
    """The scheme asked for, or the family's own default (the first of `Family.storages`)."""
    return storage.value if storage else _family(variant).storages[0]




def _command_line() -> str:
    """The command as the user typed it, for the provenance of tables (`diffcode ...` or `python cli.py ...`)."""
    program = "diffcode" if Path(sys.argv[0]).name == "diffcode" else "python cli.py"
    return " ".join([program] + sys.argv[1:])


PROGRESS_ENV = "DIFFCODE_PROGRESS"  # "always" shows progress bars on any standard error, "never" on none


class _Show:
    """What the running command prints besides its results: progress bars only when standard error is
    a terminal (or $DIFFCODE_PROGRESS says otherwise), and nothing but errors with --quiet."""

    quiet = False

    @classmethod
    def bars(cls) -> bool:
        import os

        wanted = os.environ.get(PROGRESS_ENV, "auto")
        return not cls.quiet and (wanted == "always" or (wanted != "never" and sys.stderr.isatty()))


def _close_bars() -> None:
    """Close the progress bars still on screen, so that what is printed next starts its own line."""
    tqdm_module = sys.modules.get("tqdm")
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ()) if tqdm_module else ()):
        bar.close()


def _fail(exc: Exception) -> None:
    _close_bars()
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


BROKEN_PIPE_STATUS = 128 + 13  # as a process killed by SIGPIPE


def _run(fn):
    """Call fn, turning diffcode's own errors into a one-line message and exit code 1 (any other
    exception is a bug and keeps its traceback). A reader that closes standard output early
    (`diffcode info x.dfc | head`) ends the command quietly with status 141, as `cat` does."""
    try:
        return fn()
    except DiffcodeError as exc:
        _fail(exc)
    except BrokenPipeError:
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        raise typer.Exit(code=BROKEN_PIPE_STATUS)


def _cap_memory(gib: Optional[float]) -> None:
    from diffcode import limits

    limits.set_max_memory_gib(gib)  # None: back to $DIFFCODE_MAX_MEMORY or the default


def _device(name: str) -> str:
    """Validate --device early, with a message a user can act on (diffcode.options)."""
    from diffcode.options import check_device

    return check_device(name)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise DiffcodeError(f"{path}: no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DiffcodeError(f"{path}: cannot read ({exc})") from exc


def _stage_bar(label: str):
    """A progress bar over the work of a store or a decode (stages, or subpixels: the pyramid family), shown from
    the first report (a family that reports none shows none)."""
    if not _Show.bars():
        return None
    from tqdm import tqdm  # only when a bar can show (0.06 s of a decode)
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(desc=label, unit="", unit_scale=True, file=sys.stderr, leave=False)
        bar.total = total
        bar.update(done - bar.n)
        if done == total:  # the next report (another store of the same file) starts a new bar
            bar.close()
            bar = None

    return update


def _progress(total: int, label: str):
    """A progress bar over a fit's steps, shown from the first step (a fit refused before it starts
    shows none)."""
    if not _Show.bars():
        return None
    from tqdm import tqdm  # only when a bar can show
    bar = None

    def update(step: int, bpsp: float) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, desc=label, unit="step", file=sys.stderr, leave=False)
        bar.update(1)
        bar.set_postfix_str(f"{bpsp:.4f} bpsp")
        if step + 1 == total:
            bar.close()

    return update


@app.command()
def fit(
    image: Path = typer.Argument(..., help="PNG/PPM image to encode"),
    variant: Variant = typer.Option(DEFAULT_VARIANT, help="encoding variant"),
    steps: Optional[int] = STEPS_OPTION,
    device: str = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    storage: Optional[Storage] = typer.Option(None, help="storage scheme the fit prepares for (default: the "
                                              "variant's: dither, or none for pyramid)"),
    out: Optional[Path] = typer.Option(None, help="fit file to write (default IMAGE.VARIANT.fit)"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace an existing output"),
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    preset: str = PRESET_OPTION,
    max_memory: Optional[float] = MAX_MEMORY_OPTION,
):
    """Fit the encodings of one image (the encoder) and write a fit file for `store`."""
    from diffcode import fitfile, jobs
    from diffcode.image import read_image_mode
    from diffcode.outputs import check_output

    def go():
        _cap_memory(max_memory)
        check_options(variant.value, preset=preset, steps=steps, seed=seed, storage=storage.value if storage else None,
                      device=device)
        target = check_output(out or image.with_suffix(f".{variant.value}.fit"), overwrite, inputs=[image])
        array, color = read_image_mode(image)
        result = jobs.fit(array, variant=variant.value, model=_model(variant, checkpoint), color=color, preset=preset,
                          steps=steps, seed=seed, storage=_storage(variant, storage), device=_device(device),
                          progress=_progress(_family(variant).fit_steps(preset, steps), image.name))
        fitfile.save(target, result, source=str(image), overwrite=overwrite)
        last = result.history[-1] if result.history else {}
        typer.echo(f"{target}: {last.get('bpsp', float('nan')):.4f} bpsp after {len(result.history)} steps "
                   f"({result.seconds:.1f} s)")

    _run(go)


@app.command()
def store(
    fits: List[Path] = typer.Argument(None, help="fit files (default: every *.fit in the current directory); "
                                                 "IMAGE.VARIANT.fit is stored to IMAGE.VARIANT.dfc"),
    out_dir: Optional[Path] = typer.Option(None, help="folder for the .dfc files (made if missing; default: next to "
                                           "each fit)"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per file"),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the one the fit prepared for)"),
    budget: Optional[float] = typer.Option(None, help="randseed segment budget in nats (default 8)"),
    overwrite: bool = OVERWRITE_OPTION,
    device: str = DEVICE_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    max_memory: Optional[float] = MAX_MEMORY_OPTION,
):
    """Store fit files as compressed .dfc files; report theoretical entropy vs real size."""
    from diffcode import batch, fitfile, jobs
    from diffcode.outputs import write_bytes_atomic

    def go():
        _cap_memory(max_memory)
        paths = fits or sorted(Path(".").glob("*.fit"))
        if not paths:
            raise DiffcodeError("no fit files given and none in the current directory")
        # IMAGE.VARIANT.fit -> IMAGE.VARIANT.dfc: fits of one image with both variants do not collide; every
        # output is checked before any work, as compress and decode check theirs
        tasks = batch.plan(paths, ".dfc", out_dir=out_dir, overwrite=overwrite, device=_device(device))
        models = {}
        for path, task in zip(paths, tasks):
            result, _ = fitfile.load(path)
            key = (result.family, result.model_hash)
            models[key] = models.get(key) or jobs.model_named(families.get(result.family), result.model_hash,
                                                              str(checkpoint) if checkpoint else None, str(path))
            data, report = jobs.store(result, model=models[key], storage=storage.value if storage else None,
                                      budget_nats=budget, device=task.device, progress=_stage_bar(f"store {path.name}"))
            write_bytes_atomic(task.target, data, overwrite=overwrite, inputs=paths)
            _print_report({"file": task.target, **report.as_dict()}, json_out)

    _run(go)


def _print_report(d: dict, json_out: bool, err: bool = False) -> None:
    """A size report (the keys of diffcode.codec.SizeReport.as_dict, with `file`): theoretical and real
    bytes of every section kind (on standard error with `err`: the file itself went to standard
    output, a device or a pipe)."""
    echo = functools.partial(typer.echo, err=err)
    if json_out:
        echo(json.dumps(d))
        return
    if _Show.quiet:
        return
    sub = 3 * d["height"] * d["width"]
    row = lambda label, b: f"  {label:<18} {b:>12,.0f} B  {8 * b / sub:7.4f} bpsp"  # noqa: E731
    kinds = [key[:-len("_theoretical_bytes")] for key in d if key.endswith("_theoretical_bytes") and key != "theoretical_bytes"]
    echo(f"{d['file']}: {d['width']}x{d['height']} {d['variant']} / {d['storage']}")
    echo("  theoretical:")
    for kind in kinds:
        echo(row(kind.replace("_", " "), d[f"{kind}_theoretical_bytes"]))
    echo(row("total", d["theoretical_bytes"]))
    echo("  real file:")
    for kind in kinds:
        echo(row(kind.replace("_", " "), d[f"{kind}_bytes"]))
    echo(row("header", d["header_bytes"]))
    echo(row("file", d["file_bytes"]) + f"   overhead {d['overhead_percent']:+.2f} %")


@app.command()
def decode(
    files: List[str] = typer.Argument(..., help=".dfc files, folders of them, glob patterns, or - for standard input"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="image to write for one file: .png, .bmp, .tif, "
                                       ".ppm (by its suffix), or - for PNG on standard output (default: FILE.png "
                                       "next to it, or in --out-dir; standard output for standard input)"),
    out_dir: Optional[Path] = typer.Option(None, help="folder for the decoded images (FILE.png each; made if missing)"),
    jobs: int = typer.Option(1, min=1, help="files decoded in parallel local processes (fewer if N of the "
                             "largest would not fit in memory)"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per file instead of the text"),
    overwrite: bool = OVERWRITE_OPTION,
    skip_existing: bool = SKIP_EXISTING_OPTION,
    quiet: bool = QUIET_OPTION,
    device: str = DEVICE_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    max_memory: Optional[float] = MAX_MEMORY_OPTION,
    strip: bool = STRIP_OPTION,
):
    """Restore the images of .dfc files, pixel for pixel (several files: a summary table at the end)."""
    from diffcode import batch
    from diffcode.image import output_format

    def go():
        _cap_memory(max_memory)
        _Show.quiet = quiet
        sources = _sources(files, batch.DFC_SUFFIXES)
        _any_model(checkpoint)
        if out is not None and str(out) != batch.STDIO:
            output_format(out)  # a lossy or unknown suffix, before any work
        tasks = batch.plan(sources, ".png", out, out_dir, overwrite, skip_existing, device=_device(device),
                           options={"checkpoint": str(checkpoint.resolve()) if checkpoint else None, "strip": strip})
        _run_files(tasks, "decode", jobs, json_out, fit_steps=None, single=_single(files, sources, out_dir),
                   skipped=len(sources) - len(tasks))

    _run(go)


def _sources(items: List[str], suffixes) -> List[Path]:
    """The input files (see batch.expand_inputs), with a note for each folder's files of other kinds."""
    from diffcode import batch

    skipped: List[Path] = []
    sources = batch.expand_inputs(items, suffixes, skipped)
    if skipped and not _Show.quiet:
        names = ", ".join(str(p) for p in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        typer.echo(f"note: skipped {len(skipped)} file(s) without a {' / '.join(suffixes)} suffix: {names}", err=True)
    return sources


def _single(items: List[str], sources: List[Path], out_dir: Optional[Path]) -> bool:
    """One plain file (or standard input) named, no --out-dir: the single-file command (its own
    detailed output, no summary table)."""
    return len(items) == 1 and len(sources) == 1 and (items[0] == "-" or Path(items[0]).is_file()) and out_dir is None


def _to_stream(target: str) -> bool:
    """True if the output goes to standard output, a device or a pipe (messages then go to stderr)."""
    from diffcode.outputs import is_stream

    return target == "-" or is_stream(target)


def _run_files(tasks, command: str, jobs: int, json_out: bool, fit_steps, single: bool, skipped: int = 0,
               scheduler: Optional[str] = None) -> None:
    """Run the files (batch.run); with progress bars on a terminal (across files, and the current
    file's fit with one job); then one file's own report, or the summary table (or JSON lines, the
    same keys either way); exit status 1 if any file failed, the others kept."""
    import time

    from diffcode import batch

    if skipped and not _Show.quiet:
        typer.echo(f"note: {skipped} file(s) skipped, their outputs exist (--skip-existing)", err=True)
    bar = None if single else _files_bar(len(tasks), command)  # one file: no bar, and no tqdm import

    def on_done(outcome) -> None:
        if bar is not None:
            bar.update(1)
            if not outcome.ok:
                bar.write(f"error: {outcome.error}", file=sys.stderr)

    def progress(task):
        name = "standard input" if task.source == batch.STDIO else Path(task.source).name
        if jobs > 1:
            return None, None
        if command == "decode":
            return None, _stage_bar(f"decode {name}")
        return (None if fit_steps is None else _progress(fit_steps, name)), _stage_bar(f"store {name}")

    t0 = time.perf_counter()
    def note(text: str) -> None:
        if not _Show.quiet:
            typer.echo(f"note: {text}", err=True)

    outcomes = batch.run(tasks, command, jobs=jobs, scheduler=scheduler, on_done=on_done, progress_factory=progress,
                         on_note=note)
    if bar is not None:
        bar.close()
    _close_bars()
    if single and outcomes:
        return _one_file(outcomes[0], command, json_out)
    verb = {"compress": "compressed", "decode": "decoded"}[command]
    err = any(_to_stream(task.target) for task in tasks)  # the data went to stdout: the table goes to stderr
    if json_out:
        for o in outcomes:
            typer.echo(json.dumps(o.as_dict()), err=err)
    elif not _Show.quiet or not all(o.ok for o in outcomes):
        for line in batch.summary_lines(outcomes, verb, time.perf_counter() - t0):
            typer.echo(line, err=err)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(code=1)


def _files_bar(total: int, command: str):
    """A progress bar over a batch's files (shown on a terminal; its write() prints either way)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=command, unit="file", file=sys.stderr, leave=False, disable=not _Show.bars())


def _one_file(outcome, command: str, json_out: bool) -> None:
    """What a single-file compress or decode prints: its size report, or where the pixels went."""
    if not outcome.ok:
        _fail(outcome.error)
    err = _to_stream(outcome.target)
    if command == "compress":
        return _print_report(outcome.as_dict(), json_out, err=err)
    if json_out:
        typer.echo(json.dumps(outcome.as_dict()), err=err)
    elif not _Show.quiet:
        where = "standard output" if outcome.target == "-" else outcome.target
        typer.echo(f"{where}: {outcome.width}x{outcome.height} {outcome.report['mode']}, pixels verified against "
                   "the file's checksum", err=err)


def _named(path: Path, fn):
    """fn(), with the path in front of the messages of the errors it raises about the file."""
    try:
        return fn()
    except DiffcodeError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise type(exc)(f"{path}: {exc}") from exc


@app.command()
def info(
    files: List[Path] = typer.Argument(..., help=".dfc files"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per file"),
    header_only: bool = typer.Option(False, help="skip decoding (no theoretical entropy)"),
    device: str = DEVICE_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    max_memory: Optional[float] = MAX_MEMORY_OPTION,
):
    """Print the header and section sizes of .dfc files and, by decoding, their theoretical entropy."""
    from diffcode import codec

    def one(path: Path):
        data = _read(path)
        d = {"file": str(path), **_named(path, lambda: codec.info(data))}
        if not header_only:
            d.update(_named(path, lambda: codec.analyze(data, _file_model(data, checkpoint, path),
                                                        device=_device(device))).as_dict())
        if json_out:
            typer.echo(json.dumps(d))
            return
        typer.echo(f"{path}:")
        for key, value in d.items():
            if key not in ("file", "sections"):
                typer.echo(f"  {key:<30} {value}")
        for i, s in enumerate(d["sections"]):
            typer.echo(f"  section {i:<3} {s['kind']:<12} {s['bytes']:>10,} B  crc32 {s['crc32']}")

    def go():
        _cap_memory(max_memory)
        _any_model(checkpoint)
        failed = 0
        for path in files:  # a bad file is reported and the others still printed; exit status 1 at the end
            try:
                one(path)
            except DiffcodeError as exc:
                failed += 1
                typer.echo(f"error: {exc}", err=True)
        if failed:
            raise typer.Exit(code=1)

    _run(go)


@app.command()
def compress(
    images: List[str] = typer.Argument(..., help="images, folders of images, glob patterns, or - for standard input"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help=".dfc file to write for one image, or - for "
                                       "standard output (default: IMAGE.dfc next to it, or in --out-dir; standard "
                                       "output for standard input)"),
    out_dir: Optional[Path] = typer.Option(None, help="folder for the .dfc files (IMAGE.dfc each; made if missing)"),
    jobs: int = typer.Option(1, min=1, help="images compressed in parallel local processes (each with "
                             "cores / N threads; fewer if N of the largest would not fit in memory)"),
    scheduler: Optional[str] = typer.Option(None, help="run the images on this dask.distributed scheduler "
                                            "(host:port) instead of here"),
    steps: Optional[int] = STEPS_OPTION,
    seed: int = SEED_OPTION,
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the variant's)"),
    device: str = DEVICE_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    skip_existing: bool = SKIP_EXISTING_OPTION,
    quiet: bool = QUIET_OPTION,
    json_out: bool = typer.Option(False, "--json", help="print the size report (a batch: one object per file) "
                                  "as JSON"),
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    variant: CompressVariant = typer.Option(CompressVariant(families.AUTO), help="encoding variant (auto: the one that "
                                            "writes the smallest file, fitting the photo model only where it can win)"),
    preset: str = PRESET_OPTION,
    max_memory: Optional[float] = MAX_MEMORY_OPTION,
    strip: bool = STRIP_OPTION,
):
    """Fit and store in one go (several images: a summary table at the end)."""
    from diffcode import batch
    from diffcode import jobs as jobs_module

    def go():
        _cap_memory(max_memory)
        _Show.quiet = quiet
        family = check_options(variant.value, preset=preset, steps=steps, seed=seed,  # once, before any work
                               storage=storage.value if storage else None, device=device)
        if scheduler:
            jobs_module.check_scheduler(scheduler)
        sources = _sources(images, batch.IMAGE_SUFFIXES)
        options = {"variant": variant.value, "preset": preset, "steps": steps, "seed": seed,
                   "storage": storage.value if storage else family.storages[0], "checkpoint": str(checkpoint.resolve()) if checkpoint else None,
                   "strip": strip}
        family.load_model(checkpoint)  # a bad --checkpoint is refused once, before any work
        tasks = batch.plan(sources, ".dfc", out, out_dir, overwrite, skip_existing, device=_device(device),
                           options=options)
        _warn_suffix(out)
        _run_files(tasks, "compress", jobs, json_out, fit_steps=family.fit_steps(preset, steps),
                   single=_single(images, sources, out_dir), skipped=len(sources) - len(tasks), scheduler=scheduler)

    _run(go)


def _warn_suffix(out: Optional[Path]) -> None:
    """A warning for a .dfc file named like something else (`-o x.png` once looked like an image)."""
    if out is None or str(out) == "-" or _to_stream(str(out)) or out.suffix.lower() == ".dfc" or _Show.quiet:
        return
    typer.echo(f"warning: {out}: a diffcode file is written there whatever its suffix; name it .dfc so that it "
               "is not taken for an image", err=True)


@app.command()
def evaluate(
    images: List[str] = typer.Argument(None, help="image files or Kodak names (instead of --split)"),
    split: Optional[str] = typer.Option(None, help="Kodak split: train, val, test or all"),
    variant: Variant = typer.Option(DEFAULT_VARIANT, help="encoding variant"),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the variant's)"),
    fit_storage: Optional[Storage] = typer.Option(None, help="scheme the fits prepare for (default: --storage)"),
    steps: Optional[int] = STEPS_OPTION,
    crop: int = typer.Option(0, min=0, help="evaluate center crops of this side (0 = whole images)"),
    seed: int = SEED_OPTION,
    jobs: int = typer.Option(1, min=1, help="images evaluated in parallel processes"),
    scheduler: Optional[str] = typer.Option(None, help="evaluate the images on this dask.distributed scheduler "
                                            "(host:port); its workers must see --work-dir and the images"),
    force: bool = typer.Option(False, help="store and decode again images whose results are cached (reusing fits)"),
    overwrite: bool = typer.Option(False, help="replace an existing table (and its figures) of the same name"),
    refit: bool = typer.Option(False, help="also fit again"),
    figures: bool = typer.Option(True, help="write figures next to the table"),
    name: Optional[str] = typer.Option(None, help="table name (default kodak-VARIANT-SPLIT)"),
    out_dir: Path = typer.Option(Path("experiments/results"), help="where tables and figures go"),
    work_dir: Path = typer.Option(Path("runs/evaluate"), help="cache of fits, files and rows"),
    kodak_dir: Optional[Path] = typer.Option(None, help="folder with kodim01..24.png"),
    device: str = DEVICE_OPTION,
    checkpoint: Optional[Path] = CHECKPOINT_OPTION,
    preset: str = PRESET_OPTION,
    baselines: Path = typer.Option(Path("experiments/results/baselines-all.csv"),
                                   help="a `baselines` table to take WebP and JPEG XL sizes from (if it exists)"),
):
    """Fit, store, decode and check every image of a split; write a table of entropy vs file size."""
    from diffcode import evaluate as ev

    def go():
        if bool(split) == bool(images):
            raise DiffcodeError("give either --split or a list of images")
        if jobs < 1:
            raise DiffcodeError("--jobs must be at least 1")
        import torch
        from tqdm import tqdm

        scheme = _storage(variant, storage)
        fit_scheme = fit_storage.value if fit_storage else scheme
        cache = ev.cache_dir(work_dir, variant.value, ev.model_hash(variant.value, checkpoint), steps, seed, crop,
                             fit_scheme, preset)
        job_list = ev.image_jobs([split] if split else list(images), crop=crop,
                                 kodak_dir=str(kodak_dir) if kodak_dir else None, variant=variant.value,
                                 storage=scheme, fit_storage=fit_scheme, steps=steps, seed=seed,
                                 checkpoint=str(checkpoint) if checkpoint else None, cache=str(cache),
                                 threads=torch.get_num_threads(), device=_device(device),
                                 figures=figures, preset=preset)
        stem = out_dir / (name or ev.table_name(variant.value, split or "images", preset, crop, scheme, fit_scheme))
        ev.check_tables(stem, overwrite, figures)  # before any work
        bar = tqdm(total=len(job_list), desc="evaluate", unit="image", file=sys.stderr)

        def on_row(row: dict, cached: bool) -> None:
            bar.update(1)
            bar.write(f"{row['image']}: {row['theoretical_bpsp']:.4f} bpsp theoretical, {row['bpsp']:.4f} real "
                      f"({row['overhead_percent']:+.2f} %), PNG {row['png_bpsp']:.4f}, "
                      f"{'bit-exact' if row['bit_exact'] else 'NOT BIT-EXACT'}" + (" (cached)" if cached else ""))

        steps_total = _family(variant).fit_steps(preset, steps)
        rows = ev.evaluate(job_list, force=force, refit=refit, n_jobs=jobs, scheduler=scheduler, on_row=on_row,
                           progress_factory=lambda job: _progress(steps_total, f"fit {job.name}"))
        bar.close()
        command = _command_line()
        paths = ev.write_results(rows, stem, command, job_list, figures=figures, baselines=baselines)
        mean = ev.with_mean(rows)[-1]
        typer.echo(f"{stem}.md: {len(rows)} images, mean {mean['theoretical_bpsp']:.4f} bpsp theoretical, "
                   f"{mean['bpsp']:.4f} real, PNG {mean['png_bpsp']:.4f}; {len(paths)} figures")
        if not all(r["bit_exact"] for r in rows):
            raise DiffcodeError("some images did not decode bit-exactly (see the table)")

    _run(go)


@app.command()
def baselines(
    images: List[str] = typer.Argument(None, help="image files or Kodak names (instead of --split)"),
    split: Optional[str] = typer.Option(None, help="Kodak split: train, val, test or all"),
    patches: bool = typer.Option(False, help="code 32x64 patches separately (the LLM-compression critique's setting)"),
    grayscale: bool = typer.Option(False, help="code the Pillow 'L' luma instead of RGB"),
    codecs: Optional[str] = typer.Option(None, help="comma-separated codecs (default all: raw, gzip, ..., jpegxl, "
                                                     "cjxl-e7, cjxl-e9, cjxl-max; those missing here are reported)"),
    out: Optional[Path] = typer.Option(None, help="output stem (default experiments/results/baselines-SPLIT...)"),
    kodak_dir: Optional[Path] = typer.Option(None, help="folder with kodim01..24.png"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace existing tables"),
):
    """Sizes, timings and checked round trips of raw, gzip, bzip2, xz, zstd, PNG, WebP, JPEG 2000, JPEG XL
    (imagecodecs, and the cjxl/djxl tools when installed)."""
    from diffcode import baselines as bl
    from diffcode import kodak
    from diffcode.outputs import check_output

    def go():
        if bool(split) == bool(images):
            raise DiffcodeError("give either --split or a list of images")
        names = kodak.split(split) if split else list(images)
        chosen = [c.strip() for c in codecs.split(",")] if codecs else list(bl.CODEC_NAMES)
        unknown = [c for c in chosen if c not in bl.CODEC_NAMES]
        if unknown:
            raise DiffcodeError(f"unknown codec {', '.join(unknown)}; expected some of {', '.join(bl.CODEC_NAMES)}")
        stem = out or bl.default_stem(split or "images", patches, grayscale)
        for path in bl.output_paths(stem):  # every table, before any work
            check_output(path, overwrite)
        rows = bl.run(names, kodak_dir=str(kodak_dir) if kodak_dir else None, patches=patches, grayscale=grayscale,
                      codecs=chosen)
        command = _command_line()
        for path in bl.write(rows, stem, command, note=f"Libraries: {bl.library_versions()}."):
            typer.echo(str(path))
        for row in bl.summarize(rows):
            bpsp = "n/a" if row["mean_bpsp"] is None else f"{row['mean_bpsp']:.4f}"
            typer.echo(f"{row['codec']:9s} {bpsp:>8s} bpsp  {row['note'] or ''}")

    _run(go)


@app.command()
def train(
    variant: Variant = typer.Option(DEFAULT_VARIANT, help="encoding variant"),
    steps: Optional[int] = typer.Option(None, min=1, help="training steps"),
    crop: Optional[int] = typer.Option(None, min=1, help="side of the training crops"),
    kodak_dir: Optional[Path] = typer.Option(None, help="folder with kodim01..24.png"),
    out: Optional[Path] = typer.Option(None, help="model file to write (default VARIANT.npz, e.g. pyramid.npz)"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace an existing output"),
):
    """Train the variant's shared model with the shipped one's recipe: the pyramid prior (Kodak's
    training split and the photos of $DIFFCODE_PHOTOS), the per-pixel decoder (Kodak's training split),
    or the weights MLP (a crop of kodim01)."""

    from diffcode.outputs import check_output

    def go():
        target = check_output(out or Path(f"{variant.value.replace('-', '_')}.npz"), overwrite)
        model = _family(variant).train(steps=steps, crop=crop, kodak_dir=str(kodak_dir) if kodak_dir else None,
                                       log=typer.echo)
        model.save(target, overwrite=overwrite)
        selection = model.meta.get("validation_bpsp")
        typer.echo(f"{target}: {variant.value} model {model.hash[:16]}" +
                   (f", validation {selection:.4f} bpsp" if selection is not None else ""))

    _run(go)


def _version(value: bool) -> None:
    if value:
        from diffcode import __version__

        typer.echo(f"diffcode {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "-V", "--version", callback=_version, is_eager=True,
                                          help="print the version and exit")) -> None:
    """diffcode: lossless image compression with differentiable entropy codes."""


def main() -> None:
    """Entry point of the `diffcode` console command (pyproject.toml [project.scripts])."""
    app()


if __name__ == "__main__":
    main()
