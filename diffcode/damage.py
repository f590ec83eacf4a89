"""Damage sweeps of .dfc files: single-bit flips, truncations, deep flips past the checksums, edits.

A damaged file must end in a clear diffcode error (CorruptFileError, ChecksumError, or
DecoderMismatchError) or decode to exactly the original pixels, never another exception, a hang
or a wrong image. `classify` decodes one damaged file as the CLI does and says how it ended;
`sweep` runs many. Used by tests/test_damage.py, tests/test_conformance.py (every family) and
experiments/reliability.py (every bit of every small file).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import re
import signal
import struct
import zlib

import numpy as np

from . import codec
from .errors import CorruptFileError, DecoderMismatchError
from .storage import container

CASE_CPU_SECONDS = 60  # a single decode of a small file takes well under a CPU second


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth gradient with noise: some structure for the decoder, some entropy for the coder."""
    rng = np.random.default_rng(seed + 1000 * height + width)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([40 + 150 * y / max(height - 1, 1), 60 + 120 * x / max(width - 1, 1),
                     200 - 60 * (x + y) / max(height + width - 2, 1)], axis=-1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- damage


FIRST_FIELDS = ("magic", "version", "variant", "storage", "rng", "model")
LAST_FIELDS = ("height", "width", "seed", "budget", "decoder_hash", "pixel_hash", "n_sections")


def field_names(fixed: struct.Struct) -> list[str]:
    """Names of the fixed header fields; fields between the first and last ones are new in later versions."""
    n = len(fixed.unpack(bytes(fixed.size)))
    middle = n - len(FIRST_FIELDS) - len(LAST_FIELDS)
    return [*FIRST_FIELDS, *(["color_mode"] if middle == 1 else [f"extra{i}" for i in range(middle)]), *LAST_FIELDS]


def field_offsets(fixed: struct.Struct) -> dict[str, int]:
    """Byte offset of each named field."""
    tokens = re.findall(r"(\d*)([a-zA-Z?])", fixed.format)
    return {name: struct.calcsize("<" + "".join(c + t for c, t in tokens[:i]))
            for i, name in enumerate(field_names(fixed))}


def fixed_of(data: bytes) -> struct.Struct:
    return container.fixed_layout(data[len(container.MAGIC)] if len(data) > len(container.MAGIC) else container.FORMAT_VERSION)


def section_table(data: bytes) -> tuple[int, list[tuple[int, int, int]]] | None:
    """(end of the section table, [(kind, length, crc)]) as far as `data` holds them, else None."""
    fixed, section = fixed_of(data).size, container._SECTION.size
    if len(data) < fixed:
        return None
    (n,) = struct.unpack_from("<H", data, fixed - 2)
    end = fixed + n * section
    if len(data) < end + 4:
        return None
    return end, [container._SECTION.unpack_from(data, fixed + i * section) for i in range(n)]


def refresh_crcs(data: bytes) -> bytes:
    """`data` with every section CRC (whose payload it holds) and the header CRC recomputed."""
    parsed = section_table(data)
    if parsed is None:
        return data
    end, table = parsed
    out, offset = bytearray(data), end + 4
    for i, (kind, length, _) in enumerate(table):
        if offset + length <= len(data):
            container._SECTION.pack_into(out, fixed_of(data).size + i * container._SECTION.size, kind, length,
                                         zlib.crc32(data[offset:offset + length]))
        offset += length
    struct.pack_into("<I", out, end, zlib.crc32(bytes(out[:end])))
    return bytes(out)


def crc_bytes(data: bytes) -> set[int]:
    """Byte positions of the CRC fields (a deep flip there is undone by refresh_crcs)."""
    end, table = section_table(data)
    fixed, section = fixed_of(data).size, container._SECTION.size
    out = set(range(end, end + 4))
    for i in range(len(table)):
        out |= set(range(fixed + i * section + 5, fixed + (i + 1) * section))
    return out


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def deep_bits(data: bytes, payload_sample: int | None = None, hash_bytes: int | None = None) -> list[int]:
    """Bits for a deep sweep: every bit outside the CRC fields, or in CI a subset.

    hash_bytes: flip only the first `hash_bytes` bytes of each 16-byte hash field (None: all).
    payload_sample: flip this many payload bits, evenly spread (None: all).
    """
    skip = crc_bytes(data)
    header_end = section_table(data)[0] + 4
    if hash_bytes is not None:
        offsets = field_offsets(fixed_of(data))
        for start in (offsets["decoder_hash"], offsets["pixel_hash"]):
            skip |= set(range(start + hash_bytes, start + 16))
    header = [b for b in range(8 * header_end) if b // 8 not in skip]
    payload = list(range(8 * header_end, 8 * len(data)))
    if payload_sample is not None and payload_sample < len(payload):
        payload = [payload[round(i * (len(payload) - 1) / (payload_sample - 1))] for i in range(payload_sample)]
    return header + payload


# ----------------------------------------------------------------------------- outcomes


class Hang(Exception):
    """A decode ran past its time limit."""


@contextlib.contextmanager
def cpu_time_limit(seconds: float):
    """Raise Hang in the main thread once the process has used `seconds` of CPU time.

    CPU time rather than wall time, so that a busy machine does not pass for a hang
    (SIGPROF; no-op where unavailable).
    """
    if not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


REJECTED, IDENTICAL, SILENT, OTHER = "rejected", "identical", "silent", "other"
CLEAR_ERRORS = (CorruptFileError, DecoderMismatchError)  # ChecksumError is a CorruptFileError


@dataclasses.dataclass(frozen=True)
class Outcome:
    kind: str  # REJECTED (one of CLEAR_ERRORS), IDENTICAL (the original pixels), SILENT, OTHER
    detail: str  # the error class and message, or what was wrong

    @property
    def ok(self) -> bool:
        return self.kind in (REJECTED, IDENTICAL)


def decode_as_the_cli_does(data: bytes, checkpoint) -> np.ndarray:
    """codec.load_image, and the conversion to the file's colour mode that `decode` writes the image with."""
    from diffcode.image import to_pil

    image, color = codec.load_image(data, checkpoint)
    to_pil(image, color)
    return image


def classify(damaged: bytes, original: np.ndarray, checkpoint, cpu_seconds: float = CASE_CPU_SECONDS) -> Outcome:
    """Decode a damaged file and say how it ended."""
    try:
        with cpu_time_limit(cpu_seconds):
            image = decode_as_the_cli_does(damaged, checkpoint)
    except CLEAR_ERRORS as exc:
        return Outcome(REJECTED, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - exactly what this sweep looks for (any other DiffcodeError too)
        return Outcome(OTHER, f"{type(exc).__name__}: {exc}")
    if isinstance(image, np.ndarray) and image.shape == original.shape and np.array_equal(image, original):
        return Outcome(IDENTICAL, "decoded to the original pixels")
    return Outcome(SILENT, f"decoded to a different image {getattr(image, 'shape', type(image))}")


def sweep(cases, original: np.ndarray, checkpoint) -> tuple[collections.Counter, list[tuple[str, Outcome]]]:
    """Classify (label, damaged bytes) cases; returns counts by kind and the failing cases."""
    counts, failures = collections.Counter(), []
    for label, damaged in cases:
        outcome = classify(damaged, original, checkpoint)
        counts[outcome.kind] += 1
        if not outcome.ok:
            failures.append((label, outcome))
    return counts, failures


def raw_cases(data: bytes):
    """Every single-bit flip and every truncation (including the empty file)."""
    for bit in range(8 * len(data)):
        yield f"flip bit {bit}", flip(data, bit)
    for cut in range(len(data)):
        yield f"truncate to {cut} bytes", data[:cut]


def deep_cases(data: bytes, bits):
    for bit in bits:
        yield f"deep flip bit {bit}", refresh_crcs(flip(data, bit))


def apply_edits(data: bytes, edits, refresh: bool) -> bytes:
    out = bytearray(data)
    for op, position, value in edits:
        i = position % (len(out) + 1)
        if op == "insert":
            out.insert(i, value)
        elif out and op == "delete":
            del out[i % len(out)]
        elif out and op == "set":
            out[i % len(out)] = value
        elif out:
            out[i % len(out)] ^= value or 1
    return refresh_crcs(bytes(out)) if refresh else bytes(out)


def raw_pack(fields: dict, sections: list[tuple[int, bytes]]) -> bytes:
    """A file with exactly these header field values (no range checks) and valid CRCs.

    The layout is that of fields["version"]; fields it lacks are 0, n_sections is len(sections).
    """
    fixed = container.fixed_layout(fields["version"])
    values = {**fields, "magic": container.MAGIC, "n_sections": len(sections)}
    head = fixed.pack(*(values.get(name, 0) for name in field_names(fixed)))
    head += b"".join(container._SECTION.pack(k, len(p), zlib.crc32(p)) for k, p in sections)
    return head + struct.pack("<I", zlib.crc32(head)) + b"".join(p for _, p in sections)


def header_fields(data: bytes) -> dict:
    """The raw values of a file's fixed header fields, by name (as raw_pack takes them)."""
    fixed = fixed_of(data)
    fields = dict(zip(field_names(fixed), fixed.unpack_from(data)))
    del fields["magic"], fields["n_sections"]
    return fields
