"""Peak memory (RSS) of fit, store and decode by image size, and the largest image that fits in RAM.

    python experiments/memory.py [--sizes 256x256,768x512,2048x2048] [--fit-steps 3] [--limit-gib 24]
    python experiments/memory.py --variant weights --name memory-weights     # default preset
    python experiments/memory.py --variant pyramid --name memory-pyramid     # default preset
    python experiments/memory.py --variant classic --name memory-classic     # nothing fitted

Each measurement runs in a fresh child process that imports diffcode, loads the shipped decoder,
reads its input from the work folder and runs exactly one phase:

- fit:    `fit_image` for --fit-steps Adam steps (float32 torch with autograd; the schedule's
          pieces scaled to the short run), then writes the fit file;
- store:  `codec.store` of that fit with the default scheme, verify=True as the CLI runs it
          (so it includes one decode of the file it made);
- decode: `codec.load` of the stored file.

With `--variant weights` the same phases run the weights variant (`api.fit` with --preset rescaled
to --fit-steps, `api.store`, `codec.load`); the child loads both shipped models either way.

The child reports its own peak resident set size (`getrusage(RUSAGE_SELF).ru_maxrss`, which the
parent also sees as `RUSAGE_CHILDREN` when it runs one child at a time) and its RSS after the
imports and the decoder load (the baseline every phase pays). Images are Kodak content (kodim17,
center crop, tiled for sizes beyond 768x512) or, without the Kodak files, a synthetic image.

The growth of each phase is fitted as peak = a + b * pixels over the measured sizes, and the
largest image whose every phase stays under --limit-gib is stated (as pixels and as the side of
a square and of a 3:2 image). Writes experiments/results/memory.md|csv (--name).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import report  # noqa: E402

PHASES = ("fit", "store", "decode")
COLUMNS = ["size", "phase", "pixels", "peak_rss_mib", "baseline_rss_mib", "phase_rss_mib", "seconds", "note"]

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
phase, work, h, w, steps = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
variant, preset = sys.argv[7], sys.argv[8]
import numpy as np
from diffcode import api, codec, fitfile
from diffcode.families.per_pixel.checkpoint import Checkpoint
from diffcode.families.per_pixel.fit import FitConfig, fit_image
from experiments.memory import memory_image
checkpoint = Checkpoint.load()
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stem = work / f"{variant}-{h}x{w}"
t0 = time.perf_counter()
if variant != "per-pixel" and phase == "fit":
    image = memory_image(h, w)
    from diffcode import families
    fits = families.get(variant).fit_steps(preset, None) > 0  # a family that fits nothing takes no steps
    fitfile.save(stem.with_suffix(".fit"), api.fit(image, variant=variant, preset=preset, steps=steps if fits else None),
                 overwrite=True)
elif phase == "fit":
    image = memory_image(h, w)
    config = FitConfig(steps=steps, maximize_steps=1, entropy_on_fraction=0.5, freeze_fraction=0.5)
    fitfile.save(stem.with_suffix(".fit"), fit_image(image, checkpoint, config), overwrite=True)
elif phase == "store":
    fit, _ = fitfile.load(stem.with_suffix(".fit"))
    data, _ = api.store(fit)
    stem.with_suffix(".dfc").write_bytes(data)
else:
    image = codec.load(stem.with_suffix(".dfc").read_bytes())
    fit, _ = fitfile.load(stem.with_suffix(".fit"))
    assert np.array_equal(image, fit.image), "decode is not bit-exact"
seconds = time.perf_counter() - t0
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "baseline_kib": baseline,
                  "seconds": seconds}))
"""


def memory_image(height: int, width: int) -> np.ndarray:
    """kodim17 content (center crop, tiled when larger than 768x512), or a synthetic image."""
    try:
        from diffcode import kodak

        base = kodak.load("kodim17")
    except Exception:  # noqa: BLE001 - no Kodak files here: synthetic content instead
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:512, 0:768]
        base = np.stack([128 + 100 * np.sin(x / 37.0), 128 + 100 * np.cos(y / 23.0), (x + y) % 256], axis=-1)
        base = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    bh, bw, _ = base.shape
    reps = (-(-height // bh), -(-width // bw), 1)
    tiled = np.tile(base, reps)
    top, left = (tiled.shape[0] - height) // 2, (tiled.shape[1] - width) // 2
    return np.ascontiguousarray(tiled[top:top + height, left:left + width])




def measure(phase: str, work: Path, h: int, w: int, steps: int, variant: str = "per-pixel",
            preset: str = "default") -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), phase, str(work), str(h), str(w), str(steps),
                           variant, preset],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{phase} {h}x{w} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # RUSAGE_CHILDREN is the largest child so far: it agrees with the child's own figure when this one is the largest
    out["children_kib"] = children if children > before else None
    return out


def fit_line(pixels: list[int], peaks: list[float]) -> tuple[float, float]:
    """Least-squares a + b * pixels (MiB); one point gives b = peak / pixels, a = 0."""
    if len(pixels) == 1:
        return 0.0, peaks[0] / pixels[0]
    b, a = np.polyfit(np.array(pixels, np.float64), np.array(peaks, np.float64), 1)
    return float(a), float(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256x256,768x512,2048x2048", help="HxW, comma-separated")
    parser.add_argument("--fit-steps", type=int, default=3)
    parser.add_argument("--variant", choices=("per-pixel", "weights", "pyramid", "classic"), default="per-pixel")
    parser.add_argument("--preset", default="default", help="weights or pyramid variant preset")
    parser.add_argument("--limit-gib", type=float, default=24.0)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "memory")
    parser.add_argument("--name", default="memory")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    args.work_dir.mkdir(parents=True, exist_ok=True)
    rows, by_phase = [], {p: ([], []) for p in PHASES}
    for h, w in sizes:
        for phase in PHASES:
            t0 = time.perf_counter()
            m = measure(phase, args.work_dir, h, w, args.fit_steps, args.variant, args.preset)
            peak, base = m["peak_kib"] / 1024, m["baseline_kib"] / 1024
            note = f"{args.fit_steps} steps" if phase == "fit" else ""
            if m["children_kib"] is not None and abs(m["children_kib"] - m["peak_kib"]) > 1024:
                note += f" (RUSAGE_CHILDREN {m['children_kib'] / 1024:.0f} MiB)"
            rows.append({"size": f"{h}x{w}", "phase": phase, "pixels": h * w, "peak_rss_mib": peak,
                         "baseline_rss_mib": base, "phase_rss_mib": peak - base, "seconds": m["seconds"],
                         "note": note.strip()})
            by_phase[phase][0].append(h * w)
            by_phase[phase][1].append(peak)
            print(f"{h}x{w} {phase}: peak {peak:,.0f} MiB (baseline {base:,.0f}), {m['seconds']:.1f} s "
                  f"({time.perf_counter() - t0:.0f} s with start-up)", flush=True)
    limit_mib = args.limit_gib * 1024
    largest = None
    for phase, (pixels, peaks) in by_phase.items():
        a, b = fit_line(pixels, peaks)
        if b <= 0:
            print(f"{phase}: peak does not grow over these sizes; no limit stated", flush=True)
            continue
        max_pixels = (limit_mib - a) / b
        largest = max_pixels if largest is None else min(largest, max_pixels)
        rows.append({"size": f"max in {args.limit_gib:g} GiB", "phase": phase, "pixels": int(max_pixels),
                     "peak_rss_mib": limit_mib, "baseline_rss_mib": a, "phase_rss_mib": None, "seconds": None,
                     "note": f"peak = {a:.0f} MiB + {b * 1e6:.1f} MiB per megapixel over {len(pixels)} sizes; "
                             f"square {math.isqrt(int(max_pixels))}^2, 3:2 {_three_two(max_pixels)}"})
        print(rows[-1]["note"], f"-> {phase}: {max_pixels / 1e6:.1f} megapixels", flush=True)
    if largest is not None:
        print(f"largest image with every phase under {args.limit_gib:g} GiB: {largest / 1e6:.1f} megapixels "
              f"(square {math.isqrt(int(largest))}^2, 3:2 {_three_two(largest)})")
    command = "python experiments/memory.py " + " ".join(sys.argv[1:])
    report.write_table(rows, args.out_dir / args.name, command, COLUMNS)
    print(f"wrote {args.out_dir / args.name}.md|csv")


def _three_two(pixels: float) -> str:
    w = int(math.sqrt(pixels * 1.5))
    return f"{w}x{int(w / 1.5)}"


if __name__ == "__main__":
    main()
