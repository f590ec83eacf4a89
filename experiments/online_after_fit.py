"""Online adaptation after the per-image fit: each image's fitted deltas coded with and without it, real bits.

    python experiments/online_after_fit.py --runs runs/p5val,runs/p5test [--prior PRIOR.npz] [--name NAME]

The fits are the `.fit` files an `evaluate` run left in its work folder (`--work-dir`); the images are found by
name among Kodak and the validation photos. Each fit's deltas make the exact network, which codes the image
without online adaptation and with the prior's (`exact.online`); every stream is decoded and compared with the
image. Writes experiments/results/online_after_fit[-NAME].md with the command and commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from diffcode import fitfile
from diffcode.families.pyramid import coding, deltas, exact, prior
from diffcode.image import read_image
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def image_of(name: str) -> np.ndarray:
    for folder in (SHARED / "kodak", SHARED / "photos" / "val"):
        if (folder / f"{name}.png").exists():
            return read_image(folder / f"{name}.png")
    sys.exit(f"no image named {name} in {SHARED / 'kodak'} or {SHARED / 'photos' / 'val'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="evaluate work folders, comma-separated")
    parser.add_argument("--prior", help="the prior the fits were made with (default: the shipped one)")
    parser.add_argument("--adapt", default="gains2", help="the fits' adapt set (`default`: gains2)")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    model = prior.load(args.prior)
    settings = exact.online(model)
    if settings is None:
        sys.exit("the prior codes without online adaptation")
    rows = []
    for run in args.runs.split(","):
        for path in sorted(Path(run).glob("*/*.fit")):
            image = image_of(path.stem)
            fit, _ = fitfile.load(path)
            k = np.asarray(fit.arrays["deltas"], np.int16)
            net = exact.exact_net(model, deltas.apply(model.arrays, args.adapt, k))
            bits = []
            for online in (None, settings):
                stream, _ = coding.encode(image, net, online)
                decoded, _ = coding.decode(*image.shape[:2], stream, net, online)
                if not np.array_equal(decoded, image):
                    sys.exit(f"{path.stem}: the decode differs from the image")
                bits.append(8 * len(stream) / image.size)
            rows.append((path.stem, *bits))
            print(rows[-1], flush=True)
    commit = report.git_commit()
    lines = ["# Online adaptation after the per-image fit\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}; prior {model.sha256[:16]}. Each image's "
             "fitted deltas (the evaluate run's `.fit`) make the exact network; bpsp of the error-table stream "
             "coded without and with online adaptation (every stream decoded and compared with the image). The "
             "file's other sections (deltas, side info) are the same either way and not counted.\n",
             "| image | without online | with online | with / without |", "|---|---|---|---|"]
    lines += [f"| {name} | {off:.4f} | {on:.4f} | {100 * (on / off - 1):+.2f} % |" for name, off, on in rows]
    off, on = np.mean([r[1] for r in rows]), np.mean([r[2] for r in rows])
    lines += [f"| mean of {len(rows)} | {off:.4f} | {on:.4f} | {100 * (on / off - 1):+.2f} % |",
              "", f"Online adaptation makes the stream larger on {sum(r[2] > r[1] for r in rows)} of {len(rows)} images."]
    out = RESULTS / f"online_after_fit{'-' + args.name if args.name else ''}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
