"""Which photo folders should train the Kodak-free pyramid prior: one run per data choice, same budget.

    python experiments/prior_data_ablation.py --steps 3000 [--rows train,bsd68,urban100,usc-sipi,all] [--crops 2]

Each row trains a prior from scratch without any Kodak image (`train_prior`, same steps, seed, batch and learning
rate; photos cropped as `--photo-crop` / `--crops` say) and scores it on the fixed validation images: kodim09-16
whole and centre crops of at most 640 of photos/val (float model, every coded subpixel). Rows are appended to
experiments/results/prior-data-ablation.csv as each run ends, and the .md table is rewritten from it (each row
with its command and the commit when the command started; a "## Reading" section is kept). Priors are written
to --keep (outside the repository). One torch thread.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from diffcode.families.pyramid.data import DataSpec
from diffcode.families.pyramid.train import train_prior
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
EXTRA = {"bsd68": ["extra/bsd68"], "urban100": ["extra/urban100"], "usc-sipi": ["extra/usc-sipi"],
         "all": ["extra/bsd68", "extra/urban100", "extra/usc-sipi"]}
ROWS = {"train": ["train"], **{name: ["train"] + folders for name, folders in EXTRA.items()}}
FIELDS = ["data", "crops", "steps", "seed", "train_subpixels", "val_kodak", "val_photos", "val_all", "train_bpsp",
          "train_seconds", "wall_seconds", "command", "commit"]
READING = "## Reading"  # a hand-written section from here on is kept when the table is rewritten
REFERENCE = ("For comparison (FACTS.md, the same validation images): the shipped prior (kodim01-08 + photos/train, "
             "6,000 steps) 2.937 Kodak val, 3.778 photos val, 3.366 all.")


def run_row(name: str, args, at_commit: str) -> dict:
    data = DataSpec(tuple(ROWS[name]), kodak=False, crop=args.photo_crop, crops=args.crops, seed=args.seed)
    start = time.perf_counter()
    prior, rows = train_prior(steps=args.steps, seed=args.seed, data=data, photos_dir=args.photos,
                              val_every=args.steps, log=lambda m: print(f"[{name}] {m}", flush=True))
    Path(args.keep).mkdir(parents=True, exist_ok=True)
    prior.save(Path(args.keep) / f"{name}-crops{args.crops}-{args.steps}-seed{args.seed}.npz", overwrite=True)
    last = rows[-1]
    pixels = sum(s["pixels"] for s in prior.meta["data"]["sources"])
    return {"data": ", ".join(ROWS[name]), "crops": "centre" if args.crops == 1 else f"{args.crops} random",
            "steps": args.steps, "seed": args.seed, "train_subpixels": 3 * pixels, "val_kodak": last["val_kodak"],
            "val_photos": last["val_photos"], "val_all": last["val_bpsp"], "train_bpsp": last["train_bpsp"],
            "train_seconds": last["seconds"], "wall_seconds": round(time.perf_counter() - start),
            "command": "python " + " ".join(sys.argv), "commit": at_commit}


def commit() -> str:
    return report.git_commit()


def write_table(stem: Path) -> None:
    with open(stem.with_suffix(".csv")) as f:
        rows = list(csv.DictReader(f))
    lines = ["# Training data of a Kodak-free pyramid prior, at a fixed budget\n",
             "Each row trains the prior from scratch without any Kodak image (photos/train plus the named folders of "
             "photos/extra; photos cropped to at most 640x640), width 64, head 32, batch 32,768, lr 3e-3 cosine to "
             "1/50, one torch thread on a 2-core CPU shared with other jobs. Validation bpsp of the float prior "
             "alone (no per-image fit; every coded subpixel, coarsest level at 8 bits): Kodak val = kodim09-16 "
             "whole, photos val = centre crops of at most 640 of photos/val, all = both together. Train bpsp: the "
             "mean of the last 250 batches, on each row's own data (not comparable across rows). Seconds: of the "
             "training steps, and wall (data and validation included).\n", REFERENCE + "\n",
             "| training data | crops | steps | seed | train subpixels | Kodak val | photos val | all val | train bpsp "
             "(batches) | seconds (train / wall) |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {' + '.join('photos/' + folder for folder in r['data'].split(', '))} | {r['crops']} | "
              f"{r['steps']} | {r['seed']} | {int(r['train_subpixels']):,} | {r['val_kodak']} | "
              f"{r['val_photos']} | {r['val_all']} | {r['train_bpsp']} | {r['train_seconds']} / {r['wall_seconds']} |"
              for r in rows]
    lines += ["", "Commands:", ""] + sorted({f"- `{r['command']}` at commit {r['commit']}" for r in rows})
    md = stem.with_suffix(".md")
    reading = md.read_text().partition(READING)[2] if md.exists() and READING in md.read_text() else ""
    md.write_text("\n".join(lines) + "\n" + (f"\n{READING}{reading}" if reading else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"of {', '.join(ROWS)}")
    parser.add_argument("--photo-crop", type=int, default=640)
    parser.add_argument("--crops", type=int, default=1, help="1: centre crops; N: N random crops of large photos")
    parser.add_argument("--photos", default=str(PHOTOS))
    parser.add_argument("--keep", default="/tmp/prior-data-ablation", help="folder for the priors")
    parser.add_argument("--name", default="prior-data-ablation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stem = RESULTS / args.name
    at_commit = commit()
    for name in args.rows.split(","):
        row = run_row(name, args, at_commit)
        new = not stem.with_suffix(".csv").exists()
        with open(stem.with_suffix(".csv"), "a", newline="") as f:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        write_table(stem)
        print(f"[{name}] {row}", flush=True)


if __name__ == "__main__":
    main()
