"""Damaged and crafted .dfc files: how every case ends (the long version of tests/test_damage.py).

    python experiments/reliability.py [--sizes 5x7,12x9] [--decoders random,shipped]
                                      [--storages dither,randseed] [--edits 300] [--crafted 256,1024,2048]

For every decoder (the tests' random checkpoint and the shipped one), storage scheme and image
size, a small file is made with a quick fit and damaged:

- bit flip: every single-bit flip of the file (CRCs left as they are);
- truncation: every proper prefix of the file;
- deep bit flip: every bit outside the CRC fields flipped, then every CRC recomputed, so the damage
  reaches the field checks and the stream decoders;
- random edits: 1 to 4 random byte edits (set, xor, insert, delete), CRCs recomputed;
- crafted header (one per side length in --crafted): a header declaring an S x S image with the
  decoder's hash, empty sections and valid CRCs, decoded in a child process limited to
  --crafted-memory-gib of address space and --crafted-cpu-seconds of CPU time.

Each case ends as: rejected cleanly (CorruptFileError, ChecksumError or DecoderMismatchError; for a
crafted header also the DiffcodeError that says the declared image needs more memory than allowed),
decoded identical (the original pixels: the damage hit a field the scheme does not read), a
silent failure (another image: must be 0), or another exception (any other type, or a hang).
Writes experiments/results/reliability.md|csv (--name), rewritten after every row (the last row says
whether the run finished); the cheap kinds of damage run first, the deep flips last.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffcode import api, report  # noqa: E402
from diffcode.damage import (IDENTICAL, OTHER, REJECTED, SILENT, apply_edits, classify, deep_bits,  # noqa: E402
                             deep_cases, flip, header_fields, make_image, raw_pack)
from diffcode.families.per_pixel.checkpoint import Checkpoint  # noqa: E402
from diffcode.families.per_pixel import model as per_pixel_model  # noqa: E402
from diffcode.families.per_pixel.model import DecoderWeights  # noqa: E402
from diffcode.storage import container, schemes  # noqa: E402
from diffcode.families.per_pixel.superres import DecoderConfig, size_schedule  # noqa: E402
from diffcode.families.per_pixel.config import FitConfig  # noqa: E402

# tests/conftest.py's quick fit: few steps, every piece of the schedule (maximize, entropy off/on, freezing)
QUICK_FIT = FitConfig(steps=6, maximize_steps=1, entropy_on_fraction=0.5, freeze_fraction=0.5)
COLUMNS = ["decoder", "storage", "image", "file_bytes", "damage", "cases", "rejected_cleanly", "decoded_identical",
           "silent_failures", "other_exceptions", "cpu_seconds", "most_common_outcome"]


def random_checkpoint() -> Checkpoint:
    """The construction of tests/conftest.py (random weights, mostly narrow encodings).

    The global torch seed is fixed too (nn.Conv2d draws its initial weights from it), so that
    every process builds the same checkpoint.
    """
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        weights = DecoderWeights(DecoderConfig(), g)
    with torch.no_grad():
        for p in weights.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        for block in ("stage", "head"):
            weights.conv(block, "pre2").bias[:5] -= 4.0
    return per_pixel_model.checkpoint_of(weights)


def bit_flips(data: bytes):
    for bit in range(8 * len(data)):
        yield f"bit {bit}", flip(data, bit)


def truncations(data: bytes):
    for cut in range(len(data)):
        yield f"cut {cut}", data[:cut]


def random_edits(data: bytes, n: int, seed: int):
    rng = np.random.default_rng(seed)
    ops = ["set", "xor", "insert", "delete"]
    for i in range(n):
        edits = [(ops[rng.integers(4)], int(rng.integers(2**20)), int(rng.integers(256)))
                 for _ in range(int(rng.integers(1, 5)))]
        yield f"edits {edits}", apply_edits(data, edits, refresh=True)


def run_cases(cases, image: np.ndarray, checkpoint, row: dict, failures: list) -> dict:
    counts, outcomes = collections.Counter(), collections.Counter()
    t0 = time.process_time()
    for label, damaged in cases:
        outcome = classify(damaged, image, checkpoint)
        counts[outcome.kind] += 1
        outcomes[_short(outcome.detail)] += 1
        if not outcome.ok:
            failures.append({**row, "case": label, "kind": outcome.kind, "detail": outcome.detail})
    return {**row, "cases": sum(counts.values()), "rejected_cleanly": counts[REJECTED],
            "decoded_identical": counts[IDENTICAL], "silent_failures": counts[SILENT],
            "other_exceptions": counts[OTHER], "cpu_seconds": time.process_time() - t0,
            "most_common_outcome": f"{outcomes.most_common(1)[0][0]} ({outcomes.most_common(1)[0][1]})" if outcomes else ""}


def _short(detail: str) -> str:
    """An outcome without its numbers, so that like cases count together."""
    words = detail.split(":")[0:2]
    text = ":".join(words)
    return "".join(c for c in text if not c.isdigit())[:70].strip()


# ----------------------------------------------------------------------------- crafted headers

_CHILD = r"""
import json, resource, sys, time
limit, cpu = int(sys.argv[2]) << 30, int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))  # SIGXCPU ends a decode that runs too long
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from diffcode import codec
from diffcode.families.per_pixel.checkpoint import Checkpoint
from diffcode.errors import CorruptFileError, DecoderMismatchError, DiffcodeError
from experiments.reliability import random_checkpoint
data = sys.stdin.buffer.read()
ck = Checkpoint.load() if sys.argv[3] == "shipped" else random_checkpoint()
t = time.process_time()
try:
    codec.load(data, ck)
    kind, detail = "silent", "decoded"
except (CorruptFileError, DecoderMismatchError) as exc:
    kind, detail = "rejected", f"{type(exc).__name__}: {exc}"
except DiffcodeError as exc:  # e.g. not enough memory for the declared size: a clean refusal, named as such
    kind, detail = "rejected", f"{type(exc).__name__}: {exc}"
except BaseException as exc:
    kind, detail = "other", f"{type(exc).__name__}: {exc}"
print(json.dumps({"kind": kind, "detail": detail[:200], "cpu_seconds": time.process_time() - t,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def crafted_file(side: int, template: bytes, checkpoint) -> bytes:
    """A file declaring a side x side image: the template's header fields, empty sections."""
    fields = {**header_fields(template), "height": side, "width": side}
    n = len(size_schedule(side, side, checkpoint.config).encoding_grids())
    return raw_pack(fields, [(container.ENCODINGS, b"")] * n + [(container.ERROR_TABLE, b"")])


def crafted_case(data: bytes, decoder: str, memory_gib: int, cpu_seconds: int) -> dict:
    """Decode in a child limited in address space and CPU time (not wall time: the machine may be busy)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(memory_gib), decoder, str(cpu_seconds)],
                              input=data, capture_output=True, timeout=24 * 3600, check=False)
    except subprocess.TimeoutExpired:
        return {"kind": OTHER, "detail": "Hang: no answer within 24 h", "cpu_seconds": float("nan")}
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode == -signal.SIGXCPU:
        return {"kind": OTHER, "detail": f"Hang: more than {cpu_seconds} s of CPU time", "cpu_seconds": float("nan")}
    if proc.returncode != 0 or not lines:
        return {"kind": OTHER, "detail": f"child died (exit {proc.returncode}): {proc.stderr.decode()[-200:]}",
                "cpu_seconds": float("nan")}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5x7,12x9", help="image sizes HxW, comma-separated")
    parser.add_argument("--decoders", default="random,shipped", help="random (the tests' checkpoint), shipped")
    parser.add_argument("--storages", default=",".join(sorted(schemes.NAMES)))
    parser.add_argument("--edits", type=int, default=300, help="random-edit cases per file")
    parser.add_argument("--no-deep", action="store_true", help="skip the deep bit flips (the slow part)")
    parser.add_argument("--crafted", default="256,1024,2048", help="side lengths of crafted headers ('' = none)")
    parser.add_argument("--crafted-memory-gib", type=int, default=4)
    parser.add_argument("--crafted-cpu-seconds", type=int, default=600, help="CPU time limit of a crafted case")
    parser.add_argument("--name", default="reliability")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    rows, failures = [], []
    command = "python experiments/reliability.py " + " ".join(sys.argv[1:])

    def record(row: dict, done: bool = False) -> None:
        """Print a row and rewrite the table (so that a long run always has its results so far)."""
        if row is not None:
            rows.append(row)
            _print(row)
        total = {"decoder": "all", "storage": "", "image": "", "file_bytes": None,
                 "damage": "total" if done else "total so far (run not finished)",
                 **{c: sum(r[c] for r in rows) for c in ("cases", "rejected_cleanly", "decoded_identical",
                                                          "silent_failures", "other_exceptions")},
                 "cpu_seconds": sum(r["cpu_seconds"] for r in rows if r["cpu_seconds"] == r["cpu_seconds"]),
                 "most_common_outcome": ""}
        report.write_table(rows + [total], args.out_dir / args.name, command, COLUMNS)
        if done:
            _print(total)

    files = []  # (decoder, checkpoint, storage, size, image, data); the cheap kinds of damage first
    for decoder in args.decoders.split(","):
        checkpoint = Checkpoint.load() if decoder == "shipped" else random_checkpoint()
        for storage in args.storages.split(","):
            for h, w in sizes:
                image = make_image(h, w)
                fit = api.fit(image, model=checkpoint, config=QUICK_FIT, storage=storage)
                data, _ = api.store(fit, model=checkpoint)
                files.append((decoder, checkpoint, storage, (h, w), image, data))
    for decoder, checkpoint, storage, (h, w), image, data in files:
        row = {"decoder": decoder, "storage": storage, "image": f"{h}x{w}", "file_bytes": len(data)}
        for damage, cases in [("bit flip", bit_flips(data)), ("truncation", truncations(data)),
                              ("random edits", random_edits(data, args.edits, seed=h * 1000 + w))]:
            record(run_cases(cases, image, checkpoint, {**row, "damage": damage}, failures))
    templates = {}
    for decoder, _, storage, _, _, data in files:
        templates.setdefault((decoder, storage), data)
    for (decoder, storage), template in templates.items():
        checkpoint = next(f[1] for f in files if f[0] == decoder)
        for side in [int(s) for s in args.crafted.split(",") if s]:
            data = crafted_file(side, template, checkpoint)
            result = crafted_case(data, decoder, args.crafted_memory_gib, args.crafted_cpu_seconds)
            kind = result["kind"]
            row = {"decoder": decoder, "storage": storage, "image": f"{side}x{side}", "file_bytes": len(data),
                   "damage": f"crafted header (limit {args.crafted_memory_gib} GiB)", "cases": 1,
                   "rejected_cleanly": int(kind == REJECTED), "decoded_identical": 0,
                   "silent_failures": int(kind == SILENT), "other_exceptions": int(kind == OTHER),
                   "cpu_seconds": result["cpu_seconds"],
                   "most_common_outcome": result["detail"][:90]
                   + (f"; peak RSS {result['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in result else "")}
            if kind != REJECTED:
                failures.append({**row, "case": f"crafted {side}x{side}", "kind": kind, "detail": result["detail"]})
            record(row)
    if not args.no_deep:  # the slow part, smallest files first
        for decoder, checkpoint, storage, (h, w), image, data in sorted(files, key=lambda f: len(f[5])):
            row = {"decoder": decoder, "storage": storage, "image": f"{h}x{w}", "file_bytes": len(data),
                   "damage": "deep bit flip"}
            record(run_cases(deep_cases(data, deep_bits(data)), image, checkpoint, row, failures))
    record(None, done=True)
    for f in failures:
        print("FAILURE", json.dumps({k: f[k] for k in ("decoder", "storage", "image", "damage", "case", "kind",
                                                        "detail")}))
    print(f"wrote {args.out_dir / args.name}.md|csv: {rows and sum(r['cases'] for r in rows)} cases, "
          f"{sum(r['silent_failures'] for r in rows)} silent, {sum(r['other_exceptions'] for r in rows)} other")


def _print(row: dict) -> None:
    print(f"{row['decoder']:>8} {row['storage']:>9} {row['image']:>9} {row['damage']:<28} {row['cases']:>6} cases: "
          f"{row['rejected_cleanly']} rejected, {row['decoded_identical']} identical, {row['silent_failures']} silent, "
          f"{row['other_exceptions']} other ({row['cpu_seconds']:.1f} CPU s) {row['most_common_outcome']}", flush=True)


if __name__ == "__main__":
    main()
