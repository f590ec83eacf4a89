"""Training the weights variant's shared MLP (1, 40, 40, 1), as in report 4.2 (float, torch).

    normal quantile function --regress--> MLP --jointly with the encodings' centers of one image's
    per-image CNN (the `default-v1` architecture), error table as the loss--> MLPCheckpoint

The MLP is trained once, on the first training image (kodim01), on a centre crop (to keep it to
minutes), with the error table as the loss (phase 1 of the fit; widths fixed at 8 bits): with the
encodings' cost in the loss, a crop this small makes the best MLP a constant (no information in
the encodings), which is useless for larger images. Before that it is initialised to the standard
normal quantile function, so that uniform positions give normally distributed weights.
`experiments/train_weights_mlp.py` made the shipped one (diffcode/data/weights_mlp.npz).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from . import model as wm
from . import spec as wv

IMAGE, CROP, STEPS = "kodim01", 32, 600  # the shipped MLP's recipe


def init_quantile(mlp: wm.MLP, steps: int = 500, seed: int = 0) -> float:
    """Regress the MLP on the standard normal quantile (clipped to +-3); returns the final MSE."""
    g = torch.Generator().manual_seed(seed)
    normal = torch.distributions.Normal(0.0, 1.0)
    opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
    for _ in range(steps):
        u = torch.rand(256, generator=g)
        loss = ((mlp(u) - normal.icdf(u.clamp(1e-3, 1 - 1e-3)).clamp(-3, 3)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def train_mlp(*, image: str = IMAGE, crop: int = CROP, steps: int = STEPS, kodak_dir: str | None = None,
              log=print, quantile_steps: int = 500) -> wv.MLPCheckpoint:
    """The shared MLP, trained with the shipped one's recipe (module docstring)."""
    from ... import kodak
    from .fit import fit_tensors

    torch.manual_seed(0)
    t0 = time.perf_counter()
    mlp = wm.MLP()
    mse = init_quantile(mlp, quantile_steps)
    log(f"quantile init: mse {mse:.4f}")
    pixels = kodak.crop(kodak.load(image, kodak_dir), crop)
    base = wv.PRESETS["default-v1"]  # the preset the shipped MLP was trained with
    p = dataclasses.replace(base, name="mlp-training", center_steps=steps - 2, width_steps=1, final_steps=1)

    def progress(step: int, bpsp: float) -> None:
        if step % 10 == 0 or step == p.steps - 1:
            log(f"step {step}: {bpsp:.4f} bpsp total ({time.perf_counter() - t0:.0f} s)")

    _, _, history = fit_tensors(pixels, mlp, p, seed=0, progress=progress, train_mlp=True)
    meta = {"image": image, "crop": crop, "steps": steps, "preset": dataclasses.asdict(p),
            "final_bpsp": history[-1]["bpsp"], "seconds": time.perf_counter() - t0, "quantile_init_mse": mse}
    return wm.checkpoint_of(mlp, meta)
