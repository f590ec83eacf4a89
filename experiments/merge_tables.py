"""One evaluation table from several made on parts of a split, with a new mean row.

    python experiments/merge_tables.py --name kodak-weights-test-default-all \\
        experiments/results/kodak-weights-test-default.csv experiments/results/kodak-weights-test-default-rest.csv

Reads `evaluate` CSV tables (their '# key: value' provenance lines, then the rows), drops their
mean rows, refuses an image that appears twice, and writes
experiments/results/NAME.md|csv: every row with a `source` column (the table it came from and
that table's commit), then the mean over all rows (`diffcode.evaluate.with_mean`). Columns are
the union of the tables' (a column one table lacks stays blank there and gets no mean). Values are
copied, never recomputed.
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


def read_table(path: Path) -> tuple[dict[str, str], list[str], list[dict]]:
    """(provenance, columns, rows without the mean row) of an evaluate CSV table."""
    lines = path.read_text().splitlines()
    provenance = dict(line[2:].split(": ", 1) for line in lines if line.startswith("# "))
    body = [line for line in lines if not line.startswith("#")]
    reader = csv.DictReader(body)
    rows = [{k: _value(v) for k, v in row.items()} for row in reader if row["image"] != "mean"]
    return provenance, list(reader.fieldnames or []), rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tables", nargs="+", type=Path, help="evaluate CSV tables")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = ap.parse_args(argv)
    rows, columns = [], None
    for path in args.tables:
        provenance, cols, part = read_table(path)
        if columns is not None and set(cols) != set(columns):
            print(f"note: {path.name} lacks {sorted(set(columns) - set(cols))} and adds {sorted(set(cols) - set(columns))};"
                  " those cells stay blank and get no mean")
        columns = cols if columns is None else columns + [c for c in cols if c not in columns]
        for row in part:
            row["source"] = f"{path.stem} @ {provenance.get('commit', '?')}"
        rows += part
    images = [r["image"] for r in rows]
    if len(set(images)) != len(images):
        raise SystemExit(f"an image appears in more than one table: {sorted(i for i in set(images) if images.count(i) > 1)}")
    rows.sort(key=lambda r: str(r["image"]))
    shown = [str(p.resolve().relative_to(ROOT)) if p.resolve().is_relative_to(ROOT) else str(p) for p in args.tables]
    command = f"python experiments/merge_tables.py --name {args.name} {' '.join(shown)}"
    report.write_table(with_mean(rows), args.out_dir / args.name, command, ["image", "source"] + columns[1:])
    print(f"wrote {args.out_dir / args.name}.md|csv: {len(rows)} images")


if __name__ == "__main__":
    main()
