"""Lossless baselines on Kodak: raw, gzip, bzip2, xz, zstd, PNG, WebP, JPEG 2000, JPEG XL.

    python experiments/baselines.py --split all                      # -> results/baselines-all*
    python experiments/baselines.py --split test --patches           # -> baselines-test-patches*
    python experiments/baselines.py --split test --patches --grayscale

Writes experiments/results/baselines-<split>[-patches][-gray]{,-summary,-rows}.{csv,md} (see
diffcode.baselines.write). For RGB whole-image runs, the summary's Markdown file ends with a
comparison against the reference table of ../shared/kodak/README.md, per split.
--patches and --grayscale reproduce the setting of "Language modeling is compression"
(32x64 grayscale patches, each compressed on its own).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import baselines, kodak  # noqa: E402

SPLIT_COLUMNS = ("all", "train", "validation", "test")

REFERENCE = {
    # mean bpsp per split (all 24, train, val, test), from ../shared/kodak/README.md
    "raw": (8.000, 8.000, 8.000, 8.000),
    "gzip": (4.997, 5.089, 4.796, 5.108),
    "bzip2": (3.856, 3.842, 3.691, 4.033),
    "lzma": (4.090, 4.124, 3.904, 4.243),
    "zstd19": (4.292, 4.321, 4.095, 4.461),  # the reference gives one row for zstd -19 / -22
    "zstd22": (4.292, 4.321, 4.095, 4.461),
    "png": (4.467, 4.576, 4.401, 4.425),
    "jpeg2000": (3.192, 3.211, 3.168, 3.198),
    "webp": (3.166, 3.196, 3.117, 3.185),
    "jpegxl": (2.885, 2.911, 2.824, 2.920),
}
TOLERANCE = 0.0015  # the reference has 3 decimals: a difference within rounding counts as equal


def comparison(rows: list[dict], split: str) -> str:
    """Markdown: measured vs reference mean bpsp for `split` and, for 'all', each sub-split."""
    splits = SPLIT_COLUMNS if split == "all" else (split,)
    lines = ["Comparison with the reference table of ../shared/kodak/README.md "
             f"(mean bpsp; 'agrees' means within {TOLERANCE} bpsp, i.e. equal to its 3 decimals):",
             "",
             "| codec | " + " | ".join(f"{s} measured | {s} reference" for s in splits)
             + " | largest difference | agrees |",
             "|---" * (2 * len(splits) + 3) + "|"]
    disagreements = []
    for codec in dict.fromkeys(r["codec"] for r in rows):
        cells, worst = [], 0.0
        for s in splits:
            names = set(kodak.split(s))
            values = [r["bpsp"] for r in rows
                      if r["codec"] == codec and r["image"] in names and r["bpsp"] is not None]
            measured = float(np.mean(values)) if len(values) == len(names) else None
            reference = REFERENCE.get(codec, (None,) * 4)[SPLIT_COLUMNS.index(s)]
            cells += ["" if measured is None else f"{measured:.4f}",
                      "" if reference is None else f"{reference:.3f}"]
            if measured is not None and reference is not None:
                worst = max(worst, abs(measured - reference))
        if codec not in REFERENCE:  # e.g. cjxl-e7: the reference table has no such row
            lines.append(f"| {codec} | " + " | ".join(cells) + " | | no reference |")
            continue
        ok = worst <= TOLERANCE
        if not ok:
            disagreements.append(f"{codec} ({worst:+.4f})")
        lines.append(f"| {codec} | " + " | ".join(cells) + f" | {worst:.4f} | {'yes' if ok else 'no'} |")
    lines += ["", "All codecs with a reference row agree with it." if not disagreements
              else "Differences beyond rounding: " + ", ".join(disagreements) + "."]
    return "\n".join(lines)


def inflation(rows: list[dict], split: str, patches: bool, grayscale: bool) -> str:
    """Markdown: this run's mean bpsp next to the whole-image RGB reference of the same split."""
    if split not in SPLIT_COLUMNS:
        return ""
    column = SPLIT_COLUMNS.index(split)
    setting = " + ".join(x for x, on in (("32x64 patches", patches), ("grayscale", grayscale)) if on)
    lines = [f"Effect of {setting} (the setting of Deletang et al., 'Language modeling is "
             "compression'): this run's mean bpsp against the whole-image RGB reference of the "
             f"same split (../shared/kodak/README.md, reproduced in baselines-all-summary.md)"
             + (". Grayscale rates are per gray subpixel, RGB rates per colour subpixel, so the "
                "ratio mixes the cost of patching with the change of task (one luma sample per "
                "pixel, without the redundancy between colour channels that RGB rates profit from)"
                if grayscale else "") + ":",
             "", f"| codec | {setting} | whole-image RGB | ratio |", "|---|---|---|---|"]
    for summary in baselines.summarize(rows):
        codec, value = summary["codec"], summary["mean_bpsp"]
        reference = REFERENCE.get(codec, (None,) * 4)[column]
        if value is None or reference is None:
            continue
        lines.append(f"| {codec} | {value:.4f} | {reference:.3f} | {value / reference:.3f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", default="test", help="train, validation, test or all")
    p.add_argument("--patches", action="store_true", help="code 32x64 patches separately")
    p.add_argument("--grayscale", action="store_true", help="code Pillow 'L' luma, not RGB")
    p.add_argument("--codecs", default=",".join(baselines.CODEC_NAMES),
                   help="comma-separated subset of " + ",".join(baselines.CODEC_NAMES))
    p.add_argument("--kodak-dir", default=None)
    p.add_argument("--out", type=Path, default=None, help="output stem (default by split and options)")
    args = p.parse_args()

    names = kodak.split(args.split)
    t0 = time.perf_counter()
    rows = baselines.run(names, kodak_dir=args.kodak_dir, patches=args.patches,
                         grayscale=args.grayscale, codecs=args.codecs.split(","))
    seconds = time.perf_counter() - t0
    note = (f"Wall time {seconds:.0f} s (all codecs, encode + decode + checks), on a machine "
            f"shared with other jobs: the seconds columns are indicative only.\n\n"
            f"Libraries: {baselines.library_versions()}.")
    if not args.patches and not args.grayscale:
        note = comparison(rows, args.split) + "\n\n" + note
    else:
        note = inflation(rows, args.split, args.patches, args.grayscale) + "\n\n" + note
    stem = args.out or baselines.default_stem(args.split, args.patches, args.grayscale)
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    for path in baselines.write(rows, stem, command, note=note):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    for row in baselines.summarize(rows):
        bpsp = "n/a" if row["mean_bpsp"] is None else f"{row['mean_bpsp']:.4f}"
        print(f"{row['codec']:9s} {bpsp:>8s}  {row['note'] or ''}")
    print(note)


if __name__ == "__main__":
    main()
