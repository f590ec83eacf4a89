"""Does the mixture prior's gain survive the per-image fit? Float bits before and after `default`'s fit.

    python experiments/mixture_fit.py --prior mix2 --images kodim09,kodim13 [--name mixture_fit-mix2]
    python experiments/mixture_fit.py --prior m2 --images kodim09,kodim13 --name mixture_fit-m2

`--prior m2` is model 2's float prior (`experiments/checkpoints/prior-m2.npz`, one logistic), `mix2` the
two-logistic prior of the same recipe (`prior-mix2.npz`, `experiments/train_pyramid.py --components 2`). For each image:
the float model's bits per subpixel of the whole image with the prior alone, then after `default`'s per-image
fit (gains2, its steps, batch and learning rate, seed 0; the deltas rounded as a file would hold them, their own
bits not counted). No online adaptation and no exact coder: neither exists for the mixture yet. Writes
experiments/results/NAME.md with the command and commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from diffcode.families.pyramid import deltas, fit, spec, train  # noqa: E402
from diffcode import report
from pyramid_ablation import images  # noqa: E402

PRIORS = {"m2": ROOT / "experiments" / "checkpoints" / "prior-m2.npz",
          "mix2": ROOT / "experiments" / "checkpoints" / "prior-mix2.npz"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", choices=sorted(PRIORS), required=True)
    parser.add_argument("--images", default="kodim09,kodim13")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    arrays = {k: v for k, v in np.load(PRIORS[args.prior]).items() if k != "meta"}
    preset = spec.PRESETS["default"]
    rows = []
    for name, image in images(args.images):
        s = train.samples([image], 1)
        alone = train.mean_bpsp(fit.PyramidNet.from_arrays(arrays, 1), s)
        k, _ = fit.fit_deltas(image, arrays, steps=preset.steps, adapt=preset.adapt, lr=preset.lr,
                              batch=preset.batch, generator=torch.Generator().manual_seed(0), order=1)
        fitted = {n: a.astype(np.float32) for n, a in deltas.apply(arrays, preset.adapt, k).items()} if len(k) else arrays
        after = train.mean_bpsp(fit.PyramidNet.from_arrays(fitted, 1), s)
        rows.append((name, alone, after, int(np.count_nonzero(k))))
        print(rows[-1], flush=True)
    commit = report.git_commit()
    lines = [f"# Float bits before and after `default`'s per-image fit: prior {args.prior}\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}. Float model, whole image, bits per subpixel "
             "(the coarsest level at 8 bits); deltas rounded as a file holds them, their own bits not counted; no "
             "online adaptation.\n",
             "| image | prior alone | after the fit | nonzero deltas |", "|---|---|---|---|"]
    lines += [f"| {n} | {a:.4f} | {b:.4f} | {z} |" for n, a, b, z in rows]
    lines.append(f"| mean | {np.mean([r[1] for r in rows]):.4f} | {np.mean([r[2] for r in rows]):.4f} | |")
    (ROOT / "experiments" / "results" / f"{args.name or 'mixture_fit-' + args.prior}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
