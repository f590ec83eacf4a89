"""Pyramid family: one change at a time, on validation images, real coded bits.

    python experiments/pyramid_ablation.py --images val [--configs base,steps300,...] --name NAME

Every row is a real encode (exact pass, rANS; not decoded here: `evaluate` decodes and checks) of the whole image with the named per-image fit
settings; bits are split into the error table and the per-image weight deltas (side info too).
Writes experiments/results/pyramid_ablation[-NAME].md|csv with the command and commit.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from diffcode import kodak
from diffcode.families.pyramid import exact, prior, spec
from diffcode.families.pyramid.fit import fit_deltas
from diffcode.image import read_image
from diffcode.storage import container
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"

BASE = spec.PRESETS["fast"]
CONFIGS = {
    "instant": replace(BASE, steps=0),
    "fast": BASE,
    "fast-adapt-all": replace(BASE, adapt="all"),
    "fast-adapt-biases": replace(BASE, adapt="biases"),
    "fast-lr1e-2": replace(BASE, lr=1e-2),
    "fast-lr1e-3": replace(BASE, lr=1e-3),
    "steps300": replace(BASE, steps=300),
    "fast-biases-lr1e-2": replace(BASE, adapt="biases", lr=1e-2),
    "fast-biases-lr3e-2": replace(BASE, adapt="biases", lr=3e-2),
    "default": spec.PRESETS["default"],
    "default-biases": replace(spec.PRESETS["default"], adapt="biases"),
    "default-biases-lr1e-2": replace(spec.PRESETS["default"], adapt="biases", lr=1e-2),
    "steps1000": replace(spec.PRESETS["default"], steps=1000),
}
# low-rank deltas of every weight matrix plus every bias (issue 21), at the default preset's budget
CONFIGS.update({f"default-{adapt}{suffix}": replace(spec.PRESETS["default"], adapt=adapt, lr=lr)
                for adapt in ("lowrank2", "lowrank4", "lowrank8") for suffix, lr in (("", 3e-3), ("-lr1e-2", 1e-2))})
# a gain per output unit of every weight matrix plus every bias (deltas.ADAPT gains)
CONFIGS.update({f"default-gains{suffix}": replace(spec.PRESETS["default"], adapt="gains", lr=lr)
                for suffix, lr in (("", 3e-3), ("-lr1e-2", 1e-2))})
CONFIGS.update({"default-gains-steps600": replace(spec.PRESETS["default"], adapt="gains", steps=600),
                "default-all": replace(spec.PRESETS["default"], adapt="all"),
                "default-all-lr1e-3": replace(spec.PRESETS["default"], adapt="all", lr=1e-3),
                "fast-gains": replace(spec.PRESETS["fast"], adapt="gains"),
                "default-gains2": replace(spec.PRESETS["default"], adapt="gains2"),
                "fast-gains2": replace(spec.PRESETS["fast"], adapt="gains2"),
                "default-steps600": replace(spec.PRESETS["default"], steps=600),
                "default-lr2e-2": replace(spec.PRESETS["default"], lr=2e-2),
                "default-lr5e-3": replace(spec.PRESETS["default"], lr=5e-3),
                "default-batch16k": replace(spec.PRESETS["default"], batch=16384),
                "default-batch24k": replace(spec.PRESETS["default"], batch=24576),
                "default-batch16k-steps500": replace(spec.PRESETS["default"], batch=16384, steps=500),
                "default-batch16k-steps600": replace(spec.PRESETS["default"], batch=16384, steps=600),
                "max-batch16k-steps2000": replace(spec.PRESETS["max"], batch=16384, steps=2000),
                "fast-batch8k-steps300": replace(spec.PRESETS["fast"], batch=8192, steps=300)})
# the default preset's bpsp against its fit time (--configs curve)
CURVE = [f"default-steps{n}" for n in (0, 50, 150, 300, 500, 1000)]
CONFIGS.update({name: replace(spec.PRESETS["default"], steps=int(name.rsplit("steps", 1)[1])) for name in CURVE})
# prior 4's mixture makes a fit step 16 % dearer: what 400 steps (about 60 s of compress) give up
CONFIGS["default-steps400"] = replace(spec.PRESETS["default"], steps=400)


def images(which: str) -> list[tuple[str, np.ndarray]]:
    if which == "val":
        return [(n, kodak.load(n)) for n in kodak.VALIDATION]
    if which == "photos-val":
        return [(p.stem, read_image(p)) for p in sorted((PHOTOS / "val").glob("*.png"))]
    return [(Path(p).stem, read_image(p)) if Path(p).exists() else (p, kodak.load(p)) for p in which.split(",")]


def run(name: str, image: np.ndarray, config: spec.Preset, model: prior.Prior) -> dict:
    start = time.perf_counter()
    k, _ = fit_deltas(image, model.arrays, steps=config.steps, adapt=config.adapt, lr=config.lr, batch=config.batch,
                      generator=torch.Generator().manual_seed(0), order=model.order)
    fit_s = time.perf_counter() - start
    encoded = exact.encode(image, k, config, config.adapt, model)  # the side info names the base preset's code
    store_s = time.perf_counter() - start - fit_s
    subpixels = image.size
    table = sum(len(s.payload) for s in encoded.sections if s.kind == container.ERROR_TABLE)
    total = sum(len(s.payload) for s in encoded.sections)
    return {"image": name, "height": image.shape[0], "width": image.shape[1],
            "error_table_bpsp": round(8 * table / subpixels, 4),
            "weights_bpsp": round(8 * (total - table) / subpixels, 4),
            "sections_bpsp": round(8 * total / subpixels, 4), "nonzero_weights": encoded.extras["n_nonzero_weights"],
            "fit_s": round(fit_s, 1), "store_s": round(store_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="val")
    parser.add_argument("--configs", default="instant,fast")
    parser.add_argument("--name", default="")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = prior.load()
    # the commit the run starts from (the tree may move on while it runs)
    commit = report.git_commit()
    heading = (f"Command: `python {' '.join(sys.argv)}` at commit {commit}, prior {model.sha256[:16]}, {args.threads} "
               "thread(s), 2-core CPU. bpsp of the real sections (file bytes minus the ~70-byte header); weights = "
               "side info + per-image weight deltas.")
    stem = RESULTS / f"pyramid_ablation{'-' + args.name if args.name else ''}"
    rows = []
    configs = CURVE if args.configs == "curve" else args.configs.split(",")
    for config in configs:
        for name, image in images(args.images):
            row = {"config": config, **run(name, image, CONFIGS[config], model)}
            rows.append(row)
            print(row, flush=True)
            write(stem, heading, rows)  # after every row: a stopped run leaves the rows it made


def write(stem: Path, heading: str, rows: list[dict]) -> None:
    """The table (md and csv) of the rows so far, each config's mean first."""
    keys = list(rows[0])
    means = []
    for config in dict.fromkeys(r["config"] for r in rows):
        sel = [r for r in rows if r["config"] == config]
        means.append({"config": config, "image": f"mean of {len(sel)}", "height": "", "width": "",
                      **{k: round(float(np.mean([r[k] for r in sel])), 4) for k in keys[4:]}})
    lines = ["# Pyramid family ablation\n", heading + "\n", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in means + rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with open(stem.with_suffix(".csv"), "w") as f:
        f.write(",".join(keys) + "\n")
        f.writelines(",".join(str(r[k]) for k in keys) + "\n" for r in means + rows)

if __name__ == "__main__":
    main()
