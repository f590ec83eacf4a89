"""Weights variant (report 4.2) on Kodak images: fit, store, decode, check; entropy vs real file size.

    python experiments/weights_kodak.py --preset default --crop 128 --name test_crop128 kodim17 ... kodim24
    python experiments/weights_kodak.py --time-steps 3 kodim17     # only time Adam steps on the full image

Writes experiments/results/weights_<name>.md|csv (diffcode.report.write_table) with, per image:
theoretical bytes with and without side information, real bytes per section (header, side info,
weight encodings, error table), bpsp, PNG, fit/store/decode seconds and whether the decode was
bit-exact; then the mean. Rows are cached in runs/weights/rows/ so the table can be rebuilt and
a run resumed. The report's own figure for this variant is an average of 947 KB per test image
(6.42 bpsp if KB = 1000 bytes, 6.58 if KiB) on the whole 768x512 images; crops are not
directly comparable with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import codec, kodak, report, weights_codec
from diffcode.fit_weights import fit_image
from diffcode.variants import weights as wv

REPORT_KB = 947
COLUMNS = ["image", "preset", "steps", "height", "width", "theoretical_bpsp", "theoretical_bpsp_without_side_info",
           "bpsp", "png_bpsp", "report_bpsp", "theoretical_bytes", "theoretical_bytes_without_side_info",
           "side_info_theoretical_bytes", "encodings_theoretical_bytes", "error_table_theoretical_bytes",
           "file_bytes", "header_bytes", "side_info_bytes", "encodings_bytes", "error_table_bytes", "png_bytes",
           "n_weights", "fit_final_bpsp", "fit_s", "store_s", "decode_s", "bit_exact"]


def run_one(name: str, p: wv.Preset, crop: int, seed: int, cache: Path) -> dict:
    path = cache / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    image = kodak.load(name)
    if crop:
        image = kodak.crop(image, crop)
    mlp = wv.MLPCheckpoint.load()
    t0 = time.perf_counter()
    fit = fit_image(image, mlp, p, seed, progress=lambda s, b: print(f"{name} step {s}: {b:.4f} bpsp", flush=True)
                    if s % 50 == 0 else None)
    t1 = time.perf_counter()
    data, rep = weights_codec.store(image, fit.centers, fit.level_index, p, mlp, seed, verify=False)
    t2 = time.perf_counter()
    decoded = codec.load(data)
    t3 = time.perf_counter()
    h, w, _ = image.shape
    row = {"image": name, "preset": p.name, "steps": p.steps, **rep.as_dict(), "png_bytes": report.png_size(image),
           "fit_s": t1 - t0, "store_s": t2 - t1, "decode_s": t3 - t2, "bit_exact": bool(np.array_equal(decoded, image)),
           "fit_final_bpsp": fit.history[-1]["bpsp"]}
    row["png_bpsp"] = 8.0 * row["png_bytes"] / (3 * h * w)
    row["report_bpsp"] = 8.0 * REPORT_KB * 1000 / (3 * 768 * 512)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def mean_row(rows: list[dict]) -> dict:
    out = {"image": f"mean of {len(rows)}"}
    for c in COLUMNS:
        values = [r[c] for r in rows if isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)]
        if c not in ("image", "preset") and len(values) == len(rows):
            out[c] = float(np.mean(values))
    out["preset"] = rows[0]["preset"]
    out["bit_exact"] = all(r["bit_exact"] for r in rows)
    return out


def time_steps(name: str, p: wv.Preset, steps: int) -> None:
    import dataclasses

    from diffcode.fit_weights import fit_tensors

    image = kodak.load(name)
    q = dataclasses.replace(p, center_steps=1, width_steps=1, final_steps=max(1, steps - 2))
    t0 = time.perf_counter()
    fit_tensors(image, wv.MLPCheckpoint.load().model(), q)
    dt = (time.perf_counter() - t0) / q.steps
    print(f"{name} {image.shape}: {dt:.2f} s per Adam step with preset {p.name} on {torch.get_num_threads()} "
          f"threads -> {p.steps} steps = {p.steps * dt / 60:.1f} min", flush=True)
    n = sum(s.size for s in wv.layout(p))
    values = np.random.default_rng(0).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    t0 = time.perf_counter()
    wv.fixed_pass(wv.MLPCheckpoint.load(), p, values, *image.shape[:2])
    print(f"exact fixed-point pass (store and decode each run it once): {time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=None, help="rescale the preset's phases to this many steps")
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None)
    ap.add_argument("--time-steps", type=int, default=0)
    args = ap.parse_args()
    p = wv.preset(args.preset)
    if args.steps:
        p = wv.with_steps(p, args.steps)
    if args.time_steps:
        time_steps(args.images[0], p, args.time_steps)
        return
    name = args.name or f"{args.preset}" + (f"_crop{args.crop}" if args.crop else "")
    cache = ROOT / "runs" / "weights" / "rows" / f"{name}-{p.name}-{p.steps}-{args.crop}-{args.seed}"
    rows = []
    for image in args.images:
        rows.append(run_one(image, p, args.crop, args.seed, cache))
        r = rows[-1]
        print(f"{image}: {r['theoretical_bpsp']:.4f} bpsp theoretical ({r['theoretical_bpsp_without_side_info']:.4f} "
              f"without side info), file {r['bpsp']:.4f}, PNG {r['png_bpsp']:.4f}, bit-exact {r['bit_exact']}, "
              f"fit {r['fit_s']:.0f} s", flush=True)
        table = rows + ([mean_row(rows)] if len(rows) > 1 else [])
        report.write_table(table, ROOT / "experiments" / "results" / f"weights_{name}",
                           "python experiments/weights_kodak.py " + " ".join(sys.argv[1:]), COLUMNS)


if __name__ == "__main__":
    main()
