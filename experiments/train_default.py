"""Train the default per-pixel decoder and record how it was trained.

    python experiments/train_default.py [--steps N] [--crop PX] [--out PATH]

Writes the checkpoint (default: diffcode/data/per_pixel_default.npz, the one shipped in the
package) and experiments/results/train_per_pixel.md|csv with the command, commit, steps, wall
time and the validation bpsp history.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode.report import write_table  # noqa: E402
from diffcode.families.per_pixel.train import TrainConfig, train  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig()
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--crop", type=int, default=d.crop)
    p.add_argument("--crops-per-image", type=int, default=d.crops_per_image)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--val-every", type=int, default=d.val_every)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--kodak-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "diffcode" / "data" / "per_pixel_default.npz"))
    p.add_argument("--name", default="train_per_pixel", help="results file stem")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(steps=args.steps, crop=args.crop, crops_per_image=args.crops_per_image,
                         batch=args.batch, val_every=args.val_every)
    t0 = time.perf_counter()
    ckpt = train(config, kodak_dir=args.kodak_dir, log=lambda s: print(s, flush=True))
    ckpt.save(args.out, overwrite=True)
    rows = [dict(h, checkpoint=ckpt.short_hash) for h in ckpt.meta["history"]]
    rows.append({"step": "best", "validation_bpsp": ckpt.meta["validation_bpsp"],
                 "seconds": time.perf_counter() - t0, "checkpoint": ckpt.short_hash})
    command = "python " + " ".join(sys.argv)
    write_table(rows, ROOT / "experiments" / "results" / args.name, command,
                ["step", "validation_bpsp", "seconds", "checkpoint"])
    print(f"saved {args.out} ({ckpt.short_hash}), best validation {ckpt.meta['validation_bpsp']:.4f} bpsp")


if __name__ == "__main__":
    main()
