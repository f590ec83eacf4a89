"""The encoder of the weights variant (report 4.2): Adam on one image's CNN weight encodings.

Each weight has a center in [0, 1) (a parameter); each group (an output channel, a bias, the
seed; see `diffcode.families.weights.spec`) has an entropy softplus(b) nats shared by its weights.
A weight's interval has width w = e^-entropy around its center (clamped to stay inside [0, 1)),
and, as in report 3.1.2, a uniform sample is drawn first and mapped into the interval, so
gradients reach centers and widths. The schedule of the preset:

1. `center_steps`: widths fixed at `init_entropy_bits`, loss = error table only (the report's
   3500 steps).
2. `width_steps`: centers and widths, loss = error table + encodings (the report's 2000).

   With `window` > 0 these two phases measure the error table on one random window a step
   (`random_window`: every pixel equally likely to be inside it, so the scaled cost is an unbiased
   estimate of the whole image's); every stage then runs only on what the window depends on.
3. `final_steps`: every group's width is fixed to the stored level, n = LEVELS[j] nearest to
   e^entropy, and the centers are fitted with those widths (1/n), so the entropy the fit reports
   is the entropy the file pays (sum log2 n, dithered storage).

Side information (the js) is not in the loss: it costs a few bytes per image.
"""

from __future__ import annotations

import math
import time
import numpy as np
import torch
import torch.nn.functional as F

from .. import Fit
from ...layers import fit_dtype_name
from . import model as wm
from . import spec as wv

LN2 = math.log(2.0)


def nearest_levels(entropy_nats: torch.Tensor) -> torch.Tensor:
    """int64 j with ln LEVELS[j] nearest to each entropy."""
    log_levels = torch.log(torch.from_numpy(wv.LEVELS.astype(np.float64))).to(entropy_nats)
    return (entropy_nats.detach()[:, None] - log_levels[None, :]).abs().argmin(dim=1)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def positions(centers: torch.Tensor, entropy: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled positions, clamped centers): intervals of width e^-entropy kept inside [0, 1)."""
    w = torch.exp(-entropy)
    c = torch.minimum(torch.maximum(centers, w / 2), 1 - w / 2)
    return (c if noise is None else c + (noise - 0.5) * w), c


def random_window(height: int, width: int, side: int,
                  generator: torch.Generator) -> tuple[tuple[int, int, int, int], float] | None:
    """((top, left, rows, cols), weight) of a random window of at most side x side pixels, or None
    (the whole image, nothing drawn) when side is 0 or such a window would cover the image.

    The window's top-left corner is uniform over every position where a side x side window (each
    side clipped to the image's) overlaps the image, and the window is then clipped to it: each
    pixel is inside with the same probability 1 / weight, so weight x the window's cost is an
    unbiased estimate of the whole image's. (Windows kept inside the image would see the centre
    far more often than the borders.)"""
    rows, cols = min(side, height), min(side, width)
    if side <= 0 or (rows, cols) == (height, width):
        return None
    top = int(torch.randint(height + rows - 1, (1,), generator=generator)) - (rows - 1)
    left = int(torch.randint(width + cols - 1, (1,), generator=generator)) - (cols - 1)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + rows, height), min(left + cols, width)
    return (y0, x0, y1 - y0, x1 - x0), (height + rows - 1) * (width + cols - 1) / (rows * cols)


def fit_tensors(image: np.ndarray, mlp: wm.MLP, p: wv.Preset, seed: int = 0, progress=None,
                train_mlp: bool = False, lr_mlp: float = 1e-3, device: str = "cpu",
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Run the preset's schedule on one uint8 (H, W, 3) image.

    generator: the initial centers' and the samples' source (CPU, so they are the same on any
    device; the convolutions' arithmetic may differ: `diffcode.layers.fit_dtype`); None: a new one
    seeded with `seed`.

    Returns:
        clamped centers float64 (N,), level indexes int64 (G,), history of {step, phase, bpsp,
        error_bpsp, encodings_bpsp}.
    """
    h, w, _ = image.shape
    specs = wv.layout(p)
    groups = torch.from_numpy(wv.group_of_weight(specs)).to(device)
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    target = torch.tensor(image).permute(2, 0, 1)[None].float().to(device)
    mlp = mlp.to(device)
    centers = torch.nn.Parameter((0.05 + 0.9 * torch.rand(len(groups), generator=g)).to(device))
    init = _inverse_softplus(p.init_entropy_bits * LN2)
    b = torch.nn.Parameter(torch.full((wv.n_groups(specs),), init, device=device))
    param_groups = [{"params": [centers], "lr": p.lr_centers}, {"params": [b], "lr": p.lr_widths}]
    if train_mlp:
        param_groups.append({"params": list(mlp.parameters()), "lr": lr_mlp})
    else:
        mlp.requires_grad_(False)
    opt = torch.optim.Adam(param_groups)
    per_bit = 1.0 / (3 * h * w * LN2)
    history, levels = [], None
    for step in range(p.steps):
        if step < p.center_steps:
            phase, entropy = 1, F.softplus(b.detach())
        elif step < p.center_steps + p.width_steps:
            phase, entropy = 2, F.softplus(b)
        else:
            if levels is None:
                levels = nearest_levels(F.softplus(b))
            phase, entropy = 3, torch.log(torch.from_numpy(wv.LEVELS.astype(np.float32))).to(device)[levels]
        entropy_w = entropy[groups]
        pos, _ = positions(centers, entropy_w, torch.rand(len(groups), generator=g).to(device))
        drawn = random_window(h, w, p.window, g) if phase < 3 else None
        window, weight = drawn if drawn is not None else (None, 1.0)
        out = wm.float_pass(wm.float_values(mlp, pos, specs), p, h, w, window)
        inward = p.inward_clamps and (p.inward_steps <= 0 or step < p.inward_steps)
        if window is None:
            err = wm.error_table_nats(target, out, inward)
        else:
            top, left, rows, cols = window
            err = wm.error_table_nats(target[..., top:top + rows, left:left + cols], out, inward) * weight
        enc = entropy_w.sum()
        loss = (err + (enc if phase > 1 else 0.0)) * per_bit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            centers.clamp_(0.0, 1.0 - 2.0**-24)
        rec = {"step": step, "phase": phase, "error_bpsp": err.item() * per_bit, "encodings_bpsp": enc.item() * per_bit}
        rec["bpsp"] = rec["error_bpsp"] + rec["encodings_bpsp"]
        history.append(rec)
        if progress is not None:
            progress(step, rec["bpsp"])
    if levels is None:
        levels = nearest_levels(F.softplus(b))
    levels, groups = levels.cpu(), groups.cpu()
    entropy_w = torch.log(torch.from_numpy(wv.LEVELS.astype(np.float64)))[levels][groups]
    _, c = positions(centers.detach().cpu().double(), entropy_w, None)
    mlp.requires_grad_(True)
    return c, levels, history


def fit_image(image: np.ndarray, mlp_ckpt: wv.MLPCheckpoint, p: wv.Preset, seed: int = 0,
              progress=None, device: str = "cpu", generator: torch.Generator | None = None) -> Fit:
    """Fit one uint8 (H, W, 3) image with the shipped (fixed) MLP.

    Arrays: `centers` float64 (N,) interval centers in [0, 1) in layout order, `level_index` int64
    (G,) the width level j of every group (n = LEVELS[j]).
    """
    t0 = time.perf_counter()
    c, levels, history = fit_tensors(image, wm.TableMLP(wm.mlp_of(mlp_ckpt)), p, seed, progress, device=device,
                                     generator=generator)
    arrays = {"centers": c.numpy(), "level_index": levels.numpy().astype(np.int64)}
    meta = {"conv_dtype": fit_dtype_name(p.conv_dtype, device)}  # what "auto" meant on this machine
    return Fit(wv.NAME, image, arrays, meta, mlp_ckpt.hash, p.name, seed, history, time.perf_counter() - t0)
