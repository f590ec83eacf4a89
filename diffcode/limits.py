"""How much memory fit, store and decode need, and the refusal of images too large for this machine.

Peak resident memory grows linearly with the number of pixels (every stage of the decoder is a
convolution over an image at most the target size). The model below, peak = base + per-megapixel
x megapixels, is fitted to `python experiments/memory.py` (see experiments/results/memory*.md for
the measured points and the command and commit that made them); each family declares its own
(`Family.memory`, phase -> Linear). Before any work, `check` compares
the predicted peak with the memory this machine can give (MemAvailable in /proc/meminfo, or the
`DIFFCODE_MEMORY_GIB` environment variable) and refuses with a one-line message that says what the
image would need. A file's header declares its size, so a crafted or corrupt header that declares
a huge image is refused before the decoder allocates anything.

Store and decode are always checked: every family's exact pass runs on the CPU, whatever
`--device` says. A fit on a GPU (`--device cuda`) keeps its large tensors in device memory, which
is not modelled: torch reports its own out-of-memory error, which diffcode turns into a one-line
error too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ImageError

ENV = "DIFFCODE_MEMORY_GIB"
MIB = 1 << 20


@dataclass(frozen=True)
class Linear:
    base_mib: float
    mib_per_megapixel: float

    def mib(self, pixels: int) -> float:
        return self.base_mib + self.mib_per_megapixel * pixels / 1e6


def available_mib() -> float | None:
    """Memory this process may use: $DIFFCODE_MEMORY_GIB, else MemAvailable, else None (unknown)."""
    value = os.environ.get(ENV)
    if value:
        try:
            return float(value) * 1024.0
        except ValueError:
            raise ImageError(f"{ENV}={value!r} is not a number of GiB") from None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB
    except (AttributeError, ValueError, OSError):
        return None


def needed_mib(phase: str, height: int, width: int, memory: dict[str, Linear]) -> float:
    return memory[phase].mib(height * width)


def largest_pixels(phase: str, limit_mib: float, memory: dict[str, Linear]) -> int:
    m = memory[phase]
    return max(0, int((limit_mib - m.base_mib) / m.mib_per_megapixel * 1e6))


def check(phase: str, height: int, width: int, memory: dict[str, Linear], device: str = "cpu") -> None:
    """Refuse, before any work, an image whose `phase` would need more memory than there is.

    memory: the family's model, phase ("fit", "store", "decode") -> Linear.
    """
    if not str(device).startswith("cpu"):
        return
    limit = available_mib()
    if limit is None:
        return
    need = needed_mib(phase, height, width, memory)
    if need > limit:
        side = int(largest_pixels(phase, limit, memory) ** 0.5)
        raise ImageError(
            f"a {width}x{height} image is too large to {phase} here: it needs about {need / 1024:.1f} GiB and "
            f"{limit / 1024:.1f} GiB are available (up to about {side}x{side} pixels fit); crop or tile the "
            f"image, or free memory (set {ENV} to change the limit)")
