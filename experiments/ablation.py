"""What each piece of the report's fitting schedule contributes (report 4.1).

    python experiments/ablation.py [--image kodim17] [--crop 256] [--steps 200]

Fits the same crop with the full schedule and with each piece switched off, stores every fit
and writes experiments/results/ablation_fit_schedule.md|csv: theoretical entropy and real file
size per configuration, and whether the decode was bit-exact.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import codec, kodak, report  # noqa: E402
from diffcode.families.per_pixel.checkpoint import Checkpoint  # noqa: E402
from diffcode.families.per_pixel.fit import FitConfig, fit_image  # noqa: E402

COLUMNS = ["configuration", "fit_final_bpsp", "encodings_theoretical_bpsp", "theoretical_bpsp", "bpsp",
           "overhead_percent", "fit_seconds", "bit_exact"]


def configurations(steps: int) -> dict[str, FitConfig]:
    full = FitConfig(steps=steps)
    return {
        "full schedule": full,
        "no entropy maximization": replace(full, maximize_steps=0),
        "entropy always in loss": replace(full, entropy_on_fraction=1.0),
        "no init from image": replace(full, init_from_image=False),
        "no stage freezing": replace(full, freeze_stages=False),
        "none of the four": FitConfig(steps=steps, maximize_steps=0, entropy_on_fraction=1.0,
                                      init_from_image=False, freeze_stages=False),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", default="kodim17")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--kodak-dir", default=None)
    args = p.parse_args()
    image = kodak.crop(kodak.load(args.image, args.kodak_dir), (args.crop, args.crop))
    ckpt = Checkpoint.load()
    subpixels = 3 * args.crop * args.crop
    rows = []
    for label, config in configurations(args.steps).items():
        t0 = time.perf_counter()
        fit = fit_image(image, ckpt, config)
        seconds = time.perf_counter() - t0
        data, rep = codec.store(fit, ckpt, verify=False)
        d = rep.as_dict()
        rows.append({"configuration": label, "fit_final_bpsp": fit.history[-1]["bpsp"],
                     "encodings_theoretical_bpsp": 8 * d["encodings_theoretical_bytes"] / subpixels,
                     "theoretical_bpsp": d["theoretical_bpsp"], "bpsp": d["bpsp"],
                     "overhead_percent": d["overhead_percent"], "fit_seconds": seconds,
                     "bit_exact": bool(np.array_equal(codec.load(data, ckpt), image))})
        print(rows[-1], flush=True)
    report.write_table(rows, ROOT / "experiments" / "results" / "ablation_fit_schedule",
                       "python " + " ".join(sys.argv), COLUMNS)


if __name__ == "__main__":
    main()
