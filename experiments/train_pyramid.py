"""Train the pyramid family's shared prior on Kodak's training split and the training photos.

    python experiments/train_pyramid.py --steps 4000 [--photo-crop 640] [--out diffcode/data/pyramid_prior.npz]

Selection data: Kodak's validation split and `../shared/photos/val/` (float-model bpsp, every
coded subpixel). Writes the prior (float32 arrays plus metadata) and the training record
`experiments/results/train_pyramid[-NAME].md|csv` with the command, commit, data, steps and time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from diffcode import kodak
from diffcode.families.pyramid import prior as prior_file
from diffcode.families.pyramid.train import mean_bpsp, samples, train
from diffcode.image import read_image

RESULTS = Path(__file__).resolve().parent / "results"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def photo_crops(folder: Path, crop: int) -> list[np.ndarray]:
    """Centre crops (at most crop x crop) of every PNG in a folder, sorted by name."""
    return [kodak.crop(read_image(p), (min(crop, img.shape[0]), min(crop, img.shape[1])))
            for p in sorted(folder.glob("*.png")) for img in [read_image(p)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=32768)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--head", type=int, default=32)
    parser.add_argument("--photo-crop", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="")
    parser.add_argument("--out", default="diffcode/data/pyramid_prior.npz")
    parser.add_argument("--photos", default=str(PHOTOS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    photos = Path(args.photos)
    train_images = [kodak.load(n) for n in kodak.TRAIN] + photo_crops(photos / "train", args.photo_crop)
    val_images = [kodak.load(n) for n in kodak.VALIDATION] + photo_crops(photos / "val", args.photo_crop)
    train_set, val_set = samples(train_images), samples(val_images)
    prep = time.perf_counter() - start
    print(f"samples: train {train_set.subpixels:,} subpixels, val {val_set.subpixels:,} ({prep:.0f} s)", flush=True)

    def progress(step: int, bits: float) -> None:
        if step % 50 == 0:
            print(f"step {step} batch {bits:.4f} bpsp {time.perf_counter() - start:.0f} s", flush=True)

    net, log = train(train_set, val_set, steps=args.steps, batch=args.batch, lr=args.lr, width=args.width,
                     head=args.head, progress=progress)
    seconds = time.perf_counter() - start
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = "python " + " ".join(sys.argv)
    meta = {"command": command, "commit": commit, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "width": args.width, "head": args.head, "train": list(kodak.TRAIN) + [f"photos/train crop {args.photo_crop}"],
            "val_bpsp": log[-1].get("val_bpsp"), "seconds": round(seconds)}
    prior_file.save(args.out, net.arrays(), meta)
    stem = RESULTS / f"train_pyramid{'-' + args.name if args.name else ''}"
    lines = [f"# Pyramid prior training\n", f"Command: `{command}` at commit {commit}; {seconds:.0f} s wall, "
             f"{args.threads} threads, 2-core CPU (other jobs may have shared it).\n",
             f"Training: {', '.join(kodak.TRAIN)} (full) + {len(train_images) - len(kodak.TRAIN)} photos of "
             f"photos/train ({args.photo_crop}x{args.photo_crop} centre crops): {train_set.subpixels:,} subpixels. "
             f"Validation (float model, every coded subpixel, coarsest level at 8 bits): {', '.join(kodak.VALIDATION)} + "
             f"photos/val crops: {val_set.subpixels:,} subpixels.\n", f"Prior: `{args.out}` {json.dumps(meta)}\n",
             "| step | seconds | train bpsp (batches) | validation bpsp |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['seconds']} | {r['train_bpsp']} | {r.get('val_bpsp', '')} |" for r in log]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with open(stem.with_suffix(".csv"), "w") as f:
        f.write("step,seconds,train_bpsp,val_bpsp\n")
        f.writelines(f"{r['step']},{r['seconds']},{r['train_bpsp']},{r.get('val_bpsp', '')}\n" for r in log)
    print(f"done: val {log[-1].get('val_bpsp')} bpsp, {seconds:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
