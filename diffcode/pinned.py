"""Integer tables the coder reads, built on first use and accepted only by their pinned SHA-256.

A nonlinear step that reaches the coder (Cauchy cdfs, entropy units, arc lengths, cosines) is an
integer table, never a libm call at coding time. Each table is built with numpy (fast; a
platform's libm may round one entry differently), accepted only if its SHA-256 is the pinned
one, and otherwise rebuilt exactly with mpmath, which must match::

    @pinned_table(COS_TABLE_SHA256, exact=_cos_table_mpmath)
    def cos_table() -> np.ndarray:
        '''round(cos(2 pi i / 2^14) * 2^12), int64.'''
        return np.round(np.cos(...) * ONE).astype(np.int64)

    cos_table()                          # the checked table, built once, read-only
    cos_table.sha256_of(table)           # how the pin is computed (tests compare exact() with it)
    cos_table.exact()                    # the mpmath build, unchecked

The hash covers the table's values as `dtype` (row-major), so the pin does not depend on the
platform's byte order. Numpy only: the decode path imports this without torch.

Users: `cauchy.table`, `storage.entropy_units.thresholds` and `arc_table`, `fixedpoint.cos_table`,
the pyramid's logistic table (`families/pyramid/entropy.table`) and its online adaptation's
code-length table (`families/pyramid/online.cost_table`: no mpmath build; its entries lie far from
any rounding boundary, so the pin stands in for one).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import Callable

import numpy as np


class PinnedTable:
    """A cached integer table: `build()` if its SHA-256 is `sha256`, else `exact()` (which must match)."""

    def __init__(self, build: Callable[[], np.ndarray], sha256: str, exact: Callable[[], np.ndarray] | None = None,
                 dtype: str = "<i8"):
        self.build, self.sha256, self.dtype = build, sha256, dtype
        self._exact = exact
        self._table: np.ndarray | None = None
        self._lock = threading.Lock()  # the exact fallback takes seconds: build it once, not once a thread
        functools.update_wrapper(self, build)

    def sha256_of(self, table: np.ndarray) -> str:
        """SHA-256 hex digest of a table's values as `dtype`, row-major."""
        return hashlib.sha256(np.ascontiguousarray(table, dtype=self.dtype).tobytes()).hexdigest()

    def exact(self) -> np.ndarray:
        """The exact (mpmath) build, unchecked; without one, the numpy build."""
        return (self._exact or self.build)()

    def __call__(self) -> np.ndarray:
        """The checked table, read-only (RuntimeError if no build matches the pin)."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._checked()
        return self._table

    def _checked(self) -> np.ndarray:
        for build in (self.build, self._exact):
            table = build() if build is not None else None
            if table is not None and self.sha256_of(table) == self.sha256:
                table.setflags(write=False)
                return table
        raise RuntimeError(f"{self.__name__}: no build matches the pinned SHA-256 {self.sha256[:16]}, "
                           "not even the exact one; this platform cannot code portably")


def pinned_table(sha256: str, *, exact: Callable[[], np.ndarray] | None = None, dtype: str = "<i8"):
    """Decorator: the numpy build function becomes the cached, pinned `PinnedTable` of its table."""
    return lambda build: PinnedTable(build, sha256, exact, dtype)
