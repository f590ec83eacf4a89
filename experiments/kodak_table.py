"""Theoretical entropy vs real file size on Kodak images, with timings and baselines.

    python experiments/kodak_table.py kodim17            # one image
    python experiments/kodak_table.py test               # the whole test split
    python experiments/kodak_table.py kodim17 --crop 256 --steps 100 --name quick

For each image: fit (default FitConfig unless --steps), store, decode; the decode is compared
with the original pixels. Writes experiments/results/<name>.md|csv with the command and commit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import codec, kodak, report  # noqa: E402
from diffcode.decoder import Checkpoint  # noqa: E402
from diffcode.fit_per_pixel import FitConfig, fit_image  # noqa: E402

COLUMNS = ["file", "height", "width", "variant", "storage", "encodings_theoretical_bytes",
           "error_table_theoretical_bytes", "theoretical_bytes", "file_bytes", "overhead_percent",
           "theoretical_bpsp", "bpsp", "png_bytes", "png_bpsp", "webp_bpsp", "jxl_bpsp",
           "fit_seconds", "store_seconds", "decode_seconds", "bit_exact"]


def run_one(name: str, args, checkpoint: Checkpoint) -> dict:
    image = kodak.load(name, args.kodak_dir)
    if args.crop:
        image = kodak.crop(image, (args.crop, args.crop))
    config = FitConfig() if args.steps is None else FitConfig(steps=args.steps)
    t0 = time.perf_counter()
    fit = fit_image(image, checkpoint, config)
    t1 = time.perf_counter()
    data, rep = codec.store(image, fit.centers, checkpoint, fit.seed, verify=False)
    t2 = time.perf_counter()
    decoded = codec.load(data, checkpoint)
    t3 = time.perf_counter()
    h, w, _ = image.shape
    row = {"file": name + (f"[{args.crop}]" if args.crop else ""), **rep.as_dict(),
           "fit_seconds": t1 - t0, "store_seconds": t2 - t1, "decode_seconds": t3 - t2,
           "bit_exact": bool(np.array_equal(decoded, image))}
    row["png_bytes"] = report.png_size(image)
    row["png_bpsp"] = report.bpsp(row["png_bytes"], h, w)
    if not args.no_extra_baselines:
        webp, jxl = report.webp_size(image), report.jxl_size(image)
        row["webp_bpsp"] = report.bpsp(webp, h, w) if webp else None
        row["jxl_bpsp"] = report.bpsp(jxl, h, w) if jxl else None
    print({k: row.get(k) for k in ("file", "theoretical_bpsp", "bpsp", "png_bpsp", "bit_exact")}, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="kodimNN names or a split (train, validation, test, all)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--crop", type=int, default=0, help="center crop side (0 = full image)")
    p.add_argument("--kodak-dir", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--no-extra-baselines", action="store_true", help="skip WebP and JPEG XL")
    p.add_argument("--name", default=None, help="results file stem (default: from the images)")
    args = p.parse_args()
    names = [n for item in args.images for n in (kodak.SPLITS.get(item) or [item])]
    checkpoint = Checkpoint.load(args.checkpoint)
    rows = [run_one(n, args, checkpoint) for n in names]
    if len(rows) > 1:
        mean = {k: float(np.mean([r[k] for r in rows])) for k in COLUMNS
                if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)}
        rows.append({"file": "mean", **mean, "bit_exact": all(r["bit_exact"] for r in rows)})
    stem = args.name or ("kodak_" + "_".join(args.images) + (f"_crop{args.crop}" if args.crop else ""))
    report.write_table(rows, ROOT / "experiments" / "results" / stem, "python " + " ".join(sys.argv), COLUMNS)


if __name__ == "__main__":
    main()
