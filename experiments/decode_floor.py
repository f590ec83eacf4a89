"""The floor of a pyramid decode: the network's multiply-accumulates over this machine's matrix-product speed.

    python experiments/decode_floor.py [--height 512 --width 768] [--repeats 5] [--name NAME]

Counts the multiply-accumulates the exact engine runs to decode an image of the given size with the current
prior (every coded target runs its phase's trunk and three heads), times numpy's float32 and float64 matrix
products on the engine's own layer shapes (one thread, blocks of `Engine.ROWS` rows, median of `--repeats`),
and so gives the time no implementation of this network can beat on this machine, and the trunk width whose
network would fit a time budget. Writes experiments/results/decode_floor[-NAME].md with the command and commit.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from diffcode.families.pyramid import engine, prior  # noqa: E402
from diffcode.families.pyramid.train import coded_targets  # noqa: E402
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"


def layer_shapes(arrays: dict) -> list[tuple[str, int, int, type]]:
    """(name, inputs, outputs, dtype) of the products one target of phase 0 runs (every phase has the same)."""
    n_in, width = arrays["phases.0.trunk1.weight"].shape[1], arrays["phases.0.trunk1.weight"].shape[0]
    head = arrays["phases.0.heads1.0.weight"].shape[0]
    return [("trunk1", n_in, width, np.float64), ("trunk2", width, width, np.float32),
            ("heads1 (three, shared trunk part)", width, 3 * head, np.float32),
            ("heads1 (own channels)", 3, head, np.float32), ("heads2 (three)", head, 6, np.float32)]


def gemm_seconds(rows: int, n_in: int, n_out: int, dtype, repeats: int) -> float:
    """Median seconds of a (rows, n_in) @ (n_in, n_out) product of small integers in `dtype`."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 512, (rows, n_in)).astype(dtype)
    w = rng.integers(-64, 64, (n_in, n_out)).astype(dtype)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x @ w
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.2, help="seconds of network time to size a width for")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    model = prior.load()
    targets = coded_targets(args.height, args.width)
    rows = engine.Engine.ROWS
    lines, lines_s, total_macs, total_s = [], [], 0, 0.0
    for name, n_in, n_out, dtype in layer_shapes(model.arrays):
        seconds = gemm_seconds(rows, n_in, n_out, dtype, args.repeats) * targets / rows
        macs = targets * n_in * n_out
        total_macs, total_s = total_macs + macs, total_s + seconds
        lines_s.append(seconds)
        lines.append(f"| {name} | {n_in} x {n_out} | {np.dtype(dtype).name} | {macs / 1e9:.3f} | {seconds:.3f} | "
                     f"{macs / seconds / 1e9:.1f} |")
    width = model.arrays["phases.0.trunk1.weight"].shape[0]
    n_in, head = model.arrays["phases.0.trunk1.weight"].shape[1], model.arrays["phases.0.heads1.0.weight"].shape[0]
    rate64 = targets * n_in * width / (float(lines_s[0]))  # MAC/s of the float64 first layer
    rate32 = targets * (width * width + width * 3 * head) / float(lines_s[1] + lines_s[2])  # of the float32 trunk
    fit = width
    while fit > 8 and targets * (n_in * fit / rate64 + (fit * fit + fit * 3 * head) / rate32) > args.budget:
        fit -= 8
    commit = report.git_commit()
    load = os.getloadavg()[0]
    text = [
        "# The floor of a pyramid decode: the network's products on this machine\n",
        f"- command: `python {' '.join(sys.argv)}`",
        f"- commit: {commit}; prior {model.sha256[:16]} (width {width}); {args.width}x{args.height}: {targets:,} coded "
        f"targets; machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, one thread, "
        f"1-minute load {load:.2f} (on a loaded machine every time is an upper bound)",
        f"- numpy {np.__version__}; products of `Engine.ROWS` = {rows} rows, median of {args.repeats}, scaled to "
        "the image's targets\n",
        "| product per target | shape | dtype | GMAC per image | seconds per image | GMAC/s |",
        "|---|---|---|---|---|---|",
        *lines,
        f"| **all** | | | **{total_macs / 1e9:.3f}** | **{total_s:.3f}** | {total_macs / total_s / 1e9:.1f} |",
        "",
        f"The products alone take {total_s:.2f} s at numpy's float32 and float64 speeds, so no decoder of this "
        "network in those types goes below that on this machine; only narrower arithmetic (integer kernels) or a "
        "smaller network could. The rest of a decode (start-up, contexts, requantization, the rANS loop, the PNG) "
        "comes on top. At the measured "
        f"throughputs, with the same head ({head}), a trunk of width {fit} or less would fit {args.budget} s of "
        "the trunk's and heads' products.",
    ]
    name = f"decode_floor{'-' + args.name if args.name else ''}.md"
    (RESULTS / name).write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
