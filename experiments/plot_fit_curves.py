"""Plot `fit_curve.py` tables: each fit's real coded bits at its step count, and its objective step by step.

    python experiments/plot_fit_curves.py --out experiments/results/fit_curves.png \\
        experiments/results/fit_curve-pp-val-crop256 experiments/results/fit_curve-pp-val-crop256-bf16-lr0.1 ...

Each argument is a table stem (without .csv); tables of the same family share a panel. Left of
each panel pair: the mean real bpsp over the table's images against the step count (one line per
table, i.e. per settings). Right: the training objective against the step of the longest fit of
each table, mean over its images (noisy: it is measured on sampled encodings). Seconds are not
plotted: the tables were made on a shared machine; speed.md holds the timings.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def read(path: Path) -> tuple[list[dict], str]:
    with open(path) as f:
        lines = f.readlines()
    command = next((line.split(": ", 1)[1].strip() for line in lines if line.startswith("# command")), "")
    return list(csv.DictReader(line for line in lines if not line.startswith("#"))), command


def family_of(command: str) -> str:
    parts = command.split()
    return parts[parts.index("--family") + 1] if "--family" in parts else "?"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stems", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    from matplotlib.figure import Figure

    by_family = defaultdict(list)
    for stem in args.stems:
        rows, command = read(stem.with_name(stem.name + ".csv"))
        history, _ = read(stem.with_name(stem.name + "-history.csv"))
        by_family[family_of(command)].append((stem.name.removeprefix("fit_curve-"), rows, history))
    fig = Figure(figsize=(11, 4 * len(by_family)))
    axes = fig.subplots(len(by_family), 2, squeeze=False)
    for (family, tables), (left, right) in zip(sorted(by_family.items()), axes):
        for label, rows, history in tables:
            means = sorted((int(r["steps"]), float(r["bpsp"])) for r in rows if r["image"] == "mean")
            if not means:  # one image: its rows are the curve
                means = sorted((int(r["steps"]), float(r["bpsp"])) for r in rows)
            left.plot(*zip(*means), marker="o", label=label)
            longest = max(int(h["steps"]) for h in history)
            per_step = defaultdict(list)
            for h in history:
                if int(h["steps"]) == longest:
                    per_step[int(h["step"])].append(float(h["bpsp"]))
            steps = sorted(per_step)
            right.plot(steps, [sum(per_step[s]) / len(per_step[s]) for s in steps], label=f"{label} ({longest} steps)")
        left.set(title=f"{family}: real file bits (mean of the images)", xlabel="fit steps", ylabel="bpsp")
        right.set(title=f"{family}: fit objective during the longest fit", xlabel="step", ylabel="bpsp (objective)")
        right.set_ylim(top=min(12.0, right.get_ylim()[1]))
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()
