"""Speed of every registered family: fit, store and decode seconds, peak memory, coder throughput.

    python experiments/bench_speed.py                                  # every family, kodim17 + kodim23
    python experiments/bench_speed.py --fit-steps per-pixel:5,weights:5 --fit-repeats 1   # long fits projected
    python experiments/bench_speed.py --images kodim17 --crop 32 --repeats 1 --fit-steps 2   # quick

For every family of `diffcode.families.names()` and preset (`--presets family:a,b`; default: the
family's default preset, every preset for families whose default fit is short), on every image:

- fit:    `api.fit` with the preset's settings. With `--fit-steps N` (or `family:N,...`) a preset
          of more than N steps is fitted for N steps (the weights family needs N >= 3, one per
          phase) and its full length is *projected*: time to the first progress call (setup and one step) + the other steps x
          the median time between progress calls; the row says so. Otherwise the seconds are the
          fit's own;
- store:  `api.store` of that fit (verify=True, as the CLI runs it: it includes one decode);
- decode: `codec.load` of the stored file, checked against the image.

Sizes are width x height.

Each run is a fresh child process (imports and the shared model are loaded before the clock
starts, as in experiments/memory.py; the first call's loading of numba's compiled code is
inside the clock, as a user pays it), with OMP/OpenBLAS/numba/torch threads set to
`--threads` and fits on `--device` (the `device` column; every family's exact pass, so store and
decode, runs on the CPU whatever the device, and so do the coders and the floor); the child reports its seconds and its peak RSS (getrusage). Rows give the median of
`--repeats` runs with min and max, the threads, and the 1-minute load average before the runs
(the machine is shared: read timings next to it).

Coder rows: symbols per second each way of the two entropy coders on 1,179,648 symbols (a
768x512 image's subpixels): `diffcode/storage/rans.py` with the Cauchy model (per-pixel and
weights error tables) and `diffcode/families/pyramid/entropy.py` with the logistic model;
median of `--repeats` calls after a checked round trip (which loads the compiled code; its time
is in the note).

Floor rows: the exact pass's multiply-accumulates (counted by decoding the stored file with a
counter on the fixed-point convolution) over the measured float64 matrix-product throughput of
this CPU on the shapes that pass uses; the decode median is set against it.

Writes experiments/results/<name>.md|csv (--name, default speed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import families, report  # noqa: E402

COLUMNS = ["family", "preset", "image", "size", "phase", "runs", "median_s", "min_s", "max_s", "steps",
           "peak_rss_mib", "symbols_per_s", "threads", "device", "load_avg", "note"]
CODER_SYMBOLS = 768 * 512 * 3
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
phase, work, image_name, crop, family, preset, steps, threads, device = sys.argv[2:11]
import numpy as np
import torch
torch.set_num_threads(int(threads))
from diffcode import api, codec, families, fitfile
from experiments.bench_speed import bench_image
model = families.get(family).load_model()
stem = Path(work) / f"{family}-{preset}-{Path(image_name).stem}-{crop}"
out = {}
if phase == "fit":
    image = bench_image(image_name, int(crop))
    stamps = []
    t0 = time.perf_counter()
    fit = api.fit(image, variant=family, model=model, preset=preset, steps=None if steps == "none" else int(steps),
                  progress=lambda step, bpsp: stamps.append(time.perf_counter()), device=device)
    seconds = time.perf_counter() - t0
    fitfile.save(stem.with_suffix(".fit"), fit, overwrite=True)
    gaps = np.diff([t0] + stamps)
    out = {"setup": float(gaps[0]) if len(gaps) else seconds, "step": float(np.median(gaps[1:])) if len(gaps) > 1
           else None, "progress_calls": len(stamps), "bpsp": fit.history[-1].get("bpsp") if fit.history else None}
elif phase == "store":
    fit, _ = fitfile.load(stem.with_suffix(".fit"))
    t0 = time.perf_counter()
    data, size = api.store(fit, model=model, device=device)
    seconds = time.perf_counter() - t0
    stem.with_suffix(".dfc").write_bytes(data)
    out = {"file_bytes": len(data)}
else:
    data = stem.with_suffix(".dfc").read_bytes()
    t0 = time.perf_counter()
    image = codec.load(data, model, device=device)
    seconds = time.perf_counter() - t0
    fit, _ = fitfile.load(stem.with_suffix(".fit"))
    assert np.array_equal(image, fit.image), "decode is not bit-exact"
out.update(seconds=seconds, peak_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print(json.dumps(out))
"""


def bench_image(name: str, crop: int) -> np.ndarray:
    """A Kodak image by name, or an image file (crop > 0: its center crop of crop x crop pixels)."""
    from diffcode import image as image_io, kodak

    image = image_io.read_image(name) if Path(name).suffix else kodak.load(name)
    return kodak.crop(image, crop) if crop > 0 else image


def image_label(name: str) -> str:
    return Path(name).stem


def load_average() -> float:
    return os.getloadavg()[0]


def child_env(threads: int) -> dict:
    return {**os.environ, **{v: str(threads) for v in THREAD_VARIABLES}}


def run_child(phase: str, work: Path, image: str, crop: int, family: str, preset: str, steps: int | None,
              threads: int, device: str = "cpu") -> dict:
    """One phase in a fresh process: its JSON report (seconds, peak_kib, ...)."""
    args = [sys.executable, "-c", _CHILD, str(ROOT), phase, str(work), image, str(crop), family, preset,
            "none" if steps is None else str(steps), str(threads), device]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=child_env(threads))
    if proc.returncode != 0:
        raise RuntimeError(f"{family} {preset} {phase} {image} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(values: list[float]) -> dict:
    return {"runs": len(values), "median_s": statistics.median(values), "min_s": min(values), "max_s": max(values)}


def fit_rows(args, family: str, preset: str, image: str, size: str) -> list[dict]:
    """The fit row of one (family, preset, image): measured, or projected from --fit-steps."""
    full = families.get(family).fit_steps(preset, None)
    cap = args.fit_steps.get(family, args.fit_steps.get("*"))
    steps = cap if cap is not None and full > cap else None
    load, runs = load_average(), []
    for _ in range(args.fit_repeats):
        runs.append(run_child("fit", args.work_dir, image, args.crop, family, preset, steps, args.threads,
                              args.device))
    row = {"family": family, "preset": preset, "image": image_label(image), "size": size, "phase": "fit",
           "threads": args.threads, "device": args.device, "load_avg": load,
           "peak_rss_mib": max(r["peak_kib"] for r in runs) / 1024}
    if steps is None:
        row.update(summary([r["seconds"] for r in runs]), steps=full, note=f"bpsp {runs[0]['bpsp']}")
        return [row]
    projected = [r["setup"] + (full - 1) * r["step"] for r in runs]
    row.update(summary(projected), phase="fit (projected)", steps=full,
               note=f"projected: first step {statistics.median(r['setup'] for r in runs):.2f} s + {full - 1} steps x "
                    f"{statistics.median(r['step'] for r in runs):.3f} s (median step of {steps}-step fits "
                    f"taking {statistics.median(r['seconds'] for r in runs):.1f} s); store/decode use this fit")
    return [row]


def coded_rows(args, family: str, preset: str, image: str, size: str) -> list[dict]:
    """Store and decode rows of the fit just made."""
    rows = []
    for phase in ("store", "decode"):
        load = load_average()
        runs = [run_child(phase, args.work_dir, image, args.crop, family, preset, None, args.threads, args.device)
                for _ in range(args.repeats)]
        note = f"{runs[0]['file_bytes']} bytes" if phase == "store" else "bit-exact"
        rows.append({"family": family, "preset": preset, "image": image_label(image), "size": size, "phase": phase,
                     **summary([r["seconds"] for r in runs]), "peak_rss_mib": max(r["peak_kib"] for r in runs) / 1024,
                     "threads": args.threads, "device": "cpu", "load_avg": load, "note": note})
    return rows


# ----------------------------------------------------------------------------- coders


def _timed(call, repeats: int) -> list[float]:
    """Seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def coder_rows(args) -> list[dict]:
    """Symbols per second each way of the rANS coder (Cauchy) and the pyramid's coder (logistic)."""
    from diffcode.cauchy import CauchyModel
    from diffcode.families.pyramid import entropy, spec
    from diffcode.storage import rans

    n = args.coder_symbols
    rng = np.random.default_rng(0)
    params = np.stack([rng.integers(-4, 1025, n), rng.integers(20, 70, n)], 1)
    symbols = np.clip(np.round(params[:, 0] / 4 + 3 * rng.standard_cauchy(n)), 0, 255).astype(np.int64)
    model = CauchyModel()
    t0 = time.perf_counter()
    data = rans.encode(symbols, params, model)
    if not np.array_equal(rans.decode(data, params, model), symbols):
        raise RuntimeError("rANS round trip failed")
    first = {"rans": time.perf_counter() - t0}
    loc12 = rng.integers(spec.LOC_MIN, spec.LOC_MAX + 1, n)
    scale = rng.integers(0, spec.N_SCALES, n)
    pixels = np.clip(np.round(loc12 / spec.LOC_STEP + 4 * rng.logistic(size=n)), 0, 255).astype(np.uint8)
    t0 = time.perf_counter()
    stream, _ = entropy.encode(pixels, loc12, scale)

    def pyramid_decode():
        decoder = entropy.Decoder(stream)
        if not np.array_equal(decoder.decode(loc12, scale), pixels):
            raise RuntimeError("pyramid coder round trip failed")
        decoder.finish()

    pyramid_decode()
    first["pyramid"] = time.perf_counter() - t0
    cases = [("rans (Cauchy; per-pixel, weights)", "encode", lambda: rans.encode(symbols, params, model)),
             ("rans (Cauchy; per-pixel, weights)", "decode", lambda: rans.decode(data, params, model)),
             ("pyramid entropy (logistic)", "encode", lambda: entropy.encode(pixels, loc12, scale)),
             ("pyramid entropy (logistic)", "decode", pyramid_decode)]
    rows = []
    for coder, way, call in cases:
        load = load_average()
        times = _timed(call, args.repeats)
        check = first["rans" if coder.startswith("rans") else "pyramid"]
        rows.append({"family": "coder", "preset": coder, "size": f"{n} symbols", "phase": way,
                     **summary(times), "symbols_per_s": n / statistics.median(times), "threads": 1, "device": "cpu",
                     "load_avg": load, "note": f"after a checked round trip of {check:.3f} s, which loaded "
                                               f"the compiled code"})
    return rows


# ----------------------------------------------------------------------------- floor


def matmul_gmacs(repeats: int = 5) -> float:
    """Float64 matrix-product throughput (GMAC/s, best of `repeats`) on the exact pass's shapes:
    (40 x 40) @ (40 x 8 rows of 776 pixels), accumulated in place, one thread."""
    import torch

    a = torch.randn(40, 40, dtype=torch.float64)
    b = torch.randn(40, 8 * 776, dtype=torch.float64)
    c = torch.zeros(40, 8 * 776, dtype=torch.float64)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(50):
            c.addmm_(a, b)
        best = min(best, time.perf_counter() - t0)
    return 50 * a.numel() * b.shape[1] / best / 1e9


def count_macs(data: bytes, family: str) -> int:
    """Multiply-accumulates of the exact pass's 3x3 convolutions when decoding `data` (useful
    outputs only: the two wrapped columns per row that the shifted products also compute are not
    counted)."""
    from diffcode import codec, fixedpoint

    real, total = fixedpoint._conv3x3_flat, [0]

    def counting(flat, h, w, weight, bias, *options, **named):
        total[0] += weight.shape[0] * weight.shape[1] * max(h - 2, 0) * max(w - 2, 0)
        return real(flat, h, w, weight, bias, *options, **named)

    fixedpoint._conv3x3_flat = counting
    try:
        codec.load(data, families.get(family).load_model())
    finally:
        fixedpoint._conv3x3_flat = real
    return total[0]


def floor_rows(args, rows: list[dict], gmacs: float) -> list[dict]:
    """One floor row per (family, preset, image) whose decode runs fixed-point convolutions."""
    out = []
    for row in [r for r in rows if r["phase"] == "decode" and r["family"] != "coder"]:
        path = args.work_dir / f"{row['family']}-{row['preset']}-{row['image']}-{args.crop}.dfc"
        macs = count_macs(path.read_bytes(), row["family"])
        if macs == 0:
            continue
        floor = macs / (gmacs * 1e9)
        out.append({**{k: row[k] for k in ("family", "preset", "image", "size")}, "phase": "decode floor",
                    "median_s": floor, "threads": 1, "device": "cpu", "load_avg": load_average(),
                    "note": f"{macs / 1e9:.2f} GMAC ({macs / _pixels(row['size']):,.0f} per pixel) / "
                            f"{gmacs:.1f} GMAC/s float64 matmul; decode median = {row['median_s'] / floor:.1f}x floor"})
    return out


def _pixels(size: str) -> int:
    h, w = (int(v) for v in size.split("x"))
    return h * w


# ----------------------------------------------------------------------------- main


def presets_to_run(spec: str | None) -> list[tuple[str, str]]:
    """(family, preset) pairs: every family's default preset, plus `--presets fam:a,b;fam2:c`."""
    chosen = {name: [families.get(name).presets[0]] for name in families.names()}
    for part in (spec or "").split(";"):
        if part:
            name, names = part.split(":")
            chosen[name] = names.split(",")
    return [(name, preset) for name, presets in chosen.items() for preset in presets]


def _fit_steps(text: str) -> dict[str, int]:
    """'5' -> every family ('*'); 'per-pixel:5,weights:5' -> those families only."""
    if ":" not in text:
        return {"*": int(text)}
    return {name: int(n) for name, n in (part.split(":") for part in text.split(","))}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="kodim17,kodim23", help="Kodak names or image files, comma-separated")
    parser.add_argument("--crop", type=int, default=0, help="center crop side (0: full images)")
    parser.add_argument("--families", default=",".join(families.names()))
    parser.add_argument("--presets", default=None, help="family:preset,preset;family:... (default: each default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit-repeats", type=int, default=None, help="default: --repeats")
    parser.add_argument("--fit-steps", type=_fit_steps, default={},
                        help="N, or family:N,family:N: fit at most N steps and project longer fits")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="fit on this device (cpu, cuda[:N]); exact passes run on the CPU")
    parser.add_argument("--coder-symbols", type=int, default=CODER_SYMBOLS)
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--name", default="speed")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args(argv)
    args.fit_repeats = args.repeats if args.fit_repeats is None else args.fit_repeats
    return args


def main(argv=None) -> None:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)  # the coder and floor rows run in this process
    wanted = set(args.families.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        args.work_dir = args.work_dir or Path(scratch)
        args.work_dir.mkdir(parents=True, exist_ok=True)
        rows = []
        for family, preset in presets_to_run(args.presets):
            if family not in wanted:
                continue
            for image in args.images.split(","):
                h, w, _ = bench_image(image, args.crop).shape  # sizes are written width x height
                for row in fit_rows(args, family, preset, image, f"{w}x{h}") + \
                        coded_rows(args, family, preset, image, f"{w}x{h}"):
                    rows.append(row)
                    print(_line(row), flush=True)
        rows += coder_rows(args)
        if not args.no_floor:
            rows += floor_rows(args, rows, matmul_gmacs())
        for row in rows[-8:]:
            print(_line(row), flush=True)
    command = "python experiments/bench_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report.write_table(rows, args.out_dir / args.name, command, COLUMNS)
    print(f"wrote {args.out_dir / args.name}.md|csv")


def _line(row: dict) -> str:
    rate = f" {row['symbols_per_s'] / 1e6:.2f} M symbols/s" if row.get("symbols_per_s") else ""
    return (f"{row['family']} {row['preset']} {row.get('image', '')} {row['phase']}: median {row['median_s']:.3f} s"
            f"{rate} (load {row['load_avg']:.1f}) {row.get('note', '')}")


if __name__ == "__main__":
    main()
