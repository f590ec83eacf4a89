"""Weights variant (report 4.2): how the fitted entropy depends on steps, learning rate and CNN size.

    python experiments/weights_schedule.py --crop 256 --name crop256 kodim17 \
        default:180 default:600 default:1200 default:1200:lr_centers=0.003 ...

Each configuration is PRESET:STEPS[:field=value,...] (fields of diffcode.families.weights.spec.Preset,
channel tuples written 16/32/16); the preset's three phases are rescaled to STEPS. Every fit runs
the full schedule, including the final phase with the widths fixed at their stored levels, so the
final figure is the entropy a stored file pays (side information aside, a few bytes). Nothing is
stored: `python cli.py evaluate --variant weights` checks real files. Writes experiments/results/weights_schedule_<name>.md|csv
with the final error-table, encodings and total bpsp, the best total seen on the way, seconds per
step and the thread count. Rows are cached in runs/weights/schedule/ so a run can be resumed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import kodak, report  # noqa: E402
from diffcode.families.weights.fit import fit_tensors  # noqa: E402
from diffcode.families.weights import spec as wv  # noqa: E402
from diffcode.families.weights import model as wm  # noqa: E402

COLUMNS = ["image", "config", "steps", "superres", "head", "lr_centers", "lr_widths", "n_weights", "error_bpsp",
           "encodings_bpsp", "bpsp", "png_bpsp", "phase1_end_error_bpsp", "seconds", "s_per_step", "threads"]


def parse_config(text: str) -> wv.Preset:
    name, steps, *rest = text.split(":")
    p = wv.preset(name)
    fields = {}
    for item in (",".join(rest).split(",") if rest else []):
        key, value = item.split("=")
        current = getattr(p, key)
        if isinstance(current, tuple):
            fields[key] = tuple(int(v) for v in value.split("/"))
        else:
            fields[key] = type(current)(value)
    return wv.with_steps(replace(p, **fields), int(steps))


def run(name: str, image: np.ndarray, config: str, cache: Path) -> dict:
    path = cache / f"{name}-{config.replace('/', '_').replace(':', '_')}.json"
    if path.exists():
        return json.loads(path.read_text())
    p = parse_config(config)
    t0 = time.perf_counter()
    _, _, history = fit_tensors(image, wm.mlp_of(wv.MLPCheckpoint.load()), p, seed=0,
                                progress=lambda s, b: print(f"{name} {config} step {s}: {b:.4f}", flush=True)
                                if s % 100 == 0 else None)
    seconds = time.perf_counter() - t0
    h, w, _ = image.shape
    phase1 = [r for r in history if r["phase"] == 1]
    row = {"image": name, "config": config, "steps": p.steps, "superres": "/".join(map(str, p.superres)),
           "head": "/".join(map(str, p.head)), "lr_centers": p.lr_centers, "lr_widths": p.lr_widths,
           "n_weights": sum(s.size for s in wv.layout(p)), "error_bpsp": history[-1]["error_bpsp"],
           "encodings_bpsp": history[-1]["encodings_bpsp"], "bpsp": history[-1]["bpsp"],
           "png_bpsp": report.bpsp(report.png_size(image), h, w),
           "phase1_end_error_bpsp": phase1[-1]["error_bpsp"] if phase1 else None,
           "seconds": seconds, "s_per_step": seconds / p.steps, "threads": torch.get_num_threads()}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image")
    ap.add_argument("configs", nargs="+", help="PRESET:STEPS[:field=value,...]")
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--name", required=True)
    args = ap.parse_args()
    image = kodak.load(args.image)
    if args.crop:
        image = kodak.crop(image, args.crop)
    cache = ROOT / "runs" / "weights" / "schedule" / f"{args.name}-{args.crop}"
    out = ROOT / "experiments" / "results" / f"weights_schedule_{args.name}"
    rows = []
    for config in args.configs:
        rows.append(run(args.image, image, config, cache))
        print(json.dumps(rows[-1]), flush=True)
        report.write_table(rows, out, "python experiments/weights_schedule.py " + " ".join(sys.argv[1:]), COLUMNS)


if __name__ == "__main__":
    main()
