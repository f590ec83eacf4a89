"""Threads of the exact passes: how many, the pool, and numpy's BLAS held to one thread meanwhile (no numba here:
a decode imports this).

The exact passes split their rows among `threads()` Python threads (the per-pixel and weights families'
convolutions, `fixedpoint`; the pyramid's network, `families.pyramid.engine`). Each row block is computed alone,
by numpy's products and compiled loops that release the GIL, and every sum in it is exact, so any thread count
gives the same integers (tests compare one thread and two).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable

import numpy as np

_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def set_threads(n: int | None) -> None:
    """Threads of the exact passes (None: the default of `threads`). Any count gives the same integers."""
    global _threads
    if n is not None and int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = None if n is None else int(n)


def threads() -> int:
    """The exact passes' thread count: `set_threads`, else $OMP_NUM_THREADS, else the usable CPUs."""
    if _threads is not None:
        return _threads
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def executor(n: int) -> ThreadPoolExecutor:
    """The process's pool of at least n threads."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(n, thread_name_prefix="diffcode-exact")
        return _pool


def each(work: Callable[[int], None], items: Iterable[int]) -> None:
    """work(item) for every item: in order on this thread when `threads()` is 1 or there is one item, else on
    the pool; numpy's BLAS on one thread meanwhile. The first exception raised is raised here."""
    items = list(items)
    n = min(threads(), len(items))
    with single_threaded_blas():  # also for one thread: OpenBLAS would otherwise take every core
        if n <= 1:
            for item in items:
                work(item)
            return
        for job in [executor(n).submit(work, item) for item in items]:
            job.result()


@functools.lru_cache(maxsize=1)
def _blas_thread_control():
    """(get, set) of numpy's OpenBLAS thread count, or None when numpy's BLAS is not a known OpenBLAS."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                put.argtypes = [ctypes.c_int]
                return get, put
    return None


@contextmanager
def single_threaded_blas():
    """numpy's BLAS on one thread while our own threads split the rows (speed only: the sums are exact)."""
    control = _blas_thread_control()
    before = control[0]() if control else 1
    if control and before != 1:
        control[1](1)
    try:
        yield
    finally:
        if control and before != 1:
            control[1](before)
