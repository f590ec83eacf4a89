"""Coverage-guided fuzzer of .dfc parsing and every family's decode (issue 24), with atheris (libFuzzer).

    pip install atheris                                   # a manylinux wheel for CPython 3.11, no build
    python experiments/fuzz.py seeds                      # (re)make experiments/fuzz_corpus/ (~10 s)
    nohup nice -n 10 python experiments/fuzz.py run --cpu-minutes 32 --work runs/fuzz > runs/fuzz.log 2>&1 &
    python experiments/fuzz.py round --cpu-minutes 1 --no-golden -- -seed=1   # one short round (CI)
    python experiments/fuzz.py replay FILE...             # one line per file: how its decode ended
    python experiments/fuzz.py coverage runs/fuzz/corpus  # lines of diffcode/ the inputs reach (`coverage`)

What one execution does (`check`): the input is a .dfc file. Its header is read to pick the shared
model its family names (as `diffcode decode` does: `codec.model_of`, the shipped model), then
`codec.load_file` decodes it and `image.encode_image` writes the PNG the CLI would write, with the
metadata the file keeps (and, if it keeps any, the TIFF too, the other format that takes metadata,
except for mode P, which `decode` refuses to write as TIFF). The
execution passes if that ends in one of diffcode's own errors, CorruptFileError (ChecksumError is
one), DecoderMismatchError, or the ImageError `limits.check` raises for a size too large to decode
here, or if it decodes to the exact pixels of the seed whose pixel hash its header carries (or
the header names another image: see silent). Anything else is a finding:

    other    any other exception (a Python error, or another DiffcodeError)
    silent   a decode to other pixels than those of the seed whose pixel hash the header carries. A
             header whose pixel hash is no seed's names another image: a decode to it is the outcome
             "new image", not a finding (libFuzzer learns the 16-byte SHA-256 prefix that
             `codec.check_pixels` compares, and so writes valid files of new images: the first
             run's one "silent" finding was such a file, byte for byte what diffcode writes for
             those pixels)
    slow     more than --slow CPU seconds (default 2; a seed decodes in milliseconds)
    hang     more than --hang CPU seconds (default 20; interrupted by SIGPROF between bytecodes; a
             loop inside numba code is stopped by libFuzzer's -timeout instead, which ends the run)
    memory   a MemoryError or torch allocation failure (diffcode reports it as "not enough memory"):
             the process runs under RLIMIT_AS (--memory-gib, default 2 GiB of address space, the
             ~0.8 GiB of torch, numba and numpy included) with DIFFCODE_MEMORY_GIB=1, so the size
             check should refuse, before any allocation, every file whose decode would need more

A finding does not stop the run: its input is written to WORK/findings/KIND-SHA1.dfc with a
.txt of the error and traceback (at most 3 files per signature: kind, exception type and the
innermost diffcode frame), and the run goes on. `--stop-on-finding` raises instead, which
makes libFuzzer write its crash-* file and stop.

Mutations: libFuzzer's own (bit flips, byte insertions, copies, integers and the comparison
operands it saw). In three inputs of four (by the input's CRC-32) every section CRC and the header
CRC are then recomputed (`prepared`, `damage.refresh_crcs`), so that the mutation reaches the field
checks and the stream decoders instead of the checksums; the fourth is decoded raw (the parser's
own checks). Findings are written as the bytes that were decoded.

Seeds (`seeds`, written to experiments/fuzz_corpus/ and committed): small files of every family,
storage scheme, colour mode and format version, and two with a METADATA section of every item kind
(issue 23), made with the shipped models, and those two with their metadata body uncompressed
(*.rawmeta: inputs that `prepared` compresses, so that mutations reach the metadata items). `run`
also adds the golden files (tests/golden/*.dfc). The run's corpus grows in WORK/corpus.

`run` fuzzes in rounds of --round-minutes (1.5) CPU minutes, each a fresh process that loads the
corpus the earlier rounds grew (see `run` for why), with libFuzzer seeds --seed, --seed + 1, ...,
until the rounds' CPU time reaches --cpu-minutes; each round prints a SUMMARY line (executions,
outcomes, finding signatures, CPU seconds) and the run a TOTAL line, also in WORK/total.json.
libFuzzer's log lines (`#N pulse cov: C ft: F corp: ...`) give the coverage it measured: `cov`
counts instrumented Python edges (branches) of diffcode, `ft` its features (edges with hit
counts). Code compiled by numba runs as machine code and is not counted. Results of the first
runs: experiments/results/fuzz.md.
Other libFuzzer flags are passed through after `--` (e.g. `-- -seed=7 -max_len=8192`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
import traceback
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the machine is shared
os.environ.setdefault("DIFFCODE_MEMORY_GIB", "1")  # the size check refuses decodes the rlimit would not allow

CORPUS = ROOT / "experiments" / "fuzz_corpus"
GOLDEN = ROOT / "tests" / "golden"
MAX_PER_SIGNATURE = 3
KINDS = ("other", "silent", "slow", "hang", "memory")


# ----------------------------------------------------------------------------- seeds


def seed_image(height: int, width: int, seed: int = 0):
    from diffcode.damage import make_image

    return make_image(height, width, seed)


def to_version1(data: bytes) -> bytes:
    """An RGB format-2 file as format 1 wrote it: the same file without the color_mode byte."""
    from diffcode.damage import refresh_crcs
    from diffcode.storage import container

    header, _ = container.unpack(data)
    if header.color_mode != "RGB":
        raise ValueError("format 1 has no color mode")
    colour = container._FIXED.size - container._FIXED_V1.size + 8  # offset 9, after error_model
    out = bytearray(data[:colour] + data[colour + 1:])
    out[len(container.MAGIC)] = 1
    return refresh_crcs(bytes(out))


def seed_recipes():
    """(name, family, fit options, height, width, colour mode [+metadata]) of every seed."""
    return [
        ("per-pixel-dither-5x4", "per-pixel", {"storage": "dither", "steps": 4}, 5, 4, "RGB"),
        ("per-pixel-randseed-5x4", "per-pixel", {"storage": "randseed", "steps": 4}, 5, 4, "RGB"),
        ("per-pixel-randseed-1x1", "per-pixel", {"storage": "randseed", "steps": 2}, 1, 1, "RGB"),
        ("per-pixel-dither-3x6-L", "per-pixel", {"storage": "dither", "steps": 4}, 3, 6, "L"),
        ("weights-tiny-5x4", "weights", {"preset": "tiny", "steps": 4}, 5, 4, "RGB"),
        ("weights-tiny-4x4-P", "weights", {"preset": "tiny", "steps": 3}, 4, 4, "P"),
        ("pyramid-instant-5x4", "pyramid", {"preset": "instant"}, 5, 4, "RGB"),
        ("pyramid-instant-1x1", "pyramid", {"preset": "instant"}, 1, 1, "RGB"),
        ("pyramid-fast-16x12", "pyramid", {"preset": "fast", "steps": 3}, 16, 12, "RGB"),
        ("pyramid-instant-6x3-1", "pyramid", {"preset": "instant"}, 6, 3, "1"),
        ("pyramid-instant-7x5-P", "pyramid", {"preset": "instant"}, 7, 5, "P"),
        ("pyramid-instant-4x9-L", "pyramid", {"preset": "instant"}, 4, 9, "L"),
        ("pyramid-instant-5x4-meta", "pyramid", {"preset": "instant"}, 5, 4, "RGB+metadata"),
        ("per-pixel-dither-4x3-P-meta", "per-pixel", {"storage": "dither", "steps": 4}, 4, 3, "P+metadata"),
        ("classic-lzma-6x5", "classic", {"method": "lzma"}, 6, 5, "RGB"),  # issue 26's family
        ("classic-stored-4x3", "classic", {"method": "stored"}, 4, 3, "RGB"),
        ("classic-lzma-5x7-L", "classic", {"method": "lzma"}, 5, 7, "L"),
        ("classic-lzma-6x6-P", "classic", {"method": "lzma"}, 6, 6, "P"),
        ("classic-stored-3x4-1", "classic", {"method": "stored"}, 3, 4, "1"),
        ("classic-lzma-17x17", "classic", {"method": "lzma"}, 17, 17, "RGB"),  # > 256 colours: RGB planes
    ]


def coloured(image, mode: str, seed: int):
    """The image's pixels made to fit a colour mode, and that mode (with a short palette for P)."""
    import numpy as np

    from diffcode.image import ColorMode

    if mode == "RGB":
        return image, ColorMode()
    if mode == "L":
        gray = image[..., :1].repeat(3, axis=-1)
        return gray, ColorMode("L")
    if mode == "1":
        bw = np.where(image[..., :1] > 128, 255, 0).astype(np.uint8).repeat(3, axis=-1)
        return bw, ColorMode("1")
    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    index = rng.integers(0, len(palette), image.shape[:2])
    return palette[index], ColorMode("P", palette.tobytes())


def seed_metadata():
    """Metadata of every item kind (issue 23: ICC, EXIF, XMP, text, dpi), small and well formed."""
    from PIL import Image

    from diffcode.metadata import Metadata

    exif = Image.Exif()
    exif[0x0110] = "diffcode"  # Model
    exif[0x0112] = 1  # Orientation
    return Metadata(icc=bytes(range(40)), exif=exif.tobytes(), xmp=b"<x:xmpmeta>fuzz</x:xmpmeta>",
                    text={"Comment": "a seed", "Title": "\u00e9t\u00e9 \u4e2d"}, dpi=(72.0, 300.0))


def make_seeds(out: Path) -> list[Path]:
    import numpy as np

    from diffcode import api, codec, families

    out.mkdir(parents=True, exist_ok=True)
    models, written = {}, []
    for i, (name, family, options, h, w, mode) in enumerate(seed_recipes()):
        model = models.setdefault(family, families.get(family).load_model())
        mode, _, extra = mode.partition("+")
        image, color = coloured(seed_image(h, w, i), mode, i)
        fit = api.fit(image, variant=family, model=model, **options)
        fit.color = color
        data, _ = codec.store(fit, model, **({"metadata": seed_metadata()} if extra == "metadata" else {}))
        image_back, color_back = codec.load_image(data, model)
        assert np.array_equal(image_back, image) and color_back.mode == mode, name
        files = {f"{name}-v2.dfc": data}
        if mode == "RGB" and not extra:
            v1 = to_version1(data)
            assert np.array_equal(codec.load(v1, model), image), name
            files[f"{name}-v1.dfc"] = v1
        if extra == "metadata":
            raw = raw_metadata(data)
            assert prepared(raw) == data or zlib.crc32(raw) % 4 == 0, name
            files[f"{name}-v2.rawmeta"] = raw
        for file, content in files.items():
            (out / file).write_bytes(content)
            written.append(out / file)
            print(f"{out / file}: {len(content)} bytes")
    return written


# ----------------------------------------------------------------------------- one execution


class Finding(Exception):
    def __init__(self, kind: str, detail: str, signature: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.signature = kind, detail, signature


class Checker:
    """Decodes inputs as `diffcode decode` does and says whether each ended acceptably."""

    def __init__(self, seed_files: list[Path], slow: float = 2.0, hang: float = 20.0):
        import numpy as np

        from diffcode import codec, families

        self.models = {name: families.get(name).load_model() for name in families.names()}
        self.known = {}  # the pixel hash a seed's header carries -> (shape, sha256 of its pixels)
        for path in seed_files:
            data = path.read_bytes()
            image = codec.load(data, self._model(data))
            self.known[self._pixel_hash(data)] = self._key(np.asarray(image))
        self.slow, self.hang = slow, hang

    @staticmethod
    def _pixel_hash(data: bytes) -> bytes:
        from diffcode.storage import container

        return container.unpack_header(data)[0].pixel_hash

    @staticmethod
    def _key(image) -> tuple:
        return image.shape, str(image.dtype), hashlib.sha256(image.tobytes()).hexdigest()

    def _model(self, data: bytes):
        """The model the CLI would load for this file: the shipped one of the family its header names."""
        from diffcode import codec

        family, _ = codec.model_of(data)  # raises CorruptFileError on a bad header, as the CLI does
        return self.models[family.name]

    def decode(self, data: bytes):
        """What `diffcode decode` does with a file: decode it, then write the image with the metadata
        the file keeps as PNG (the default output) and, if it keeps any, as TIFF (its other writer)."""
        from diffcode import codec
        from diffcode.image import encode_image

        if not hasattr(codec, "load_file"):  # before issue 23: no metadata
            image, color = codec.load_image(data, self._model(data))
            encode_image(image, color)
            return image
        image, color, metadata = codec.load_file(data, self._model(data))
        encode_image(image, color, "PNG", metadata)  # read back and compared
        if metadata and color.mode != "P":  # TIFF does not hold a palette exactly: decode refuses .tif for P
            from diffcode.errors import ImageError

            try:
                encode_image(image, color, "TIFF", metadata)
            except ImageError as exc:  # an EXIF a TIFF cannot hold: decode refuses .tif, .png keeps it
                if "EXIF" not in str(exc):
                    raise
        return image

    def check(self, data: bytes) -> str:
        """'rejected', 'refused', 'identical' or 'new image'; raises Finding for anything else."""
        import numpy as np

        from diffcode.damage import Hang, cpu_time_limit
        from diffcode.errors import CorruptFileError, DecoderMismatchError, DiffcodeError, ImageError

        start = time.process_time()
        try:
            with cpu_time_limit(self.hang):
                image = self.decode(data)
            outcome = "identical"
        except (CorruptFileError, DecoderMismatchError):
            outcome = "rejected"
        except ImageError as exc:
            if "too large to decode" not in str(exc):
                raise Finding("other", _describe(exc), _signature("other", exc)) from exc
            outcome = "refused"
        except Hang as exc:
            raise Finding("hang", _describe(exc), _signature("hang", exc)) from exc
        except MemoryError as exc:
            raise Finding("memory", _describe(exc), _signature("memory", exc)) from exc
        except DiffcodeError as exc:
            kind = "memory" if "not enough memory" in str(exc) else "other"
            raise Finding(kind, _describe(exc), _signature(kind, exc)) from exc
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            raise Finding("other", _describe(exc), _signature("other", exc)) from exc
        seconds = time.process_time() - start
        if outcome == "identical":
            claimed = self._pixel_hash(data)
            if claimed not in self.known:  # the header names another image: libFuzzer's comparison
                outcome = "new image"  # tracing can learn the SHA-256 prefix the decode compares
            elif self.known[claimed][1:] == self._key(np.asarray(image))[1:]:
                # the seed's pixel bytes in another shape: the pixel hash covers the bytes, the header's CRC the
                # size, so a header whose size was changed and its CRC recomputed is a valid file of another
                # image (found by the fuzzer: a 12-byte gray image of zeros declared 4x3 instead of its 3x4)
                outcome = "new image" if self.known[claimed][0] != image.shape else outcome
            else:
                raise Finding("silent", f"decoded to other pixels than the seed whose hash the header carries, "
                                        f"shape {image.shape}", "silent")
        if seconds > self.slow:
            raise Finding("slow", f"{outcome} after {seconds:.1f} CPU seconds", f"slow {outcome}")
        return outcome


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}\n" + "".join(traceback.format_exception(exc)[-12:])


def _signature(kind: str, exc: BaseException) -> str:
    """kind, exception type and the innermost frame inside diffcode/ (where the bug is)."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/diffcode/" in frame.filename:
            where = f"{Path(frame.filename).name}:{frame.name}:{frame.lineno}"
    return f"{kind} {type(exc).__name__} {where}"


# ----------------------------------------------------------------------------- the fuzz loop


class Run:
    """Counts executions and outcomes, writes findings, stops after the CPU budget."""

    def __init__(self, checker: Checker, work: Path, cpu_seconds: float, stop_on_finding: bool):
        self.checker, self.work, self.cpu_seconds = checker, work, cpu_seconds
        self.stop_on_finding = stop_on_finding
        self.findings_dir = work / "findings"
        self.findings_dir.mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}
        self.signatures: dict[str, int] = {}
        self.execs = 0
        self.cpu_start = time.process_time()
        self.wall_start = time.time()
        self.next_report = 60.0

    def one(self, data: bytes) -> None:
        self.execs += 1
        data = prepared(data)
        try:
            outcome = self.checker.check(data)
        except Finding as finding:
            outcome = finding.kind
            self._record(data, finding)
            if self.stop_on_finding:
                raise
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        cpu = time.process_time() - self.cpu_start
        if cpu >= self.next_report or cpu >= self.cpu_seconds:
            self.next_report += 60.0
            self._summary(final=cpu >= self.cpu_seconds)
            if cpu >= self.cpu_seconds:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)

    def _record(self, data: bytes, finding: Finding) -> None:
        seen = self.signatures.get(finding.signature, 0)
        self.signatures[finding.signature] = seen + 1
        if seen == 0:
            print(f"FINDING {finding.signature}: {finding.detail.splitlines()[0]}", flush=True)
        if seen < MAX_PER_SIGNATURE:
            name = f"{finding.kind}-{hashlib.sha1(data).hexdigest()[:12]}"
            (self.findings_dir / f"{name}.dfc").write_bytes(data)
            (self.findings_dir / f"{name}.txt").write_text(f"{finding.signature}\n{finding.detail}\n")

    def _summary(self, final: bool) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        summary = {"final": final, "execs": self.execs, "cpu_seconds": round(time.process_time() - self.cpu_start, 1),
                   "wall_seconds": round(time.time() - self.wall_start, 1), "outcomes": self.counts,
                   "signatures": self.signatures, "max_rss_mib": round(usage.ru_maxrss / 1024),
                   "rss_mib": round(int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20))}
        print("SUMMARY " + json.dumps(summary), flush=True)
        (self.work / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


def prepared(data: bytes) -> bytes:
    """The file an input stands for: in three inputs of four (chosen by the input's own CRC-32, so
    that the same input always means the same file) a METADATA section whose body is not a zlib
    stream is compressed (`compress_metadata`) and every section CRC and the header CRC are
    recomputed, so that libFuzzer's mutations reach the field checks, the stream decoders and the
    metadata items instead of the checksums; the fourth is decoded as it is (the parser's own checks)."""
    from diffcode.damage import refresh_crcs

    if zlib.crc32(data) % 4 == 0:
        return data
    try:
        return refresh_crcs(compress_metadata(data))
    except Exception:  # noqa: BLE001 - an input the helpers cannot parse stays raw
        return data


def compress_metadata(data: bytes) -> bytes:
    """`data` with the body of each METADATA section (after its version byte) zlib-compressed if it
    is not already a zlib stream, and the section table's lengths updated; CRCs are left as they are.
    zlib's own Adler-32 would stop nearly every mutation of a compressed body, so the fuzzer mutates
    plain bodies (the *.rawmeta seeds) and this compresses them."""
    from diffcode.damage import fixed_of, section_table
    from diffcode.storage import container

    kind_code = getattr(container, "METADATA", None)
    parsed = section_table(data)
    if kind_code is None or parsed is None:
        return data
    end, table = parsed
    fixed, entry = fixed_of(data).size, container._SECTION
    head, payloads, offset = bytearray(data[:end + 4]), [], end + 4
    for i, (kind, length, crc) in enumerate(table):
        payload = data[offset:offset + length]
        offset += length
        if kind == kind_code and payload[:1] == b"\x01" and len(payload) == length:
            try:
                zlib.decompressobj().decompress(payload[1:], 1 << 16)
            except zlib.error:
                payload = payload[:1] + zlib.compress(payload[1:], 9)
                entry.pack_into(head, fixed + i * entry.size, kind, len(payload), crc)
        payloads.append(payload)
    return bytes(head) + b"".join(payloads) + data[offset:]


def raw_metadata(data: bytes) -> bytes:
    """A file's METADATA body uncompressed (the *.rawmeta seeds: what `compress_metadata` undoes)."""
    from diffcode.damage import refresh_crcs
    from diffcode.storage import container

    header, sections = container.unpack(data)
    table = container.unpack_header(data)[1]
    out = bytearray(data[:container.unpack_header(data)[2]])
    payloads = []
    for i, ((kind, payload), _) in enumerate(zip(sections, table)):
        if kind == getattr(container, "METADATA", None):
            payload = payload[:1] + zlib.decompress(payload[1:])
            container._SECTION.pack_into(out, container._FIXED.size + i * container._SECTION.size, kind,
                                         len(payload), 0)
        payloads.append(payload)
    return refresh_crcs(bytes(out) + b"".join(payloads))


def limit_memory(gib: float) -> None:
    limit = int(gib * (1 << 30))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard if hard != resource.RLIM_INFINITY else limit))


def instrumented_imports() -> None:
    """Import diffcode's decode path (every family, storage scheme and the CLI's image writing) and
    add atheris's bytecode instrumentation to its Python functions, so that their branches guide
    the fuzzer. Functions compiled by numba keep their own bytecode (numba compiles from it and
    cannot compile atheris's calls): they run as machine code and are not counted."""
    import gc
    import types

    import atheris

    import diffcode.cauchy  # noqa: F401 - imported on use by the families
    import diffcode.codec  # noqa: F401
    import diffcode.damage  # noqa: F401
    import diffcode.image  # noqa: F401
    from diffcode import families
    from diffcode.storage import dither, randseed, rans, schemes  # noqa: F401

    for name in families.names():
        families.get(name)
    import diffcode.families.per_pixel.fixed_backend  # noqa: F401
    import diffcode.families.pyramid.exact  # noqa: F401
    import diffcode.families.weights.exact  # noqa: F401

    from numba.core.dispatcher import Dispatcher

    from diffcode import kernels

    jitted = {id(obj.py_func) for obj in gc.get_objects() if isinstance(obj, Dispatcher)}
    jitted |= {id(function) for function in kernels.python_functions()}
    count = 0
    for obj in gc.get_objects():
        if (isinstance(obj, types.FunctionType) and id(obj) not in jitted
                and str(getattr(obj, "__module__", "")).startswith("diffcode")):
            atheris.instrument_func(obj)
            count += 1
    print(f"instrumented {count} diffcode functions ({len(jitted)} numba functions left as compiled)", flush=True)


def seed_files(with_golden: bool = True) -> list[Path]:
    files = sorted(CORPUS.glob("*.dfc"))
    return files + (sorted(GOLDEN.glob("*.dfc")) if with_golden else [])


def fuzz_round(args, libfuzzer_args: list[str]) -> None:
    """One round: a fresh process that fuzzes for --cpu-minutes, then exits (os._exit) after a summary."""
    import atheris

    instrumented_imports()
    import torch

    torch.set_num_threads(1)
    work = args.work
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = seed_files(not args.no_golden)
    if not seeds:
        sys.exit(f"no seeds in {CORPUS}: run `python experiments/fuzz.py seeds` first")
    for path in seeds + sorted(CORPUS.glob("*.rawmeta")):
        if not (corpus / path.name).exists():
            shutil.copyfile(path, corpus / path.name)
    checker = Checker(seeds, slow=args.slow, hang=args.hang)
    for path in seeds:  # every seed must pass (and this compiles numba's functions before the limit)
        assert checker.check(path.read_bytes()) == "identical", path
    limit_memory(args.memory_gib)
    state = Run(checker, work, 60.0 * args.cpu_minutes, args.stop_on_finding)
    print(f"fuzzing: {len(seeds)} seeds, corpus {corpus}, findings {state.findings_dir}, "
          f"{args.cpu_minutes} CPU minutes, RLIMIT_AS {args.memory_gib} GiB", flush=True)
    argv = [sys.argv[0], str(corpus), f"-artifact_prefix={work}/", "-timeout=300", "-rss_limit_mb=4096",
            "-max_len=8192", "-print_final_stats=1", *libfuzzer_args]
    atheris.Setup(argv, state.one)
    atheris.Fuzz()


def run(args, libfuzzer_args: list[str]) -> int:
    """Rounds of --round-minutes in fresh processes (the corpus carries over) until the rounds' CPU
    time reaches --cpu-minutes. Fresh processes because the fuzzing process grows by about 4 KB an
    execution (RSS +455 MiB over 102,003 executions; the same decodes in a plain loop, without
    atheris, do not grow), which would reach RLIMIT_AS within minutes."""
    import subprocess

    args.work.mkdir(parents=True, exist_ok=True)
    total = {"rounds": 0, "execs": 0, "cpu_seconds": 0.0, "outcomes": {}, "signatures": {}, "exit_codes": []}
    start = time.time()
    while total["cpu_seconds"] < 60.0 * args.cpu_minutes:
        minutes = min(args.round_minutes, args.cpu_minutes - total["cpu_seconds"] / 60.0)
        seed = args.seed + total["rounds"]
        summary_file = args.work / "summary.json"
        summary_file.unlink(missing_ok=True)
        command = [sys.executable, __file__, "round", "--work", str(args.work), "--cpu-minutes", f"{minutes:.3f}",
                   "--slow", str(args.slow), "--hang", str(args.hang), "--memory-gib", str(args.memory_gib),
                   *(["--no-golden"] if args.no_golden else []), *(["--stop-on-finding"] if args.stop_on_finding else []),
                   "--", f"-seed={seed}", *libfuzzer_args]
        print(f"round {total['rounds']}: {' '.join(command)}", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        code = subprocess.call(command)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        total["cpu_seconds"] += (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        total["rounds"] += 1
        total["exit_codes"].append(code)
        if summary_file.exists():
            summary = json.loads(summary_file.read_text())
            total["execs"] += summary["execs"]
            for key in ("outcomes", "signatures"):
                for name, n in summary[key].items():
                    total[key][name] = total[key].get(name, 0) + n
        if code != 0 and (args.stop_on_finding or not summary_file.exists()):
            print(f"round {total['rounds'] - 1} ended with exit code {code}: stopping", flush=True)
            break
    total["cpu_seconds"] = round(total["cpu_seconds"], 1)
    total["wall_seconds"] = round(time.time() - start, 1)
    total["corpus_files"] = len(list((args.work / "corpus").iterdir()))
    print("TOTAL " + json.dumps(total), flush=True)
    (args.work / "total.json").write_text(json.dumps(total, indent=1) + "\n")
    return 0 if not total["signatures"] and all(c == 0 for c in total["exit_codes"]) else 1


# ----------------------------------------------------------------------------- replay and coverage


def replay(paths: list[Path]) -> int:
    checker = Checker(seed_files())
    bad = 0
    for path in paths:
        try:
            outcome = checker.check(path.read_bytes())
        except Finding as finding:
            bad += 1
            outcome = f"FINDING {finding.signature}: {finding.detail.splitlines()[0]}"
        print(f"{path}: {outcome}")
    return 1 if bad else 0


def coverage_of(folders: list[Path]) -> None:
    """Replay inputs as the fuzzer decodes them (`prepared`) under `coverage`, and print the lines of
    each diffcode module the decodes imported. Lines inside numba-compiled functions count as missed
    unless NUMBA_DISABLE_JIT=1 (then they run as Python, slowly)."""
    import coverage

    cov = coverage.Coverage(source=[str(ROOT / "diffcode")], data_file=None)
    cov.start()
    checker = Checker(seed_files())
    outcomes: dict[str, int] = {}
    paths = [p for folder in folders for p in (sorted(folder.iterdir()) if folder.is_dir() else [folder])]
    for path in paths:
        try:
            outcome = checker.check(prepared(path.read_bytes()))
        except Finding as finding:
            outcome = finding.kind
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    cov.stop()
    print(f"{len(paths)} inputs: {outcomes}")
    total = covered = 0
    for file in sorted(cov.get_data().measured_files()):
        _, statements, _, missing, _ = cov.analysis2(file)
        total += len(statements)
        covered += len(statements) - len(missing)
        print(f"  {os.path.relpath(file, ROOT / 'diffcode')}: {len(statements) - len(missing)}/{len(statements)}")
    print(f"lines covered in the {len(cov.get_data().measured_files())} diffcode modules the decodes imported: "
          f"{covered}/{total} ({100.0 * covered / max(total, 1):.1f} %)")
    total = covered = 0
    for file in sorted(cov.get_data().measured_files()):
        rel = os.path.relpath(file, ROOT / "diffcode")
        if rel in DECODE_PATH or rel.startswith("storage/"):
            _, statements, _, missing, _ = cov.analysis2(file)
            total += len(statements)
            covered += len(statements) - len(missing)
    print(f"lines covered in the decode path's modules (DECODE_PATH and storage/): {covered}/{total} "
          f"({100.0 * covered / max(total, 1):.1f} %)")


DECODE_PATH = {  # modules whose code a decode runs (plus storage/*); the rest of what it imports is fitting code
    "codec.py", "metadata.py", "image.py", "limits.py", "cauchy.py", "fixedpoint.py", "families/__init__.py",
    "families/common.py", "families/per_pixel/__init__.py", "families/per_pixel/exact.py",
    "families/per_pixel/fixed_backend.py", "families/per_pixel/encodings.py", "families/per_pixel/checkpoint.py",
    "families/weights/__init__.py", "families/weights/exact.py", "families/weights/spec.py",
    "families/pyramid/__init__.py", "families/pyramid/exact.py", "families/pyramid/coding.py",
    "families/pyramid/entropy.py", "families/pyramid/layout.py", "families/pyramid/network.py",
    "families/pyramid/deltas.py", "families/pyramid/prior.py", "families/pyramid/spec.py",
}


def main() -> int:
    argv = sys.argv[1:]
    libfuzzer_args = []
    if "--" in argv:
        argv, libfuzzer_args = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seeds", help="make the seed corpus")
    p.add_argument("--out", type=Path, default=CORPUS)
    for name in ("run", "round"):
        p = sub.add_parser(name, help="fuzz (atheris) in rounds of fresh processes; libFuzzer flags after --"
                           if name == "run" else "one round in this process (what run starts)")
        p.add_argument("--work", type=Path, default=ROOT / "runs" / "fuzz")
        p.add_argument("--cpu-minutes", type=float, default=32.0, help="CPU time of the whole run (or the round)")
        p.add_argument("--slow", type=float, default=2.0, help="CPU seconds above which an input is a finding")
        p.add_argument("--hang", type=float, default=20.0, help="CPU seconds after which a decode is interrupted")
        p.add_argument("--memory-gib", type=float, default=2.0, help="RLIMIT_AS of the fuzzing process")
        p.add_argument("--no-golden", action="store_true", help="seed with experiments/fuzz_corpus/ only")
        p.add_argument("--stop-on-finding", action="store_true")
        if name == "run":
            p.add_argument("--round-minutes", type=float, default=1.5, help="CPU minutes of each fresh process")
            p.add_argument("--seed", type=int, default=1, help="libFuzzer -seed of the first round (+1 each round)")
    p = sub.add_parser("replay", help="decode files through the fuzzer's checks")
    p.add_argument("files", type=Path, nargs="+")
    p = sub.add_parser("coverage", help="line coverage of the decode path over a corpus")
    p.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "seeds":
        make_seeds(args.out)
    elif args.command == "run":
        return run(args, libfuzzer_args)
    elif args.command == "round":
        fuzz_round(args, libfuzzer_args)
    elif args.command == "replay":
        return replay(args.files)
    else:
        coverage_of(args.folders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
