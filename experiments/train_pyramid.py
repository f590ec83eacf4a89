"""Train the pyramid family's shared prior and write its training record.

    python experiments/train_pyramid.py --steps 6000 --out /tmp/prior.npz --name w64 [--photos ../shared/photos]
    python experiments/train_pyramid.py --no-kodak --data train,extra/bsd68 --steps 24000 --checkpoint-every 1000 \
        --checkpoint run.pt --until 12000 --out /tmp/leg1.npz --name nokodak      # first leg
    python experiments/train_pyramid.py --resume run.pt --checkpoint run.pt --out /tmp/prior.npz --name nokodak

The recipe is `diffcode.families.pyramid.train.train_prior` (by default the shipped one's, as `diffcode train
--variant pyramid`: Kodak's training split plus centre crops of photos/train). `--data` lists the photo folders
(under --photos), `--no-kodak` leaves kodim01-08 out, `--crops N` takes N random crops of each large photo
instead of its centre crop. Validation is always kodim09-16 and centre crops of at most 640 of photos/val (float
model, every coded subpixel, coarsest level at 8 bits), scored separately and together.

A long schedule runs in legs: `--checkpoint` is written every `--checkpoint-every` steps and where the leg stops
(`--until STEP`); `--resume CKPT` continues with the checkpoint's settings and data (options that differ from them
are refused), bit for bit as if it had never stopped. Each leg writes the prior of its last step and
experiments/results/train_pyramid[-NAME].md|csv (or --record) with the legs' commands, the data and the curve so far.
Runs on one thread by default: on a 2-core machine shared with other jobs, two torch threads were 10x slower
per step (oversubscription).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from diffcode.families.pyramid.data import DataSpec
from diffcode.families.pyramid.train import load_checkpoint, train_prior
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
DEFAULTS = {"steps": 6000, "batch": 32768, "lr": 3e-3, "width": 64, "head": 32, "seed": 0, "order": 1,
            "components": 1, "val_every": 1000}
DATA_DEFAULTS = {"folders": "train", "kodak": True, "crop": 640, "crops": 1}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, kind in [("steps", int), ("batch", int), ("lr", float), ("width", int), ("head", int), ("seed", int),
                       ("order", int), ("components", int), ("val-every", int), ("photo-crop", int), ("crops", int)]:
        parser.add_argument(f"--{name}", type=kind, default=None)
    parser.add_argument("--data", dest="folders", default=None, help="photo folders under --photos, comma-separated")
    parser.add_argument("--no-kodak", dest="kodak", action="store_false", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--photos", default=str(PHOTOS))
    parser.add_argument("--checkpoint", help="write the training state here (every --checkpoint-every steps, and "
                                             "where the run stops)")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--resume", help="continue from this checkpoint (its settings and data)")
    parser.add_argument("--until", type=int, help="stop after this step (one leg of the schedule)")
    parser.add_argument("--init", help="start from this prior's network (a warm restart: new optimizer and "
                                       "schedule; give its --order, --width, --head and --components)")
    parser.add_argument("--name", default="")
    parser.add_argument("--record", help="the record's file name in experiments/results (no suffix; default "
                                         "train_pyramid[-NAME])")
    parser.add_argument("--out", required=True)
    return parser.parse_args()


def settings_of(args: argparse.Namespace) -> tuple[dict, DataSpec]:
    """The run's settings and data: the options (or defaults), or a resumed checkpoint's (a differing option is
    refused)."""
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    data_given = {k: v for k, v in {"folders": args.folders, "kodak": args.kodak, "crop": args.photo_crop,
                                    "crops": args.crops}.items() if v is not None}
    if not args.resume:
        settings, d = {**DEFAULTS, **given}, {**DATA_DEFAULTS, **data_given}
        return settings, DataSpec(tuple(d["folders"].split(",")), d["kodak"], d["crop"], d["crops"], settings["seed"])
    ckpt = load_checkpoint(args.resume)
    settings, data = {"order": 1, **ckpt["settings"]}, ckpt["meta"]["data"]
    data_given = {**data_given, **({"folders": args.folders.split(",")} if args.folders else {})}
    differ = [k for k, v in given.items() if settings[k] != v] + [k for k, v in data_given.items() if data[k] != v]
    if differ:
        sys.exit(f"--resume: {', '.join(differ)} differ from the checkpoint's; leave them out")
    return settings, DataSpec.from_dict(data)


def commit() -> str:
    return report.git_commit()


def describe_data(about: dict) -> str:
    return "; ".join(f"{s['folder']}: {s['photos']} images, {s['crops']} crops, {s['pixels']:,} pixels"
                     for s in about["sources"])


def write_record(stem: Path, args, prior, rows: list[dict], legs: list[dict]) -> None:
    meta = prior.meta
    crops = "centre crops" if meta["data"]["crops"] == 1 else f"{meta['data']['crops']} random crops"
    lines = ["# Pyramid prior training\n",
             "Legs (each on a 2-core CPU that other jobs may have shared):\n",
             *[f"- steps {leg['from']}-{leg['to']}: `{leg['command']}` at commit {leg['commit']}, {leg['threads']} "
               f"thread(s)" + (f", {leg['seconds']} s wall (data included)" if "seconds" in leg else "")
               for leg in legs], "",
             f"Training (photos: {crops} of at most {meta['crop']}): {describe_data(meta['data'])}.\n",
             "Validation (float model, every coded subpixel, coarsest level at 8 bits): kodim09-16 whole (Kodak val) "
             "and centre crops of at most 640 of photos/val (photos val); `all` is both together.\n",
             f"Schedule: {meta['steps']} steps, batch {meta['batch']}, lr {meta['lr']} (cosine to 1/50), seed "
             f"{meta['seed']}; width {meta['width']}, head {meta['head']}, pyramid order {meta.get('order', 1)}. This record stops at step {meta['step']}." +
             (f" Started from the network of prior {meta['init']} (a warm restart)." if "init" in meta else "") + "\n",
             f"Prior of step {meta['step']}: `{args.out}`, SHA-256 {prior.sha256}.\n",
             "| step | seconds (training) | train bpsp (batches) | Kodak val | photos val | all val |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['seconds']} | {r['train_bpsp']} | {r.get('val_kodak', '')} | "
              f"{r.get('val_photos', '')} | {r.get('val_bpsp', '')} |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with open(stem.with_suffix(".csv"), "w") as f:
        f.write("step,seconds,train_bpsp,val_kodak,val_photos,val_bpsp\n")
        f.writelines(f"{r['step']},{r['seconds']},{r['train_bpsp']},{r.get('val_kodak', '')},"
                     f"{r.get('val_photos', '')},{r.get('val_bpsp', '')}\n" for r in rows)


def legs_before(resume: str | None) -> list[dict]:
    """The earlier legs recorded in the checkpoint, the last one ending where the checkpoint was written."""
    if not resume:
        return []
    ckpt = load_checkpoint(resume)
    legs = [dict(leg) for leg in ckpt["meta"].get("legs", [])]
    if legs:
        legs[-1]["to"] = ckpt["step"]
    return legs


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    settings, data = settings_of(args)
    legs = legs_before(args.resume)
    leg = {"from": legs[-1]["to"] + 1 if legs else 1, "to": min(args.until or settings["steps"], settings["steps"]),
           "command": "python " + " ".join(sys.argv), "commit": commit(), "threads": args.threads}
    prior, rows = train_prior(**{k: v for k, v in settings.items() if k != "log_every"}, data=data,
                              photos_dir=args.photos, log=lambda m: print(m, flush=True), checkpoint=args.checkpoint,
                              checkpoint_every=args.checkpoint_every, resume=args.resume, until=args.until,
                              meta={"legs": legs + [leg]}, init=args.init)
    prior.save(args.out, overwrite=True)
    stem = RESULTS / (args.record or f"train_pyramid{'-' + args.name if args.name else ''}")
    write_record(stem, args, prior, rows, legs + [{**leg, "seconds": prior.meta["seconds"]}])
    print(f"done: step {prior.meta['step']}, validation {prior.meta['validation_bpsp']} bpsp, "
          f"{prior.meta['seconds']} s -> {args.out} ({prior.sha256[:16]})")


if __name__ == "__main__":
    main()
