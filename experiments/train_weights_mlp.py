"""Train the shared MLP (1, 40, 40, 1) of the weights variant and write diffcode/data/weights_mlp.npz.

As in report 4.2, the MLP is trained once on the first training image (kodim01): jointly with the
centers of a per-image CNN's encodings under the `default` preset's architecture, on a center
crop (to keep it to minutes), with the error table as the loss (phase 1 of the fit; widths fixed
at 8 bits). Before that it is initialised to the standard normal
quantile function, so that uniform positions give normally distributed weights.

    python experiments/train_weights_mlp.py [--crop 32 --steps 600 --out diffcode/data/weights_mlp.npz]

Prints the checkpoint's SHA-256; pin it as diffcode.families.weights.spec.MLP_SHA256.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from diffcode import kodak
from diffcode.families.weights.fit import fit_tensors
from diffcode.families.weights import spec as wv
from diffcode.families.weights import model as wm


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim01")
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--out", default="diffcode/data/weights_mlp.npz")
    args = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    mlp = wm.MLP()
    mse = init_quantile(mlp)
    print(f"quantile init: mse {mse:.4f}", flush=True)
    image = kodak.crop(kodak.load(args.image), args.crop)
    base = wv.PRESETS["default-v1"]  # the preset the shipped MLP was trained with
    # error-table phase only: with the encodings' cost in the loss, a crop this small makes the
    # best MLP a constant (no information in the encodings), which is useless for larger images
    p = dataclasses.replace(base, name="mlp-training", center_steps=args.steps - 2, width_steps=1, final_steps=1)

    def progress(step: int, bpsp: float) -> None:
        if step % 10 == 0 or step == p.steps - 1:
            print(f"step {step}: {bpsp:.4f} bpsp total ({time.perf_counter() - t0:.0f} s)", flush=True)

    _, _, history = fit_tensors(image, mlp, p, seed=0, progress=progress, train_mlp=True)
    meta = {"image": args.image, "crop": args.crop, "steps": args.steps, "preset": dataclasses.asdict(p),
            "final_bpsp": history[-1]["bpsp"], "seconds": time.perf_counter() - t0, "quantile_init_mse": mse}
    ckpt = wm.checkpoint_of(mlp, meta)
    ckpt.save(args.out, overwrite=True)
    print(json.dumps(meta))
    print(f"{args.out}: sha256 {ckpt.hash}")


if __name__ == "__main__":
    main()
