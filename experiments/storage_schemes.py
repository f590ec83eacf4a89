"""Storage schemes on the same fits: entropy paid vs bytes written, store and decode seconds.

    python experiments/storage_schemes.py runs/evaluate/per-pixel-...-fitdither \\
        --schemes dither randseed:8 --name storage_schemes_test
    python experiments/storage_schemes.py runs/evaluate/per-pixel-...-crop128-fitdither \\
        --schemes dither randseed:4 randseed:8 randseed:12 --name storage_budgets_crop128

Reads every `<image>.fit` of an evaluation cache directory (made by `python cli.py evaluate`),
stores it with each scheme (rows are cached next to the fits, so a rerun only adds what is new) (`randseed:B` = random-seed segments of B nats), decodes the file and
compares the pixels. Columns per (image, scheme): the scheme's theoretical encodings entropy,
the decoder's continuous entropy (before any width quantization), the bytes of the encodings
sections, their overhead, the whole file against the whole theoretical entropy, seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import codec, fitfile, report  # noqa: E402
from diffcode.families.per_pixel.checkpoint import Checkpoint  # noqa: E402

COLUMNS = ["image", "scheme", "encodings_model_bytes", "encodings_theoretical_bytes", "encodings_bytes",
           "encodings_overhead_percent", "theoretical_bytes", "file_bytes", "overhead_percent",
           "overhead_vs_model_percent", "bpsp", "store_seconds", "decode_seconds", "bit_exact"]


def run(fit_path: Path, scheme: str, checkpoint: Checkpoint) -> dict:
    """One (image, scheme) row, cached next to the fit as <image>.scheme-<scheme>.json."""
    cached = fit_path.with_name(f"{fit_path.stem}.scheme-{scheme.replace(':', '-')}.json")
    if cached.exists():
        return json.loads(cached.read_text())
    row = _measure(fit_path, scheme, checkpoint)
    cached.write_text(json.dumps({**row, "commit": report.git_commit()}))
    return row


def _measure(fit_path: Path, scheme: str, checkpoint: Checkpoint) -> dict:
    fit, _ = fitfile.load(fit_path)
    name, _, budget = scheme.partition(":")
    t0 = time.perf_counter()
    data, rep = codec.store(fit, checkpoint, storage=name,
                            budget_nats=float(budget) if budget else None, verify=False)
    t1 = time.perf_counter()
    decoded = codec.load(data, checkpoint)
    t2 = time.perf_counter()
    d = rep.as_dict()
    model_total = d["encodings_model_bytes"] + d["error_table_theoretical_bytes"]
    return {"image": fit_path.stem, "scheme": scheme, **d,
            "encodings_overhead_percent": 100 * (d["encodings_bytes"] / d["encodings_theoretical_bytes"] - 1),
            "overhead_vs_model_percent": 100 * (d["file_bytes"] / model_total - 1),
            "store_seconds": t1 - t0, "decode_seconds": t2 - t1,
            "bit_exact": bool(np.array_equal(decoded, fit.image))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cache", type=Path, help="an evaluation cache directory holding <image>.fit files")
    p.add_argument("--schemes", nargs="+", default=["dither", "randseed:8"])
    p.add_argument("--images", nargs="*", help="only these images (file stems)")
    p.add_argument("--name", required=True, help="results file stem")
    p.add_argument("--checkpoint", default=None)
    args = p.parse_args()
    checkpoint = Checkpoint.load(args.checkpoint)
    fits = sorted(args.cache.glob("*.fit"))
    if args.images:
        fits = [f for f in fits if f.stem in args.images]
    if not fits:
        raise SystemExit(f"no .fit files in {args.cache}")
    rows = []
    for scheme in args.schemes:
        scheme_rows = []
        for fit_path in fits:
            row = run(fit_path, scheme, checkpoint)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k in COLUMNS}, flush=True)
            scheme_rows.append(row)
        mean = {k: float(np.mean([r[k] for r in scheme_rows])) for k in COLUMNS
                if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in scheme_rows)}
        rows += scheme_rows + [{"image": "mean", "scheme": scheme, **mean,
                                "bit_exact": all(r["bit_exact"] for r in scheme_rows)}]
        report.write_table(rows, ROOT / "experiments" / "results" / args.name, "python " + " ".join(sys.argv), COLUMNS)


if __name__ == "__main__":
    main()
