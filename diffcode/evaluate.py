"""Kodak evaluation: fit, store, decode and check every image; theoretical entropy vs real size.

    python cli.py evaluate --variant per-pixel --split test
    python cli.py evaluate --split val --crop 128 --steps 40 --jobs 2
    python cli.py evaluate --variant weights --preset default kodim17 kodim18

For every image the evaluation fits the encodings, stores them as a .dfc file, decodes the file
and compares the pixels with the original. It writes one row per image plus the mean to
`<out_dir>/kodak-<variant>-<split>.csv|md` (with the command and commit that made them), and
figures of each image next to them when `--figures` is on.

It is resumable. Each image's fit file, .dfc file, result row and figure maps are cached under
`<work_dir>/<variant>-<shared model hash>-<fit settings>/`, and an image whose row is cached is reused
unless `force` (store and decode again from the cached fit) or `refit` (fit again too). Fits are cached separately from stores, so the same fits can be stored again
with another storage scheme without refitting.

`jobs > 1` runs images in separate processes, each with `cpu_count // jobs` torch threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import families, kodak
from .errors import DiffcodeError, OutputExistsError, UsageError

# the table's columns, in order; each section kind the rows have adds its theoretical and real bytes
COLUMNS_HEAD = ["image", "height", "width", "storage"]
COLUMNS_TAIL = ["file_bytes", "overhead_percent", "theoretical_bpsp", "bpsp", "png_bytes", "png_bpsp", "webp_bpsp",
                "jxl_bpsp", "fit_seconds", "store_seconds", "decode_seconds", "bit_exact"]
NOT_COLUMNS = {"header_bytes", "fit_steps", "row_version"}
ROW_VERSION = 1  # bump when a cached row's meaning changes; older rows are recomputed


@dataclass(frozen=True)
class Job:
    """One image to evaluate (picklable, sent to worker processes)."""

    name: str  # row label, e.g. kodim17 or kodim17[256]
    source: str  # Kodak name or image path
    crop: int  # center crop side, 0 = whole image
    kodak_dir: str | None
    variant: str
    storage: str
    fit_storage: str  # the scheme the fit prepared for (usually `storage`; families without a choice take dither)
    steps: int | None
    seed: int
    checkpoint: str | None  # path, None = shipped
    cache: str  # directory of this evaluation's cached files
    threads: int
    device: str = "cpu"
    figures: bool = True
    preset: str = "default"  # the family's fit preset


def image_jobs(items: list[str], *, crop: int = 0, **kwargs) -> list[Job]:
    """Jobs for a list of split names, Kodak names and image paths (in order, no duplicates)."""
    sources: list[str] = []
    for item in items:
        key = {"val": "validation"}.get(item, item)
        for source in kodak.SPLITS.get(key) or [item]:
            if source not in sources:
                sources.append(source)
    names = [(Path(s).stem if _is_path(s) else kodak.image_name(s)) + (f"[{crop}]" if crop else "") for s in sources]
    if len(set(names)) != len(names):
        raise UsageError("two inputs have the same name; rename one of them")
    return [Job(name=n, source=s, crop=crop, **kwargs) for n, s in zip(names, sources)]


def _is_path(source: str) -> bool:
    return os.sep in source or "." in Path(source).name


def cache_dir(work_dir: Path, variant: str, model_hash: str, steps: int | None, seed: int, crop: int,
              fit_storage: str, preset: str | None = None) -> Path:
    """The directory of cached results for one shared model and fit setting (the preset is named
    for families that have more than one; a hash of what it stands for keys the cache)."""
    family = families.get(variant)
    named = preset and len(family.presets) > 1
    settings = json.dumps(family.preset_settings(preset or family.presets[0]), sort_keys=True, default=str)
    settings_hash = hashlib.sha256(settings.encode()).hexdigest()[:8]
    parts = [variant, model_hash[:12], settings_hash] + ([preset] if named else []) + [
        f"steps{steps}" if steps is not None else "default", f"seed{seed}", f"fit{fit_storage}"]
    if crop:
        parts.append(f"crop{crop}")
    return Path(work_dir) / "-".join(parts)


def table_name(variant: str, label: str, preset: str, crop: int, storage: str, fit_storage: str) -> str:
    """The default table name: kodak-VARIANT-SPLIT[-PRESET][-cropN][-STORAGE][-fitSTORAGE]; the preset is
    named for families that have more than one, the storage schemes when not the default."""
    family = families.get(variant)
    named = len(family.presets) > 1
    return (f"kodak-{variant}-{label}" + (f"-{preset}" if named else "") + (f"-crop{crop}" if crop else "")
            + ("" if storage == family.storages[0] else f"-{storage}")
            + ("" if fit_storage == storage else f"-fit{fit_storage}"))


def _load_image(job: Job) -> np.ndarray:
    from .image import read_image

    image = read_image(job.source) if _is_path(job.source) else kodak.load(job.source, job.kodak_dir)
    return kodak.crop(image, (job.crop, job.crop)) if job.crop else image


def _row_path(job: Job) -> Path:
    return Path(job.cache) / f"{job.name}.{job.storage}.json"


def cached_row(job: Job) -> dict | None:
    """The cached result row of a job, or None if it must be (re)computed."""
    path = _row_path(job)
    if not path.exists():
        return None
    try:
        row = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return row if row.get("row_version") == ROW_VERSION and row.get("bit_exact") is not None else None


def run_job(job: Job, progress: Callable[[int, float], None] | None = None) -> dict:
    """Fit (or reuse the cached fit), store, decode and check one image; returns its row."""
    import torch

    from . import codec, fitfile, jobs, parallel, report
    from .outputs import write_bytes_atomic

    torch.set_num_threads(job.threads)
    parallel.set_threads(job.threads)
    cache = Path(job.cache)
    cache.mkdir(parents=True, exist_ok=True)
    family = families.get(job.variant)
    model = family.load_model(job.checkpoint)
    image = _load_image(job)
    fit_path = cache / f"{job.name}.fit"
    fit = None
    if fit_path.exists():
        try:
            fit, _ = fitfile.load(fit_path)
        except DiffcodeError:
            fit = None
        if fit is not None and not (_fit_matches(fit, job, model.hash) and np.array_equal(fit.image, image)):
            fit = None
    if fit is None:
        fit = jobs.fit(image, variant=job.variant, model=model, preset=job.preset, steps=job.steps, seed=job.seed,
                      storage=job.fit_storage, progress=progress, device=job.device)
        fitfile.save(fit_path, fit, source=job.source, overwrite=True)
    t0 = time.perf_counter()
    data, rep = jobs.store(fit, model=model, storage=job.storage, verify=False, device=job.device)
    t1 = time.perf_counter()
    decoded = codec.decode_details(data, model, device=job.device)
    t2 = time.perf_counter()
    write_bytes_atomic(cache / f"{job.name}.{job.storage}.dfc", data, overwrite=True)
    h, w, _ = image.shape
    png = report.png_size(image)
    row = {"image": job.name, **rep.as_dict(), "png_bytes": png, "png_bpsp": report.bpsp(png, h, w),
           "fit_seconds": fit.seconds, "store_seconds": t1 - t0, "decode_seconds": t2 - t1,
           "bit_exact": bool(np.array_equal(decoded.image, image)), "source": job.source,
           "fit_steps": len(fit.history), "decoder": model.hash[:12], "row_version": ROW_VERSION}
    maps = family.maps(decoded) if job.figures else None
    if maps is not None:
        np.savez_compressed(cache / f"{job.name}.maps.npz", loc=maps["loc"].astype(np.float16),
                            bits=maps["bits"].astype(np.float16),
                            **{f"stage_bits_{k}": b for k, b in enumerate(maps["stage_bits"])})
    write_bytes_atomic(_row_path(job), json.dumps(row, indent=1).encode(), overwrite=True)
    return row


def model_hash(variant: str, path: str | Path | None = None) -> str:
    """The hash of the shared model a family's files depend on (its file at `path`, or the shipped one)."""
    return families.get(variant).load_model(path).hash


def _fit_matches(fit, job: Job, shared_hash: str) -> bool:
    """Whether a cached fit was made for this job's family, shared model, preset and seed (the cache
    directory's name holds the other settings)."""
    return (fit.family, fit.model_hash, fit.preset, fit.seed) == (job.variant, shared_hash, job.preset, job.seed)


def load_maps(job: Job) -> dict | None:
    """The figure maps cached by `run_job` (None if absent)."""
    path = Path(job.cache) / f"{job.name}.maps.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        n = sum(1 for k in z.files if k.startswith("stage_bits_"))
        return {"image": _load_image(job), "loc": z["loc"].astype(np.float32), "bits": z["bits"].astype(np.float32),
                "stage_bits": [z[f"stage_bits_{k}"] for k in range(n)]}


def _absolute(job: Job) -> Job:
    """The job with absolute paths, for workers whose working directory is not ours."""
    def absolute(path):
        return str(Path(path).resolve()) if path else path

    return replace(job, source=absolute(job.source) if _is_path(job.source) else job.source,
                   kodak_dir=absolute(job.kodak_dir), checkpoint=absolute(job.checkpoint), cache=absolute(job.cache))


def evaluate(jobs: list[Job], *, force: bool = False, refit: bool = False, n_jobs: int = 1,
             scheduler: str | None = None, on_row: Callable[[dict, bool], None] | None = None,
             progress_factory: Callable[[Job], Callable[[int, float], None]] | None = None) -> list[dict]:
    """Evaluate every job, reusing cached rows unless `force`; returns the rows in job order.

    `force` stores and decodes again from the cached fits; `refit` also refits.

    on_row(row, cached) is called as each image finishes; progress_factory(job) may return a
    per-step fit progress callback (used only with n_jobs == 1). scheduler: the address of a
    dask.distributed scheduler whose workers run the images (they read the images and write the
    cache themselves, so they need the same paths: one machine, or a shared file system).
    """
    force = force or refit
    rows: dict[str, dict] = {}
    todo = []
    for job in jobs:
        row = None if force else cached_row(job)
        if row is not None:
            rows[job.name] = row
            if on_row:
                on_row(row, True)
        else:
            todo.append(job)
    if force:
        for job in todo:
            _row_path(job).unlink(missing_ok=True)
            if refit:
                (Path(job.cache) / f"{job.name}.fit").unlink(missing_ok=True)
    failed = []

    def done(job: Job, row: dict) -> None:
        rows[job.name] = row
        if on_row:
            on_row(row, False)

    if not scheduler and (n_jobs <= 1 or len(todo) <= 1):
        for job in todo:
            done(job, run_job(job, progress_factory(job) if progress_factory else None))
    else:
        from .jobs import in_parallel

        threads = max(1, (os.cpu_count() or 1) // n_jobs)
        calls = [(job, (_absolute(job) if scheduler else replace(job, threads=threads),)) for job in todo]
        in_parallel(run_job, calls, jobs=n_jobs, scheduler=scheduler, done=done,
                    lost=lambda job, message: failed.append(f"{job.name}: {message}"))
    if failed:
        raise DiffcodeError(f"{len(failed)} of {len(jobs)} images failed ({'; '.join(failed)}); the others' rows are "
                            "cached, so running the same command again does only these")
    return [rows[job.name] for job in jobs]


def columns(rows: list[dict]) -> list[str]:
    """The table's columns for these rows: per section kind (in file order) its theoretical bytes,
    then its real bytes; then the family's own numeric columns."""
    keys = {k for row in rows for k in row}
    suffix = "_theoretical_bytes"
    kinds = list(dict.fromkeys(k[:-len(suffix)] for row in rows for k in row if k.endswith(suffix) and k != suffix[1:]))
    out = (COLUMNS_HEAD + [f"{k}_theoretical_bytes" for k in kinds] + ["theoretical_bytes"]
           + [f"{k}_bytes" for k in kinds] + COLUMNS_TAIL)
    extras = sorted(k for k in keys - set(out) - NOT_COLUMNS
                    if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows))
    return out + extras


def attach_baselines(rows: list[dict], table: Path | None) -> list[dict]:
    """Copy WebP and JPEG XL bpsp of whole (uncropped) images from a `cli.py baselines` table."""
    import csv

    if table is None or not Path(table).exists():
        return rows
    with open(table, newline="") as f:
        by_image = {r["image"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))}
    out = []
    for row in rows:
        ref = by_image.get(row["image"])
        extra = {}
        if ref and row.get("png_bpsp") is not None and abs(float(ref["png"]) - row["png_bpsp"]) < 1e-6:
            extra = {"webp_bpsp": float(ref["webp"]) if ref.get("webp") else None,
                     "jxl_bpsp": float(ref["jpegxl"]) if ref.get("jpegxl") else None}
        out.append({**row, **extra})
    return out


def with_mean(rows: list[dict]) -> list[dict]:
    """rows plus a 'mean' row over every numeric column (bit_exact: all of them)."""
    if len(rows) < 2:
        return list(rows)
    mean = {"image": "mean", "storage": rows[0].get("storage"), "bit_exact": all(r["bit_exact"] for r in rows)}
    for key in columns(rows):
        values = [r.get(key) for r in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            mean[key] = float(np.mean(values))
    return rows + [mean]


def check_tables(stem: Path, overwrite: bool = False, figures: bool = True) -> None:
    """Refuse, before any work, to replace an existing table (or its figures) unless `overwrite`:
    committed results in experiments/results/ must not be lost to a rerun."""
    stem = Path(stem)
    paths = [stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".csv")]
    paths += [stem.with_name(stem.name + "-figures")] if figures else []
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists and evaluate would replace it; pass --overwrite, or give "
                                "the table another --name or --out-dir")


def write_results(rows: list[dict], stem: Path, command: str, jobs: list[Job] | None = None,
                  figures: bool = True, baselines: Path | None = None) -> list[Path]:
    """Write the table (with the mean row) and, if asked, the figures; returns the figure paths.

    baselines: a `cli.py baselines` table whose WebP and JPEG XL columns are copied (None: none).
    """
    from . import report

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    rows = attach_baselines(rows, baselines)
    paths: list[Path] = []
    if figures and jobs:
        paths = _figures(rows, stem, jobs)
    report.write_table(with_mean(rows), stem, command, columns(rows))
    if paths:
        md = stem.with_name(stem.name + ".md")
        links = "\n".join(f"- [{p.name}]({p.relative_to(stem.parent)})" for p in paths)
        md.write_text(md.read_text() + "\nFigures:\n\n" + links + "\n")
    return paths


def _figures(rows: list[dict], stem: Path, jobs: list[Job]) -> list[Path]:
    try:
        from . import figures
    except ImportError:  # pragma: no cover - figures need matplotlib
        return []
    folder = stem.with_name(stem.name + "-figures")
    folder.mkdir(exist_ok=True)
    paths = []
    for job in jobs:
        maps = load_maps(job)
        if maps is not None:
            paths += figures.image_figures(maps, folder / job.name.replace("[", "-").replace("]", ""))
    plot = folder / "bpsp.png"
    figures.bpsp_plot(rows, plot, ours_key="bpsp", baseline_keys=("png_bpsp", "webp_bpsp", "jxl_bpsp"))
    return paths + [plot]
