"""Damaged and crafted .dfc files: how every case ends (the long version of tests/test_damage.py).

    python experiments/reliability.py [--sizes 5x7,12x9] [--decoders random,shipped]
                                      [--storages dither,randseed] [--edits 300] [--crafted 256,1024,2048]
    python experiments/reliability.py --family pyramid [--pyramid-files instant:5x7:fit,default:12x9:biases]
                                      [--edits 300] [--no-deep]

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

With --family pyramid (results in experiments/results/reliability-pyramid.md|csv), the files are
pyramid files of small images for every preset code (`pyramid_files`: fitted files, and files whose
per-image deltas are given, so that every preset and adapt set has files with a weight-deltas
section), with the pyramid's own kinds of damage besides the ones above (`pyramid_cases`):
appended bytes (after the file, and inside each section with its length and CRCs fixed), every
fixed header field at 0, 1, max - 1 and max, every section's length field at its edges and next to
its true value, the prior hash, the preset and adapt codes (every byte value) and every delta
scale at every byte value, all with the CRCs recomputed. Each row also gives the worst case's CPU
time and peak memory above the memory in use before it (VmHWM, reset per case through
/proc/self/clear_refs), and which case it was.

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
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from diffcode import api, report  # noqa: E402
from diffcode.damage import (IDENTICAL, OTHER, REJECTED, SILENT, apply_edits, classify, deep_bits,  # noqa: E402
                             deep_cases, flip, header_fields, make_image, raw_pack, refresh_crcs)
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


# ----------------------------------------------------------------------------- pyramid files

PYRAMID_COLUMNS = ["preset", "image", "deltas", "file_bytes", "damage", "cases", "rejected_cleanly",
                   "decoded_identical", "silent_failures", "tracebacks", "worst_case_seconds", "slowest_case",
                   "worst_case_cpu_seconds", "worst_case_extra_mib", "worst_case", "cpu_seconds", "most_common_outcome"]
# (preset, image HxW, deltas): "fit" stores what a fit of --pyramid-steps steps gives (the prior alone
# when its deltas do not pay); an adapt set name stores given small deltas of those tensors
PYRAMID_FILES = [("instant", "5x7", "fit"), ("instant", "12x9", "fit"), ("instant", "33x17", "fit"),
                 ("fast", "12x9", "fit"), ("fast", "12x9", "biases"), ("fast", "33x17", "biases"),
                 ("default", "5x7", "biases"), ("default", "12x9", "biases"), ("default", "33x17", "fit"),
                 ("default", "12x9", "heads"), ("fast", "12x9", "all")]


def pyramid_files(specs, steps: int) -> list[tuple[str, str, str, np.ndarray, bytes]]:
    """(preset, image, deltas, pixels, file) for each (preset, HxW, deltas) spec; every file is
    stored by api.store, which decodes it and compares the pixels."""
    from diffcode.families import Fit
    from diffcode.families.pyramid import deltas as pyramid_deltas
    from diffcode.families.pyramid import prior as pyramid_prior
    from diffcode.families.pyramid import spec as pyramid_spec

    prior = pyramid_prior.load()
    out = []
    for preset, size, adapt in specs:
        h, w = (int(v) for v in size.split("x"))
        image = make_image(h, w)
        if adapt == "fit":
            fits = pyramid_spec.PRESETS[preset].steps > 0  # the instant preset fits nothing and takes no steps
            fit = api.fit(image, variant="pyramid", preset=preset, steps=steps if fits else None, seed=0)
        else:  # small deltas, mostly zero (a sparse stream), on every tensor of the adapt set
            rng = np.random.default_rng(h * 1000 + w)
            n = sum(prior.arrays[name].size for name in pyramid_deltas.adapted_names(prior.arrays, adapt))
            k = (rng.integers(-3, 4, n) * (rng.random(n) < 0.1)).astype(np.int16)
            k[:: max(1, n // 7)] = rng.integers(-pyramid_deltas.K_MAX, pyramid_deltas.K_MAX + 1, len(k[:: max(1, n // 7)]))
            fit = Fit("pyramid", image, {"deltas": k}, {"adapt": adapt}, prior.sha256, preset, 0)
        data, _ = api.store(fit)
        out.append((preset, size, adapt, image, data))
    return out


def _field_edges(fmt: str) -> list:
    """0, 1, max - 1 and max of a struct field ("B", "H", "I", "16s", "4s")."""
    if fmt.endswith("s"):
        n = int(fmt[:-1])
        return [bytes(n), bytes(n - 1) + b"\x01", b"\xff" * (n - 1) + b"\xfe", b"\xff" * n]
    top = (1 << (8 * struct.calcsize("<" + fmt))) - 1
    return [0, 1, top - 1, top]


def with_header_crc(data: bytes) -> bytes:
    """`data` with the header CRC recomputed where its section count puts it (section CRCs kept)."""
    from diffcode.damage import fixed_of

    fixed = fixed_of(data)
    if len(data) < fixed.size:
        return data
    (n,) = struct.unpack_from("<H", data, fixed.size - 2)
    end = fixed.size + n * container._SECTION.size
    if len(data) < end + 4:
        return data
    out = bytearray(data)
    struct.pack_into("<I", out, end, zlib.crc32(bytes(out[:end])))
    return bytes(out)


def header_edge_cases(data: bytes):
    """Every fixed header field at 0, 1, max - 1 and max (the CRCs recomputed)."""
    from diffcode.damage import field_names, field_offsets, fixed_of

    fixed = fixed_of(data)
    tokens = re.findall(r"(\d*)([a-zA-Z?])", fixed.format)
    offsets = field_offsets(fixed)
    for name, (count, char) in zip(field_names(fixed), tokens):
        fmt = count + char
        for value in _field_edges(fmt):
            if value == struct.unpack_from("<" + fmt, data, offsets[name])[0]:
                continue  # the file's own value: no damage
            out = bytearray(data)
            struct.pack_into("<" + fmt, out, offsets[name], value)
            damaged = refresh_crcs(bytes(out)) if name != "n_sections" else with_header_crc(bytes(out))
            yield f"{name} = {value if isinstance(value, int) else value.hex()}", damaged


def section_spans(data: bytes) -> list[tuple[int, int, int, int]]:
    """(kind, table offset of the length field, payload start, payload length) of each section."""
    from diffcode.damage import fixed_of, section_table

    end, table = section_table(data)
    start, out = end + 4, []
    for i, (kind, length, _) in enumerate(table):
        out.append((kind, fixed_of(data).size + i * container._SECTION.size + 1, start, length))
        start += length
    return out


def section_size_cases(data: bytes):
    """Every section's length field at its edges and next to its true value (CRCs recomputed)."""
    for i, (kind, field, _, length) in enumerate(section_spans(data)):
        values = {0, 1, 2**32 - 2, 2**32 - 1, length - 4, length - 1, length + 1, length + 4} - {length}
        for value in sorted(v for v in values if 0 <= v < 2**32):
            out = bytearray(data)
            struct.pack_into("<I", out, field, value)
            yield f"section {i} ({container.SECTION_KINDS[kind]}) length {length} -> {value}", refresh_crcs(bytes(out))


def appended_cases(data: bytes):
    """Bytes after the file, and at the end and the start of each section (its length and CRCs fixed)."""
    rng = np.random.default_rng(len(data))
    fills = {"zeros": lambda n: bytes(n), "0xff": lambda n: b"\xff" * n,
             "random": lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()}
    for n in (1, 2, 3, 4, 5, 8, 16, 64, 1000):
        for fill, make in fills.items():
            extra = make(n)
            yield f"{n} {fill} bytes after the file", data + extra
            for i, (kind, field, start, length) in enumerate(section_spans(data)):
                for where, at in (("end", start + length), ("start", start)):
                    out = bytearray(data[:at] + extra + data[at:])
                    struct.pack_into("<I", out, field, length + n)
                    yield (f"{n} {fill} bytes at the {where} of section {i} ({container.SECTION_KINDS[kind]})",
                           refresh_crcs(bytes(out)))


def prior_hash_cases(data: bytes):
    """The header's prior hash: every single-bit flip, and the hashes of other models (CRCs recomputed)."""
    from diffcode.damage import field_offsets, fixed_of
    from diffcode.families.per_pixel.checkpoint import Checkpoint
    from diffcode.families.weights import spec as weights_spec

    start = field_offsets(fixed_of(data))["decoder_hash"]
    for bit in range(128):
        yield f"prior hash bit {bit}", refresh_crcs(flip(data, 8 * start + bit))
    others = {"per-pixel decoder": bytes.fromhex(Checkpoint.load().hash[:32]),
              "weights MLP": bytes.fromhex(weights_spec.MLPCheckpoint.load().hash[:32])}
    for name, value in others.items():
        yield f"prior hash of the {name}", refresh_crcs(data[:start] + value + data[start + 16:])


def side_byte_cases(data: bytes, what: str, positions):
    """Side-information bytes at every value 0..255 (CRCs recomputed); positions: byte offsets in the side info."""
    _, _, side, length = section_spans(data)[0]
    for position in positions:
        if position >= length:
            continue
        for value in range(256):
            if value != data[side + position]:
                out = bytearray(data)
                out[side + position] = value
                yield f"{what} byte {position} = {value}", refresh_crcs(bytes(out))


def pyramid_cases(data: bytes, edits: int, seed: int, deep: bool):
    """(damage kind, cases) of one pyramid file, the cheap kinds first."""
    side_length = section_spans(data)[0][3]
    kinds = [("bit flip", bit_flips(data)), ("truncation", truncations(data)), ("appended bytes", appended_cases(data)),
             ("header field edges", header_edge_cases(data)), ("section size fields", section_size_cases(data)),
             ("prior hash", prior_hash_cases(data)), ("preset code", side_byte_cases(data, "preset code", [0])),
             ("adapt code", side_byte_cases(data, "adapt code", [1]))]
    if side_length > 2:
        kinds.append(("delta scales", side_byte_cases(data, "delta scale", range(2, side_length))))
    kinds.append(("random edits", random_edits(data, edits, seed)))
    if deep:
        kinds.append(("deep bit flip", deep_cases(data, deep_bits(data))))
    return kinds


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":")) / 1024


def _reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_measured(cases, image: np.ndarray, row: dict, failures: list) -> dict:
    """run_cases for pyramid files, with the worst case's CPU time and extra peak memory. A decode
    refused by the memory limit (an ImageError before any allocation) counts as rejected cleanly."""
    counts, outcomes = collections.Counter(), collections.Counter()
    worst_seconds, worst_cpu, worst_mib, slowest_case, worst_case = 0.0, 0.0, 0.0, "", ""
    t0 = time.process_time()
    for label, damaged in cases:
        measured = _reset_peak()
        before = _status_mib("VmRSS") if measured else 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        outcome = classify(damaged, image, None)
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        extra = _status_mib("VmHWM") - before if measured else float("nan")
        kind = outcome.kind
        if kind == OTHER and outcome.detail.startswith("ImageError: ") and "too large to decode" in outcome.detail:
            kind = REJECTED
        counts[kind] += 1
        outcomes[_short(outcome.detail)] += 1
        if kind not in (REJECTED, IDENTICAL):
            failures.append({**row, "case": label, "kind": kind, "detail": outcome.detail})
        if extra > worst_mib:
            worst_mib, worst_case = extra, label
        if seconds > worst_seconds:
            worst_seconds, slowest_case = seconds, label
        worst_cpu = max(worst_cpu, cpu)
    common = outcomes.most_common(1)
    return {**row, "cases": sum(counts.values()), "rejected_cleanly": counts[REJECTED],
            "decoded_identical": counts[IDENTICAL], "silent_failures": counts[SILENT], "tracebacks": counts[OTHER],
            "worst_case_seconds": worst_seconds, "slowest_case": slowest_case[:60], "worst_case_cpu_seconds": worst_cpu,
            "worst_case_extra_mib": worst_mib, "worst_case": worst_case[:60],
            "cpu_seconds": time.process_time() - t0,
            "most_common_outcome": f"{common[0][0]} ({common[0][1]})" if common else ""}


def pyramid_main(args, command: str) -> None:
    specs = [tuple(s.split(":")) for s in args.pyramid_files.split(",")] if args.pyramid_files else PYRAMID_FILES
    files = pyramid_files(specs, args.pyramid_steps)
    rows, failures = [], []
    name = args.name if args.name != "reliability" else "reliability-pyramid"
    sums = ("cases", "rejected_cleanly", "decoded_identical", "silent_failures", "tracebacks")

    def totals(done: bool) -> list[dict]:
        out = []
        for damage in dict.fromkeys(r["damage"] for r in rows):
            part = [r for r in rows if r["damage"] == damage]
            worst = max(part, key=lambda r: r["worst_case_extra_mib"])
            slowest = max(part, key=lambda r: r["worst_case_seconds"])
            out.append({"preset": "all", "image": "", "deltas": "", "file_bytes": None, "damage": damage,
                        **{c: sum(r[c] for r in part) for c in sums},
                        "worst_case_seconds": slowest["worst_case_seconds"],
                        "slowest_case": f"{slowest['preset']} {slowest['image']}: {slowest['slowest_case']}"[:60],
                        "worst_case_cpu_seconds": max(r["worst_case_cpu_seconds"] for r in part),
                        "worst_case_extra_mib": worst["worst_case_extra_mib"],
                        "worst_case": f"{worst['preset']} {worst['image']}: {worst['worst_case']}"[:60],
                        "cpu_seconds": sum(r["cpu_seconds"] for r in part), "most_common_outcome": ""})
        out.append({"preset": "all", "image": "", "deltas": "", "file_bytes": None,
                    "damage": "total" if done else "total so far (run not finished)",
                    **{c: sum(r[c] for r in rows) for c in sums},
                    "worst_case_seconds": max((r["worst_case_seconds"] for r in rows), default=0.0), "slowest_case": "",
                    "worst_case_cpu_seconds": max((r["worst_case_cpu_seconds"] for r in rows), default=0.0),
                    "worst_case_extra_mib": max((r["worst_case_extra_mib"] for r in rows), default=0.0),
                    "worst_case": "", "cpu_seconds": sum(r["cpu_seconds"] for r in rows), "most_common_outcome": ""})
        return out

    for preset, size, adapt, image, data in files:
        kept = "deltas" if len(container.unpack(data)[1]) == 3 else "none"
        row = {"preset": preset, "image": size, "deltas": adapt if adapt != "fit" else f"fit ({kept})",
               "file_bytes": len(data)}
        for damage, cases in pyramid_cases(data, args.edits, seed=len(data), deep=not args.no_deep):
            rows.append(run_measured(cases, image, {**row, "damage": damage}, failures))
            r = rows[-1]
            print(f"{preset:>8} {size:>6} {row['deltas']:<12} {damage:<20} {r['cases']:>6} cases: {r['rejected_cleanly']} "
                  f"rejected, {r['decoded_identical']} identical, {r['silent_failures']} silent, {r['tracebacks']} "
                  f"tracebacks; worst {r['worst_case_seconds']:.3f} s ({r['slowest_case']}), "
                  f"+{r['worst_case_extra_mib']:.1f} MiB ({r['worst_case']}) {r['most_common_outcome']}", flush=True)
            report.write_table(rows + totals(False), args.out_dir / name, command, PYRAMID_COLUMNS)
    report.write_table(rows + totals(True), args.out_dir / name, command, PYRAMID_COLUMNS)
    for f in failures:
        print("FAILURE", json.dumps({k: f[k] for k in ("preset", "image", "deltas", "damage", "case", "kind", "detail")}))
    print(f"wrote {args.out_dir / name}.md|csv: {sum(r['cases'] for r in rows)} cases, "
          f"{sum(r['silent_failures'] for r in rows)} silent, {sum(r['tracebacks'] for r in rows)} tracebacks")


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
    parser.add_argument("--family", default="per-pixel", choices=["per-pixel", "pyramid"],
                        help="per-pixel: the sweep above; pyramid: pyramid files (--pyramid-files)")
    parser.add_argument("--pyramid-files", default="",
                        help="preset:HxW:deltas,... (deltas: fit, or an adapt set: biases, heads, all); "
                             "default: every preset code, see PYRAMID_FILES")
    parser.add_argument("--pyramid-steps", type=int, default=3, help="fit steps of the pyramid files marked fit")
    parser.add_argument("--name", default="reliability", help="results file name (pyramid: reliability-pyramid)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.family == "pyramid":
        pyramid_main(args, "python experiments/reliability.py " + " ".join(sys.argv[1:]))
        return
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
