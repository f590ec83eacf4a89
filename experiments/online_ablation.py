"""Online adaptation of the pyramid coder: one setting at a time, on validation images, real coded bits.

    python experiments/online_ablation.py [--images val] [--prior PRIOR.npz] [--variants base,halve128,...]
        [--fits RUN_DIR --adapt gains2]

Every row codes the image with a prior's network alone (no per-image fit: the `instant` coding; with --fits, the
network plus the deltas of the image's `.fit` in an `evaluate` work folder) and the named
online adaptation settings (`diffcode.families.pyramid.online.Settings`; "none" codes without it), and decodes it
again to check the pixels. Writes experiments/results/online_ablation[-NAME].md with the command and commit.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from diffcode import fitfile
from diffcode.families.pyramid import coding, deltas, exact, online, prior
from diffcode import report
from pyramid_ablation import images  # the same image sets (val, photos-val, names or paths)

RESULTS = Path(__file__).resolve().parent / "results"
BASE = online.SETTINGS[1]
VARIANTS = {
    "none": None,
    "base": BASE,
    "prior4": replace(BASE, bias_prior=4),
    "prior16": replace(BASE, bias_prior=16),
    "halve128": replace(BASE, halve=128),
    "halve512": replace(BASE, halve=512),
    "halve1024": replace(BASE, halve=1024),
    "shift2": replace(BASE, max_shift=2),
    "shift6": replace(BASE, max_shift=6),
    "warmup16": replace(BASE, warmup=16),
    "warmup64": replace(BASE, warmup=64),
    "levels2": replace(BASE, level_classes=2),
    "levels4": replace(BASE, level_classes=4),
    "halve64": replace(BASE, halve=64),
    "halve128-levels2": replace(BASE, halve=128, level_classes=2),
    "halve128-levels2-shift6": replace(BASE, halve=128, level_classes=2, max_shift=6),
    "halve128-levels2-shift6-prior16": replace(BASE, halve=128, level_classes=2, max_shift=6, bias_prior=16),
    "prior8": replace(BASE, bias_prior=8),
    "prior32": replace(BASE, bias_prior=32),
    "halve256": replace(BASE, halve=256),
    "scale-only": replace(BASE, bias=False),
    "censor": replace(BASE, censor=True),
}
# the tables online_ablation-val4*.md were made when base was Settings(8, 32, 256, 4, 1); the variants above are
# relative to that base and now to the chosen one (16, 32, 128, 6, 2): rerun them before comparing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="val")
    parser.add_argument("--prior", help="a prior file (default: the shipped one)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--fits", help="an evaluate work folder: code each image with its fit's deltas")
    parser.add_argument("--adapt", default="gains2", help="the fits' adapt set (`default`: gains2)")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    model = prior.load(args.prior)
    names = args.variants.split(",")
    rows = []
    for image_name, image in images(args.images):
        net = exact.exact_net(model, model.arrays)
        if args.fits:
            found = sorted(Path(args.fits).glob(f"*/{image_name}.fit"))
            if not found:
                sys.exit(f"no fit of {image_name} in {args.fits}")
            k = np.asarray(fitfile.load(found[0])[0].arrays["deltas"], np.int16)
            net = exact.exact_net(model, deltas.apply(model.arrays, args.adapt, k))
        for variant in names:
            settings = VARIANTS[variant]
            start = time.perf_counter()
            stream, _ = coding.encode(image, net, settings)
            seconds = time.perf_counter() - start
            decoded, _ = coding.decode(*image.shape[:2], stream, net, settings)
            if not np.array_equal(decoded, image):
                sys.exit(f"{image_name} {variant}: the decode differs from the image")
            rows.append({"variant": variant, "image": image_name, "bpsp": 8 * len(stream) / image.size,
                         "encode_s": seconds})
            print(rows[-1], flush=True)
    commit = report.git_commit()
    lines = ["# Online adaptation of the pyramid coder\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}; prior {model.sha256[:16]} (order "
             f"{model.order}), " + (f"with each image's fitted deltas from {args.fits} (adapt {args.adapt})" if args.fits
             else "its network alone (no per-image fit)") + ". bpsp of the error-table stream; every stream "
             "decoded and compared with the image. Settings: `online.Settings` with one field changed from base "
             f"({BASE}).\n",
             "| variant | mean bpsp | vs none | " + " | ".join(n for n, _ in images(args.images)) + " |",
             "|---|---|---|" + "---|" * len({r['image'] for r in rows})]
    none = np.mean([r["bpsp"] for r in rows if r["variant"] == "none"]) if "none" in names else None
    for variant in names:
        values = [r["bpsp"] for r in rows if r["variant"] == variant]
        vs = f"{100 * (np.mean(values) / none - 1):+.2f} %" if none else ""
        lines.append(f"| {variant} | {np.mean(values):.4f} | {vs} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    if len(names) > 1:  # what a file that names its own settings would get: the smallest stream of each image
        best = [min(r["bpsp"] for r in rows if r["image"] == n) for n, _ in images(args.images)]
        vs = f"{100 * (np.mean(best) / none - 1):+.2f} %" if none else ""
        lines.append(f"| each image's best | {np.mean(best):.4f} | {vs} | " + " | ".join(f"{v:.4f}" for v in best)
                     + " |")
    stem = RESULTS / f"online_ablation{'-' + args.name if args.name else ''}"
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
