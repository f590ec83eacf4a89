"""Camera-sized photos (issue 27): time and memory of diffcode and the reference codecs at 6, 25 and 50 MP.

    python experiments/large_images.py                                   # 6, 25 and 50 MP, one round each
    python experiments/large_images.py --sizes 6,25 --repeats 3
    python experiments/large_images.py --sizes 1 --name large_images-smoke   # a 1 MP smoke run (minutes)

The images: kodim17 (768x512), the linear-time reference, then mosaics of 3072x2048 (6 MP), 6144x4096
(25 MP, 64 times kodim17's pixels) and 8192x6144 (50 MP); `--sizes` picks them (6, 25, 50; 1 is a
1024x1024 mosaic for smoke runs; WxH any other size).

A mosaic is made of rows 512 pixels high (the last one cut to the image's height), each filled left to
right with strips of photos, as they were taken (none turned or scaled): a strip is a band 512 rows
high and as wide as its photo, centred in the photo, and a photo gives as many non-overlapping bands as
its height holds (a 1296-high photo gives two). A strip wider than what is left of a row is cut there
and its rest starts the next row; a last row lower than 512 keeps its strips' middle rows. The strips
come from the photos in this order, each folder sorted by name, no band used twice:
`../shared/photos/val` (8 photos of 0.8-1.4 MP), `../shared/photos/train` (24),
`../shared/photos/extra/urban100` (47, about 1024x700-1024), then the Kodak images (768x512) should those
run out. So the 6 MP mosaic holds the 8 validation photos and 1 training photo, the 25 MP one the
validation and training photos and 3 of Urban100, and the 50 MP one 45 of Urban100 besides: no Kodak
image is needed for these three. The mosaics come out the same every time (the notes give each one's
pixel SHA-256 and what it holds); they are written to a temporary folder (`--tmp-dir`), never into the
repository, and deleted with the other files when the run ends. The training photos and Urban100 are in
the pyramid prior's training data: the mosaics' bpsp describes these mosaics, not diffcode's
compression; what this measures is time and memory.

For every image, each command is a fresh process timed from outside by `bench_codecs.py`'s launcher
(wall seconds, CPU seconds of the child, peak resident set), with OMP, MKL, OpenBLAS and numba held to
one thread:

- `python cli.py compress IMG -o OUT --preset P --force` for each of `--presets` (default instant,
  default); the default preset is skipped on images above `--max-mp-default` megapixels (default 30:
  the 50 MP mosaic);
- `python cli.py decode OUT -o PNG --force` of the instant file (of the first preset's without instant);
- `cjxl -d 0 -e 7 --num_threads=1` and `djxl`, `cwebp -lossless -z 9` and `dwebp`, where installed (a
  missing tool is named in the notes and its rows are left out; `--no-references`: none of them).

`--threads N` runs every command with N threads instead (diffcode's engine splits its rows, cjxl and djxl
get `--num_threads=N`, WebP `-mt`).

Every decode is compared with the image's pixels: a difference stops the run. A diffcode command that
exits non-zero with "too large" in its error (the memory limits' refusal) is recorded as `refused`, with
the time and memory the refusal took, and the decode of a refused file as `skipped`; any other failure
stops the run. `--warmup` uncounted rounds of kodim17 come first (file caches, imports); then each
image, smallest first, gets `--repeats` rounds of every command (rows give the medians).

The targets of issue 27, printed with their figures and written under the table (a target whose
image or preset was not run reads "not measured"):

1. the 25 MP mosaic's instant compress and its decode peak at <= 1024 MiB, its default compress at
   <= 2048 MiB;
2. the 25 MP decode takes <= 1.2 x 64 x kodim17's decode wall seconds of the same run, and the same
   for the instant compress;
3. the 50 MP mosaic compresses and decodes: no diffcode command refused.

Writes experiments/results/<name>.md|csv (--name, default large_images), headed by the command, commit
and machine, with the load average before and after: on a loaded machine every time is an upper bound.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode import report  # noqa: E402
from diffcode.image import pixel_sha256, read_image, write_png  # noqa: E402
from experiments import bench_codecs  # noqa: E402
from experiments.bench_codecs import Codec, Launcher, Measure  # noqa: E402

PHOTOS = bench_codecs.PHOTOS_DIR.parent
SOURCE_FOLDERS = (PHOTOS / "val", PHOTOS / "train", PHOTOS / "extra" / "urban100")  # then Kodak
ROW_HEIGHT = 512  # every source photo is at least this high
SIZES = {"1": (1024, 1024), "6": (3072, 2048), "25": (6144, 4096), "50": (8192, 6144)}  # (width, height)
REFERENCE_IMAGE = "kodim17"
COMPRESS, DECODE, DEFAULT = ("diffcode compress --preset instant", "diffcode decode (instant file)",
                             "diffcode compress --preset default")  # the targets' rows
LINEAR_FACTOR = 1.2  # issue 27: the 25 MP image may take 1.2 x 64 x kodim17's time
COLUMNS = ["image", "size", "megapixels", "command", "step", "outcome", "runs", "wall_s", "cpu_s", "peak_mib",
           "bytes", "bpsp"]


@dataclass(frozen=True)
class TestImage:
    """An image to measure: its table name, the PNG the commands read, its pixels (H, W, 3) uint8 and a
    line for the notes saying what it is."""

    name: str
    path: Path
    pixels: np.ndarray
    description: str


@dataclass(frozen=True)
class Planned:
    """A codec on one image: whether its file is decoded, why it is skipped ("" if it runs), and whether
    it is diffcode's (whose "too large" exits are refusals)."""

    codec: Codec
    decode: bool
    skip: str
    refusable: bool


@dataclass(frozen=True)
class Outcome:
    """One command of one round: "ok", "refused" or "skipped: why"; its Measure (None if not run); the
    first line of its refusal."""

    status: str
    measure: Measure | None = None
    message: str = ""


def mosaic_name(key: str) -> str:
    return f"mosaic-{key}mp" if key in SIZES else f"mosaic-{key}"


def source_folders() -> Iterator[Path]:
    """The photo folders in the mosaics' order, then the Kodak folder (looked up only if reached)."""
    yield from SOURCE_FOLDERS
    from diffcode import kodak

    yield kodak.find_kodak_dir()


def strips() -> Iterator[tuple[str, np.ndarray]]:
    """Every source photo's bands in turn: (folder/file, (ROW_HEIGHT, W, 3) uint8), centred in the photo."""
    for folder in source_folders():
        for path in sorted(folder.glob("*.png")):
            photo = read_image(path)
            count = photo.shape[0] // ROW_HEIGHT
            top = (photo.shape[0] - count * ROW_HEIGHT) // 2
            for k in range(count):
                yield f"{folder.name}/{path.name}", photo[top + k * ROW_HEIGHT:top + (k + 1) * ROW_HEIGHT]


def mosaic(width: int, height: int) -> tuple[np.ndarray, list[str]]:
    """The (height, width, 3) uint8 mosaic (see the module docstring) and the source of each piece in it."""
    canvas, supply, used, rest = np.empty((height, width, 3), np.uint8), strips(), [], None
    for top in range(0, height, ROW_HEIGHT):
        rows, left = min(ROW_HEIGHT, height - top), 0
        while left < width:
            name, strip = rest or next(supply, (None, None))
            if strip is None:
                raise SystemExit(f"the photos hold too few strips for a {width}x{height} mosaic")
            piece_width = min(strip.shape[1], width - left)
            rest = (name, strip[:, piece_width:]) if piece_width < strip.shape[1] else None
            middle = (ROW_HEIGHT - rows) // 2
            canvas[top:top + rows, left:left + piece_width] = strip[middle:middle + rows, :piece_width]
            left, used = left + piece_width, used + [name]
    return canvas, used


def composition(used: list[str]) -> str:
    """What a mosaic holds: pieces of strips, and photos per folder."""
    photos = Counter(name.split("/")[0] for name in dict.fromkeys(used))
    return f"{len(used)} piece{'s' * (len(used) > 1)} of " + ", ".join(f"{count} photo{'s' * (count > 1)} of {folder}"
                                                 for folder, count in photos.items())


def parse_size(key: str) -> tuple[int, int]:
    """(width, height) of a --sizes entry: a key of SIZES or WxH."""
    if key in SIZES:
        return SIZES[key]
    width, _, height = key.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise SystemExit(f"--sizes: {key!r} is neither one of {', '.join(SIZES)} nor WxH")
    return int(width), int(height)


def make_image(key: str, work: Path) -> TestImage:
    """kodim17 (key "kodim17"), or the mosaic of a --sizes entry written as a PNG in `work`."""
    if key == REFERENCE_IMAGE:
        path = bench_codecs.image_path(key)
        pixels = read_image(path)
        return TestImage(key, path, pixels, f"{key} ({pixels.shape[1]}x{pixels.shape[0]}): Kodak, the linear-time "
                         "reference (6144x4096 is 64 times its pixels)")
    width, height = parse_size(key)
    pixels, used = mosaic(width, height)
    name = mosaic_name(key)
    write_png(work / f"{name}.png", pixels, overwrite=True)
    return TestImage(name, work / f"{name}.png", pixels,
                     f"{name} ({width}x{height}): {composition(used)}; pixel SHA-256 {pixel_sha256(pixels)}")


def step(argv: list[str], output: Path, env: dict[str, str], launcher: Launcher, refusable: bool) -> Outcome:
    """Run one command: "ok", or "refused" for a diffcode refusal ("too large"); SystemExit otherwise."""
    output.unlink(missing_ok=True)  # a command that writes nothing leaves no earlier round's file
    measure, exit_code, errors = launcher.attempt(argv, env)
    if exit_code == 0:
        return Outcome("ok", measure)
    if refusable and "too large" in errors:
        return Outcome("refused", measure, errors.strip().splitlines()[-1])
    raise SystemExit(f"{shlex.join(argv)} exited with {exit_code}: {errors.strip()[-2000:]}")


def one_round(image: TestImage, plan: list[Planned], work: Path, env: dict[str, str], launcher: Launcher) -> dict:
    """Every command of `plan` once on `image`: {command label: Outcome}; each decode is compared with
    the pixels (SystemExit if it differs)."""
    outcomes = {}
    for item in plan:
        codec = item.codec
        encoded, decoded = work / f"{image.name}{codec.suffix}", work / f"{image.name}{codec.suffix}.png"
        outcomes[codec.name] = Outcome(f"skipped: {item.skip}") if item.skip else step(
            bench_codecs.fill(codec.encode, image.path, encoded), encoded, env, launcher, item.refusable)
        if item.decode and outcomes[codec.name].status != "ok":
            outcomes[codec.decoder] = Outcome(f"skipped: compress {outcomes[codec.name].status.split(':')[0]}")
        elif item.decode:
            outcomes[codec.decoder] = step(bench_codecs.fill(codec.decode, encoded, decoded), decoded, env,
                                           launcher, item.refusable)
            if outcomes[codec.decoder].status == "ok" and not bench_codecs.bit_exact(decoded, image.pixels):
                raise SystemExit(f"{codec.decoder} of {image.name}: the decoded pixels differ from the image")
        for label in codec.labels()[:1 + item.decode]:
            wall = outcomes[label].measure.wall_s if outcomes[label].measure else float("nan")
            print(f"  {image.name:12s} {label:34s} {wall:9.2f} s  {outcomes[label].status}", file=sys.stderr)
    return outcomes


def plan_for(image: TestImage, codecs: list[Codec], diffcode: set[str], decoded: str,
             max_mp_default: float) -> list[Planned]:
    """What runs on `image`: every codec, its file decoded if it is `decoded` or not diffcode's, the
    default preset skipped above max_mp_default megapixels."""
    megapixels = image.pixels.shape[0] * image.pixels.shape[1] / 1e6
    too_big = f"above --max-mp-default {max_mp_default:g}" if megapixels > max_mp_default else ""
    return [Planned(codec, codec.name == decoded or codec.name not in diffcode,
                    too_big if codec.name == DEFAULT else "", codec.name in diffcode) for codec in codecs]


def rows_of(image: TestImage, rounds: list[dict], plan: list[Planned], work: Path) -> list[dict]:
    """One row per command: the rounds' outcome and medians, the file's bytes and bpsp."""
    height, width = image.pixels.shape[:2]
    rows = []
    for item in plan:
        encoded = work / f"{image.name}{item.codec.suffix}"
        size_bytes = encoded.stat().st_size if encoded.exists() else None
        for label, step_name in zip(item.codec.labels()[:1 + item.decode], ("compress", "decode")):
            rows.append({"image": image.name, "size": f"{width}x{height}", "megapixels": height * width / 1e6,
                         "command": label, "step": step_name, "bytes": size_bytes,
                         "bpsp": None if size_bytes is None else report.bpsp(size_bytes, height, width),
                         **summary([r[label] for r in rounds])})
    return rows


def summary(outcomes: list[Outcome]) -> dict:
    """The rounds of one command: outcome, runs and the medians of the measured ones."""
    statuses = sorted({o.status for o in outcomes})
    measures = [o.measure for o in outcomes if o.measure is not None]
    medians = {field: statistics.median(getattr(m, field) for m in measures) if measures else None
               for field in ("wall_s", "cpu_s", "peak_mib")}
    return {"outcome": " / ".join(statuses), "runs": len(measures), **medians}


def measure_images(args, codecs: list[Codec], diffcode: set[str], decoded: str, work: Path):
    """Every image in turn (kodim17 and its warm-up rounds first, then the mosaics, smallest first): the
    rows, the notes' lines on the images and their refusals, and the launcher's peak floor in MiB."""
    env, rows, described, refusals = bench_codecs.child_environment(args.threads), [], [], []
    with Launcher() as launcher:
        for key in [REFERENCE_IMAGE, *sorted(args.sizes, key=lambda k: np.prod(parse_size(k)))]:
            image = make_image(key, work)
            plan = plan_for(image, codecs, diffcode, decoded, args.max_mp_default)
            rounds = []
            for index in range(args.repeats + (args.warmup if key == REFERENCE_IMAGE else 0)):
                print(f"{image.name}: round {index + 1}", file=sys.stderr)
                rounds.append(one_round(image, plan, work, env, launcher))
            rows += rows_of(image, rounds[-args.repeats:], plan, work)
            described.append(image.description)
            refusals += [f"{image.name}, {label} refused: {o.message}" for label, o in rounds[-1].items() if o.message]
            for path in work.iterdir():
                path.unlink()
    return rows, described + refusals, launcher.floor_mib


def find_row(rows: list[dict], image: str, command: str) -> dict | None:
    return next((r for r in rows if r["image"] == image and r["command"] == command), None)


def peak_target(rows: list[dict], image: str, command: str, limit_mib: float) -> str:
    """`command`'s peak on `image` against limit_mib: PASS / FAIL / not measured, with the figure."""
    row = find_row(rows, image, command)
    if row is None or row["outcome"].startswith("skipped"):
        return f"{command}: not measured"
    if row["outcome"] != "ok":
        return f"{command}: {row['outcome']}: FAIL"
    verdict = "PASS" if row["peak_mib"] <= limit_mib else "FAIL"
    return f"{command}: peak {row['peak_mib']:.0f} MiB (limit {limit_mib:.0f}): {verdict}"


def time_target(rows: list[dict], image: str, command: str, factor: float) -> str:
    """`command`'s wall seconds on `image` against factor x its wall seconds on kodim17."""
    row, reference = find_row(rows, image, command), find_row(rows, REFERENCE_IMAGE, command)
    if row is None or reference is None or "skipped" in row["outcome"] + reference["outcome"]:
        return f"{command}: not measured"
    if row["outcome"] != "ok" or reference["outcome"] != "ok":
        return f"{command}: {row['outcome']} (on {REFERENCE_IMAGE}: {reference['outcome']}): FAIL"
    limit = factor * reference["wall_s"]
    verdict = "PASS" if row["wall_s"] <= limit else "FAIL"
    return (f"{command}: {row['wall_s']:.1f} s wall (limit {factor:g} x {reference['wall_s']:.2f} s = {limit:.1f} s; "
            f"CPU {row['cpu_s']:.1f} s against {factor:g} x {reference['cpu_s']:.2f} s): {verdict}")


def refusal_target(rows: list[dict], image: str) -> str:
    """PASS if every diffcode command that ran on `image` finished (none refused)."""
    ran = [r for r in rows if r["image"] == image and r["command"].startswith("diffcode")
           and not r["outcome"].startswith("skipped")]
    if not ran:
        return "not measured"
    outcomes = ", ".join(f"{r['command']} {r['outcome']}" for r in ran)
    return f"{outcomes}: {'PASS' if all(r['outcome'] == 'ok' for r in ran) else 'FAIL'}"


def targets(rows: list[dict]) -> list[str]:
    """Issue 27's three targets with their figures."""
    big, huge, factor = mosaic_name("25"), mosaic_name("50"), LINEAR_FACTOR * 64
    return [f"target 1 ({big} peak memory): " + "; ".join([
                peak_target(rows, big, COMPRESS, 1024), peak_target(rows, big, DECODE, 1024),
                peak_target(rows, big, DEFAULT, 2048)]),
            f"target 2 ({big} in linear time, <= {LINEAR_FACTOR:g} x 64 x {REFERENCE_IMAGE}): " + "; ".join([
                time_target(rows, big, DECODE, factor), time_target(rows, big, COMPRESS, factor)]),
            f"target 3 ({huge} without refusal): {refusal_target(rows, huge)}"]


def notes(args, load: tuple[float, float], floor_mib: float, codecs: list[Codec], missing: list[str],
          image_lines: list[str], target_lines: list[str]) -> list[str]:
    """The lines under the table: targets, images, how it was run, the load, tools, refusals."""
    lines = target_lines + image_lines + [
        f"{bench_codecs.threads_note(args.threads)}; {args.warmup} uncounted round(s) of {REFERENCE_IMAGE} first, then {args.repeats} "
        "counted round(s) of every command per image; medians. Every decode was compared with the image's pixels.",
        f"diffcode ran as `{args.python} cli.py`; the default preset was skipped above {args.max_mp_default:g} MP.",
        f"Peak memory is the child's ru_maxrss; the launcher's own peak, {floor_mib:.1f} MiB, is the floor.",
        f"1-minute load average {load[0]:.2f} before and {load[1]:.2f} after the run (2 would be one busy "
        "process per core besides this one): on a loaded machine every time is an upper bound."]
    return lines + bench_codecs.tool_versions(codecs) + missing + ([args.note] if args.note else [])


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--sizes", default="6,25,50",
                    help="mosaics, comma-separated: 6, 25, 50 (MP), 1 (1024x1024, a smoke run) or WxH")
    ap.add_argument("--presets", default="instant,default", help="diffcode presets, comma-separated")
    ap.add_argument("--max-mp-default", type=float, default=30.0,
                    help="skip the default preset on images above this many megapixels")
    ap.add_argument("--repeats", type=int, default=1, help="counted rounds per image")
    ap.add_argument("--warmup", type=int, default=1, help=f"uncounted rounds of {REFERENCE_IMAGE} first")
    ap.add_argument("--threads", type=int, default=1, help="threads of every command (1: issue 27's measure)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs diffcode's cli.py")
    ap.add_argument("--no-references", action="store_true", help="diffcode only (no cjxl, djxl, cwebp, dwebp)")
    ap.add_argument("--tmp-dir", type=Path, default=None,
                    help="where the temporary folder goes (default: the system's)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    ap.add_argument("--name", default="large_images")
    ap.add_argument("--note", default="", help="a line for the table's notes (e.g. what else ran)")
    args = ap.parse_args(argv)
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.presets = [p for p in args.presets.split(",") if p]
    for key in args.sizes:
        parse_size(key)
    if args.repeats < 1 or args.warmup < 0 or not args.presets:
        ap.error("give at least one preset, --repeats >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    references, missing = bench_codecs.available([] if args.no_references else bench_codecs.reference_codecs((7,), args.threads))
    ours = bench_codecs.diffcode_codecs(args.python, args.presets)
    decoded = next((c.name for c in ours if c.name.endswith("--preset instant")), ours[0].name)
    for line in missing:
        print(f"note: {line}", file=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="large_images-", dir=args.tmp_dir) as work:
        rows, image_lines, floor_mib = measure_images(args, ours + references, {c.name for c in ours}, decoded,
                                                   Path(work))
    target_lines = targets(rows)
    command = shlex.join(["python", "experiments/large_images.py", *(sys.argv[1:] if argv is None else argv)])
    bench_codecs.write_results(rows, args.out_dir / args.name, command,
                               notes(args, (load_before, os.getloadavg()[0]), floor_mib, references, missing,
                                     image_lines, target_lines), COLUMNS)
    print((args.out_dir / f"{args.name}.md").read_text())
    print("\n".join(target_lines))


if __name__ == "__main__":
    main()
