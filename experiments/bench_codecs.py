"""diffcode next to the codecs people already use: whole processes, side by side, on the same images.

    python experiments/bench_codecs.py                                   # every preset, 5 paired repeats
    python experiments/bench_codecs.py --presets instant,fast --repeats 3
    python experiments/bench_codecs.py --images kodim17 --presets instant --repeats 1 --warmup 0   # a smoke run

For every image (`--images`: Kodak names, names of `../shared/photos/val`, or image paths; default
kodim17, kodim23 and two 0.8-1.3 MP photos), each codec encodes the image and decodes its own file:

- `diffcode compress --preset P` for each of `--presets` (default instant, fast, default; `default`
  takes about 25 s per image on the idle 2-core machine) and `diffcode decode` of that file, run as
  `python cli.py` with `--python` (default: this interpreter, so its packages);
- `cjxl -d 0 -e 7` and `cjxl -d 0 -e 9` (lossless JPEG XL) and `djxl` of each file (`libjxl-tools`),
  with `--num_threads=1`;
- `cwebp -lossless -z 9` and `dwebp` (`webp`), single-threaded by default.

Every command is a fresh process, timed from outside (`os.wait4`): wall seconds, CPU seconds (user +
system of the child) and peak memory (the child's largest resident set, ru_maxrss). The commands are
started by a small launcher process, since Linux counts the memory a process had before its exec
(this script's) in its ru_maxrss; the launcher's own peak is the floor, given in the notes. OMP, MKL,
OpenBLAS and numba are held to one thread. `--warmup` rounds run first, uncounted (they also write the
files the decoders read); then `--repeats` rounds, each running every command of every image once in
turn, so the commands of one round share the machine's state. Every decode is compared with the
image's pixels (a row that is not bit-exact stops the run). Rows give the median of the rounds with
min and max, and the median over rounds of each round's ratio to `djxl` of the effort-7 file of the
same image (`x djxl`: paired, so it holds when the machine's speed drifts). With `--before DIR`, the diffcode
of another checkout runs in the same rounds, its rows labelled with its commit: a before/after pair.

A missing tool is named and its rows are left out; diffcode is benchmarked all the same (exit 0).

Writes experiments/results/<name>.md|csv (--name, default codecs), headed by the command, commit and
machine, with the load average before and after: on a loaded machine every time is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from diffcode import report  # noqa: E402

PHOTOS_DIR = ROOT.parent / "shared" / "photos" / "val"
DEFAULT_IMAGES = "kodim17,kodim23,photo029,photo031"  # the photos: 1.12 and 1.03 MP
PRESETS = ("instant", "fast", "default")
REFERENCE = "djxl (e7 file)"  # the ratios' denominator
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
COLUMNS = ["image", "size", "command", "step", "file_bytes", "bpsp", "runs", "wall_s", "wall_min_s", "wall_max_s",
           "cpu_s", "peak_mib", "wall_x_djxl", "cpu_x_djxl", "peak_x_djxl", "bit_exact"]


@dataclass(frozen=True)
class Codec:
    """One codec: the table's names of its encode and decode commands, their argv templates with
    {input} and {output}, its file's suffix, and the executables it needs (PATH names)."""

    name: str
    decoder: str
    suffix: str
    encode: tuple[str, ...]
    decode: tuple[str, ...]
    tools: tuple[str, ...] = ()

    def labels(self) -> tuple[str, str]:
        return self.name, self.decoder


@dataclass(frozen=True)
class Measure:
    """One finished process: wall seconds, CPU seconds (user + system), peak resident set in MiB."""

    wall_s: float
    cpu_s: float
    peak_mib: float


def diffcode_codecs(python: str, presets: list[str], jit: bool = False, root: Path = ROOT,
                    label: str = "") -> list[Codec]:
    """`python cli.py compress --preset P` and `decode` for each preset, cli.py of the checkout at `root`
    (`label` names another one in the rows and file names); with `jit`, run with DIFFCODE_KERNELS=jit (numba's
    just-in-time kernels instead of the ahead-of-time module: `diffcode.kernels`)."""
    cli = ["env", "DIFFCODE_KERNELS=jit"] * jit + [python, str(root / "cli.py")]
    tag = " [jit kernels]" * jit + f" [{label}]" * bool(label)
    return [Codec(f"diffcode compress --preset {preset}{tag}", f"diffcode decode ({preset} file){tag}",
                  f".{preset}{'.jit' * jit}{'.other' * bool(label)}.dfc",
                  (*cli, "compress", "{input}", "-o", "{output}", "--preset", preset, "--force", "-q"),
                  (*cli, "decode", "{input}", "-o", "{output}", "--force", "-q"))
            for preset in presets]


def reference_codecs(efforts: tuple[int, ...] = (7, 9), threads: int = 1) -> list[Codec]:
    """Lossless JPEG XL at each of `efforts` and lossless WebP, `threads` threads each (WebP: -mt above one)."""
    jxl = [Codec(f"cjxl -d 0 -e {effort}", f"djxl (e{effort} file)", f".e{effort}.jxl",
                 ("cjxl", "{input}", "{output}", "-d", "0", "-e", str(effort), f"--num_threads={threads}", "--quiet"),
                 ("djxl", "{input}", "{output}", f"--num_threads={threads}", "--quiet"), ("cjxl", "djxl"))
           for effort in efforts]
    mt = ("-mt",) if threads > 1 else ()
    webp = Codec("cwebp -lossless -z 9", "dwebp", ".webp",
                 ("cwebp", "-quiet", "-lossless", "-z", "9", *mt, "{input}", "-o", "{output}"),
                 ("dwebp", "-quiet", *mt, "{input}", "-o", "{output}"), ("cwebp", "dwebp"))
    return jxl + [webp]


def available(codecs: list[Codec]) -> tuple[list[Codec], list[str]]:
    """The codecs whose tools are on PATH, and a note naming each missing tool and its package."""
    packages = {"cjxl": "libjxl-tools", "djxl": "libjxl-tools", "cwebp": "webp", "dwebp": "webp"}
    missing = sorted({tool for codec in codecs for tool in codec.tools if shutil.which(tool) is None})
    notes = [f"{tool} not found (apt-get install {packages.get(tool, tool)}): its rows are left out" for tool in missing]
    return [c for c in codecs if not set(c.tools) & set(missing)], notes


def checkout(root: Path) -> str:
    """The short commit of the checkout at `root` (SystemExit if it is not one)."""
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"--before {root}: not a git checkout ({exc})") from exc


def image_path(name: str) -> Path:
    """A Kodak name (kodim17), a photo of ../shared/photos/val (photo029), or a path."""
    if Path(name).suffix:
        return Path(name)
    if name.startswith("kodim"):
        from diffcode import kodak

        return kodak.find_kodak_dir() / f"{kodak.image_name(name)}.png"
    return PHOTOS_DIR / f"{name}.png"


# Runs each command for the benchmark: a bare interpreter (-S), so the commands it starts inherit its small
# memory, not this process's: Linux counts the memory a process had before exec in its ru_maxrss.
_LAUNCHER = r"""
import json, os, sys, time
for line in sys.stdin:
    argv, env, errors = json.loads(line)
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, errors, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)]
    t0 = time.perf_counter()
    try:
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    except OSError as exc:
        print(json.dumps([0.0, 0.0, 0, str(exc)]), flush=True)
        continue
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    print(json.dumps([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]),
          flush=True)
"""


class Launcher:
    """Times commands as whole processes started from a small launcher process: wall seconds around
    the spawn and wait, user + system CPU seconds and ru_maxrss of the finished child (os.wait4).
    A command's peak is at least `floor_mib`, the launcher's own (measured on `true`)."""

    def __enter__(self) -> "Launcher":
        self.process = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.errors = tempfile.NamedTemporaryFile(prefix="bench_codecs-", suffix=".err")
        self.floor_mib = self.run(["true"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}).peak_mib
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.errors.close()

    def run(self, argv: list[str], env: dict[str, str]) -> Measure:
        """Run argv and measure it; SystemExit with its standard error if it fails or cannot start."""
        measure, exit_code, errors = self.attempt(argv, env)
        if exit_code != 0:
            raise SystemExit(f"{' '.join(argv)} exited with {exit_code}: {errors.strip()[-2000:]}")
        return measure

    def attempt(self, argv: list[str], env: dict[str, str]) -> tuple[Measure, int | str, str]:
        """Run argv and measure it: (Measure, its exit code or why it could not start, its standard error
        if it failed, else "")."""
        self.process.stdin.write(json.dumps([argv, env, self.errors.name]) + "\n")
        self.process.stdin.flush()
        wall, cpu, peak_kib, exit_code = json.loads(self.process.stdout.readline())
        errors = "" if exit_code == 0 else exit_code if isinstance(exit_code, str) else \
            Path(self.errors.name).read_text(errors="replace")
        return Measure(wall, cpu, peak_kib / 1024.0), exit_code, errors  # Linux: ru_maxrss in KiB


def decoded_pixels(path: Path) -> np.ndarray | None:
    """A decoder's 8-bit output as uint8 (H, W, 3), or None if it is not 8-bit RGB (an alpha channel
    is accepted only when every pixel is opaque)."""
    with Image.open(path) as im:
        if im.mode == "RGBA":
            array = np.asarray(im)
            return array[..., :3] if (array[..., 3] == 255).all() else None
        return np.asarray(im) if im.mode == "RGB" else None


def bit_exact(path: Path, original: np.ndarray) -> bool:
    """True if the image file at `path` holds exactly `original`'s pixels."""
    pixels = decoded_pixels(path)
    return pixels is not None and pixels.shape == original.shape and np.array_equal(pixels, original)


def child_environment(threads: int = 1) -> dict[str, str]:
    """This environment with every thread pool held to `threads` threads and no progress bars, and Python's bytecode
    cache on, as an installed package has it (a PYTHONDONTWRITEBYTECODE environment would compile every diffcode
    module from source in every process; the warm-up round writes the cache)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **{name: str(threads) for name in THREAD_VARIABLES}, "DIFFCODE_PROGRESS": "never"}


def fill(template: tuple[str, ...], source: Path, target: Path) -> list[str]:
    return [str(source) if a == "{input}" else str(target) if a == "{output}" else a for a in template]


def one_round(images: dict[str, Path], codecs: list[Codec], work: Path, env: dict[str, str],
              originals: dict[str, np.ndarray], run, log=print) -> dict[tuple[str, str], Measure]:
    """Every codec encodes and decodes every image once, each command measured by run(argv, env)
    (Launcher.run): {(image, command label): Measure}; each decode is checked against the image's
    pixels (SystemExit if it differs)."""
    measures = {}
    for name, source in images.items():
        for codec in codecs:
            encoded, decoded = work / f"{name}{codec.suffix}", work / f"{name}{codec.suffix}.png"
            for output, label, argv in zip((encoded, decoded), codec.labels(), (
                    fill(codec.encode, source, encoded), fill(codec.decode, encoded, decoded))):
                output.unlink(missing_ok=True)  # a command that writes nothing leaves no earlier round's file
                measures[name, label] = run(argv, env)
                log(f"  {name:10s} {label:32s} {measures[name, label].wall_s:8.3f} s", file=sys.stderr)
            if not bit_exact(decoded, originals[name]):
                raise SystemExit(f"{codec.labels()[1]} of {name}: the decoded pixels differ from the image")
    return measures


def paired_ratio(rounds: list[dict], key: tuple[str, str], field: str) -> float | None:
    """Median over rounds of key's figure over the reference decoder's in the same round (None
    without the reference)."""
    reference = (key[0], REFERENCE)
    if not rounds or reference not in rounds[0]:
        return None
    return statistics.median(getattr(r[key], field) / getattr(r[reference], field) for r in rounds)


def rows_of(rounds: list[dict], codecs: list[Codec], images: dict[str, Path], sizes: dict[str, tuple],
            work: Path) -> list[dict]:
    """One row per image and command: medians, extremes and paired ratios of the counted rounds."""
    rows = []
    for name in images:
        h, w = sizes[name]
        for codec in codecs:
            file_bytes = (work / f"{name}{codec.suffix}").stat().st_size
            for step, label in zip(("compress", "decode"), codec.labels()):
                rows.append(row(rounds, (name, label), step, f"{w}x{h}", file_bytes, file_bytes * 8 / (h * w * 3)))
    return rows


def row(rounds: list[dict], key: tuple[str, str], step: str, size: str, file_bytes: int, bpsp: float) -> dict:
    walls = [r[key].wall_s for r in rounds]
    return {"image": key[0], "size": size, "command": key[1], "step": step, "file_bytes": file_bytes, "bpsp": bpsp,
            "runs": len(rounds), "wall_s": statistics.median(walls), "wall_min_s": min(walls),
            "wall_max_s": max(walls), "cpu_s": statistics.median(r[key].cpu_s for r in rounds),
            "peak_mib": statistics.median(r[key].peak_mib for r in rounds),
            "wall_x_djxl": paired_ratio(rounds, key, "wall_s"), "cpu_x_djxl": paired_ratio(rounds, key, "cpu_s"),
            "peak_x_djxl": paired_ratio(rounds, key, "peak_mib"), "bit_exact": True}


def tool_versions(codecs: list[Codec]) -> list[str]:
    """The first line each external encoder prints about its version."""
    asks = {"cjxl": ["cjxl", "--version"], "cwebp": ["cwebp", "-version"]}
    versions = []
    for tool in sorted({c.tools[0] for c in codecs if c.tools}):
        result = subprocess.run(asks[tool], capture_output=True, text=True, timeout=30)
        versions.append(f"{tool} {(result.stdout or result.stderr).strip().splitlines()[0]}")
    return versions


def threads_note(threads: int) -> str:
    """How many threads every command had, as the tables' notes say it."""
    count = "one thread" if threads == 1 else f"{threads} threads"
    return (f"Whole processes, {count} ({', '.join(THREAD_VARIABLES)} = {threads}; cjxl/djxl "
            f"--num_threads={threads}{'; cwebp/dwebp -mt' * (threads > 1)})")


def notes(args, load: tuple[float, float], floor_mib: float, codecs: list[Codec], missing: list[str]) -> list[str]:
    """The lines under the table: how it was run, the load, the tools and what was left out."""
    lines = [f"{threads_note(args.threads)}; {args.warmup} uncounted round(s), then {args.repeats} counted round(s), every command once per "
             f"round in turn; medians, and `x djxl`: the median of each round's ratio to `{REFERENCE}` of the same "
             "image. Every decode was compared with the image's pixels.",
             f"diffcode ran as `{args.python} cli.py`.",
             f"Peak memory is the child's ru_maxrss; commands are started from a launcher whose own peak, "
             f"{floor_mib:.1f} MiB, is the floor: a row at the floor used at most that.",
             f"1-minute load average {load[0]:.2f} before and {load[1]:.2f} after the rounds (2 would be one busy "
             "process per core besides this benchmark): on a loaded machine every time is an upper bound."]
    from diffcode import kernels

    module = kernels.aot_module()
    lines.append(f"diffcode's compiled loops: the ahead-of-time module {module.__name__} (built from the sources run)"
                 if module else "diffcode's compiled loops: numba, just in time (no ahead-of-time module built from "
                 "these sources: python -m diffcode.kernels)")
    lines += tool_versions(codecs) + missing + ([args.note] if args.note else [])
    return lines


def write_results(rows: list[dict], out_stem: Path, command: str, note_lines: list[str],
                  columns: list[str] = COLUMNS) -> None:
    """The table (experiments/results/<name>.md and .csv, with command, commit and machine) and its notes
    under the Markdown table."""
    report.write_table(rows, out_stem, command, columns)
    md = out_stem.with_name(out_stem.name + ".md")
    md.write_text(md.read_text() + "\n" + "\n".join(f"- {line}" for line in note_lines) + "\n")


def parse_args(argv: list[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--images", default=DEFAULT_IMAGES, help="comma-separated Kodak names, photo names or paths")
    ap.add_argument("--presets", default=",".join(PRESETS), help="diffcode presets, comma-separated")
    ap.add_argument("--repeats", type=int, default=5, help="counted rounds")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted rounds first")
    ap.add_argument("--threads", type=int, default=1, help="threads of every command (1: the issue's measure)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs diffcode's cli.py")
    ap.add_argument("--no-references", action="store_true", help="diffcode only (no cjxl, djxl, cwebp, dwebp)")
    ap.add_argument("--jit-too", action="store_true",
                    help="also diffcode with numba's just-in-time kernels (DIFFCODE_KERNELS=jit), in the same rounds")
    ap.add_argument("--before", type=Path,
                    help="another checkout (git worktree add DIR COMMIT; its kernels built) whose diffcode runs in "
                         "the same rounds: a before/after pair")
    ap.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "bench_codecs")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    ap.add_argument("--name", default="codecs")
    ap.add_argument("--note", default="", help="a line for the table's notes (e.g. what else ran)")
    ap.add_argument("--allow-jit", action="store_true",
                    help="run even when no ahead-of-time module is built from these sources (decodes then pay numba)")
    args = ap.parse_args(argv)
    args.presets = [p for p in args.presets.split(",") if p]
    args.images = [i for i in args.images.split(",") if i]
    if args.repeats < 1 or args.warmup < 0 or not args.images:
        ap.error("give at least one image, --repeats >= 1 and --warmup >= 0")
    return args


def measure(args, images: dict[str, Path], codecs: list[Codec], originals: dict[str, np.ndarray]):
    """The counted rounds (after the warm-up ones) and the launcher's peak floor in MiB."""
    env, rounds = child_environment(args.threads), []
    with Launcher() as launcher:
        for index in range(args.warmup + args.repeats):
            print(f"round {index + 1} of {args.warmup + args.repeats}"
                  f"{' (warm-up)' if index < args.warmup else ''}", file=sys.stderr)
            measures = one_round(images, codecs, args.work_dir, env, originals, launcher.run)
            rounds += [measures] if index >= args.warmup else []
    return rounds, launcher.floor_mib


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from diffcode import kernels
    from diffcode.image import read_image

    if kernels.aot_module() is None and not args.allow_jit:
        raise SystemExit("no ahead-of-time kernels built from these sources: run python -m diffcode.kernels first "
                         "(or --allow-jit to time numba's just-in-time path)")

    images = {Path(name).stem: image_path(name) for name in args.images}
    originals = {name: read_image(path) for name, path in images.items()}
    codecs, missing = available([] if args.no_references else reference_codecs(threads=args.threads))
    codecs = diffcode_codecs(args.python, args.presets) + diffcode_codecs(args.python, args.presets, True) * args.jit_too \
        + (diffcode_codecs(args.python, args.presets, root=args.before, label=f"before: {checkout(args.before)}")
           if args.before else []) + codecs
    for line in missing:
        print(f"note: {line}", file=sys.stderr)
    for folder in (args.work_dir, args.out_dir):
        folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    rounds, floor_mib = measure(args, images, codecs, originals)
    sizes = {name: array.shape[:2] for name, array in originals.items()}
    rows = rows_of(rounds, codecs, images, sizes, args.work_dir)
    command = shlex.join(["python", "experiments/bench_codecs.py", *(sys.argv[1:] if argv is None else argv)])
    write_results(rows, args.out_dir / args.name, command,
                  notes(args, (load_before, os.getloadavg()[0]), floor_mib, codecs, missing))
    print((args.out_dir / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
