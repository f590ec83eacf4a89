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
from diffcode.errors import DecoderMismatchError, DiffcodeError, UsageError

# plain help (rich_markup_mode=None): the rich layout printed `--help <bool>` and `--force <bool>` for flags
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="diffcode: lossless image compression with differentiable entropy codes.")


# the registered model families (diffcode.families), by their header names
Variant = Enum("Variant", {name.replace("-", "_"): name for name in families.names()}, type=str)
DEFAULT_VARIANT = Variant("pyramid")  # the best family; --variant per-pixel and weights are the report's methods
DEVICE_HELP = "cpu, or cuda[:N] when present"
# the families' step counts, written out so that --help imports no family (tests/test_cli.py checks them)
STEPS_HELP = ("fit steps; the phases scale with them (default: the preset's, per-pixel 150; weights default 1000, "
              "report 5700, tiny 24; pyramid default 500, fast 150, instant 0)")
SEED_HELP = "seed of the fit's noise and of the stored file's shared randomness"
PRESET_HELP = "the variant's fit preset (pyramid: default, fast, instant; per-pixel: default; weights: default, report, tiny)"


def _family(variant):
    return families.get(variant.value)


def _model(variant, path: Optional[Path]):
    """The variant's shared model: its file at `path`, or the shipped one."""
    return _family(variant).load_model(path)


def _model_named(family, wanted: str, path: Optional[Path], what: str):
    """The shared model a fit or file names by its hash (hex, or a prefix): the one at `path` if it is
    that model, else the shipped one; so one --checkpoint serves a mix of families' fits and files."""
    for load in ([lambda: family.load_model(path)] if path else []) + [family.load_model]:
        try:
            model = load()
        except DiffcodeError:
            continue
        if model.hash.startswith(wanted):
            return model
    raise DecoderMismatchError(f"{what} was made with the {family.name} model (decoder) {wanted[:32]}, which is "
                               f"{'neither ' + str(path) + ' nor' if path else 'not'} the shipped one; pass it "
                               "with --checkpoint")


def _file_model(data: bytes, path: Optional[Path], name: Path):
    """The shared model a .dfc file's header names."""
    from diffcode import codec

    family, decoder_hash = codec.model_of(data)
    return _model_named(family, decoder_hash, path, f"{name}")


class Storage(str, Enum):
    """Storage schemes (diffcode.storage.schemes; `none` for families that store no encodings)."""

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


def _close_bars() -> None:
    """Close the progress bars still on screen, so that what is printed next starts its own line."""
    tqdm_module = sys.modules.get("tqdm")
    for bar in list(getattr(tqdm_module.tqdm, "_instances", ()) if tqdm_module else ()):
        bar.close()


def _fail(exc: Exception) -> None:
    _close_bars()
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


def _run(fn):
    """Call fn, turning diffcode's own errors into a one-line message and exit code 1 (any other
    exception is a bug and keeps its traceback)."""
    try:
        return fn()
    except DiffcodeError as exc:
        _fail(exc)


def _device(name: str) -> str:
    """Validate --device early, with a message a user can act on."""
    if name == "cpu":
        return name
    import torch  # only to ask about other devices: a cpu run of the pyramid family never imports it

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DiffcodeError(f"--device {name}: no CUDA device is available here; use --device cpu")
        return name
    raise DiffcodeError(f"--device {name}: expected cpu or cuda[:N]")


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise DiffcodeError(f"{path}: no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DiffcodeError(f"{path}: cannot read ({exc})") from exc


def _stage_bar(label: str):
    """A progress bar over the steps of a store, shown from the first one (a family that reports none
    shows none)."""
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(desc=label, unit="stage", file=sys.stderr, leave=False)
        bar.total = total
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


def _progress(total: int, label: str):
    """A progress bar over a fit's steps, shown from the first step (a fit refused before it starts
    shows none)."""
    from tqdm import tqdm

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
    steps: Optional[int] = typer.Option(None, min=1, help=STEPS_HELP),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help=SEED_HELP),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme the fit prepares for (default: the "
                                              "variant's: dither, or none for pyramid)"),
    out: Optional[Path] = typer.Option(None, help="fit file to write (default IMAGE.VARIANT.fit)"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace an existing output"),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
    preset: str = typer.Option("default", help=PRESET_HELP),
):
    """Fit the encodings of one image (the encoder) and write a fit file for `store`."""
    from diffcode import api, fitfile
    from diffcode.image import read_image_mode
    from diffcode.outputs import check_output

    def go():
        target = check_output(out or image.with_suffix(f".{variant.value}.fit"), overwrite, inputs=[image])
        array, color = read_image_mode(image)
        result = api.fit(array, variant=variant.value, model=_model(variant, checkpoint), color=color, preset=preset,
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
    out_dir: Optional[Path] = typer.Option(None, help="where to write the .dfc files (default: next to each fit)"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per file"),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the one the fit prepared for)"),
    budget: Optional[float] = typer.Option(None, help="randseed segment budget in nats (default 8)"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace existing outputs"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
):
    """Store fit files as compressed .dfc files; report theoretical entropy vs real size."""
    from diffcode import api, fitfile
    from diffcode.outputs import check_output, write_bytes_atomic

    def go():
        paths = fits or sorted(Path(".").glob("*.fit"))
        if not paths:
            raise DiffcodeError("no fit files given and none in the current directory")
        # IMAGE.VARIANT.fit -> IMAGE.VARIANT.dfc: fits of one image with both variants do not collide
        targets = [(out_dir or path.parent) / path.with_suffix(".dfc").name for path in paths]
        if len(set(targets)) != len(targets):
            twice = sorted({str(t) for t in targets if targets.count(t) > 1})
            raise DiffcodeError(f"two fit files would be stored to the same file ({', '.join(twice)}); rename one")
        for target in targets:  # every output, before any work
            check_output(target, overwrite, inputs=paths)
        models = {}
        for path, target in zip(paths, targets):
            result, _ = fitfile.load(path)
            key = (result.family, result.model_hash)
            model = models.get(key) or _model_named(families.get(result.family), result.model_hash, checkpoint, str(path))
            models[key] = model
            data, report = api.store(result, model=model, storage=storage.value if storage else None,
                                     budget_nats=budget, device=_device(device),
                                     progress=_stage_bar(f"store {path.name}"))
            write_bytes_atomic(target, data, overwrite=overwrite, inputs=paths)
            _print_report(str(target), report, json_out)

    _run(go)


def _print_report(name: str, report, json_out: bool, err: bool = False) -> None:
    """A size report (diffcode.codec.SizeReport): theoretical and real bytes of every section kind (on
    standard error with `err`: the file itself went to a device or pipe, perhaps standard output)."""
    echo = functools.partial(typer.echo, err=err)
    d = {"file": name, **report.as_dict()}
    if json_out:
        echo(json.dumps(d))
        return
    sub = 3 * d["height"] * d["width"]
    row = lambda label, b: f"  {label:<18} {b:>12,.0f} B  {8 * b / sub:7.4f} bpsp"  # noqa: E731
    kinds = report.by_kind()
    echo(f"{name}: {d['width']}x{d['height']} {d['variant']} / {d['storage']}")
    echo("  theoretical:")
    for kind, (_, theoretical) in kinds.items():
        echo(row(kind.replace("_", " "), theoretical))
    echo(row("total", d["theoretical_bytes"]))
    echo("  real file:")
    for kind, (real, _) in kinds.items():
        echo(row(kind.replace("_", " "), real))
    echo(row("header", d["header_bytes"]))
    echo(row("file", d["file_bytes"]) + f"   overhead {d['overhead_percent']:+.2f} %")


@app.command()
def decode(
    files: List[str] = typer.Argument(..., help=".dfc files, folders of them, or glob patterns"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="image to write for one file: .png, .bmp, .tif, "
                                       ".ppm (by its suffix), or - for PNG on standard output (default: FILE.png "
                                       "next to it, or in --out-dir)"),
    out_dir: Optional[Path] = typer.Option(None, help="folder for the decoded images (FILE.png each)"),
    jobs: int = typer.Option(1, min=1, help="files decoded in parallel local processes"),
    json_out: bool = typer.Option(False, "--json", help="a batch: one JSON object per file instead of the table"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace existing outputs"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
):
    """Restore the images of .dfc files, pixel for pixel (several files: a summary table at the end)."""
    from diffcode import batch, codec
    from diffcode.image import encode_image, output_format, write_image
    from diffcode.outputs import check_output, is_stream

    def one(file: Path, out: Path):
        to_stdout = str(out) == "-"
        if not to_stdout:
            output_format(out)
            check_output(out, overwrite, inputs=[file])
        data = _read(file)
        image, color = _named(file, lambda: codec.load_image(data, _file_model(data, checkpoint, file),
                                                             device=_device(device)))
        if to_stdout:
            sys.stdout.buffer.write(encode_image(image, color))
            sys.stdout.buffer.flush()
        else:
            write_image(out, image, color, overwrite=overwrite)
        typer.echo(f"{'standard output' if to_stdout else out}: {image.shape[1]}x{image.shape[0]} {color.mode}, "
                   "pixels verified against the file's checksum", err=to_stdout or is_stream(out))

    def go():
        sources = batch.expand_inputs(files, batch.DFC_SUFFIXES)
        if _single(files, sources, out_dir):
            return one(sources[0], out or sources[0].with_suffix(".png"))
        if out is not None:
            output_format(out)
        tasks = batch.plan(sources, ".png", out, out_dir, overwrite, device=_device(device),
                           options={"checkpoint": str(checkpoint.resolve()) if checkpoint else None})
        _run_batch(tasks, "decode", jobs, json_out, fit_steps=None)

    _run(go)


def _single(items: List[str], sources: List[Path], out_dir: Optional[Path]) -> bool:
    """One plain file named, no --out-dir: the single-file command (its own detailed output)."""
    return len(items) == 1 and len(sources) == 1 and Path(items[0]).is_file() and out_dir is None


def _run_batch(tasks, command: str, jobs: int, json_out: bool, fit_steps, scheduler: Optional[str] = None) -> None:
    """Run a batch with a bar across files (and, with one job, the current file's bar); print the
    summary table (or JSON lines); exit status 1 if any file failed, the others kept."""
    from tqdm import tqdm

    from diffcode import batch

    bar = tqdm(total=len(tasks), desc=command, unit="file", file=sys.stderr, leave=False)

    def on_done(outcome) -> None:
        bar.update(1)
        if not outcome.ok:
            bar.write(f"error: {outcome.error}", file=sys.stderr)

    def progress(task):
        name = Path(task.source).name
        if fit_steps is None:
            return None, None
        return _progress(fit_steps, name), _stage_bar(f"store {name}")

    outcomes = batch.run(tasks, command, jobs=jobs, scheduler=scheduler, on_done=on_done, progress_factory=progress)
    bar.close()
    _close_bars()
    verb = {"compress": "compressed", "decode": "decoded"}[command]
    for line in ([json.dumps(o.as_dict()) for o in outcomes] if json_out else batch.summary_lines(outcomes, verb)):
        typer.echo(line)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(code=1)


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
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
):
    """Print the header and section sizes of .dfc files and, by decoding, their theoretical entropy."""
    from diffcode import codec

    def go():
        for path in files:
            data = _read(path)
            d = {"file": str(path), **_named(path, lambda: codec.info(data))}
            if not header_only:
                d.update(_named(path, lambda: codec.analyze(data, _file_model(data, checkpoint, path),
                                                            device=_device(device))).as_dict())
            if json_out:
                typer.echo(json.dumps(d))
                continue
            typer.echo(f"{path}:")
            for key, value in d.items():
                if key not in ("file", "sections"):
                    typer.echo(f"  {key:<30} {value}")
            for i, s in enumerate(d["sections"]):
                typer.echo(f"  section {i:<3} {s['kind']:<12} {s['bytes']:>10,} B  crc32 {s['crc32']}")

    _run(go)


@app.command()
def compress(
    images: List[str] = typer.Argument(..., help="images, folders of images, or glob patterns"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help=".dfc file to write for one image (default: "
                                       "IMAGE.dfc next to it, or in --out-dir)"),
    out_dir: Optional[Path] = typer.Option(None, help="folder for the .dfc files (IMAGE.dfc each)"),
    jobs: int = typer.Option(1, min=1, help="images compressed in parallel local processes (each with "
                             "cores / N threads)"),
    scheduler: Optional[str] = typer.Option(None, help="run the images on this dask.distributed scheduler "
                                            "(host:port) instead of here"),
    steps: Optional[int] = typer.Option(None, min=1, help=STEPS_HELP),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help=SEED_HELP),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the variant's)"),
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace existing outputs"),
    json_out: bool = typer.Option(False, "--json", help="print the size report (a batch: one object per file) "
                                  "as JSON"),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
    variant: Variant = typer.Option(DEFAULT_VARIANT, help="encoding variant"),
    preset: str = typer.Option("default", help=PRESET_HELP),
):
    """Fit and store in one go (several images: a summary table at the end)."""
    from diffcode import api, batch
    from diffcode.image import read_image_mode
    from diffcode.outputs import check_output, is_stream, write_bytes_atomic

    def one(image: Path, out: Path):
        check_output(out, overwrite, inputs=[image])
        array, color = read_image_mode(image)
        model = _model(variant, checkpoint)
        result = api.fit(array, variant=variant.value, model=model, color=color, preset=preset, steps=steps, seed=seed,
                         storage=_storage(variant, storage), device=_device(device),
                         progress=_progress(_family(variant).fit_steps(preset, steps), image.name))
        data, report = api.store(result, model=model, device=_device(device), progress=_stage_bar(f"store {image.name}"))
        write_bytes_atomic(out, data, overwrite=overwrite, inputs=[image])
        _print_report(str(out), report, json_out, err=is_stream(out))

    def go():
        family = _family(variant)
        if preset not in family.presets:  # refused once, before any work, not once per image
            raise UsageError(f"the {family.name} variant has presets {', '.join(family.presets)}, not {preset!r}")
        if storage is not None and storage.value not in family.storages:
            raise UsageError(f"the {family.name} variant stores with {', '.join(family.storages)}, not {storage.value}")
        sources = batch.expand_inputs(images, batch.IMAGE_SUFFIXES)
        if _single(images, sources, out_dir) and not scheduler:
            return one(sources[0], out or sources[0].with_suffix(".dfc"))
        options = {"variant": variant.value, "preset": preset, "steps": steps, "seed": seed,
                   "storage": _storage(variant, storage), "checkpoint": str(checkpoint.resolve()) if checkpoint else None}
        _model(variant, checkpoint)  # a bad --checkpoint is refused once, before any work
        tasks = batch.plan(sources, ".dfc", out, out_dir, overwrite, device=_device(device), options=options)
        _run_batch(tasks, "compress", jobs, json_out, fit_steps=_family(variant).fit_steps(preset, steps),
                   scheduler=scheduler)

    _run(go)


@app.command()
def evaluate(
    images: List[str] = typer.Argument(None, help="image files or Kodak names (instead of --split)"),
    split: Optional[str] = typer.Option(None, help="Kodak split: train, val, test or all"),
    variant: Variant = typer.Option(DEFAULT_VARIANT, help="encoding variant"),
    storage: Optional[Storage] = typer.Option(None, help="storage scheme (default: the variant's)"),
    fit_storage: Optional[Storage] = typer.Option(None, help="scheme the fits prepare for (default: --storage)"),
    steps: Optional[int] = typer.Option(None, min=1, help=STEPS_HELP),
    crop: int = typer.Option(0, min=0, help="evaluate center crops of this side (0 = whole images)"),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help=SEED_HELP),
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
    device: str = typer.Option("cpu", help=DEVICE_HELP),
    checkpoint: Optional[Path] = typer.Option(None, help="the variant's shared model file, e.g. the decoder "
                                              "checkpoint (default: the shipped one)"),
    preset: str = typer.Option("default", help=PRESET_HELP),
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
    out: Optional[Path] = typer.Option(None, help="output stem (default experiments/results/baselines-SPLIT...)"),
    kodak_dir: Optional[Path] = typer.Option(None, help="folder with kodim01..24.png"),
):
    """Sizes, timings and checked round trips of raw, gzip, bzip2, xz, zstd, PNG, WebP, JPEG 2000, JPEG XL."""
    from diffcode import baselines as bl
    from diffcode import kodak

    def go():
        if bool(split) == bool(images):
            raise DiffcodeError("give either --split or a list of images")
        names = kodak.split(split) if split else list(images)
        rows = bl.run(names, kodak_dir=str(kodak_dir) if kodak_dir else None, patches=patches, grayscale=grayscale)
        stem = out or bl.default_stem(split or "images", patches, grayscale)
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
    out: Path = typer.Option(Path("per_pixel.npz"), help="checkpoint to write"),
    overwrite: bool = typer.Option(False, "--force", "--overwrite", help="replace an existing output"),
):
    """Train the variant's shared model (the per-pixel decoder: on the Kodak training split, selecting by
    validation bpsp)."""

    from diffcode.outputs import check_output

    def go():
        check_output(out, overwrite)
        model = _family(variant).train(steps=steps, crop=crop, kodak_dir=str(kodak_dir) if kodak_dir else None,
                                       log=typer.echo)
        model.save(out, overwrite=overwrite)
        typer.echo(f"{out}: {variant.value} model {model.hash[:16]}, validation "
                   f"{model.meta.get('validation_bpsp', float('nan')):.4f} bpsp")

    _run(go)


def main() -> None:
    """Entry point of the `diffcode` console command (pyproject.toml [project.scripts])."""
    app()


if __name__ == "__main__":
    main()
