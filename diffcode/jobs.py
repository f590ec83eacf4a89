"""The one job runner: an image to a checked .dfc file, whichever way it comes in.

    diffcode compress, one file or a batch (diffcode.batch) --+
    diffcode fit / store, diffcode evaluate ------------------+--> fit, store, compress here
    the Python API (diffcode.api) ----------------------------+

    options --check_options: UsageError before any work (no image read, no model loaded)
    image --memory check (limits) --Family.fit--> Fit
          --codec.store: memory check, Family.encode, the encoder decodes its own file--> .dfc bytes, SizeReport
    --> written atomically (outputs.write_bytes_atomic) by the one process that owns the target

`compress` is the whole job; `fit` and `store` are its two steps (the `fit` and `store` commands,
evaluate's cache of fits). The questions every path meets have one answer each:

- the shared model a fit or a file names by its hash (`model_named`): the --checkpoint if it is
  that model, else the family's default model if it is, else the shipped model of that hash (files
  and fits of earlier shipped models keep working), else DecoderMismatchError saying what to pass;
- where outputs go: every target is planned and checked before any work (`batch.plan`: distinct
  names, not an input, not existing unless --force), for compress, decode and store alike;
- many items (`in_parallel`): spawned local processes or a dask.distributed cluster; an item whose
  worker dies or raises costs that item only (`lost` gets a one-line message), the others go on.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from . import codec, families, limits, parallel
from .errors import DecoderMismatchError, DiffcodeError, UsageError
from .families import Fit, auto
from .image import ColorMode, image_and_mode
from .metadata import Metadata
from .options import check_options


def fit(image, *, variant: str = families.DEFAULT, model=None, color: ColorMode | None = None,
        preset: str = "default", steps: int | None = None, seed: int | None = None, generator=None,
        device: str = "cpu", progress=None, **options) -> Fit:
    """Fit one image: any input `diffcode.api` takes (a path, a PIL image, an array).

    Args:
        variant: the family (`diffcode.families.names()`; default `families.DEFAULT`).
        model: the family's shared model (decoder checkpoint, MLP, prior); None: the shipped one.
        preset: the family's fit preset (`Family.presets`).
        steps, seed: override the preset's values (steps >= 1).
        generator: torch.Generator of the fit's noise (None: one seeded with `seed`).
        color: the mode to give an RGB image back in (default: the input's own mode; L, 1 and P are coded
            as RGB); a different mode than a gray, black and white or palette input has is refused.
        progress: optional callable(step, bpsp).
        options: the family's own (e.g. storage, config).

    Raises UsageError, before any work, for options the CLI refuses (`diffcode.options.check_options`).
    """
    family = check_options(variant, preset=preset, steps=steps, seed=seed, storage=options.get("storage"),
                           device=device)
    image, color = _pixels(image, color)
    limits.check("fit", image.shape[0], image.shape[1], family.memory, device)
    model = model if model is not None else family.load_model()
    result = family.fit(image, model, preset=preset, steps=steps, seed=seed, generator=generator,
                        progress=progress, device=device, **options)
    result.color = color
    return result


def _pixels(image, color: ColorMode | None) -> tuple:
    """(uint8 (H, W, 3) pixels, the mode to keep): `color` if given and compatible with the input's mode."""
    image, mode = image_and_mode(image)
    if color is not None and mode != ColorMode() and color != mode:
        raise UsageError(f"image: mode {mode.mode}, but color says mode {color.mode}")
    return image, color or mode


def store(result: Fit, *, model=None, device: str = "cpu", progress=None, verify: bool = True,
          metadata: Metadata | None = None, **options) -> tuple[bytes, codec.SizeReport]:
    """A fit result -> (.dfc bytes, size report: theoretical bits vs real bytes per section).

    A fit stores with the storage it prepared for unless `storage` says otherwise (`budget_nats`:
    randseed's segment budget); `progress` is callable(done, total); `metadata` is kept in the file.
    The file is decoded before it is returned (`verify`), so a file that would decode wrong is never
    handed out.
    """
    check_options(result.family, storage=options.get("storage"), budget_nats=options.get("budget_nats"),
                  device=device)
    return codec.store(result, model, verify=verify, device=device, progress=progress, metadata=metadata,
                       **options)


def compress(image, *, variant: str = families.AUTO, model=None, color: ColorMode | None = None,
             metadata: Metadata | None = None, preset: str = "default", steps: int | None = None,
             seed: int | None = None, storage: str | None = None, budget_nats: float | None = None,
             device: str = "cpu", progress=None, stage_progress=None, **options) -> tuple[bytes, codec.SizeReport]:
    """Fit and store one image: (.dfc bytes, size report). Every option is checked before any work.

    variant: a family, or `families.AUTO` (the default): the family that writes the smallest file
    (`choose`). storage, budget_nats: the scheme the fit prepares for and stores with. progress:
    callable(step, bpsp) during the fit; stage_progress: callable(done, total) during the store.
    options: the family's own fit options (a named variant only).
    """
    if variant == families.AUTO:
        check_options(variant, preset=preset, steps=steps, seed=seed, storage=storage, budget_nats=budget_nats,
                      device=device)
        if options:
            raise UsageError(f"the {families.AUTO} variant takes no {', '.join(sorted(options))} option; name a variant")
        image, color = _pixels(image, color)
        return choose(image, preset=preset, steps=steps, seed=seed, device=device, progress=progress,
                      stage_progress=stage_progress, model=model, color=color, metadata=metadata)
    family = check_options(variant, preset=preset, steps=steps, seed=seed, storage=storage, device=device)
    budget = {}
    if budget_nats is not None:  # checked with the storage it goes with: the one named, else the variant's
        # default (a `config` option may name another: the family's encode checks that case)
        check_options(variant, storage=storage or (None if "config" in options else family.storages[0]),
                      budget_nats=budget_nats)
        budget = {"budget_nats": budget_nats}
    model = model if model is not None else family.load_model()
    result = fit(image, variant=variant, model=model, color=color, preset=preset, steps=steps, seed=seed,
                 storage=storage, device=device, progress=progress, **options)
    return store(result, model=model, device=device, progress=stage_progress, metadata=metadata, **budget)


def choose(image, *, preset: str = "default", steps: int | None = None, seed: int | None = None,
           device: str = "cpu", progress=None, stage_progress=None, model=None, color: ColorMode | None = None,
           metadata: Metadata | None = None) -> tuple[bytes, codec.SizeReport]:
    """The mode decision (`diffcode.families.auto`): (the smallest .dfc bytes, its size report) of
    the classic family's file (unless `auto.outclassed`), the photo model's unfitted (`instant`) file and, where
    `auto.worth_fitting` says it can win, the photo model fitted with `preset`.
    model: the photo model's shared model (None: the shipped one); metadata: kept in the file."""
    family = check_options(auto.NAME, preset=preset, steps=steps, seed=seed, device=device)

    def classic():
        return store(fit(image, variant=auto.CLASSIC, color=color), metadata=metadata)

    # the classic file is made only when its estimate says it can win (`auto.outclassed`: on a photo its LZMA2 pass
    # would be most of an `instant` compress); with a second thread the estimate runs beside the photo model, and
    # the files are the same either way
    pending = _in_thread(lambda: auto.classic_estimate(image)) if parallel.threads() > 1 else None
    model = model if model is not None else family.load_model()
    instant = fit(image, variant=auto.MODEL, model=model, color=color, preset="instant", seed=seed, device=device)
    instant = store(instant, model=model, device=device, progress=stage_progress, metadata=metadata)
    estimate = pending.result() if pending else auto.classic_estimate(image)
    candidates = [instant] if auto.outclassed(estimate, len(instant[0])) else [classic(), instant]
    if family.fit_steps(preset, steps) > 0 and (
            len(candidates) == 1 or auto.worth_fitting(len(candidates[1][0]), len(candidates[0][0]))):
        fitted = fit(image, variant=auto.MODEL, model=model, color=color, preset=preset, steps=steps, seed=seed,
                     device=device, progress=progress)
        candidates.append(store(fitted, model=model, device=device, progress=stage_progress, metadata=metadata))
    return min(candidates, key=lambda candidate: len(candidate[0]))


def _in_thread(work: Callable[[], Any]):
    """A future of work() running in a new thread (its exception is raised by .result())."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="diffcode-choose")
    future = pool.submit(work)
    pool.shutdown(wait=False)  # the thread ends with its work
    return future


def model_named(family, wanted: str, checkpoint: str | None, what: str):
    """The shared model a fit or file names by its hex hash (a fit's 64 digits, a header's 32): the model
    at `checkpoint` if it is that one (a --checkpoint of another family's model serves that family's
    files, so it is passed over here), else the family's default model if it is, else the shipped model
    of that hash. DecoderMismatchError, naming `what`, if none is."""
    loaders = [lambda: family.load_model(checkpoint)] if checkpoint else []
    for load in loaders + [family.load_model, lambda: family.find_model(wanted)]:
        try:
            model = load()
        except DiffcodeError:
            continue
        if model is not None and model.hash.startswith(wanted):
            return model
    raise DecoderMismatchError(f"{what} was made with the {family.name} model (decoder) {wanted[:32]}, which is "
                               f"{'neither ' + str(checkpoint) + ' nor' if checkpoint else 'not'} a shipped one; "
                               "pass it with --checkpoint")


def in_parallel(worker: Callable, calls: list[tuple[Any, tuple]], *, done: Callable[[Any, Any], None],
                lost: Callable[[Any, str], None], jobs: int = 1, scheduler: str | None = None) -> None:
    """worker(*args) for every (item, args) of `calls`, in `jobs` spawned local processes or, with
    `scheduler`, on that dask.distributed cluster (which retries an item whose worker dies
    `distributed.scheduler.allowed-failures` times). done(item, result) as each finishes; lost(item,
    message) for an item whose worker died (killed, out of memory) or raised: a one-line message
    ("its worker failed (...)"), and the other items go on."""
    if scheduler:
        from dask.distributed import as_completed as dask_completed

        with dask_client(scheduler) as client:
            futures = {client.submit(worker, *args, pure=False): item for item, args in calls}
            _collect(dask_completed(futures), futures, done, lost)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed  # only here: a process pool costs imports

    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(worker, *args): item for item, args in calls}
        _collect(as_completed(futures), futures, done, lost)


def _collect(finished, futures: dict, done, lost) -> None:
    for future in finished:
        item = futures[future]
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - the worker died or raised: this item only
            first_line = (str(exc).strip().splitlines() or [""])[0]
            lost(item, f"its worker failed ({type(exc).__name__}: {first_line})")
            continue
        done(item, result)


CONNECT_SECONDS = 20  # how long to try to reach a scheduler before giving up
SCHEDULER_ADDRESS = re.compile(r"^(tcp://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


def check_scheduler(scheduler: str) -> str:
    """`scheduler` if it is host:port or tcp://host:port (the port 1..65535); UsageError otherwise,
    before any connection is tried."""
    match = SCHEDULER_ADDRESS.match(scheduler)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise UsageError(f"--scheduler {scheduler!r}: expected host:port or tcp://host:port, e.g. tcp://127.0.0.1:8786")
    return scheduler


def dask_client(scheduler: str):
    """A client of the dask.distributed scheduler at `scheduler` (host:port or tcp://host:port)."""
    check_scheduler(scheduler)
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise UsageError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from exc
    try:
        return Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"cannot reach the dask scheduler at {scheduler} ({first_line})") from exc
