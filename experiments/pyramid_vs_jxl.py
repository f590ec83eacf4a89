"""The pyramid family's evaluate tables beside the JPEG XL command-line tool, image by image.

    python experiments/pyramid_vs_jxl.py --tables kodak-pyramid2-test-default,kodak-pyramid2-val-default \
        --baselines baselines-all-cjxl-rows,baselines-photos-val-rows --name pyramid2

Reads `diffcode evaluate` tables (csv, in experiments/results) and `baselines` rows (cjxl-e7, cjxl-e9,
cjxl-max, WebP, PNG where present) and writes experiments/results/pyramid_vs_jxl[-NAME].md: per table its mean
bpsp beside each codec's on the same images, on how many images diffcode is smaller, and the per-image rows.
No new measurement: every number comes from the named tables, which record their commands.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
CODECS = ("cjxl-e7", "cjxl-e9", "cjxl-max", "webp", "png")


def rows(name: str) -> list[dict]:
    with open(RESULTS / f"{name}.csv") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


PUBLISHED = {"EMMA": 2.604, "BMF": 2.711, "LEA": 2.766, "GraLIC": 2.802}


def summary(label: str, data: list[tuple[str, float]], reference: dict) -> str:
    """One summary row: diffcode's mean, each codec's mean on the same images, and where diffcode is smaller."""
    ours = np.array([value for _, value in data])
    cells, wins = [], {}
    for codec in CODECS:
        values = [reference.get((image, codec)) for image, _ in data]
        cells.append(f"{np.mean(values):.4f}" if all(v is not None for v in values) else "")
        if codec in ("cjxl-e9", "cjxl-max") and all(v is not None for v in values):
            wins[codec] = f"{int(np.sum(ours < np.array(values)))} of {len(data)}"
    return (f"| {label} | {len(data)} | **{ours.mean():.4f}** | " + " | ".join(cells) +
            f" | {wins.get('cjxl-e9', '')} | {wins.get('cjxl-max', '')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", required=True, help="evaluate tables (csv names without suffix), comma-separated")
    parser.add_argument("--baselines", required=True, help="baselines row tables, comma-separated")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    reference: dict[tuple[str, str], float] = {}
    for name in args.baselines.split(","):
        for r in rows(name):
            reference[(r["image"], r["codec"])] = float(r["bpsp"])
    commit = report.git_commit()
    lines = ["# The pyramid family beside JPEG XL's command-line tool\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}. diffcode: real file bpsp of the evaluate "
             "tables (every file decoded and checked); cjxl 0.7 (`-d 0 -e 7`, `-e 9`, and `-e 9 -E 3 -I 100 -g 3` as "
             "cjxl-max), WebP and PNG: the baselines tables, same pixels. `smaller on` counts images where diffcode's "
             "file is smaller.\n",
             "| table | images | diffcode | " + " | ".join(CODECS) + " | smaller than cjxl-e9 on | smaller than "
             "cjxl-max on |", "|---|---|---|" + "---|" * len(CODECS) + "---|---|"]
    details, everything = [], []
    for table in args.tables.split(","):
        data = [(r["image"], float(r["bpsp"])) for r in rows(table) if r["image"] != "mean"]
        lines.append(summary(table, data, reference))
        everything += data
        for image, value in data:
            details.append(f"| {table} | {image} | {value:.4f} | " +
                           " | ".join(f"{reference[(image, c)]:.4f}" if (image, c) in reference else ""
                                      for c in CODECS) + " |")
    if len(args.tables.split(",")) > 1 and len({image for image, _ in everything}) == len(everything):  # disjoint
        lines.append(summary(f"all {len(everything)}", everything, reference))
    if sorted(image for image, _ in everything) == [f"kodim{i:02d}" for i in range(1, 25)]:
        lines += ["", "Published figures on all 24 Kodak images (the WangXuan95 Image-Compression-Benchmark table, "
                  "as quoted in the issue; not run here): " + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()) +
                  "."]
    lines += ["", "Per image:", "", "| table | image | diffcode | " + " | ".join(CODECS) + " |",
              "|---|---|---|" + "---|" * len(CODECS)] + details
    out = RESULTS / f"pyramid_vs_jxl{'-' + args.name if args.name else ''}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:len(args.tables.split(",")) + 8]))


if __name__ == "__main__":
    main()
