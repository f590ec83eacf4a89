"""What the coverage-guided fuzzer (experiments/fuzz.py, issue 24) found, and a short fuzz run in CI.

Each file in tests/fuzz_regressions/ is an input the fuzzer wrote to its findings (the bytes that
were decoded, CRCs valid), named after what it broke; each must now end in a one-line
CorruptFileError. `experiments/results/fuzz.md` has the run that found them. The short run
(`test_short_fuzz_run`, 10-25 s) fuzzes the container parser and every family's decode
from the committed seed corpus with a fixed libFuzzer seed and fails on any finding; it is skipped
where atheris is not installed (the `test` extra installs it on Linux x86-64 only, where it has
wheels).
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffcode import codec, metadata
from diffcode.errors import CorruptFileError, ImageError, UsageError
from diffcode.image import encode_image

ROOT = Path(__file__).resolve().parent.parent
FOUND = Path(__file__).resolve().parent / "fuzz_regressions"
FUZZ = ROOT / "experiments" / "fuzz.py"

# file -> what the error must say; before the fix each ended as noted when `diffcode decode` wrote the PNG
EXPECTED = {
    # ImageError "cannot write a mode P image as PNG ('latin-1' codec can't encode character ...); use .png"
    "metadata-text-keyword-not-latin1.dfc": "text keyword that is not Latin-1",
    # OverflowError: int too big to convert (dpi 3.8e180 in PNG's 32-bit pHYs), a traceback
    "metadata-dpi-out-of-range.dfc": "dpi",
}


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz", FUZZ)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_regression_file_is_listed():
    assert {p.name for p in FOUND.glob("*.dfc")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fuzz_finding_is_a_corrupt_file(name):
    data = (FOUND / name).read_bytes()
    with pytest.raises(CorruptFileError, match=EXPECTED[name]) as caught:
        image, color, kept = codec.load_file(data)
        encode_image(image, color, "PNG", kept)  # what `diffcode decode` does next
    assert "\n" not in str(caught.value)


def test_tiff_refuses_an_exif_it_cannot_hold():
    """Found by a probe next to the fuzzer: Pillow parses EXIF as a TIFF structure when it writes a
    TIFF, and raised SyntaxError, struct.error or TypeError (a traceback from `decode -o x.tif`)."""
    image = np.zeros((2, 3, 3), np.uint8)
    kept = metadata.Metadata(exif=b"junk")
    with pytest.raises(ImageError, match="EXIF .* a TIFF can hold; decode to .png"):
        encode_image(image, format="TIFF", metadata=kept)
    assert Image.open(io.BytesIO(encode_image(image, format="PNG", metadata=kept))).info["exif"].endswith(b"junk")


def test_metadata_that_no_output_could_write_is_not_stored():
    """The writer's side of the same checks: every file store writes must decode."""
    with pytest.raises(UsageError, match="dpi"):
        metadata.pack(metadata.Metadata(dpi=(float("inf"), 72.0)))
    with pytest.raises(UsageError, match="Latin-1"):
        metadata.pack(metadata.Metadata(text={"\u4e2d": "x"}))
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="TIFF", dpi=(1e12, 72.0))  # read back as nan
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        assert metadata.from_pil(im).dpi is None
    assert metadata.unpack(metadata.pack(metadata.Metadata(dpi=(0.0, metadata.MAX_DPI - 1)))).dpi is not None


def test_seed_corpus_decodes_to_its_pixels():
    """The fuzzer's seeds (experiments/fuzz_corpus/, every family, storage, colour mode, format
    version and metadata) pass its own checks, so a run starts from files that decode."""
    fuzz = _fuzz_module()
    seeds = fuzz.seed_files(with_golden=False)
    assert len(seeds) >= 20
    checker = fuzz.Checker(seeds)
    assert {p.name: checker.check(p.read_bytes()) for p in seeds} == {p.name: "identical" for p in seeds}
    for raw in sorted(fuzz.CORPUS.glob("*.rawmeta")):  # plain metadata bodies, compressed by `prepared`
        assert fuzz.compress_metadata(raw.read_bytes()) != raw.read_bytes()


@pytest.mark.fuzz
@pytest.mark.slow
def test_short_fuzz_run(tmp_path):
    """60,000 executions (libFuzzer seed 1) from the seed corpus: 10-25 s on one core here."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris; wheels for Linux x86-64)")
    work = tmp_path / "fuzz"
    result = subprocess.run([sys.executable, str(FUZZ), "round", "--work", str(work), "--no-golden",
                             "--cpu-minutes", "3", "--", "-seed=1", "-runs=60000"],
                            capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    findings = sorted(p.name for p in (work / "findings").glob("*.txt"))
    assert result.returncode == 0 and not findings, (findings, log[-3000:])
    assert "Done 60000 runs" in log, log[-3000:]
