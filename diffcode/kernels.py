"""Compiled loops: written once, as numba-compatible Python; compiled ahead of time, else just in time.

    @kernels.jit                  a loop (called from Python, or from other loops)
    @kernels.jit("signature")     also exported, with that numba signature, by the ahead-of-time module

A decode runs a few compiled integer loops over a second or two of work, but importing numba and
loading its cached machine code cost about 0.9 s and 120 MiB of every process (`experiments/results/
codecs-kodim17-kernels.md`). So the loops a decode needs are also compiled ahead of time, into an
extension module built from these very sources (`python -m diffcode.kernels`, run once after
installing; `.ci/run` does): a process that finds it imports neither numba nor llvmlite.

Binding (at the first call of any kernel): every kernel name in its module is replaced by

- the ahead-of-time module's function, for exported kernels, when a module built from the current
  sources exists (its file name holds a SHA-256 of the package's Python sources, the numba and
  numpy versions and this CPU's identity, so an edited source, another numba, or a copy on another
  CPU is never run from a stale build: the build uses this CPU's instructions, as numba does);
- else numba's dispatcher (`numba.njit(cache=True)`), for every kernel: at the first call from
  Python of a kernel the ahead-of-time module does not export, or when it is missing, or with
  DIFFCODE_KERNELS=jit in the environment (the tests compare both ways).

Both compile the same integer code with the same LLVM, so they give the same integers; a test
decodes files both ways. Both release the GIL while a loop runs (`nogil`; the ahead-of-time build sets numba's
`release_gil` flag, which numba.pycc does not offer), so the pyramid's engine runs its blocks of rows on two
threads at once (`diffcode.parallel`). Kernels refer to each other through their module's globals (`rans.pop`,
`_cdf`), which binding replaces, so a loop compiled just in time calls its callees' dispatchers.

An exported function checks its arguments' types but not their layout: a Fortran-ordered array passed
where the signature says C order (`[:, ::1]`) is read as if it were C order. Callers pass C-ordered
arrays (`np.ascontiguousarray`); the just-in-time path would accept either, so only the tests that
run the ahead-of-time build catch a slip.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PACKAGE = Path(__file__).resolve().parent
PREFIX = "_kernels_"
ENV = "DIFFCODE_KERNELS"  # "jit": never use the ahead-of-time module


@dataclass
class _Kernel:
    module: str
    name: str
    function: Callable  # the Python source
    signature: str | None  # exported ahead of time when given
    options: dict  # numba.njit's other options (inline="always")


_KERNELS: list[_Kernel] = []
_bound: str | None = None  # None, "aot" (exported kernels from the built module) or "jit" (every kernel)


class _Pending:
    """A kernel before binding: its first call binds every kernel, then calls its bound self."""

    def __init__(self, kernel: _Kernel):
        self.kernel = kernel
        self.__doc__, self.__name__ = kernel.function.__doc__, kernel.function.__name__

    def __call__(self, *args):
        bind(jit_only=self.kernel.signature is None)
        return getattr(sys.modules[self.kernel.module], self.kernel.name)(*args)


def jit(signature=None, **options):
    """Register a kernel (`@jit`, `@jit("numba signature")`, `@jit(inline="always")`: options go to numba.njit);
    see the module docstring."""
    def register(function: Callable) -> _Pending:
        kernel = _Kernel(function.__module__, function.__name__, function, signature, options)
        _KERNELS.append(kernel)
        return _Pending(kernel)

    if callable(signature):  # used bare: @jit
        function, signature = signature, None
        return register(function)
    return register


def python_functions() -> list[Callable]:
    """The Python source of every registered kernel (what numba compiles: a tool that rewrites Python bytecode,
    as the fuzzer's instrumentation does, must leave these alone)."""
    return [k.function for k in _KERNELS]


def source_hash() -> str:
    """SHA-256 (16 hex digits) of every Python source of the package and of the numba and numpy versions: the
    name of the ahead-of-time module built from them."""
    import numpy

    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"numpy {numpy.__version__} numba {_numba_version()}\0{cpu_identity()}".encode())
    return digest.hexdigest()[:16]


def cpu_identity() -> str:
    """What names this CPU's instruction set: the build is compiled for the CPU it is built on (as numba compiles
    just in time; the generic x86-64 target runs the elementwise loops up to 8x slower, without SIMD floor), so a
    package copied to another CPU finds no build of its name and compiles just in time instead of running
    instructions its CPU may lack. Linux: the first processor's model and flags; elsewhere the platform's names."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            first = f.read(1 << 16).split("\n\n", 1)[0]
        fields = [line for line in first.splitlines()
                  if line.split(":", 1)[0].strip() in ("vendor_id", "model name", "flags", "Features", "CPU part")]
        if fields:
            return "\n".join(fields)
    except OSError:
        pass
    import platform

    return f"{platform.machine()} {platform.processor()} {platform.platform()}"


def _numba_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("numba")
    except PackageNotFoundError:
        return "none"


def module_name() -> str:
    return PREFIX + source_hash()


def aot_module():
    """The ahead-of-time module built from the current sources, or None."""
    if os.environ.get(ENV) == "jit":
        return None
    try:
        return importlib.import_module(f"{__package__}.{module_name()}")
    except ImportError:
        return None


def bind(jit_only: bool = False) -> str:
    """Bind the kernels (module docstring); returns how: "aot" or "jit"."""
    global _bound
    if _bound == "jit" or (_bound == "aot" and not jit_only):
        return _bound
    _import_all()  # every kernel registered before any is bound: one bound later would stay pending forever
    module = None if jit_only else aot_module()
    if module is None:
        import numba

        for k in _KERNELS:
            setattr(sys.modules[k.module], k.name, numba.njit(cache=True, nogil=True, **k.options)(k.function))
        _bound = "jit"
    else:
        for k in _KERNELS:
            if k.signature is not None:
                setattr(sys.modules[k.module], k.name, getattr(module, _export_name(k)))
        _bound = "aot"
    return _bound


# modules that define kernels: imported before binding or building, so every kernel is registered
KERNEL_MODULES = ("diffcode.storage.rans", "diffcode.families.pyramid.entropy", "diffcode.families.pyramid.online",
                  "diffcode.families.pyramid.layout", "diffcode.families.pyramid.engine",
                  "diffcode.families.classic.exact")


def _import_all() -> None:
    for name in KERNEL_MODULES:
        importlib.import_module(name)


def _export_name(kernel: _Kernel) -> str:
    return f"{kernel.module.rsplit('.', 1)[-1]}__{kernel.name}"


def build(output: Path = PACKAGE) -> Path:
    """Compile the exported kernels ahead of time (numba.pycc and the system's C compiler) into `output`, removing
    builds of other sources; returns the module's path."""
    import warnings

    _import_all()
    bind(jit_only=True)  # the exported loops call their callees' dispatchers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc is pending deprecation; it is still the way to build ahead
        from numba.pycc import CC, compiler

        class ReleasingFlags(compiler.Flags):  # as numba.njit(nogil=True): numba.pycc has no such option, and
            def __init__(self, *args, **kwargs):  # its wrappers would hold the GIL (no two threads' loops at once)
                super().__init__(*args, **kwargs)
                self.release_gil = True

        plain, compiler.Flags = compiler.Flags, ReleasingFlags
        cc = CC(module_name())
        cc.output_dir = str(output)
        cc.verbose = False
        cc.target_cpu = "host"  # as numba.njit compiles: the build is named after this CPU (`cpu_identity`)
        for k in _KERNELS:
            if k.signature is not None:
                cc.export(_export_name(k), k.signature)(k.function)
        try:
            cc.compile()
        finally:
            compiler.Flags = plain
    for old in output.glob(PREFIX + "*"):
        if not old.name.startswith(module_name() + "."):
            old.unlink()
    (built,) = output.glob(module_name() + ".*")
    return built


def main() -> None:
    import time

    start = time.perf_counter()
    path = build()
    print(f"built {path} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":  # run as `python -m diffcode.kernels`: the registry is the imported module's
    importlib.import_module("diffcode.kernels").main()
