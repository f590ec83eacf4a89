"""Exact pieces every family of this codebase shares: the Cauchy error table and pixel order.

    Cauchy table indexes int64 (3*H*W, 2), C-H-W order --rans + CauchyModel--> ERROR_TABLE section
    ERROR_TABLE section + the same indexes --> symbols --> uint8 (H, W, 3) pixels

Its theoretical bits are those of the float Cauchy with the quantized parameters
(`cauchy.bits_float`), as the reports have always counted them.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptFileError
from ..storage import container, rans
from . import Section

ERROR_MODEL = "cauchy"


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
    """Refuse an ERROR_TABLE too short for the 3 x width x height symbols the header declares: its
    rANS stream holds at least the final lane states (`rans.min_stream_bytes`), in 4-byte words."""
    need = rans.min_stream_bytes(3 * header.height * header.width)
    for kind, payload in sections:
        if kind == container.ERROR_TABLE and (len(payload) < need or len(payload) % 4):
            raise CorruptFileError(f"the error table has {len(payload)} bytes, a {header.width}x{header.height} "
                                   f"image needs at least {need} in 4-byte words: the file is truncated or corrupt")


def check_layout(kinds: list[int], expected: list[int], what: str) -> None:
    if kinds != expected:
        names = [container.SECTION_KINDS.get(k, str(k)) for k in kinds]
        raise CorruptFileError(f"unexpected section layout {names} ({kinds}) for {what}")
