"""Train the pyramid family's shared prior and write its training record.

    python experiments/train_pyramid.py --steps 6000 --out /tmp/prior.npz --name w64 [--photos ../shared/photos]

The recipe is `diffcode.families.pyramid.train.train_prior` (the same as `diffcode train --variant
pyramid`): Kodak's training split plus centre crops of the training photos; selection on Kodak's
validation split plus the validation photos (float model, every coded subpixel, coarsest level at
8 bits). Writes the prior and experiments/results/train_pyramid[-NAME].md|csv with the command,
commit, data, steps, time and the validation curve. Runs on one thread by default: on a 2-core
machine shared with other jobs, two torch threads were 10x slower per step (oversubscription).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from diffcode.families.pyramid.train import train_prior

RESULTS = Path(__file__).resolve().parent / "results"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32768)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--head", type=int, default=32)
    parser.add_argument("--photo-crop", type=int, default=640)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--photos", default=str(PHOTOS))
    parser.add_argument("--name", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prior, rows = train_prior(steps=args.steps, batch=args.batch, lr=args.lr, width=args.width, head=args.head,
                              crop=args.photo_crop, photos_dir=args.photos, log=lambda m: print(m, flush=True))
    prior.save(args.out)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "python " + " ".join(sys.argv)
    meta = prior.meta
    stem = RESULTS / f"train_pyramid{'-' + args.name if args.name else ''}"
    lines = ["# Pyramid prior training\n",
             f"Command: `{command}` at commit {commit}; {meta['seconds']} s wall, {args.threads} thread(s), "
             "2-core CPU (other jobs may have shared it).\n",
             f"Training: {', '.join(meta['train'])}. Validation (logged; the last step is kept): "
             f"{', '.join(meta['validation'])}.\n",
             f"Prior: `{args.out}`, SHA-256 {prior.sha256}, width {args.width}, head {args.head}, "
             f"validation {meta['validation_bpsp']} bpsp.\n",
             "| step | seconds | train bpsp (batches) | validation bpsp |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['seconds']} | {r['train_bpsp']} | {r.get('val_bpsp', '')} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with open(stem.with_suffix(".csv"), "w") as f:
        f.write("step,seconds,train_bpsp,val_bpsp\n")
        f.writelines(f"{r['step']},{r['seconds']},{r['train_bpsp']},{r.get('val_bpsp', '')}\n" for r in rows)
    print(f"done: validation {meta['validation_bpsp']} bpsp, {meta['seconds']} s -> {args.out} ({prior.sha256[:16]})")


if __name__ == "__main__":
    main()
