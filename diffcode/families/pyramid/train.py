"""Training the pyramid family's shared prior (float, torch).

    images -> every (level, phase) context of every pixel (`samples`) -> Adam on the mean bits
    per subpixel of random batches, cosine learning rate -> float32 arrays (`PyramidNet.arrays`)

`samples` also serves the per-image fit (`fit.py`), which bounds its memory with `max_targets`:
above it, only a uniform random subset of the targets is gathered, scaled to the whole image.

Training can stop and resume: a checkpoint (`save_checkpoint`) holds the weights, Adam's state,
the step, the numpy and torch random states, the settings (the schedule's total steps among
them) and a description of the data; a run resumed from it reaches the same weights, bit for bit,
as one that never stopped (on the same thread count). So a long schedule runs in legs.

The prior is shipped in the package (`diffcode/data/pyramid_prior.npz`) and named by its
SHA-256 in every file; `experiments/train_pyramid.py` records how it was made, and `data.py`
which images train and select it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ...errors import DiffcodeError
from . import engine, layout, spec
from .data import DataSpec, training_images, validation_images
from .layout import ORDERS
from .model import PyramidNet, phase_nats
from .network import input_integers, own_integers

LN2 = math.log(2)
DTYPES = (np.int16, np.int16, np.int16, np.uint8)  # inputs, own, base12, target
CHECKPOINT_VERSION = 1


@dataclass
class Samples:
    """Coded subpixel contexts of a set of images, per phase (int16 / uint8 numpy): every target's, or those of a
    uniform random subset of the targets (`samples` with `max_targets`) standing for all `image_targets`.

    A target is one pixel of a coded level (its three subpixels); the core (the coarsest levels) is not sampled."""

    inputs: list[np.ndarray]  # per phase (N, 72) int16
    own: list[np.ndarray]  # (N, 3) int16
    base12: list[np.ndarray]  # (N, 3) int16
    target: list[np.ndarray]  # (N, 3) uint8
    core_subpixels: int  # subpixels of the coarsest levels (coded flat, 8 bits each)
    image_targets: int | None = None  # coded targets of the images when these samples are a subset of them

    @property
    def targets(self) -> int:
        """Targets held here."""
        return sum(len(t) for t in self.target)

    @property
    def scale(self) -> float:
        """Targets of the images each target held here stands for (1.0 when every target is here)."""
        return self.image_targets / self.targets if self.image_targets else 1.0

    @property
    def subpixels(self) -> int:
        """Subpixels of the images (all of them, sampled or not)."""
        return 3 * (self.image_targets or self.targets) + self.core_subpixels


def coded_targets(height: int, width: int) -> int:
    """Targets of an image: every pixel but the core's is coded once (`layout`)."""
    core_height, core_width = layout.level_sizes(height, width)[-1]
    return height * width - core_height * core_width


def _parts(pixels: np.ndarray, level: int, rows: np.ndarray, cols: np.ndarray, ctx) -> list[np.ndarray]:
    """[inputs, own, base12, target] (in DTYPES) of targets (rows, cols) of a level's pixels, given their contexts."""
    target = pixels[rows, cols]
    parts = (input_integers(ctx, level), own_integers(target, ctx.base12), ctx.base12, target)
    return [part.astype(dtype) for part, dtype in zip(parts, DTYPES)]


def image_samples(image: np.ndarray, order: int = 1) -> tuple[list[list[np.ndarray]], int]:
    """Per phase [inputs, own, base12, target] (in DTYPES) of one (H, W, 3) uint8 image; core subpixel count."""
    phases = ORDERS[order]
    per_phase = [[[], [], [], []] for _ in range(len(phases))]
    levels = layout.pyramid(image)
    for level in range(len(levels) - 1):
        for phase in range(len(phases)):
            for rows, cols, ctx in layout.group_contexts(levels[level], phase, phases):
                if len(ctx) == 0:
                    continue
                for store, part in zip(per_phase[phase], _parts(levels[level], level, rows, cols, ctx)):
                    store.append(part)
    return per_phase, levels[-1].size


def samples(images: list[np.ndarray], order: int = 1, max_targets: int | None = None, seed: int = 0) -> Samples:
    """Contexts of the coded subpixels of `images` in the pyramid order `order`, concatenated per phase (each
    image's parts are stored in their final dtypes and freed as they are concatenated, so the peak stays near the
    result).

    max_targets: None (training), or the most targets to hold (the per-image fit): images with more targets in all
    give a uniform random subset of them instead (`sampled_samples`, seeded by `seed`). Images within the bound
    give every target, exactly as without it."""
    image_targets = sum(coded_targets(*image.shape[:2]) for image in images)
    if max_targets is not None and image_targets > max_targets:
        return sampled_samples(images, order, Fraction(max_targets, image_targets), np.random.default_rng(seed))
    n_phases = len(ORDERS[order])
    merged = [[[], [], [], []] for _ in range(n_phases)]
    core = 0
    for image in images:
        per_phase, n_core = image_samples(image, order)
        core += n_core
        for phase in range(n_phases):
            for store, parts in zip(merged[phase], per_phase[phase]):
                store.extend(parts)
    fields = [[_concatenate(merged[p][i], _widths(order)[i], DTYPES[i]) for p in range(n_phases)] for i in range(4)]
    return Samples(*fields, core_subpixels=core)


def sampled_targets(image: np.ndarray, order: int, share: Fraction, rng: np.random.Generator) -> list[list[tuple]]:
    """Per coded level [(phase, rows, cols, transposed)]: floor(share * n) of the n targets of each (level, phase,
    group), or of each chunk of one in the chunked orders (`layout.chunks`: no positions the size of the image are
    built), drawn by `rng` without replacement and kept in coding order."""
    phases, per_level = ORDERS[order], []
    for height, width in layout.level_sizes(*image.shape[:2])[:-1]:
        per_level.append([])
        for phase in range(len(phases)):
            for rows, cols, transposed in layout.chunks(height, width, phase, phases):
                pick = np.sort(rng.choice(len(rows), int(share * len(rows)), replace=False, shuffle=False))
                per_level[-1].append((phase, rows[pick], cols[pick], transposed))
    return per_level


def sampled_samples(images: list[np.ndarray], order: int, share: Fraction, rng: np.random.Generator,
                    chunk: int = 1 << 16) -> Samples:
    """`samples` of a uniform random subset of the targets (`sampled_targets`), standing for all of them: only
    their contexts are gathered, `chunk` targets at a time, straight into the arrays they end in (so the memory
    follows the subset, not the images). The floor leaves each group (or chunk) less than one target short of its
    share, so one scale for every sample (`Samples.scale`) counts each within 1 / share targets of its size."""
    picked = [sampled_targets(image, order, share, rng) for image in images]
    n_phases = len(ORDERS[order])
    sizes = [sum(len(rows) for per_level in picked for groups in per_level for p, rows, _, _ in groups if p == phase)
             for phase in range(n_phases)]
    fields = [[np.zeros((sizes[p], _widths(order)[i]), DTYPES[i]) for p in range(n_phases)] for i in range(4)]
    filled = [0] * n_phases
    for image, per_level in zip(images, picked):
        for level, (pixels, groups) in enumerate(zip(layout.pyramid(image), per_level)):
            pixels = np.ascontiguousarray(pixels)  # once per level, not per chunk
            for phase, rows, cols, transposed in groups:
                for start in range(0, len(rows), chunk):
                    r, c = rows[start:start + chunk], cols[start:start + chunk]
                    ctx = layout.contexts(pixels, phase, r, c, transposed, ORDERS[order])
                    for field, part in zip(fields, _parts(pixels, level, r, c, ctx)):
                        field[phase][filled[phase]:filled[phase] + len(r)] = part
                    filled[phase] += len(r)
    core = sum(layout.pyramid(image)[-1].size for image in images)
    return Samples(*fields, core_subpixels=core, image_targets=sum(coded_targets(*i.shape[:2]) for i in images))


def _widths(order: int) -> tuple[int, int, int, int]:
    """Columns of the inputs, own, base12 and target arrays of `Samples` in this order."""
    return spec.n_inputs(ORDERS[order].n_neighbours), 3, 3, 3


def _concatenate(parts: list[np.ndarray], width: int, dtype) -> np.ndarray:
    out = np.concatenate(parts) if parts else np.zeros((0, width), dtype)
    parts.clear()
    return out


def _batch(s: Samples, phase: int, index: np.ndarray, device: str) -> list[torch.Tensor]:
    return [torch.from_numpy(a[phase][index].astype(np.float32)).to(device) for a in (s.inputs, s.own, s.base12, s.target)]


def total_bits(net: PyramidNet, s: Samples, device: str = "cpu", chunk: int = 1 << 16) -> float:
    """Bits of the images under the float model (core subpixels at 8 bits): of every sample, times `s.scale`
    (1.0 unless the samples are a subset)."""
    total = 8.0 * s.core_subpixels
    with torch.no_grad():
        for phase in range(len(s.target)):
            for start in range(0, len(s.target[phase]), chunk):
                index = np.arange(start, min(start + chunk, len(s.target[phase])))
                total += s.scale * phase_nats(net.phases[phase], *_batch(s, phase, index, device)).sum().item() / LN2
    return total


def mean_bpsp(net: PyramidNet, s: Samples, device: str = "cpu") -> float:
    """Bits per subpixel of the images under the float model (core subpixels at 8 bits; `total_bits`)."""
    return total_bits(net, s, device) / s.subpixels


def validation(net: PyramidNet, val_set: Samples | dict[str, Samples], device: str = "cpu") -> dict:
    """{val_bpsp} of one set, or of named sets {val_NAME: each, val_bpsp: all together} (rounded to 1e-4)."""
    sets = val_set if isinstance(val_set, dict) else {}
    if not sets:
        return {"val_bpsp": round(mean_bpsp(net, val_set, device), 4)}
    bits = {name: total_bits(net, s, device) for name, s in sets.items()}
    row = {f"val_{name}": round(bits[name] / s.subpixels, 4) for name, s in sets.items()}
    row["val_bpsp"] = round(sum(bits.values()) / sum(s.subpixels for s in sets.values()), 4)
    return row


def batch_bits(net: PyramidNet, s: Samples, rng: np.random.Generator, batch: int, device: str) -> torch.Tensor:
    """Mean bits per subpixel of a random batch, phases drawn in proportion to their sizes."""
    sizes = np.array([len(t) for t in s.target], np.float64)
    total, count = 0.0, 0
    for phase in range(len(s.target)):
        if sizes[phase] == 0:
            continue
        n = max(1, int(round(batch * sizes[phase] / sizes.sum())))
        index = rng.integers(0, len(s.target[phase]), n)
        total = total + phase_nats(net.phases[phase], *_batch(s, phase, index, device)).sum()
        count += 3 * n
    return total / (count * LN2)


@dataclass
class TrainState:
    """Everything a training run carries from step to step (what a checkpoint holds)."""

    net: PyramidNet
    optimizer: torch.optim.Adam
    rng: np.random.Generator  # draws the batches
    generator: torch.Generator  # drew the initial weights
    step: int = 0  # steps done
    log: list = field(default_factory=list)
    running: list = field(default_factory=list)  # batch bits since the last log row
    seconds: float = 0.0  # training seconds of earlier legs


# settings of checkpoints made before they existed: all were of order 1, with one logistic per subpixel
SETTINGS_BEFORE = {"order": 1, "components": 1}


def learning_rate(lr: float, step: int, steps: int) -> float:
    """Cosine from `lr` at step 1 to lr/50 at step `steps`."""
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps)))


def _new_state(settings: dict, net: PyramidNet | None, device: str) -> TrainState:
    generator = torch.Generator().manual_seed(settings["seed"])
    net = (net or PyramidNet(settings["width"], settings["head"], generator, settings["order"],
                             settings["components"])).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=settings["lr"])
    return TrainState(net, optimizer, np.random.default_rng(settings["seed"]), generator)


def save_checkpoint(path: str | os.PathLike, state: TrainState, settings: dict, meta: dict | None = None) -> None:
    """Write the training state, the settings and `meta` (JSON: the data description, the legs) with torch.save,
    atomically (a temporary file renamed over `path`)."""
    payload = {"version": CHECKPOINT_VERSION, "settings": dict(settings), "step": state.step,
               "weights": state.net.state_dict(), "optimizer": state.optimizer.state_dict(),
               "rng": json.dumps(state.rng.bit_generator.state), "generator": state.generator.get_state(),
               "log": json.dumps(state.log), "running": json.dumps(state.running), "seconds": state.seconds,
               "meta": json.dumps(meta or {})}
    tmp = Path(f"{path}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by `save_checkpoint` (torch.load with weights_only: no code runs); `meta` parsed."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise DiffcodeError(f"{path} is not a readable pyramid training checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise DiffcodeError(f"{path} is not a pyramid training checkpoint of version {CHECKPOINT_VERSION}")
    return {**ckpt, "meta": json.loads(ckpt["meta"])}


def _restored_state(ckpt: dict, settings: dict, device: str) -> TrainState:
    ckpt["settings"] = {**SETTINGS_BEFORE, **ckpt["settings"]}
    if ckpt["settings"] != settings:
        differ = sorted(k for k in settings.keys() | ckpt["settings"].keys()
                        if settings.get(k) != ckpt["settings"].get(k))
        raise DiffcodeError(f"the checkpoint was made with other settings ({', '.join(differ)}): "
                            f"{ {k: ckpt['settings'].get(k) for k in differ} }")
    state = _new_state(settings, PyramidNet(settings["width"], settings["head"], torch.Generator(),
                                            settings["order"], settings["components"]), device)
    state.net.load_state_dict(ckpt["weights"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.rng.bit_generator.state = json.loads(ckpt["rng"])
    state.generator.set_state(ckpt["generator"])
    state.step, state.seconds = ckpt["step"], ckpt["seconds"]
    state.log, state.running = json.loads(ckpt["log"]), json.loads(ckpt["running"])
    return state


def _train_step(state: TrainState, train_set: Samples, settings: dict, device: str) -> float:
    state.step += 1
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(settings["lr"], state.step, settings["steps"])
    loss = batch_bits(state.net, train_set, state.rng, settings["batch"], device)
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    state.running.append(loss.item())
    return state.running[-1]


def _log_row(state: TrainState, seconds: float, val_set, settings: dict, device: str) -> None:
    """Append a log row at a log_every multiple or the schedule's last step; validation at val_every multiples
    and the last step."""
    step, steps = state.step, settings["steps"]
    if step % settings["log_every"] and step != steps:
        return
    row = {"step": step, "seconds": round(seconds, 1), "train_bpsp": round(float(np.mean(state.running)), 4)}
    state.running = []
    if val_set is not None and (step == steps or step % settings["val_every"] == 0):
        row.update(validation(state.net, val_set, device))
    state.log.append(row)


def train(train_set: Samples, val_set: Samples | dict[str, Samples] | None, *, steps: int, batch: int = 32768,
          lr: float = 3e-3, width: int = 64, head: int = 32, seed: int = 0, order: int = 1, components: int = 1,
          device: str = "cpu", net: PyramidNet | None = None, progress=None, log_every: int = 250, val_every: int | None = None,
          checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 0, resume: dict | None = None,
          until: int | None = None, meta: dict | None = None) -> tuple[PyramidNet, list[dict]]:
    """Adam on the mean bits of random batches; cosine learning rate from `lr` to lr/50 over `steps`.

    val_set: one Samples, or {name: Samples} scored separately (val_NAME) and together (val_bpsp), every
    `val_every` steps (default 4 * log_every) and at the schedule's last step.
    checkpoint: the training state is written there every `checkpoint_every` steps (if > 0) and where this run
    stops, with `meta` (JSON). resume: a `load_checkpoint` result to continue from; the settings must be its own.
    until: stop after this step (one leg); the learning rate schedule still spans `steps`.

    Returns the network and the log so far [{step, seconds (of training, all legs), train_bpsp (mean of the batches
    since the previous row), val_bpsp, ...}]."""
    settings = {"steps": steps, "batch": batch, "lr": lr, "width": width, "head": head, "seed": seed, "order": order,
                "components": components, "log_every": log_every, "val_every": val_every or 4 * log_every}
    state = _new_state(settings, net, device) if resume is None else _restored_state(resume, settings, device)
    last, start = min(until or steps, steps), time.perf_counter()
    while state.step < last:
        bits = _train_step(state, train_set, settings, device)
        if progress:
            progress(state.step, bits)
        _log_row(state, state.seconds + time.perf_counter() - start, val_set, settings, device)
        if checkpoint and (state.step == last or (checkpoint_every and state.step % checkpoint_every == 0)):
            save_checkpoint(checkpoint, _leg_done(state, start), settings, meta)
    state.seconds += time.perf_counter() - start
    return state.net, state.log


def _leg_done(state: TrainState, start: float) -> TrainState:
    """The state as a checkpoint records it: training seconds including this leg's so far."""
    return TrainState(state.net, state.optimizer, state.rng, state.generator, state.step, state.log, state.running,
                      state.seconds + time.perf_counter() - start)


def train_prior(*, steps: int = 6000, batch: int = 32768, lr: float = 3e-3, width: int = 64, head: int = 32,
                order: int = 1, components: int = 1, crop: int = 640, data: DataSpec | None = None, seed: int = 0, val_every: int | None = None,
                kodak_dir: str | None = None, photos_dir: str | None = None, log=print,
                checkpoint: str | None = None, checkpoint_every: int = 0, resume: str | None = None,
                until: int | None = None, meta: dict | None = None, online: int = 1, init: str | None = None):
    """Train a prior; by default the shipped one's recipe (Kodak's training split + centre crops of photos/train;
    `data` chooses other images, `crop` is used only without it). Validation: the fixed images of
    `data.py`'s `validation_images`, scored as val_kodak, val_photos and val_bpsp (both together).

    init: a prior file whose network the run starts from (a warm restart: a new optimizer and schedule; its
    width, head, order and components must be the settings').

    resume: a checkpoint path; training continues with the checkpoint's settings and data (rebuilt, and refused
    unless their pixels are the same), and the settings and data arguments are not used. `checkpoint`,
    `checkpoint_every`, `until` and `meta` (added to the checkpoint's) as in `train`.

    Returns (Prior of the weights where the run stopped, the training log). The prior's meta holds the data
    description, the settings, the step reached, the last validation, the quantization of the float32 engine
    (calibrated on the training samples) and the online adaptation its files are coded with (`online.SETTINGS`)."""
    from . import prior

    start = time.perf_counter()
    ckpt = load_checkpoint(resume) if resume else None
    settings = {**SETTINGS_BEFORE, **ckpt["settings"]} if ckpt else {
        "steps": steps, "batch": batch, "lr": lr, "width": width, "head": head, "seed": seed, "order": order,
        "components": components, "log_every": 250, "val_every": val_every or 1000}
    data = DataSpec.from_dict(ckpt["meta"]["data"]) if ckpt else (data or DataSpec(crop=crop))
    train_images, about = training_images(data, photos_dir, kodak_dir)
    if ckpt and about["pixels_sha256"] != ckpt["meta"]["data"]["pixels_sha256"]:
        raise DiffcodeError(f"the training images differ from the checkpoint's ({resume}): resuming would not "
                            f"continue the same run")
    train_set = samples(train_images, settings["order"])
    del train_images
    val_set = {name: samples(images, settings["order"]) for name, images in validation_images(photos_dir, kodak_dir).items()}
    log(f"training on {train_set.subpixels:,} subpixels, validating on "
        f"{', '.join(f'{k} {v.subpixels:,}' for k, v in val_set.items())}" + (f"; resuming at step {ckpt['step']}"
                                                                             if ckpt else ""))

    def progress(step: int, bits: float) -> None:
        if step % 250 == 0:
            log(f"step {step}/{settings['steps']}: {bits:.4f} bpsp (batch), {time.perf_counter() - start:.0f} s")

    run_meta = {**(ckpt["meta"] if ckpt else {}), **(meta or {}), "data": about}
    start_net = None
    if init and ckpt:
        raise DiffcodeError("--init starts a new schedule; a resumed run continues its checkpoint's")
    if init:
        initial = prior.load(init)
        phases = len({name.split(".")[1] for name in initial.arrays})
        width, head = (initial.arrays[f"phases.0.{n}.weight"].shape[0] for n in ("trunk1", "heads1.0"))
        components = (initial.arrays["phases.0.heads2.0.weight"].shape[0] + 1) // 3
        if (phases, width, head, components) != (len(ORDERS[settings["order"]]), settings["width"], settings["head"],
                                                 settings["components"]):
            raise DiffcodeError(f"--init {init}: its network (phases, width, head, components) "
                                f"{(phases, width, head, components)} is not the settings'")
        start_net = PyramidNet.from_arrays(initial.arrays, settings["order"])
        run_meta["init"] = initial.sha256
    net, rows = train(train_set, val_set, **settings, net=start_net, progress=progress, checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every, resume=ckpt, until=until, meta=run_meta)
    validated = [r for r in rows if "val_bpsp" in r]
    arrays = net.arrays()
    units = engine.calibrate(arrays, train_set, settings["order"])
    prior_meta = {**settings, "quant": engine.make_quant(arrays, units, settings["order"]), "online": online,
                  "data": about, "step": min(until or settings["steps"], settings["steps"]),
                  "validation_bpsp": validated[-1]["val_bpsp"] if validated else None,
                  "seconds": round(time.perf_counter() - start), "crop": data.crop,
                  "train": [s["folder"] for s in about["sources"]],
                  **({"init": run_meta["init"]} if "init" in run_meta else {})}
    return prior.from_bytes(prior.to_bytes(arrays, prior_meta)), rows
