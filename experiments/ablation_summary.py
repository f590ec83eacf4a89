"""Model 2's ablation table (issue 21): one row per change, each figure read from the table that measured it.

    python experiments/ablation_summary.py [--name model2-ablation]

Every bpsp figure comes from a markdown table in experiments/results/ (found by its header row, cells split on
`|`); nothing is typed in here but which rows to compare. A missing table, row or figure stops the script with a
message. Writes experiments/results/NAME.md|csv with the command and commit.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from diffcode.families.pyramid.prior import SHIPPED
from diffcode import report

RESULTS = Path(__file__).resolve().parent / "results"
# a table's "prior 0123456789abcdef" (16 hex digits of its SHA-256) -> the shipped prior's name
PRIORS = {sha[:16]: "prior " + (Path(p).stem.rsplit("_", 1)[1] if Path(p).stem[-1].isdigit() else "1")
          for sha, p in SHIPPED.items()}


def fail(message: str) -> None:
    sys.exit(f"ablation_summary: {message}")


@dataclass(frozen=True)
class Ref:
    """Where a figure is: the table's file in results/, the cells its row must have, and whether it must be the
    table's last row with a figure (a training record's last validation row)."""

    table: str
    cells: dict
    final: bool = False


@dataclass
class Row:
    change: str
    baseline: str
    base: Ref | list[Ref]  # a list: the mean of its figures (tables of equally many images)
    new: Ref | list[Ref]


@dataclass
class Section:
    title: str
    note: str
    images: str
    column: str  # the figure compared
    rows: list[Row]
    extras: tuple[str, ...] = ()  # more columns whose relative change is shown too
    priors: bool = False  # the tables name their prior
    deltas: bool = False  # per-image fits: count the images that kept no weight deltas
    notes: list[str] = field(default_factory=list)


def text(table: str) -> str:
    path = RESULTS / table
    if not path.exists():
        fail(f"{table}: no such table in {RESULTS}")
    return path.read_text()


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split("|")]


def tables(table: str) -> list[list[dict]]:
    """Every markdown table in the file: its rows as {header: cell}."""
    lines = text(table).splitlines()
    found = []
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.match(r"\|\s*---", lines[i + 1]):
            header, rows = cells(line), []
            for body in lines[i + 2:]:
                if not body.startswith("|"):
                    break
                rows.append(dict(zip(header, cells(body))))
            found.append(rows)
    return found


def figure(ref: Ref | list[Ref], column: str) -> float:
    """The figure in `column` of the one row `ref` names (a list: the mean of its rows' figures)."""
    if isinstance(ref, list):
        return sum(figure(r, column) for r in ref) / len(ref)
    for rows in tables(ref.table):
        if rows and all(k in rows[0] for k in (*ref.cells, column)):
            break
    else:
        fail(f"{ref.table}: no table with the columns {[*ref.cells, column]}")
    with_figure = [r for r in rows if r[column]]
    match = [r for r in with_figure if all(r[k] == v for k, v in ref.cells.items())]
    if len(match) != 1:
        fail(f"{ref.table}: {len(match)} rows with {ref.cells} and a figure in {column!r} (want one)")
    if ref.final and match[0] is not with_figure[-1]:
        fail(f"{ref.table}: the row {ref.cells} is not the table's last with a figure in {column!r}")
    try:
        return float(match[0][column])
    except ValueError:
        fail(f"{ref.table}: {column!r} of the row {ref.cells} is not a number: {match[0][column]!r}")


def refs(ref: Ref | list[Ref]) -> list[Ref]:
    return ref if isinstance(ref, list) else [ref]


def prior_of(ref: Ref | list[Ref]) -> str:
    names = set()
    for r in refs(ref):
        found = re.search(r"prior ([0-9a-f]{16})", text(r.table))
        if not found or found[1] not in PRIORS:
            fail(f"{r.table}: names no shipped prior")
        names.add(PRIORS[found[1]])
    if len(names) != 1:
        fail(f"{[r.table for r in refs(ref)]}: different priors {names}")
    return names.pop()


def without_deltas(ref: Ref | list[Ref]) -> int:
    """How many images of a config's mean row kept no weight deltas (nonzero_weights 0)."""
    return sum(row["nonzero_weights"] == "0" for r in refs(ref) for row in tables(r.table)[0]
               if row["config"] == r.cells["config"] and not row["image"].startswith("mean of"))


def source(row: Row) -> str:
    """The row's tables, the baseline's first."""
    return " / ".join(dict.fromkeys(r.table for r in refs(row.base) + refs(row.new)))


def snake(column: str) -> str:
    return column.lower().replace(" ", "_")


def relative(base: float, new: float) -> float:
    """The change from base to new, in % of base."""
    return round(100 * (new - base) / base, 2)


# -- the rows: which figures to compare (the figures themselves are read from the tables) --

def data(folders: str = "photos/train", crops: str = "centre", seed: str = "0") -> Ref:
    return Ref("prior-data-ablation.md", {"training data": folders, "crops": crops, "seed": seed})


def record(table: str, step: str, final: bool = True) -> Ref:
    return Ref(table, {"step": step}, final)


def config(table: str, name: str, image: str = "mean of 4") -> Ref:
    return Ref(f"pyramid_ablation-{table}-val4.md", {"config": name, "image": image})


def variant(table: str, name: str) -> Ref:
    return Ref(f"online_ablation-{table}-val4.md", {"variant": name})


def evaluated(table: str) -> Ref:
    return Ref(table, {"image": "mean"})


def fitted(name: str) -> Ref:
    return Ref("online_ablation-prior6-val-default.md", {"variant": name})


EXTRA = "photos/train + photos/extra/"
ALL_THREE = EXTRA + "bsd68 + photos/extra/urban100 + photos/extra/usc-sipi"
W128 = "ablation-o1w128.md"
ONE_LOGISTIC = "one logistic, order 1, width 128"
# pyramid_ablation tables give only their command: a config's settings (adapt set, steps of N subpixels, lr) are
# those of `pyramid_ablation.py` and `spec.PRESETS` at the table's commit, as the commit that added it says
G2_300 = "gains2, 300 steps of 32,768, lr 1e-2"
G2_500 = "gains2, 500 steps of 16,384, lr 1e-2"
ONLINE_VARIANTS = [("prior8", "bias prior 8"), ("prior32", "bias prior 32"), ("halve64", "halving period 64"),
                   ("halve256", "halving period 256"), ("warmup16", "warm-up 16"), ("warmup64", "warm-up 64"),
                   ("levels4", "4 level classes"), ("shift2", "scale shifts up to 2")]
SECTIONS = [
    Section("1. Prior training data", "Float prior alone, no Kodak image in training, width 64, 3,000 steps "
            "(`prior_data_ablation.py`); figure: Kodak val and photos val together (all val).",
            "Kodak val + photos val, float prior", "all val", extras=("Kodak val", "photos val"), rows=[
                Row("+ bsd68", "photos/train alone, seed 0", data(), data(EXTRA + "bsd68")),
                Row("+ urban100", "photos/train alone, seed 0", data(), data(EXTRA + "urban100")),
                Row("+ usc-sipi", "photos/train alone, seed 0", data(), data(EXTRA + "usc-sipi")),
                Row("+ all three", "photos/train alone, seed 0", data(),
                    data(ALL_THREE)),
                Row("2 random crops per photo instead of the centre crop", "photos/train alone, seed 0", data(),
                    data(crops="2 random")),
                Row("+ urban100, seed 1", "photos/train alone, seed 1", data(seed="1"),
                    data(EXTRA + "urban100", seed="1")),
                Row("+ all three, seed 1", "photos/train alone, seed 1", data(seed="1"),
                    data(ALL_THREE, seed="1")),
                Row("seed 1 instead of 0 (the seed's own spread)", "photos/train alone, seed 0", data(),
                    data(seed="1")),
            ]),
    Section("2. Training length", "Float prior alone; each record's last validation row unless the row says "
            "otherwise (a longer cosine schedule read part way).",
            "Kodak val + photos val, float prior", "all val", extras=("Kodak val", "photos val"), rows=[
                Row("16,000 steps", "8,000 steps (two logistics, width 128, all photo folders)",
                    record("train_pyramid-mix2.md", "8000"), record("train_pyramid-mix2-16k.md", "16000")),
                Row("the 16,000-step schedule at its step 8,000", "the 8,000-step schedule's end",
                    record("train_pyramid-mix2.md", "8000"), record("train_pyramid-mix2-16k.md", "8000", False)),
                Row("32,000 steps", "16,000 steps (two logistics, width 128, all photo folders)",
                    record("train_pyramid-mix2-16k.md", "16000"), record("train_pyramid-mix2-32k.md", "32000")),
                Row("the 32,000-step schedule at its step 16,000", "the 16,000-step schedule's end",
                    record("train_pyramid-mix2-16k.md", "16000"),
                    record("train_pyramid-mix2-32k.md", "16000", False)),
                Row("12,000 steps", "3,000 steps (one logistic, width 64, photos/train, seed 0)",
                    data(), record("prior-kodak-free-curve.md", "12000")),
                Row("the 12,000-step schedule at its step 3,000", "the 3,000-step schedule's end",
                    data(), record("prior-kodak-free-curve.md", "3000", False)),
            ]),
    Section("3. Network capacity", "Float prior alone, photos/train, 3,000 steps, seed 0 unless the row says; "
            "each record's last validation row (step 3,000). Width 128 has head 48, width 64 head 32.",
            "Kodak val + photos val, float prior", "all val", extras=("Kodak val", "photos val"), rows=[
                Row("two logistics per subpixel", ONE_LOGISTIC, record(W128, "3000"),
                    record("ablation-mix2-o1w128.md", "3000")),
                Row("three logistics per subpixel", ONE_LOGISTIC, record(W128, "3000"),
                    record("ablation-mix3-o1w128.md", "3000")),
                Row("three logistics per subpixel", "two logistics, order 1, width 128",
                    record("ablation-mix2-o1w128.md", "3000"), record("ablation-mix3-o1w128.md", "3000")),
                Row("order 2: a third phase, the (odd, even) pixels after the (even, odd) ones, seeing all eight "
                    "neighbours", ONE_LOGISTIC, record(W128, "3000"), record("ablation-o2w128.md", "3000")),
                Row("order 5: order 1's two phases with 24 known pixels per target instead of 16", ONE_LOGISTIC,
                    record(W128, "3000"), record("ablation-o5w128.md", "3000")),
                Row("order 5 (24 known pixels)", "one logistic, order 1, width 64", data(),
                    record("ablation-o5w64.md", "3000")),
                Row("width 128", "width 64, order 2", record("ablation-o2w64.md", "3000"),
                    record("ablation-o2w128.md", "3000")),
                Row("width 128", "width 64, order 1", data(), record(W128, "3000")),
                Row("seed 1 instead of 0 (the seed's own spread)", ONE_LOGISTIC + ", seed 0", record(W128, "3000"),
                    record("ablation-o1w128-seed1.md", "3000")),
            ]),
    Section("4. Per-image adaptation", "Real files (`pyramid_ablation.py`): bpsp of the sections (error table + "
            "side info + weight deltas), mean of the 4 images. Adapt sets (`deltas.ADAPT`): heads = the heads' "
            "tensors; all = every tensor; biases; gains = biases + a gain per weight row; gains2 = gains + a gain "
            "per column; lowrank2 = biases + rank-2 deltas of every matrix. Budgets are steps of N subpixels.",
            "kodim09/11/13/15, real files", "sections_bpsp", priors=True, deltas=True, notes=[
                "Prior 1 is the first prior (trained with kodim01-08), before model 2: its rows are the only "
                "measurements of the heads and all adapt sets. Prior 3 is model 2's network; prior 4 its "
                "two-logistic successor. Where baseline and change come from two tables, they were run at "
                "different commits: the row \"the same config run again\" gives the spread this leaves.",
                "No deltas: of the 4 images, how many (baseline / changed) kept no weight deltas (the fit's deltas "
                "did not pay for their bits, so the file holds none): a mean with such images is partly the prior's.",
                "The 2,000-step row is the mean of two tables of 2 images each (kodim09/11, kodim13/15)."], rows=[
                Row("adapt all", "heads, 150 steps of 16,384, lr 3e-3", config("adapt", "fast"),
                    config("adapt", "fast-adapt-all")),
                Row("adapt biases", "heads, 150 steps of 16,384, lr 3e-3", config("adapt", "fast"),
                    config("adapt", "fast-adapt-biases")),
                Row("lr 1e-2", "heads, 150 steps of 16,384, lr 3e-3", config("adapt", "fast"),
                    config("adapt", "fast-lr1e-2")),
                Row("lr 1e-3", "heads, 150 steps of 16,384, lr 3e-3", config("adapt", "fast"),
                    config("adapt", "fast-lr1e-3")),
                Row("lr 1e-2", "biases, 150 steps of 16,384, lr 3e-3", config("adapt", "fast-adapt-biases"),
                    config("biases", "fast-biases-lr1e-2")),
                Row("lr 3e-2", "biases, 150 steps of 16,384, lr 1e-2", config("biases", "fast-biases-lr1e-2"),
                    config("biases", "fast-biases-lr3e-2")),
                Row("lr 1e-2", "biases, 500 steps of 32,768, lr 3e-3", config("biases", "default-biases"),
                    config("biases", "default-biases-lr1e-2")),
                Row("adapt gains", "biases, 300 steps of 32,768, lr 3e-3", config("gains", "default"),
                    config("gains", "default-gains")),
                Row("lr 1e-2", "gains, 300 steps of 32,768, lr 3e-3", config("gains", "default-gains"),
                    config("gains", "default-gains-lr1e-2")),
                Row("adapt gains", "biases, 150 steps of 16,384, lr 1e-2", config("fastgains", "fast"),
                    config("fastgains", "fast-gains")),
                Row("adapt gains2", "gains, 300 steps of 32,768, lr 1e-2", config("gains", "default-gains-lr1e-2"),
                    config("gains2cols", "default-gains2")),
                Row("adapt gains2", "gains, 150 steps of 16,384, lr 1e-2", config("fastgains", "fast-gains"),
                    config("fastgains2", "fast-gains2")),
                Row("lr 5e-3", G2_300, config("gains2cols", "default-gains2"), config("lr-gains2", "default-lr5e-3")),
                Row("lr 2e-2", G2_300, config("gains2cols", "default-gains2"),
                    config("lr-gains2", "default-lr2e-2")),
                Row("600 steps", G2_300, config("gains2cols", "default-gains2"),
                    config("steps-gains2", "default-steps600")),
                Row("1,000 steps", G2_300, config("gains2cols", "default-gains2"), config("steps-gains2", "steps1000")),
                Row("the same config run again, at a later commit", G2_300, config("gains2cols", "default-gains2"),
                    config("batch-a", "default")),
                Row("batch 16,384", G2_300, config("batch-a", "default"), config("batch-a", "default-batch16k")),
                Row("batch 24,576", G2_300, config("batch-a", "default"), config("batch-b", "default-batch24k")),
                Row("500 steps", "gains2, 300 steps of 16,384, lr 1e-2", config("batch-a", "default-batch16k"),
                    config("batch-d", "default-batch16k-steps500")),
                Row("600 steps", G2_500, config("batch-d", "default-batch16k-steps500"),
                    config("batch-c", "default-batch16k-steps600")),
                Row("2,000 steps of 16,384 (the same work)", "gains2, 1,000 steps of 32,768, lr 1e-2",
                    config("steps-gains2", "steps1000"),
                    [Ref(f"pyramid_ablation-max16k-{part}-val4.md", {"config": "max-batch16k-steps2000",
                                                                     "image": "mean of 2"}) for part in "ab"]),
                Row("300 steps of 8,192 (about the same work)", "gains, 150 steps of 16,384, lr 1e-2",
                    config("fastbatch-a", "fast"), config("fastbatch-b", "fast-batch8k-steps300")),
                Row("adapt lowrank2", G2_500, config("batch-d", "default-batch16k-steps500"),
                    config("lowrank2-m3", "default-lowrank2-lr1e-2")),
                Row("adapt lowrank2 at lr 3e-3 (two changes: adapt set and lr)", G2_500,
                    config("batch-d", "default-batch16k-steps500"), config("lowrank2-m3-lr3e-3", "default-lowrank2")),
                Row("400 steps", G2_500, config("steps400-m4", "default"), config("steps400-m4", "default-steps400")),
            ]),
    Section("5. Online adaptation", "Real bits of the error-table stream coded with the prior's network alone "
            "(no per-image fit), every stream decoded (`online_ablation.py`); mean of the 4 images. Base settings: "
            "bias prior 16, warm-up 32 symbols, halving period 128, scale shifts up to 6, 2 level classes.",
            "kodim09/11/13/15, real bits, network alone", "mean bpsp", priors=True, notes=[
                "Prior 2 is model 2 (order 3), prior 3 the same network in order 4."], rows=[
                Row("online adaptation (base settings)", "none", variant("model2", "none"), variant("model2", "base")),
                Row("online adaptation (base settings)", "none", variant("model4", "none"), variant("model4", "base")),
                Row("online adaptation (base settings)", "none", variant("model5", "none"), variant("model5", "base")),
                *[Row(change, "base settings", variant("model3-perimage", "base"), variant("model3-perimage", name))
                  for name, change in ONLINE_VARIANTS[:4]],  # the four that table measured
                *[Row(change, "base settings", variant("model5", "base"), variant("model5", name))
                  for name, change in ONLINE_VARIANTS],
            ]),
    Section("6. The prior, in real bits", "As section 5 (the same tables), across priors: the network's change "
            "with and without online adaptation.",
            "kodim09/11/13/15, real bits, network alone", "mean bpsp", priors=True, notes=[
                "Prior 2 codes in order 3, priors 3-5 in order 4: the first row is what the order alone changes."],
            rows=[
                Row("order 4 (prior 3: the error table in rANS segments)", "order 3 (prior 2), online adaptation",
                    variant("model2", "base"), variant("model3-perimage", "base")),
                Row("two logistics per subpixel (prior 4)", "one logistic (prior 2), no online adaptation",
                    variant("model2", "none"), variant("model4", "none")),
                Row("two logistics per subpixel (prior 4)", "one logistic (prior 2), online adaptation",
                    variant("model2", "base"), variant("model4", "base")),
                Row("16,000 training steps (prior 5)", "8,000 steps (prior 4), no online adaptation",
                    variant("model4", "none"), variant("model5", "none")),
                Row("16,000 training steps (prior 5)", "8,000 steps (prior 4), online adaptation",
                    variant("model4", "base"), variant("model5", "base")),
            ]),
    Section("7. Online adaptation after the fit", "Real bits of the error-table stream of each image's network "
            "with its `default` fit's deltas (`online_ablation.py --fits`), every stream decoded; mean of the 8 "
            "images. Online 1 is the base settings of section 5; censored: values 0 and 255 do not move the bias; "
            "each image's best: what a file that names its own adaptation gets.",
            "Kodak val (kodim09-16), real bits, default fits", "mean bpsp", priors=True, rows=[
                Row("online adaptation 1", "none", fitted("none"), fitted("base")),
                Row("censored bias", "online adaptation 1", fitted("base"), fitted("censor")),
                Row("scale shifts only (no bias)", "online adaptation 1", fitted("base"), fitted("scale-only")),
                Row("each image's best of the four", "online adaptation 1", fitted("base"),
                    fitted("each image's best")),
            ]),
    Section("8. Priors 6 and 7 in real files", "Whole files of the `default` preset (`cli.py evaluate`: fit, store, "
            "every file decoded and checked), mean of Kodak's validation split.",
            "Kodak val (kodim09-16), real files, default", "bpsp", rows=[
                Row("the 32,000-step network, online adaptation 1", "prior 5 (16,000 steps, online adaptation 1)",
                    evaluated("kodak-pyramid5-val-default.md"), evaluated("kodak-pyramid6a-val-default.md")),
                Row("censored bias, each file choosing its online adaptation (prior 6)",
                    "the same network, online adaptation 1", evaluated("kodak-pyramid6a-val-default.md"),
                    evaluated("kodak-pyramid6-val-default.md")),
                Row("the 64,000-step network, the same online choices (prior 7)", "prior 6 (32,000 steps)",
                    evaluated("kodak-pyramid6-val-default.md"), evaluated("kodak-pyramid7-val-default.md")),
            ]),
]


def measured(section: Section) -> list[dict]:
    """Each row's cells (the csv's keys), its figures read from its tables."""
    out = []
    for row in section.rows:
        base, new = figure(row.base, section.column), figure(row.new, section.column)
        cells_ = {"change": row.change, "baseline": row.baseline, "images": section.images}
        if section.priors:
            cells_["prior"] = " -> ".join(dict.fromkeys([prior_of(row.base), prior_of(row.new)]))
        cells_ |= {"baseline_bpsp": round(base, 4), "changed_bpsp": round(new, 4),
                   "change_percent": relative(base, new)}
        for column in section.extras:
            cells_[snake(column) + "_change_percent"] = relative(figure(row.base, column), figure(row.new, column))
        if section.deltas:
            cells_["images_without_deltas"] = f"{without_deltas(row.base)} / {without_deltas(row.new)}"
        out.append(cells_ | {"source": source(row)})
    return out


HEADINGS = {"baseline_bpsp": "baseline bpsp", "changed_bpsp": "changed bpsp", "change_percent": "relative change",
            "kodak_val_change_percent": "Kodak val, relative", "photos_val_change_percent": "photos val, relative",
            "images_without_deltas": "no deltas"}


def shown(key: str, value) -> str:
    if key.endswith("_percent"):
        return f"{value:+.2f} %"
    if key.endswith("_bpsp"):
        return f"{value:.4f}"
    if key == "source":
        return " / ".join(f"`{name}`" for name in value.split(" / "))
    return str(value)


def markdown(section: Section, rows: list[dict]) -> list[str]:
    keys = list(rows[0])
    lines = [f"## {section.title}", "", section.note, "", "| " + " | ".join(HEADINGS.get(k, k) for k in keys) + " |",
             "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(shown(k, r[k]) for k in keys) + " |" for r in rows]
    return lines + [""] + [f"- {note}" for note in section.notes] + ([""] if section.notes else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="model2-ablation")
    args = parser.parse_args()
    commit = report.git_commit()
    measured_rows = [measured(s) for s in SECTIONS]
    lines = ["# Model 2's ablations: one row per change (issue 21)", "",
             "What each change did to the pyramid family's second model (model 2's network and the priors built on "
             "it), measured on validation images at the same budget as its baseline: one row per change. Every "
             f"figure is read by `python {' '.join(sys.argv)}` at commit {commit} from the result tables named in "
             "the row's source (the baseline's table first, then the changed row's if it is another); nothing is "
             "measured here. Relative change = (changed - baseline) / baseline: negative is smaller. Kodak val is "
             "kodim09-16 whole, photos val centre crops of at most 640 of photos/val.", ""]
    for section, rows in zip(SECTIONS, measured_rows):
        lines += markdown(section, rows)
    lines += ["## Sources", "", "Each table's commits, as its own text names them (legs or runs it was made in):", ""]
    for table in sorted({r.table for s in SECTIONS for row in s.rows for r in refs(row.base) + refs(row.new)}):
        commits = dict.fromkeys(re.findall(r"at commit ([0-9a-f]{7,40})", text(table)))
        lines.append(f"- `{table}`: {', '.join(commits) or 'no commit named'}")
    stem = RESULTS / args.name
    stem.with_suffix(".md").write_text("\n".join(lines).rstrip() + "\n")
    flat = [{"section": s.title, **r} for s, rows in zip(SECTIONS, measured_rows) for r in rows]
    keys = ["section", "change", "baseline", "images", "prior", "baseline_bpsp", "changed_bpsp", "change_percent",
            "kodak_val_change_percent", "photos_val_change_percent", "images_without_deltas", "source"]
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, keys, restval="")
        writer.writeheader()
        writer.writerows(flat)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
