"""Every registered model family passes the same checks (parametrized over `diffcode.families`).

A new family is registered, gets golden recipes (`Family.golden`), and passes this file unchanged:
round trips at 1x1, 1xN, Nx1 and odd sizes; the encoder decodes its own file; the same pixels and
bytes with 1 and 2 torch threads; real bytes within a stated margin of the theoretical bits, section
kind by section kind; every bit flip and truncation of a small file rejected; golden files.
Fits are tiny (the first golden recipe, STEPS steps), so the whole file stays fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffcode import api, codec, families, parallel
from diffcode.errors import ChecksumError
from diffcode.storage import container
from diffcode.damage import REJECTED, raw_cases, sweep

FAMILIES = families.names()
STEPS = 3
SIZES = ((1, 1), (1, 7), (6, 1), (5, 3), (9, 13))
# real bytes of a section kind <= (1 + RELATIVE) x its theoretical bytes + SLACK_BYTES per section
# (rANS flushes its lanes' states, mixed-radix streams round up to whole bytes, ...)
RELATIVE, SLACK_BYTES = 0.05, 16


def image_of(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth ramp with noise (some structure, some entropy)."""
    rng = np.random.default_rng(1000 * height + width + seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 9 * y, 90 + 7 * x, 150 - 5 * (x + y)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def quick_fit(family: str, image: np.ndarray, model):
    label, options = next(iter(families.get(family).golden.items()))
    fits = families.get(family).fit_steps(options.get("preset", families.get(family).presets[0]), None) > 0
    return api.fit(image, variant=family, model=model, **{**options, **({"steps": STEPS} if fits else {})})


@pytest.fixture(scope="module")
def models():
    return {name: families.get(name).load_model() for name in FAMILIES}


@pytest.fixture(scope="module")
def stored(models):
    """(family, size) -> (image, bytes, report), made once."""
    out = {}

    def get(family: str, size: tuple[int, int]):
        if (family, size) not in out:
            image = image_of(*size)
            data, report = api.store(quick_fit(family, image, models[family]), model=models[family])
            out[family, size] = image, data, report
        return out[family, size]

    return get


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip(family, size, stored, models):
    image, data, report = stored(family, size)
    assert np.array_equal(codec.load(data, models[family]), image)
    info = codec.info(data)
    assert (info["variant"], info["height"], info["width"]) == (family, *size)
    assert report.file_bytes == len(data) == info["file_bytes"]
    assert [s.kind for s in report.sections] == [k for k, _ in container.unpack(data)[1]]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_encoder_decodes_its_own_file(family, models, monkeypatch):
    """store reads back what it wrote: a read-back that drifted from the encoder (the family's decode,
    or its replay's check where encode gives a `Replay`) never yields a file."""
    image = image_of(4, 5)
    fit = quick_fit(family, image, models[family])
    replay = families.get(family).encode(fit, models[family], device="cpu", progress=None).replay
    reads = [(type(families.get(family)), "decode")] + [(type(replay), "check")] * (replay is not None)
    for owner, name in reads:
        monkeypatch.setattr(owner, name, drifted(getattr(owner, name)))
    with pytest.raises(ChecksumError):
        api.store(fit, model=models[family])
    api.store(fit, model=models[family], verify=False)  # the check is the read-back, nothing else


def drifted(read):
    """`read` (a method giving a Decoded) with every pixel's lowest bit flipped."""
    def read_drifted(self, *args, **kwargs):
        decoded = read(self, *args, **kwargs)
        decoded.image = decoded.image ^ np.uint8(1)
        return decoded

    return read_drifted


@pytest.mark.parametrize("family", FAMILIES)
def test_same_pixels_and_bytes_with_one_and_two_threads(family, models):
    image = image_of(9, 13, seed=1)
    fit = quick_fit(family, image, models[family])
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            parallel.set_threads(threads)  # the exact convolutions' own threads
            data, _ = api.store(fit, model=models[family], verify=False)
            out.append((data, codec.load(data, models[family])))
    finally:
        torch.set_num_threads(before)
        parallel.set_threads(None)
    assert out[0][0] == out[1][0] and np.array_equal(out[0][1], out[1][1]) and np.array_equal(out[0][1], image)


@pytest.mark.parametrize("family", FAMILIES)
def test_real_bytes_within_a_margin_of_the_theoretical_bits(family, stored):
    _, data, report = stored(family, (9, 13))
    counts = {}
    for s in report.sections:
        counts[codec.kind_key(s.kind)] = counts.get(codec.kind_key(s.kind), 0) + 1
    for kind, (real, theoretical) in report.by_kind().items():
        assert 0 < theoretical, kind
        assert real <= (1 + RELATIVE) * theoretical + SLACK_BYTES * counts[kind], (kind, real, theoretical)
        assert real >= (1 - RELATIVE) * theoretical - 1, (kind, real, theoretical)  # no free bits either
    assert report.as_dict()["theoretical_bytes"] == pytest.approx(sum(t for _, t in report.by_kind().values()))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_bit_flip_and_truncation_is_rejected(family, stored, models):
    image, data, _ = stored(family, (1, 1))
    counts, failures = sweep(raw_cases(data), image, models[family])
    assert not failures, failures[:5]
    assert counts == {REJECTED: 9 * len(data)}, counts


@pytest.mark.parametrize("family", FAMILIES)
def test_golden_files_of_every_family(family):
    """tests/golden holds files of every family at the current format version (test_golden decodes them)."""
    from tests.test_golden import MANIFEST

    have = {e["label"] for e in MANIFEST if e["variant"] == family and e["format_version"] == container.FORMAT_VERSION}
    assert set(families.get(family).golden) <= have
