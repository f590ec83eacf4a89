"""Bits against fitting time: a report variant's fit at several step counts, real coded bits.

    python experiments/fit_curve.py --family per-pixel --images kodim09,kodim13 --crop 256 \\
        --steps 25,50,100,200 --set conv_dtype=bfloat16 --name pp-val-crop256-bf16

For every image and step count the family's default schedule is rescaled to that many steps
(`FitConfig.with_steps`, `weights.spec.with_steps`), fitted, and stored (exact pass and coder;
not decoded: `evaluate` decodes and checks). `--set field=value` changes fields of the per-pixel
`FitConfig` or of the weights `Preset` (schedule fields only: the file names the preset by its
code). Each row has the fit's wall seconds, its final training objective, and the theoretical and
real bits of the stored file; a second table holds the objective against wall time step by step
of every fit, from which the knee is read. Rows are cached in runs/fit_curve/ (resumable).

Writes experiments/results/fit_curve-NAME.md|csv and fit_curve-NAME-history.csv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import api, families, kodak, report  # noqa: E402
from diffcode.image import read_image  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
CACHE = ROOT / "runs" / "fit_curve"
COLUMNS = ["image", "steps", "settings", "threads", "fit_seconds", "fit_bpsp", "theoretical_bpsp", "bpsp",
           "store_seconds"]


def parse_settings(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, value = item.split("=", 1)
        out[key] = value
    return out


def typed(current, value: str):
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes")
    return type(current)(value)


def settings_of(family: str, preset: str, steps: int, overrides: dict):
    """The fit settings object of `family` with `steps` steps and the overrides applied."""
    if family == "per-pixel":
        from diffcode.families.per_pixel.config import FitConfig

        base = FitConfig()
        config = replace(base, **{k: typed(getattr(base, k), v) for k, v in overrides.items()})
        return config.with_steps(steps)
    if family == "weights":
        from diffcode.families.weights import spec as wv

        base = wv.preset(preset)
        return wv.with_steps(replace(base, **{k: typed(getattr(base, k), v) for k, v in overrides.items()}), steps)
    raise SystemExit(f"fit_curve covers the report variants (per-pixel, weights), not {family}")


def fit(family: str, image: np.ndarray, model, settings, progress):
    if family == "per-pixel":
        from diffcode.families.per_pixel.fit import fit_image

        return fit_image(image, model, settings, progress=progress)
    from diffcode.families.weights.fit import fit_image

    return fit_image(image, model, settings, 0, progress)


def load(name: str, crop: int) -> np.ndarray:
    image = read_image(name) if Path(name).exists() else kodak.load(name)
    return kodak.crop(image, (crop, crop)) if crop else image


def run(family: str, name: str, image: np.ndarray, model, settings, label: str,
        cache: Path) -> tuple[dict, list[dict]]:
    key = json.dumps([family, name, image.shape, model.hash, asdict(settings), label], sort_keys=True, default=str)
    path = cache / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".json")
    if path.exists():
        cached = json.loads(path.read_text())
        return cached["row"], cached["history"]
    import torch

    t0 = time.perf_counter()
    times = []
    result = fit(family, image, model, settings, lambda step, bpsp: times.append(time.perf_counter() - t0))
    t1 = time.perf_counter()
    data, rep = api.store(result, model=model, verify=False)
    t2 = time.perf_counter()
    h, w, _ = image.shape
    r = rep.as_dict()
    row = {"image": name, "steps": settings.steps, "settings": label, "threads": torch.get_num_threads(),
           "fit_seconds": t1 - t0, "fit_bpsp": result.history[-1]["bpsp"],
           "theoretical_bpsp": r["theoretical_bpsp"], "bpsp": report.bpsp(len(data), h, w), "store_seconds": t2 - t1}
    history = [{"image": name, "steps": settings.steps, "settings": label, "step": rec["step"],
                "elapsed_s": t, "bpsp": rec["bpsp"]} for rec, t in zip(result.history, times)]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"row": row, "history": history}))
    return row, history


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", required=True, choices=["per-pixel", "weights"])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--images", required=True, help="comma-separated Kodak names or paths (validation images)")
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--steps", required=True, help="comma-separated step counts")
    ap.add_argument("--set", action="append", default=[], help="field=value of the fit settings (repeatable)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", required=True)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--work-dir", type=Path, default=CACHE, help="the rows' cache")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    overrides = parse_settings(args.set)
    label = ",".join(args.set) or "default"
    model = families.get(args.family).load_model()
    rows, history = [], []
    for name in args.images.split(","):
        image = load(name, args.crop)
        for steps in (int(s) for s in args.steps.split(",")):
            row, hist = run(args.family, name, image, model, settings_of(args.family, args.preset, steps, overrides),
                            label, args.work_dir)
            rows.append(row)
            history += hist
            print(json.dumps(row), flush=True)
    means = []
    for steps in sorted({r["steps"] for r in rows}):
        sel = [r for r in rows if r["steps"] == steps]
        if len(sel) > 1:
            means.append({"image": "mean", "steps": steps, "settings": label, "threads": args.threads,
                          **{k: float(np.mean([r[k] for r in sel])) for k in COLUMNS[4:]}})
    command = "python experiments/fit_curve.py " + " ".join(sys.argv[1:] if argv is None else argv)
    stem = args.out_dir / f"fit_curve-{args.name}"
    report.write_table(rows + means, stem, command, COLUMNS)
    report.write_table(history, stem.with_name(stem.name + "-history"), command,
                       ["image", "steps", "settings", "step", "elapsed_s", "bpsp"])
    os.remove(stem.with_name(stem.name + "-history.md"))  # the step-by-step table is for plotting only


if __name__ == "__main__":
    main()
