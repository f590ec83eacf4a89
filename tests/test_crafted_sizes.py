"""A header that declares a larger image than its file holds is refused from the sizes, before any
allocation (issue 24): each family's `check_sizes`, measured in a fresh process.

Before these checks a 19,755-byte weights file of a 32x32 image declaring 2000x2000 ran 20 s in
2.6 GB before the rANS decoder found it corrupt (4000x4000: 45 s, 10.2 GB). The child's peak resident
memory (VmHWM) is asserted, not its time (experiments/crafted_sizes.py measures both).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diffcode import codec, families, limits
from diffcode.errors import CorruptFileError
from diffcode.storage import container

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
PEAK_MIB = 200  # importing numpy, numba and diffcode's decode path takes about 105 MiB

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from diffcode import codec
from diffcode.errors import DiffcodeError
try:
    codec.load_image(sys.stdin.buffer.read())
    outcome = "decoded"
except DiffcodeError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
except BaseException as exc:
    outcome = f"other {type(exc).__name__}: {exc}"
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"outcome": outcome, "peak_mib": peak, "torch": "torch" in sys.modules}))
"""


def decode_in_child(data: bytes, cap_gib: float | None = None) -> dict:
    """How `diffcode decode` would end on `data`, in a fresh process limited to 4 GiB of address space,
    under the default memory cap (or `cap_gib`) whatever this machine has available."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
    env = {k: v for k, v in os.environ.items() if k not in (limits.CAP_ENV, limits.ENV)}
    env[limits.ENV] = "1000"
    if cap_gib is not None:
        env[limits.CAP_ENV] = str(cap_gib)
    proc = subprocess.run([sys.executable, "-c", limit + CHILD, str(ROOT)], input=data, capture_output=True,
                          timeout=600, check=False, env=env)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def with_size(data: bytes, height: int, width: int) -> bytes:
    header, sections = container.unpack(data)
    return container.pack(container.Header(**{**header.__dict__, "height": height, "width": width}), sections)


@pytest.fixture(scope="module")
def weights_32x32() -> bytes:
    """The case of the issue: a 32x32 image in the weights family's default preset (3 fit steps)."""
    from diffcode import api
    from diffcode.damage import make_image

    data, _ = api.store(api.fit(make_image(32, 32), variant="weights", steps=3))
    assert len(data) > 15_000  # the default preset's weights, most of the file
    return data


pytestmark = [pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's"),
              pytest.mark.slow]  # a fresh process a case


@pytest.mark.parametrize("side", [2000, 4000])
def test_crafted_weights_file_is_refused_from_its_sizes(weights_32x32, side):
    result = decode_in_child(with_size(weights_32x32, side, side))
    assert result["outcome"].startswith("CorruptFileError: the error table has"), result
    assert f"a {side}x{side} image has {3 * side * side}" in result["outcome"]
    assert result["peak_mib"] < PEAK_MIB and not result["torch"], result


@pytest.mark.parametrize("name, side", [("per-pixel-dither-v2-33x17.dfc", 2000), ("per-pixel-randseed-v2-33x17.dfc", 4000),
                                        ("weights-tiny-v2-33x17.dfc", 2000), ("pyramid-fast-v2-33x17.dfc", 30000),
                                        ("pyramid-instant-v2-33x17.dfc", 65535)])
def test_crafted_golden_files_are_refused_from_their_sizes(name, side):
    """Every family: a golden file's header set to side x side. A pyramid subpixel is only known to
    cost 2.2e-5 bits, so its bound refuses far larger sizes (see test_pyramid_sweep_worst_cases)."""
    result = decode_in_child(with_size((GOLDEN / name).read_bytes(), side, side))
    assert result["outcome"].startswith("CorruptFileError: the error table has"), result
    assert result["peak_mib"] < PEAK_MIB and not result["torch"], result


def test_check_sizes_refuses_no_valid_file():
    """Every golden file passes its family's check_sizes, with a wide margin where the bound is tight
    (Cauchy: real subpixels cost about 5 bits, the bound 0.0135)."""
    from diffcode import cauchy
    from diffcode.storage import rans

    for path in sorted(GOLDEN.glob("*.dfc")):
        header, sections = container.unpack(path.read_bytes())
        sections = [s for s in sections if s[0] != container.PALETTE]
        families.get(header.variant).check_sizes(header, sections)
        if header.error_model == "cauchy":
            assert 3 * header.height * header.width * 50 < rans.max_symbols(len(sections[-1][1]),
                                                                            cauchy.max_frequency()), path.name


def test_a_missing_or_misplaced_error_table_is_corrupt():
    data = (GOLDEN / "weights-tiny-v2-16x16.dfc").read_bytes()
    header, sections = container.unpack(data)
    for bad in (sections[:-1], sections[::-1], sections + sections[-1:]):
        with pytest.raises(CorruptFileError, match="unexpected section layout"):
            codec.load(container.pack(header, bad))


@pytest.mark.parametrize("height, width", [(4000, 4000), (65535, 17), (33, 65535)])
def test_pyramid_sweep_worst_cases(height, width):
    """Sizes a pyramid file's bound lets through (its subpixels are only known to cost 2.2e-5 bits):
    the decoder runs, decodes level by level from the coarsest and runs out of words within the first
    levels, at the memory of any small decode (168-170 MiB measured, VmHWM of the whole process:
    experiments/results/reliability-pyramid.md has the sweep's worst cases)."""
    result = decode_in_child(with_size((GOLDEN / "pyramid-fast-v2-33x17.dfc").read_bytes(), height, width))
    assert result["outcome"].startswith("CorruptFileError: error table truncated"), result
    assert result["peak_mib"] < 250 and not result["torch"], result


def test_pyramid_file_declaring_more_than_the_cap_is_refused_before_decoding():
    """Since the decode holds only the image's bytes and a bounded amount of work (issue 27), no size a small
    file can declare needs more than the default cap: a lower cap shows the same refusal."""
    result = decode_in_child(with_size((GOLDEN / "pyramid-instant-v2-33x17.dfc").read_bytes(), 8000, 8000), cap_gib=1)
    assert result["outcome"].startswith("ImageError: a 8000x8000 image is too large to decode here: it needs "
                                        "about 1.9 GiB, above the memory cap of 1 GiB"), result
    assert result["peak_mib"] < PEAK_MIB and not result["torch"], result


@pytest.fixture(scope="module")
def instant_33x17() -> bytes:
    """The sweep's file whose cases were the slowest and the most memory-hungry (experiments/reliability.py
    --family pyramid: make_image(33, 17), instant preset, nothing fitted), made with the prior the sweep ran
    with: the first shipped one."""
    from diffcode import api
    from diffcode.damage import make_image
    from diffcode.families.pyramid import prior

    first = prior.shipped("ea6396d18181957995497ccdc0bf60c2e583382569322f1570e8b8161a3ce93a")
    data, _ = api.store(api.fit(make_image(33, 17), variant="pyramid", preset="instant", model=first), model=first)
    assert len(data) == 1558
    return data


@pytest.mark.parametrize("case", ["height = 65534", "deep flip bit 7719", "deep flip bit 86"])
def test_pyramid_sweep_worst_cases_stay_small(instant_33x17, case):
    """The sweep's worst cases (experiments/results/reliability-pyramid.md): rejected, at the memory of
    any small decode."""
    import struct

    from diffcode.damage import field_offsets, fixed_of, flip, refresh_crcs

    if case.startswith("height"):
        out = bytearray(instant_33x17)
        struct.pack_into("<H", out, field_offsets(fixed_of(instant_33x17))["height"], 65534)
        damaged = refresh_crcs(bytes(out))
    else:
        damaged = refresh_crcs(flip(instant_33x17, int(case.split()[-1])))
    result = decode_in_child(damaged)
    assert result["outcome"].startswith(("CorruptFileError", "ChecksumError")), result
    assert result["peak_mib"] < 250 and not result["torch"], result
