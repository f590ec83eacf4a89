"""Damaged .dfc files end in a clear diffcode error: never another exception, a hang or a wrong image.

Small files (5x7 and 12x9, the conftest checkpoint, a quick fit; one set per storage scheme the
container knows) are damaged three ways:

- raw: every single-bit flip and every truncation, which is what a disk, a network or a partial
  copy does. The section and header CRC-32s must catch all of them (a CRC-32 detects every
  single-bit error), so each is rejected before any decoding.
- deep: single-bit flips with every CRC recomputed afterwards, so the damage gets past the
  checksums to the field checks and the stream decoders (a buggy writer, a crafted file). CI
  sweeps every header bit (one byte of each 16-byte hash) and a sample of the payload bits;
  `experiments/reliability.py` sweeps them all.
- fuzz (hypothesis): arbitrary bytes, random edits of a valid file (with and without recomputed
  CRCs), headers built from arbitrary field values, and the stream decoders on arbitrary bytes.

A case passes if decoding raises a CorruptFileError (ChecksumError is one) or a
DecoderMismatchError, or returns exactly the original pixels (possible
only when the damage hits a field the file's scheme does not read, and the pixel hash confirms
the image). The sweep machinery is `diffcode.damage` (shared with tests/test_conformance.py and
experiments/reliability.py).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffcode import codec
from diffcode.damage import (REJECTED, apply_edits, classify, crc_bytes, deep_bits, deep_cases, field_names,
                             field_offsets, fixed_of, flip, header_fields, make_image, raw_cases, raw_pack,
                             refresh_crcs, sweep)
from diffcode.errors import CorruptFileError, DecoderMismatchError, DiffcodeError
from diffcode.families.per_pixel.fit import FitConfig, fit_image
from diffcode.families.per_pixel import schemes
from diffcode.storage import container, rans
from tests.conftest import QUICK_FIT

SIZES = ((5, 7), (12, 9))
STORAGES = tuple(sorted(schemes.NAMES))  # the per-pixel storage schemes (container also lists "none")
PAYLOAD_SAMPLE = 48  # deep flips of payload bits per file in CI

# ----------------------------------------------------------------------------- making files


def fit_config(storage: str, base: FitConfig = QUICK_FIT) -> FitConfig:
    """The quick fit, prepared for `storage` when FitConfig knows about storage schemes."""
    if "storage" in {f.name for f in dataclasses.fields(FitConfig)}:
        return dataclasses.replace(base, storage=storage)
    return base


def store(image: np.ndarray, checkpoint, storage: str, config: FitConfig | None = None) -> bytes:
    """Fit and store `image` with the given storage scheme."""
    fit = fit_image(image, checkpoint, config or fit_config(storage))
    data, _ = codec.store(fit, checkpoint, storage=storage)
    return data


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A decode of a tiny image is 3x faster on one thread when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def files(checkpoint) -> dict[tuple[str, tuple[int, int]], tuple[np.ndarray, bytes]]:
    out = {}
    for storage in STORAGES:
        for size in SIZES:
            image = make_image(*size)
            out[storage, size] = image, store(image, checkpoint, storage)
    return out


PARAMS = [(s, size) for s in STORAGES for size in SIZES]


def _report(failures) -> str:
    return "\n".join(f"{label}: {o.kind}: {o.detail}" for label, o in failures[:20])


# ----------------------------------------------------------------------------- sweeps


@pytest.mark.parametrize("storage,size", PARAMS, ids=[f"{s}-{h}x{w}" for s, (h, w) in PARAMS])
def test_every_bit_flip_and_truncation_is_rejected(files, checkpoint, storage, size):
    image, data = files[storage, size]
    assert np.array_equal(codec.load(data, checkpoint), image)
    counts, failures = sweep(raw_cases(data), image, checkpoint)
    assert not failures, _report(failures)
    # the checksums catch every raw case: none decodes, not even to the right image
    assert counts == {REJECTED: 9 * len(data)}, counts


@pytest.mark.parametrize("storage", STORAGES)
def test_deep_flips_past_the_checksums(files, checkpoint, storage):
    """Header bits (one byte of each hash) and a sample of payload bits, CRCs recomputed."""
    image, data = files[storage, SIZES[0]]
    bits = deep_bits(data, payload_sample=PAYLOAD_SAMPLE, hash_bytes=1)
    counts, failures = sweep(deep_cases(data, bits), image, checkpoint)
    assert not failures, _report(failures)
    assert counts[REJECTED] > 0.8 * len(bits), counts


def test_refresh_crcs_and_deep_bits():
    """The helpers: a refreshed valid file is unchanged; CRC fields are left out of deep sweeps."""
    sections = [(container.ENCODINGS, b"abc"), (container.ENCODINGS, b""), (container.ERROR_TABLE, b"x" * 9)]
    header = container.Header("per-pixel", "randseed", 1, "cauchy", 5, 7, 3, 800, bytes(16), bytes(16))
    data = container.pack(header, sections)
    assert refresh_crcs(data) == data
    damaged = refresh_crcs(flip(data, 8 * (len(data) - 1)))
    assert container.unpack(damaged)[1][-1][1] == b"x" * 8 + bytes([ord("x") ^ 0x01])
    bits = deep_bits(data)
    assert not {b // 8 for b in bits} & crc_bytes(data)
    assert len(bits) == 8 * (len(data) - len(crc_bytes(data)))
    for cut in range(len(data)):  # never raises on partial files
        refresh_crcs(data[:cut])


# ----------------------------------------------------------------------------- fuzzing

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: container.MAGIC + b)))
def test_container_rejects_arbitrary_bytes(data):
    try:
        header, sections = container.unpack(data)
    except DiffcodeError:
        return
    header.check()  # a parse that succeeds gives fields in range
    assert container.unpack_header(data)[2] + sum(len(p) for _, p in sections) == len(data)


EDIT = st.tuples(st.sampled_from(["set", "insert", "delete", "xor"]), st.integers(0, 2**20), st.integers(0, 255))


@pytest.fixture(scope="module")
def small_file(files):
    return files[STORAGES[0], SIZES[0]]


@settings(FUZZ, max_examples=300)
@given(edits=st.lists(EDIT, min_size=1, max_size=6), refresh=st.booleans())
def test_container_on_edited_files(small_file, edits, refresh):
    _, data = small_file
    damaged = apply_edits(data, edits, refresh)
    try:
        header, sections = container.unpack(damaged)
    except DiffcodeError:
        return
    header.check()
    assert container.unpack_header(damaged)[2] + sum(len(p) for _, p in sections) == len(damaged)


@settings(FUZZ, max_examples=25)
@given(edits=st.lists(EDIT, min_size=1, max_size=4))
def test_load_of_edited_files(small_file, checkpoint, edits):
    image, data = small_file
    outcome = classify(apply_edits(data, edits, refresh=True), image, checkpoint)
    assert outcome.ok, outcome


def _codes(table: dict[int, str]):
    return st.one_of(st.sampled_from(sorted(table)), st.integers(0, 255))


FIELD_VALUES = {
    "version": st.integers(0, 255), "variant": _codes(container.VARIANTS), "storage": _codes(container.STORAGES),
    "rng": st.integers(0, 255), "model": _codes(container.ERROR_MODELS), "height": st.integers(0, 24),
    "width": st.integers(0, 24), "seed": st.integers(0, 2**32 - 1), "budget": st.integers(0, 2**16 - 1),
    "decoder_hash": st.binary(min_size=16, max_size=16), "pixel_hash": st.binary(min_size=16, max_size=16),
}
for _name in field_names(container.fixed_layout(container.FORMAT_VERSION)):  # fields of later format versions, e.g. color_mode
    FIELD_VALUES.setdefault(_name, st.integers(0, 255))
for _name in ("magic", "n_sections"):
    FIELD_VALUES.pop(_name, None)


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_load_of_headers_with_arbitrary_fields(small_file, checkpoint, data):
    """One to three header fields set to arbitrary values, the sections kept or shuffled; valid CRCs."""
    image, original = small_file
    _, sections = container.unpack(original)
    fields = header_fields(original)
    for name in data.draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), min_size=1, max_size=3)):
        fields[name] = data.draw(FIELD_VALUES[name], label=name)
    if data.draw(st.booleans(), label="other sections"):
        sections = data.draw(st.lists(st.sampled_from(sections), max_size=6))
    outcome = classify(raw_pack(fields, sections), image, checkpoint)
    assert outcome.ok, (fields, outcome)


@pytest.mark.parametrize("field,value", [("height", 0), ("width", 0), ("height", 65535), ("budget", 0),
                                         ("budget", 1), ("budget", 199), ("budget", 1401), ("budget", 65535),
                                         ("seed", 2**32 - 1), ("rng", 0), ("rng", 2), ("version", 0),
                                         ("version", container.FORMAT_VERSION + 1)])
def test_header_fields_at_their_limits(files, checkpoint, field, value):
    """Boundary values of each header field, with valid CRCs, in a file of every storage scheme."""
    for storage in STORAGES:
        image, original = files[storage, SIZES[0]]
        _, sections = container.unpack(original)
        fields = header_fields(original)
        fields[field] = value
        outcome = classify(raw_pack(fields, sections), image, checkpoint)
        assert outcome.ok, (storage, field, value, outcome)


@settings(FUZZ, max_examples=200)
@given(stream=st.binary(max_size=200), n=st.integers(0, 40), seed=st.integers(0, 2**31))
def test_rans_decoder_on_arbitrary_bytes(stream, n, seed):
    from diffcode.cauchy import CauchyModel

    rng = np.random.default_rng(seed)
    params = np.stack([rng.integers(-4, 1025, n), rng.integers(0, 96, n)], axis=1).astype(np.int64)
    try:
        symbols = rans.decode(stream, params, CauchyModel())
    except DiffcodeError:
        return
    assert symbols.shape == (n,) and (n == 0 or (symbols.min() >= 0 and symbols.max() <= 255))


def _stage_decoders():
    return [(name, lambda d, e, s, k, b, name=name: schemes.get(name, b).decode_stage(d, e, s, k))
            for name in schemes.NAMES]


@settings(FUZZ, max_examples=150)
@given(stream=st.binary(max_size=120), units=st.lists(st.integers(0, 5120), max_size=60),
       seed=st.integers(0, 2**32 - 1), stage=st.integers(0, 12), which=st.integers(0, 10),
       budget=st.sampled_from([2.0, 8.0, 14.0]))
def test_stage_decoders_on_arbitrary_bytes(stream, units, seed, stage, which, budget):
    decoders = _stage_decoders()
    name, decode = decoders[which % len(decoders)]
    e = np.array(units, np.int64)
    try:
        values = decode(stream, e, seed, stage, budget)
    except DiffcodeError:
        return
    assert values.dtype == np.uint32 and values.shape == e.shape, name


def test_header_with_an_empty_side_is_a_corrupt_file():
    """Regression: height or width 0 with valid CRCs used to pass the parser and end in an ImageError."""
    header = container.Header("per-pixel", "randseed", 1, "cauchy", 5, 7, 3, 800, bytes(16), bytes(16))
    fields = header_fields(container.pack(header, [(container.ERROR_TABLE, b"")]))
    for side in ("height", "width"):
        with pytest.raises(CorruptFileError, match="corrupt header"):
            container.unpack(raw_pack({**fields, side: 0}, [(container.ERROR_TABLE, b"")]))


def test_color_mode_that_does_not_fit_the_pixels_is_a_corrupt_file(files, checkpoint):
    """Regression: a color image whose header says L or 1 (CRCs recomputed) decoded, then failed to be written."""
    image, data = files[STORAGES[0], SIZES[0]]
    offsets = field_offsets(fixed_of(data))
    if "color_mode" not in offsets:
        pytest.skip("this format version has no color mode")
    for code in sorted(getattr(container, "COLOR_MODES", {})):
        damaged = bytearray(data)
        damaged[offsets["color_mode"]] = code
        outcome = classify(refresh_crcs(bytes(damaged)), image, checkpoint)
        assert outcome.ok, (code, outcome)
        if container.COLOR_MODES[code] in ("L", "1"):
            assert outcome.kind == REJECTED and "color mode" in outcome.detail, outcome


@pytest.mark.parametrize("exc,clean", [(MemoryError(), True),
                                       (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
                                                     "can't allocate memory: you tried to allocate 42270720 bytes"), True),
                                       (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
                                       (RuntimeError("some other torch failure"), False)])
def test_running_out_of_memory_is_a_diffcode_error(files, checkpoint, monkeypatch, exc, clean):
    """Regression: a file declaring a large image (crafted, or real on a small machine) ended in torch's
    allocation RuntimeError, which the CLI shows as a traceback."""
    from diffcode.families.per_pixel import exact as per_pixel

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(per_pixel, "fixed_pass", fail)
    _, data = files[STORAGES[0], SIZES[0]]
    if clean:
        with pytest.raises(DiffcodeError, match="not enough memory to decode this 7x5 image"):
            codec.load(data, checkpoint)
    else:
        with pytest.raises(RuntimeError, match="some other"):
            codec.load(data, checkpoint)
