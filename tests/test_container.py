"""The file format: header fields, section checksums, clear errors for bad files."""

import pytest

from diffcode.errors import CorruptFileError
from diffcode.storage import container


def _header(**kw):
    fields = dict(variant="per-pixel", storage="randseed", rng_version=1, error_model="cauchy", height=23,
                  width=37, seed=7, segment_budget_cnats=800, decoder_hash=bytes(range(16)),
                  pixel_hash=bytes(range(16, 32)))
    fields.update(kw)
    return container.Header(**fields)


SECTIONS = [(container.ENCODINGS, b"abc"), (container.ENCODINGS, b""), (container.ERROR_TABLE, b"x" * 100)]


def test_pack_unpack_round_trip():
    data = container.pack(_header(), SECTIONS)
    header, sections = container.unpack(data)
    assert header == _header()
    assert sections == SECTIONS
    assert len(data) == container.header_bytes(3) + 103


@pytest.mark.parametrize("cut", [0, 3, 10, 40, 60, 90, 120])
def test_truncated_files_are_rejected(cut):
    data = container.pack(_header(), SECTIONS)
    with pytest.raises(CorruptFileError):
        container.unpack(data[:cut] if cut < len(data) - 1 else data[:-1])


def test_every_flipped_byte_is_detected():
    data = container.pack(_header(), SECTIONS)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(CorruptFileError):
            container.unpack(bytes(bad))


def test_foreign_and_future_files():
    with pytest.raises(CorruptFileError, match="not a diffcode file"):
        container.unpack(b"\x89PNG\r\n\x1a\n" + bytes(100))
    data = bytearray(container.pack(_header(), SECTIONS))
    data[4] = 99
    with pytest.raises(CorruptFileError, match="version 99"):
        container.unpack(bytes(data))
    with pytest.raises(CorruptFileError, match="unexpected bytes"):
        container.unpack(container.pack(_header(), SECTIONS) + b"\0")


def test_header_range_checks():
    with pytest.raises(ValueError):
        container.pack(_header(height=0), SECTIONS)
    with pytest.raises(ValueError):
        container.pack(_header(seed=2**32), SECTIONS)
    with pytest.raises(ValueError, match="unknown variant"):
        container.pack(_header(variant="no-such-variant"), SECTIONS)
