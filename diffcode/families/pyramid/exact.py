"""The pyramid family's sections: fitted deltas + image -> sections -> pixels (exact; no torch).

    SIDE_INFO      preset code, adapt code (0: no per-image weights), [online code: only for priors whose meta
                   lists "online_choices"], one scale index per adapted tensor
    WEIGHT_DELTAS  (only with per-image weights) rANS stream of the integer deltas (`deltas`)
    ERROR_TABLE    rANS stream of every subpixel in pyramid order (`coding`)

Header fields: error_model "logistic", storage "none", seed / rng_version / segment budget 0,
decoder_hash the first 16 bytes of the prior's SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError
from ...storage import container
from .. import Decoded, Encoded, Section
from ..common import check_layout
from . import coding, deltas, entropy, layout, spec
from .engine import Engine
from .network import ExactNet
from .online import SETTINGS, Settings
from . import prior as prior_file
from .prior import Prior


def exact_net(prior: Prior, arrays: dict) -> ExactNet | Engine:
    """The exact network of a prior's arrays (plus deltas): the float32 engine for priors that record their
    quantization (`engine.make_quant`), the float64 pass for the first shipped prior."""
    if "quant" in prior.meta:
        return Engine(arrays, prior.meta["quant"], prior.order)
    return ExactNet(arrays, prior.order)


def online(prior: Prior) -> Settings | None:
    """The online adaptation files of this prior are coded with (`online.py`; a prior's meta names it), or None;
    for a prior that lets each file choose (`choices`), the first choice."""
    return settings(candidates(prior)[0])


def choices(prior: Prior) -> tuple[int, ...] | None:
    """The online adaptation codes a file of this prior chooses from and names in its side information (the meta's
    "online_choices"), or None: every file is coded with the meta's "online" code."""
    return tuple(prior.meta["online_choices"]) if "online_choices" in prior.meta else None


def candidates(prior: Prior) -> tuple[int, ...]:
    """The online codes an encoder tries for this prior (0: none): its choices, or its one code."""
    return choices(prior) or (prior.meta.get("online", 0),)


def settings(code: int) -> Settings | None:
    return SETTINGS[code] if code else None


def _sizes(prior: Prior, adapt: str | None) -> list[int]:
    """The number of integers of each coded part of an adapt set (none without deltas)."""
    return [] if adapt is None else [p.size for p in deltas.parts(prior.arrays, adapt)]


def _adapt_code(adapt: str | None) -> int:
    return 0 if adapt is None else next(code for code, name in deltas.ADAPT.items() if name == adapt)


def _sections(side: bytes, delta_stream: bytes | None, delta_bits: float, table: bytes, table_bits: float) -> list:
    out = [Section(container.SIDE_INFO, side, 8.0 * len(side))]
    if delta_stream is not None:
        out.append(Section(container.WEIGHT_DELTAS, delta_stream, delta_bits))
    return out + [Section(container.ERROR_TABLE, table, table_bits)]


def _extras(preset: spec.Preset, k: np.ndarray) -> dict:
    return {"preset": preset.name, "n_weights": int(len(k)), "n_nonzero_weights": int(np.count_nonzero(k))}


def encode(image: np.ndarray, k: np.ndarray, preset: spec.Preset, adapt: str | None, prior: Prior,
           progress=None) -> Encoded:
    """Sections of an image coded with the prior plus integer deltas k (empty: the prior alone).

    With online adaptation the fit's own check that its deltas pay (float model, no adaptation) is not the
    file's: the adaptation corrects much of what bias deltas do. So the image is then coded both ways and the
    smaller sections are kept (the side information says which).
    progress: optional callable(done, total) in subpixels, over every pass."""
    passes = 2 if len(k) and any(candidates(prior)) else 1
    coded = encode_once(image, k, preset, adapt, prior, _share(progress, 0, passes))
    if passes == 2:
        alone = encode_once(image, np.zeros(0, np.int16), preset, None, prior, _share(progress, 1, passes))
        if file_bytes(alone) < file_bytes(coded):
            return alone
    return coded


def within_bound(prior: Prior, adapt: str | None, k: np.ndarray) -> np.ndarray:
    """The deltas k, shrunk toward zero (every integer times 3/4, truncated) until the network they make keeps
    the engine's exactness bound (`engine.check`), rather than dropped: a prior's exponents leave each layer
    twice its reach, and row and column gains together can reach 2.25 times a weight."""
    return _network(prior, adapt, k)[0]


def _network(prior: Prior, adapt: str | None, k: np.ndarray) -> tuple[np.ndarray, ExactNet | Engine]:
    """(`within_bound`'s deltas, the exact network they make)."""
    k = np.asarray(k, np.int16)
    while True:
        try:
            return k, exact_net(prior, deltas.apply(prior.arrays, adapt or "all", k))
        except ValueError:
            if not np.any(k):  # the prior itself: not a matter of deltas
                raise
            k = np.trunc(k * 0.75).astype(np.int16)


def _share(progress, index: int, count: int):
    """Pass `index` of `count` as its share of one progress(done, total)."""
    return progress and (lambda done, total: progress(index * total + done, count * total))


def file_bytes(encoded: Encoded) -> int:
    """The bytes the sections make in a file: payloads plus the container's entry for each (the rest of the
    header is the same for any coding of the same image)."""
    return sum(len(section.payload) for section in encoded.sections) + \
        container.header_bytes(len(encoded.sections)) - container.header_bytes(0)


def encode_once(image: np.ndarray, k: np.ndarray, preset: spec.Preset, adapt: str | None, prior: Prior,
                progress=None) -> Encoded:
    """One coding of the image with the deltas k (shrunk if they would break the engine's exactness
    bound: `within_bound`): `encode` keeps it, or under online adaptation the smaller of it and the
    prior alone."""
    adapt = adapt if len(k) else None
    sizes = _sizes(prior, adapt)
    if sum(sizes) != len(k):
        raise DiffcodeError(f"{len(k)} weight deltas given, adapt set {adapt} has {sum(sizes)} weights")
    k, net = _network(prior, adapt, k)
    scales, stream, delta_bits = deltas.encode(k, sizes) if adapt else (np.zeros(0, np.uint8), None, 0.0)
    codes = candidates(prior)
    table, table_bits, walked, chosen = coding.encode_with_model(image, net, tuple(map(settings, codes)), progress)
    side = bytes([preset.code, _adapt_code(adapt)] + [codes[chosen]] * (choices(prior) is not None)) + scales.tobytes()
    fields = {"storage": spec.STORAGE, "rng_version": 0, "error_model": spec.ERROR_MODEL, "seed": 0,
              "segment_budget_cnats": 0, "decoder_hash": prior.hash16}
    return Encoded(fields, _sections(side, stream, delta_bits, table, table_bits), _extras(preset, k),
                   Replay(preset.code, adapt, codes[chosen], np.array(k, np.int16), table, table_bits, walked))


@dataclass
class Replay:
    """The encoder's own coding (`Encoded.replay`), for `codec.store`'s check of its file."""

    preset_code: int
    adapt: str | None  # the adapted tensors (None: no deltas)
    online: int  # the online adaptation's code (0: none)
    deltas: np.ndarray  # int16, the weight deltas k
    table: bytes  # the error table the encoder read back under its own model (`coding._Segments`)
    table_bits: float  # its ideal bits
    image: np.ndarray  # uint8 (H, W, 3): what the encoder's walk rebuilt from the symbols, not its input

    def check(self, header: container.Header, sections: list[tuple[int, bytes]], model: Prior) -> Decoded:
        """The encoder's own file against this coding: the side information and the deltas must read
        back to the encoder's deltas, and the error table must be the bytes the encoder read back under
        its model (ChecksumError otherwise). Gives the image the encoder's walk rebuilt: the walk, whose
        network reads the decoded pixels, is not run again."""
        _, preset, adapt, code, k, delta_bits = _read_side(header, sections, model)
        if (preset.code, adapt, code) != (self.preset_code, self.adapt, self.online) or \
                not np.array_equal(k, self.deltas):
            raise ChecksumError("internal error: the side information or weight deltas read back differently")
        if sections[-1][1] != self.table:
            raise ChecksumError("internal error: the error table reads back differently from what was coded")
        return _decoded(sections, preset, k, delta_bits, self.table_bits, self.image)


def check_header(header: container.Header, model: Prior) -> Prior:
    """The prior the header names: `model`, or an earlier shipped prior (DecoderMismatchError if neither)."""
    named = model if header.decoder_hash == bytes.fromhex(model.hash[:32]) else prior_file.find(header.decoder_hash)
    if named is None:
        raise DecoderMismatchError(f"this file was made with pyramid prior {header.decoder_hash.hex()}, but the "
                                   f"loaded prior is {model.hash[:32]} and no shipped prior has that hash")
    if (header.storage, header.error_model, header.seed, header.rng_version, header.segment_budget_cnats) != \
            (spec.STORAGE, spec.ERROR_MODEL, 0, 0, 0):
        raise CorruptFileError("corrupt header: a pyramid file has storage none, error model logistic and no seed")
    return named


def _side(side: bytes) -> tuple[spec.Preset, str | None, np.ndarray]:
    if len(side) < 2 or side[0] not in spec.PRESET_BY_CODE or (side[1] and side[1] not in deltas.ADAPT):
        raise CorruptFileError("corrupt pyramid side information (preset or adapt code)")
    return spec.PRESET_BY_CODE[side[0]], deltas.ADAPT.get(side[1]), np.frombuffer(side[2:], np.uint8)


def check_sizes(header: container.Header, sections: list[tuple[int, bytes]]) -> None:
    """Before anything is decoded: the section layout, the side information's preset and adapt
    codes (and whether they call for a weight-deltas section), and an error table that can hold
    the declared image. A valid stream of L bytes decodes at most `entropy.max_subpixels` subpixels:
    the coarsest level's (flat, 8 bits each) cost at least 7.99 bits each, every other at least
    2.2e-5 (`rans.min_symbol_bits` of the logistic table's largest frequency, TOTAL - 255). The
    number of scales in the side information depends on the prior and is checked by `decode`."""
    kinds = [kind for kind, _ in sections]
    has_deltas = len(sections) == 3
    check_layout(kinds, [container.SIDE_INFO] + [container.WEIGHT_DELTAS] * has_deltas + [container.ERROR_TABLE],
                 "a pyramid file")
    _, adapt, _ = _side(sections[0][1])
    if (adapt is not None) != has_deltas:
        raise CorruptFileError("pyramid side information and sections disagree about per-image weights")
    table = sections[-1][1]
    if len(table) < 8 or len(table) % 4:
        raise CorruptFileError(f"the error table has {len(table)} bytes: not a stream of 32-bit words")
    core_h, core_w = layout.level_sizes(header.height, header.width)[-1]
    n, flat = 3 * header.height * header.width, 3 * core_h * core_w
    most = entropy.max_subpixels(len(table), flat)
    if n > most:
        held = (f"cannot hold the {flat} subpixels of the coarsest level (8 bits each)" if most < 0 else
                f"hold at most {most} subpixels")
        raise CorruptFileError(f"the error table has {len(table)} bytes, which {held}; a {header.width}x"
                               f"{header.height} image has {n}: the file is corrupt")


def decode(header: container.Header, sections: list[tuple[int, bytes]], model: Prior, progress=None) -> Decoded:
    """Pixels of a pyramid file's sections (the palette already removed by the codec).

    progress: optional callable(done, total) in subpixels while the error table decodes.
    """
    prior, preset, adapt, code, k, delta_bits = _read_side(header, sections, model)
    try:
        net = exact_net(prior, deltas.apply(prior.arrays, adapt or "all", k))
    except ValueError as exc:
        raise CorruptFileError(f"the weight deltas break the network's exactness bound ({exc})") from exc
    image, table_bits = coding.decode(header.height, header.width, sections[-1][1], net, settings(code), progress)
    return _decoded(sections, preset, k, delta_bits, table_bits, image)


def _read_side(header: container.Header, sections: list[tuple[int, bytes]], model: Prior):
    """(the prior the header names, preset, adapt, the online adaptation's code, the weight deltas k, their ideal
    bits) of a file's side information and deltas sections."""
    prior = check_header(header, model)
    check_sizes(header, sections)  # the codec ran it already; cheap, and `decode` may be called alone
    preset, adapt, scales = _side(sections[0][1])
    code = candidates(prior)[0]
    if choices(prior) is not None:
        if len(scales) == 0 or scales[0] not in choices(prior):
            raise CorruptFileError("corrupt pyramid side information (no online adaptation its prior offers)")
        code, scales = int(scales[0]), scales[1:]
    sizes = _sizes(prior, adapt)
    if len(scales) != len(sizes):
        raise CorruptFileError(f"pyramid side information has {len(scales)} scales for {len(sizes)} tensors")
    has_deltas = len(sections) == 3
    k, delta_bits = deltas.decode(sections[1][1], scales, sizes) if has_deltas else (np.zeros(0, np.int16), 0.0)
    return prior, preset, adapt, code, k, delta_bits


def _decoded(sections: list[tuple[int, bytes]], preset: spec.Preset, k: np.ndarray, delta_bits: float,
             table_bits: float, image: np.ndarray) -> Decoded:
    delta_stream = sections[1][1] if len(sections) == 3 else None
    return Decoded(image, _sections(sections[0][1], delta_stream, delta_bits, sections[-1][1], table_bits),
                   _extras(preset, k))
