"""How much memory fit, store and decode need, and the refusal of images too large for this machine.

Peak resident memory grows linearly with the number of pixels (every stage of the decoder is a
convolution over an image at most the target size). The model below, peak = base + per-megapixel
x megapixels, is fitted to `python experiments/memory.py` (see experiments/results/memory*.md for
the measured points and the command and commit that made them); each family declares its own
(`Family.memory`, phase -> Linear). Before any work, `check` compares the predicted peak with the
limit, the smaller of

- the memory cap: `DEFAULT_CAP_GIB` (16 GiB), or `$DIFFCODE_MAX_MEMORY`, or what
  `set_max_memory_gib` (the CLI's `--max-memory GIB`) or check's `max_memory_gib` argument says
  (the argument first, then the setting, then the environment); a cap, so that one image or one
  crafted file never takes a large machine's memory, whatever is free;
- the memory this machine can give: MemAvailable in /proc/meminfo, or `$DIFFCODE_MEMORY_GIB`
  (which replaces that figure, as in containers whose /proc/meminfo shows the host's),

and refuses with a one-line message that says what the image would need, which limit refused it
and how to raise it. A file's header declares its size, so a crafted or corrupt header that
declares a huge image is refused before the decoder allocates anything (and a header declaring
more pixels than its sections can hold is refused before that, by the family's `check_sizes`).

Store and decode are always checked: every family's exact pass runs on the CPU, whatever
`--device` says. A fit on a GPU (`--device cuda`) keeps its large tensors in device memory, which
is not modelled: torch reports its own out-of-memory error, which diffcode turns into a one-line
error too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ImageError, UsageError

ENV = "DIFFCODE_MEMORY_GIB"  # the memory available, instead of MemAvailable
CAP_ENV = "DIFFCODE_MAX_MEMORY"  # the memory cap in GiB, instead of DEFAULT_CAP_GIB
DEFAULT_CAP_GIB = 16.0
MIB = 1 << 20

_cap_gib: float | None = None  # set_max_memory_gib's value; None: $DIFFCODE_MAX_MEMORY or the default
_env_before: str | None = None  # $DIFFCODE_MAX_MEMORY before set_max_memory_gib exported its value


@dataclass(frozen=True)
class Linear:
    base_mib: float
    mib_per_megapixel: float

    def mib(self, pixels: int) -> float:
        return self.base_mib + self.mib_per_megapixel * pixels / 1e6


def _gib(value, what: str, error=UsageError) -> float:
    """A positive number of GiB (inf: no cap), or `error` naming `what`."""
    try:
        gib = float(value)
    except (TypeError, ValueError):
        raise error(f"{what}={value!r} is not a number of GiB") from None
    if not gib > 0:  # also refuses nan
        raise error(f"{what}={value!r}: the memory limit must be a positive number of GiB")
    return gib


def set_max_memory_gib(gib: float | None) -> None:
    """Set the memory cap in GiB (the CLI's `--max-memory GIB`) for this process and the processes it
    starts (it is also exported as $DIFFCODE_MAX_MEMORY, which spawned workers such as
    `diffcode.batch`'s read); None: back to $DIFFCODE_MAX_MEMORY as it was, else DEFAULT_CAP_GIB.
    float("inf") lifts the cap (what is available still limits). UsageError unless a positive number."""
    global _cap_gib, _env_before
    cap = None if gib is None else _gib(gib, "--max-memory")
    if _cap_gib is None and cap is not None:
        _env_before = os.environ.get(CAP_ENV)
    if cap is not None:
        os.environ[CAP_ENV] = repr(cap)
    elif _cap_gib is not None:  # back to the environment as it was
        if _env_before is None:
            os.environ.pop(CAP_ENV, None)
        else:
            os.environ[CAP_ENV] = _env_before
    _cap_gib = cap


def memory_cap_gib() -> float:
    """The memory cap in GiB: set_max_memory_gib's value, else $DIFFCODE_MAX_MEMORY, else DEFAULT_CAP_GIB."""
    if _cap_gib is not None:
        return _cap_gib
    value = os.environ.get(CAP_ENV)
    return _gib(value, CAP_ENV, ImageError) if value else DEFAULT_CAP_GIB


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


def limit_mib(max_memory_gib: float | None = None) -> tuple[float, bool]:
    """(the memory an image may need in MiB, whether the cap rather than the available memory sets it).

    max_memory_gib: the cap for this call (None: `memory_cap_gib()`).
    """
    cap = _gib(max_memory_gib, "max_memory_gib") if max_memory_gib is not None else memory_cap_gib()
    available = available_mib()
    cap_mib = cap * 1024.0
    if available is not None and available < cap_mib:
        return available, False
    return cap_mib, True


def needed_mib(phase: str, height: int, width: int, memory: dict[str, Linear]) -> float:
    return memory[phase].mib(height * width)


def largest_pixels(phase: str, limit_mib: float, memory: dict[str, Linear]) -> int:
    m = memory[phase]
    return max(0, int((limit_mib - m.base_mib) / m.mib_per_megapixel * 1e6))


def check(phase: str, height: int, width: int, memory: dict[str, Linear], device: str = "cpu",
          max_memory_gib: float | None = None) -> None:
    """Refuse, before any work, an image whose `phase` would need more memory than the limit
    (`limit_mib`: the cap, or what is available if that is less).

    memory: the family's model, phase ("fit", "store", "decode") -> Linear.
    max_memory_gib: the cap for this call (None: set_max_memory_gib's, $DIFFCODE_MAX_MEMORY or 16 GiB).
    """
    if not str(device).startswith("cpu"):
        return
    limit, capped = limit_mib(max_memory_gib)
    need = needed_mib(phase, height, width, memory)
    if need <= limit:
        return
    side = int(largest_pixels(phase, limit, memory) ** 0.5)
    start = f"a {width}x{height} image is too large to {phase} here: it needs about {need / 1024:.1f} GiB"
    if capped:
        raise ImageError(f"{start}, above the memory cap of {limit / 1024:g} GiB (up to about {side}x{side} "
                         f"pixels fit); raise the cap with --max-memory GIB (or {CAP_ENV}), or crop or tile "
                         "the image")
    raise ImageError(f"{start} and {limit / 1024:.1f} GiB are available (up to about {side}x{side} pixels fit); "
                     f"crop or tile the image, or free memory (set {ENV} to change the limit)")
