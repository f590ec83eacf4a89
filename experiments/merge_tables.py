"""One evaluation table from several made on parts of a split, with a new mean row.

    python experiments/merge_tables.py --name kodak-weights-test-default-all \\
        experiments/results/kodak-weights-test-default.csv experiments/results/kodak-weights-test-default-rest.csv

Reads `evaluate` CSV tables (their '# key: value' provenance lines, then the rows), drops their
mean rows, refuses an image that appears twice, and writes
experiments/results/NAME.md|csv: every row with a `source` column (the table it came from and
that table's commit) and a `machine` column (the CPU that table's machine line names, "?" for
older tables whose line starts with the architecture: fit times and float fits differ between
CPUs); rows of an already merged table keep theirs. Then the mean over all rows (`diffcode.evaluate.with_mean`). Columns are
the union of the tables' (a column one table lacks stays blank there and gets no mean). Values are
copied, never recomputed; `--rename old=new` only files an older table's column under the name
later tables give it (the weights variant's tables before its error table had its own columns
called its weight encodings `encodings_*`):

    python experiments/merge_tables.py --name kodak-weights-test-default-all \
        --rename encodings_bytes=weight_encodings_bytes \
        --rename encodings_theoretical_bytes=weight_encodings_theoretical_bytes  TABLE.csv ...
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import report  # noqa: E402
from diffcode.evaluate import with_mean  # noqa: E402


def _value(text: str):
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text if text != "" else None


def _cpu(machine: str) -> str:
    """The CPU named at the start of a table's machine line, or "?" where an older line starts with
    the architecture instead (for example "x86_64, 2 CPUs, ...")."""
    first = machine.split(",")[0].strip()
    return "?" if first in ("", "x86_64", "aarch64", "arm64", "AMD64", "i386", "ppc64le", "s390x") else first


def read_table(path: Path, rename: dict[str, str] | None = None) -> tuple[dict[str, str], list[str], list[dict]]:
    """(provenance, columns, rows without the mean row) of an evaluate CSV table; `rename` maps
    old column names to new ones (a table holding both names is refused)."""
    rename = rename or {}
    lines = path.read_text().splitlines()
    provenance = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# "))
    body = [line for line in lines if not line.startswith("#")]
    reader = csv.DictReader(body)
    columns = list(reader.fieldnames or [])
    clash = [old for old, new in rename.items() if old in columns and new in columns]
    if clash:
        raise SystemExit(f"{path.name} has both the old and the new name of {clash}: nothing to rename")
    rows = [{rename.get(k, k): _value(v) for k, v in row.items()} for row in reader if row["image"] != "mean"]
    return provenance, [rename.get(c, c) for c in columns], rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", type=Path, help="evaluate CSV tables")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                    help="file an older table's column OLD under the name NEW (repeatable)")
    args = ap.parse_args(argv)
    rename = dict(item.split("=", 1) for item in args.rename)
    rows, columns = [], None
    for path in args.tables:
        provenance, cols, part = read_table(path, rename)
        if columns is not None and set(cols) != set(columns):
            print(f"note: {path.name} lacks {sorted(set(columns) - set(cols))} and adds {sorted(set(cols) - set(columns))};"
                  " those cells stay blank and get no mean")
        cols = [c for c in cols if c not in ("source", "machine")]
        columns = cols if columns is None else columns + [c for c in cols if c not in columns]
        for row in part:
            if not row.get("source"):  # the rows of an already merged table keep theirs
                row["source"] = f"{path.stem} @ {provenance.get('commit', '?')}"
            if not row.get("machine"):
                row["machine"] = _cpu(provenance.get("machine", ""))
        rows += part
    images = [r["image"] for r in rows]
    if len(set(images)) != len(images):
        raise SystemExit(f"an image appears in more than one table: {sorted(i for i in set(images) if images.count(i) > 1)}")
    rows.sort(key=lambda r: str(r["image"]))
    shown = [str(p.resolve().relative_to(ROOT)) if p.resolve().is_relative_to(ROOT) else str(p) for p in args.tables]
    renames = "".join(f" --rename {item}" for item in args.rename)
    command = f"python experiments/merge_tables.py --name {args.name}{renames} {' '.join(shown)}"
    report.write_table(with_mean(rows), args.out_dir / args.name, command, ["image", "source", "machine"] + columns[1:])
    print(f"wrote {args.out_dir / args.name}.md|csv: {len(rows)} images")


if __name__ == "__main__":
    main()
