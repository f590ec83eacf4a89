"""Exact pieces every family of this codebase shares: the Cauchy error table and pixel order.

    Cauchy table indexes int64 (3*H*W, 2), C-H-W order --rans + CauchyModel--> ERROR_TABLE section
    ERROR_TABLE section + the same indexes --> symbols --> uint8 (H, W, 3) pixels

Its theoretical bits are those of the float Cauchy with the quantized parameters
(`cauchy.bits_float`), as the reports have always counted them.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptFileError, DiffcodeError
from ..storage import container, rans
from . import Section

ERROR_MODEL = "cauchy"


def open_model_npz(data: bytes, what: str):
    """np.load of a shared model's file (an .npz archive, no pickles); DiffcodeError naming `what` if
    the bytes are not an .npz archive at all (a PNG given as --checkpoint once read as 'pickled data')."""
    import io

    if not data.startswith(b"PK\x03\x04"):
        raise DiffcodeError(f"{what}: not a diffcode model file (expected an .npz archive)")
    return np.load(io.BytesIO(data), allow_pickle=False)


def symbols(image: np.ndarray) -> np.ndarray:
    """Pixels in coding order: colour plane, row, column (the head's channel layout), int64 (3*H*W,)."""
    return image.transpose(2, 0, 1).reshape(-1).astype(np.int64)


def error_table(image: np.ndarray, params: np.ndarray) -> Section:
    """The ERROR_TABLE section of uint8 (H, W, 3) pixels coded with Cauchy indexes (3*H*W, 2)."""
    from .. import cauchy  # imported on use: it brings torch, which the pyramid family never needs to code

    values = symbols(image)
    return Section(container.ERROR_TABLE, rans.encode(values, params, cauchy.CauchyModel()),
                   cauchy.bits_float(values, params))


def decode_error_table(payload: bytes, params: np.ndarray, height: int, width: int) -> tuple[np.ndarray, Section]:
    """Pixels uint8 (H, W, 3) of an ERROR_TABLE payload, and the section with its theoretical bits."""
    from .. import cauchy

    values = rans.decode(payload, params, cauchy.CauchyModel())
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise CorruptFileError("error table decoded to out-of-range pixel values")
    image = values.astype(np.uint8).reshape(3, height, width).transpose(1, 2, 0).copy()
    return image, Section(container.ERROR_TABLE, payload, cauchy.bits_float(values, params))


def check_error_table_size(header: container.Header, sections: list[tuple[int, bytes]]) -> None:
    """Refuse a file whose last section is not its one ERROR_TABLE, or whose ERROR_TABLE is too short
    for the 3 x width x height symbols the header declares: its rANS stream holds at least the final
    lane states (`rans.min_stream_bytes`), in 4-byte words, and every symbol costs a valid stream at
    least `rans.min_symbol_bits(cauchy.max_frequency())` = 0.0135 bits (no symbol of the Cauchy table
    is more probable than 0.9906), so L bytes decode at most `rans.max_symbols` = 592 L symbols."""
    from .. import cauchy

    kinds = [kind for kind, _ in sections]
    if not kinds or kinds[-1] != container.ERROR_TABLE or kinds.count(container.ERROR_TABLE) != 1:
        names = [container.SECTION_KINDS.get(k, str(k)) for k in kinds]
        raise CorruptFileError(f"unexpected section layout {names} ({kinds}): a file ends with its one error table")
    payload = sections[-1][1]
    n = 3 * header.height * header.width
    need = rans.min_stream_bytes(n)
    if len(payload) < need or len(payload) % 4:
        raise CorruptFileError(f"the error table has {len(payload)} bytes, a {header.width}x{header.height} "
                               f"image needs at least {need} in 4-byte words: the file is truncated or corrupt")
    most = rans.max_symbols(len(payload), cauchy.max_frequency())
    if n > most:
        raise CorruptFileError(f"the error table has {len(payload)} bytes, which hold at most {most} subpixels "
                               f"(each costs at least {rans.min_symbol_bits(cauchy.max_frequency()):.4f} bits), "
                               f"a {header.width}x{header.height} image has {n}: the file is corrupt")


def check_layout(kinds: list[int], expected: list[int], what: str) -> None:
    if kinds != expected:
        names = [container.SECTION_KINDS.get(k, str(k)) for k in kinds]
        raise CorruptFileError(f"unexpected section layout {names} ({kinds}) for {what}")
