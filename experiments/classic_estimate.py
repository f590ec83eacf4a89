"""The mode decision's estimate of the classic file, and the files it skips (`diffcode.families.auto.outclassed`).

    python experiments/classic_estimate.py [--kodak kodim01,...] [--photos PATH ...] [--no-nonphoto] [--name N]

For every image: the estimate (`classic.exact.estimate`: the lzma method on a sample of four bands of rows,
scaled) and its sample's bits per subpixel, the real classic file's bytes and the photo model's unfitted
(`instant`) file's, whether the decision skips the classic file, and whether a skip was wrong (the classic file
would have been the smaller). Images: the non-photographic set of `nonphoto.py`, Kodak images by name and any
photo paths. Writes experiments/results/NAME.md|csv with the command and commit; the header gives, per set, the
range of estimate / classic file on dense samples (the only ones the decision trusts) and the wrong skips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from diffcode import api, kodak, report  # noqa: E402
from diffcode.families import auto  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
COLUMNS = ["image", "set", "size", "estimate_bytes", "sample_bpsp", "classic_bytes", "instant_bytes",
           "estimate_over_classic", "classic_over_instant", "skipped", "wrong"]


def row(name: str, group: str, image: np.ndarray) -> dict:
    estimate = auto.classic_estimate(image)
    classic = len(api.store(api.fit(image, variant="classic"))[0])
    instant = len(api.store(api.fit(image, variant="pyramid", preset="instant"))[0])
    skipped = auto.outclassed(estimate, instant)
    return {"image": name, "set": group, "size": f"{image.shape[1]}x{image.shape[0]}",
            "estimate_bytes": estimate[0], "sample_bpsp": round(estimate[1], 3), "classic_bytes": classic,
            "instant_bytes": instant, "estimate_over_classic": round(estimate[0] / classic, 4),
            "classic_over_instant": round(classic / instant, 4), "skipped": skipped,
            "wrong": skipped and classic < instant}


def images(args) -> list[tuple[str, str, np.ndarray]]:
    out = []
    if not args.no_nonphoto:
        import nonphoto

        out += [(name, "drawn", image) for name, image in nonphoto.make_images().items()]
    for name in filter(None, args.kodak.split(",")):
        number = int(name.removeprefix("kodim"))
        group = "kodak-train" if number <= 8 else "kodak-val" if number <= 16 else "kodak-test"
        out.append((name, group, kodak.load(name)))
    out += [(Path(p).stem, "photos", np.asarray(Image.open(p).convert("RGB"))) for p in args.photos]
    return out


def summary(rows: list[dict]) -> str:
    lines = []
    for group in dict.fromkeys(r["set"] for r in rows):
        part = [r for r in rows if r["set"] == group]
        dense = [r["estimate_over_classic"] for r in part if r["sample_bpsp"] >= auto.SKIP_DENSITY]
        span = f"estimate / classic file {min(dense):.3f}-{max(dense):.3f} on {len(dense)} dense" if dense else "no dense"
        lines.append(f"{group}: {span} of {len(part)}; skipped {sum(r['skipped'] for r in part)}, "
                     f"wrongly {sum(r['wrong'] for r in part)}")
    return "; ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", default="", help="Kodak names, comma-separated")
    parser.add_argument("--photos", nargs="*", default=[], help="photo paths")
    parser.add_argument("--no-nonphoto", action="store_true", help="leave out the drawn set of nonphoto.py")
    parser.add_argument("--name", default="classic_estimate")
    args = parser.parse_args()
    rows = []
    for name, group, image in images(args):
        rows.append(row(name, group, image))
        print(rows[-1], flush=True)
    report.write_table(rows, RESULTS / args.name, "python experiments/classic_estimate.py " + " ".join(sys.argv[1:]),
                       COLUMNS)
    table = RESULTS / f"{args.name}.md"
    note = (f"- decision: skipped when the estimate is above the instant file by more than {auto.SKIP_MARGIN:.0%} "
            f"and its sample codes to at least {auto.SKIP_DENSITY} bits per subpixel\n- summary: {summary(rows)}\n")
    table.write_text(table.read_text().replace("\n\n|", "\n" + note + "\n|", 1))


if __name__ == "__main__":
    main()
