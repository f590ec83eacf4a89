"""Train the shared MLP (1, 40, 40, 1) of the weights variant and write diffcode/data/weights_mlp.npz.

The recipe is `diffcode.families.weights.train.train_mlp` (the same as `diffcode train --variant
weights`): report 4.2's MLP, trained once on a centre crop of the first training image (kodim01)
jointly with a per-image CNN's encodings, after a regression on the normal quantile function.

    python experiments/train_weights_mlp.py [--crop 32 --steps 600 --out diffcode/data/weights_mlp.npz]

Prints the checkpoint's SHA-256; pin it as diffcode.families.weights.spec.MLP_SHA256.
"""

from __future__ import annotations

import argparse
import json

from diffcode.families.weights.train import CROP, IMAGE, STEPS, train_mlp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default=IMAGE)
    ap.add_argument("--crop", type=int, default=CROP)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--out", default="diffcode/data/weights_mlp.npz")
    args = ap.parse_args()
    ckpt = train_mlp(image=args.image, crop=args.crop, steps=args.steps, log=lambda m: print(m, flush=True))
    ckpt.save(args.out, overwrite=True)
    print(json.dumps(ckpt.meta))
    print(f"{args.out}: sha256 {ckpt.hash}")


if __name__ == "__main__":
    main()
