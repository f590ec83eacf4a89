"""The fitting convolutions' layout and arithmetic: seconds of forward + backward on this CPU.

    python experiments/conv_layouts.py [--repeats 5] [--threads 1]

Times `diffcode.layers.conv2d`'s choices on the per-pixel decoder's full-resolution shapes (a
768x512 image's last stage: 20->40, 40->20 and 30->40 3x3 convolutions on 520x776) and on the
weights variant's (16->32, 32->16 and 32->6, zero-padded, 512x768). Forward, then backward of the
sum: per-pixel fits need the input's gradient only, weights fits the weights' too. Rows: every
combination of layout (contiguous, channels-last) and dtype (float32, bfloat16), median of
`--repeats` after two warm-up runs. Also the error-table loss of both variants on (1, 3, 512, 768):
forward + backward of `diffcode.cauchy.nats` (one numba pass) against `nats_reference` (torch
ops, autograd). Writes experiments/results/conv_layouts.md|csv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import report  # noqa: E402
from diffcode.layers import native_bfloat16  # noqa: E402

SHAPES = {  # family: (height, width, padding, weight gradient, [(in, out), ...])
    "per-pixel": (520, 776, 0, False, [(20, 40), (40, 20), (30, 40)]),
    "weights": (512, 768, 1, True, [(16, 32), (32, 16), (32, 6)]),
}
COLUMNS = ["family", "layout", "dtype", "seconds", "ratio_to_plain_float32", "threads", "native_bfloat16", "load_avg"]


def median_seconds(run, repeats: int) -> float:
    """Median seconds of `repeats` calls of run(), after two warm-up calls."""
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def seconds(family: str, layout: torch.memory_format, dtype: torch.dtype, repeats: int, scale: int = 1) -> float:
    h, w, pad, weight_grad, convs = SHAPES[family]
    h, w = h // scale, w // scale
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(1, cin, h, w, generator=g).to(dtype).contiguous(memory_format=layout).requires_grad_(),
              (0.1 * torch.randn(cout, cin, 3, 3, generator=g)).to(dtype).contiguous(memory_format=layout)
              .requires_grad_(weight_grad)) for cin, cout in convs]

    def run():
        for x, weight in pairs:
            F.conv2d(x, weight, padding=pad).float().sum().backward()

    return median_seconds(run, repeats)


def loss_seconds(fused: bool, repeats: int, scale: int = 1) -> float:
    """Forward + backward of the Cauchy error-table loss on a 768x512 image's head output."""
    from diffcode import cauchy

    g = torch.Generator().manual_seed(0)
    h, w = 512 // scale, 768 // scale
    x = torch.randint(0, 256, (1, 3, h, w), generator=g).float()
    out = torch.randn(1, 6, h, w, generator=g).requires_grad_()
    nats = cauchy.nats if fused else cauchy.nats_reference

    def run():
        nats(x, out[:, :3], out[:, 3:]).sum().backward()

    return median_seconds(run, repeats)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--families", default=",".join(SHAPES))
    ap.add_argument("--scale", type=int, default=1, help="divide the image sides by this (tests)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for family in args.families.split(","):
        plain = None
        for layout_name, layout in (("contiguous", torch.contiguous_format), ("channels-last", torch.channels_last)):
            for dtype in (torch.float32, torch.bfloat16):
                s = seconds(family, layout, dtype, args.repeats, args.scale)
                plain = plain or s
                rows.append({"family": family, "layout": layout_name, "dtype": str(dtype).removeprefix("torch."),
                             "seconds": s, "ratio_to_plain_float32": s / plain, "threads": args.threads,
                             "native_bfloat16": native_bfloat16("cpu"), "load_avg": os.getloadavg()[0]})
                print(rows[-1], flush=True)
    reference = loss_seconds(False, args.repeats, args.scale)
    for name, s in (("nats_reference (torch)", reference), ("nats (numba)", loss_seconds(True, args.repeats, args.scale))):
        rows.append({"family": "cauchy loss", "layout": name, "dtype": "float32 in, float64 inside", "seconds": s,
                     "ratio_to_plain_float32": s / reference, "threads": args.threads,
                     "native_bfloat16": native_bfloat16("cpu"), "load_avg": os.getloadavg()[0]})
        print(rows[-1], flush=True)
    command = "python experiments/conv_layouts.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report.write_table(rows, args.out_dir / "conv_layouts", command, COLUMNS)


if __name__ == "__main__":
    main()
