"""The compiled loops (`diffcode.kernels`): the ahead-of-time module and numba's just-in-time dispatchers decode the
same pixels, and a decode that finds the built module imports no numba."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcode import api, kernels

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"

DECODE = """
import hashlib, json, sys
from pathlib import Path
from diffcode import codec
out = {}
for path in sys.argv[1:]:
    image = codec.load(Path(path).read_bytes())
    out[Path(path).name] = hashlib.sha256(image.tobytes()).hexdigest()
print(json.dumps({"pixels": out, "numba": "numba" in sys.modules}))
"""


def _decode_in_process(paths: list[Path], mode: str, threads: int | None = None) -> dict:
    env = dict(os.environ)
    env.pop(kernels.ENV, None)
    if threads:  # the engine's threads and numpy's BLAS's
        env.update({name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    if mode == "jit":
        env[kernels.ENV] = "jit"
    out = subprocess.run([sys.executable, "-c", DECODE, *map(str, paths)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[list[Path], dict]:
    """The pyramid golden files and a 96x128 file coded here (more chunks and contexts than the golden ones, and
    groups of more than one block of the engine's rows), with the sha256 of their pixels."""
    manifest = json.loads((GOLDEN / "manifest.json").read_text())["files"]
    expected = {e["file"]: e["pixels_sha256"] for e in manifest if e["variant"] == "pyramid"}
    paths = [GOLDEN / name for name in expected]
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:96, :128]
    image = np.clip(np.stack([x * 3, y * 4, x + y], -1) + rng.integers(-9, 10, (96, 128, 3)), 0, 255).astype(np.uint8)
    data = api.compress(image, variant="pyramid", preset="instant")
    path = tmp_path_factory.mktemp("kernels") / "ramp.dfc"
    path.write_bytes(data)
    expected[path.name] = hashlib.sha256(image.tobytes()).hexdigest()
    return paths + [path], expected


def test_just_in_time_kernels_decode_the_files(files):
    paths, expected = files
    assert _decode_in_process(paths, "jit") == {"pixels": expected, "numba": True}


def test_ahead_of_time_kernels_decode_the_files_without_numba(files):
    if kernels.aot_module() is None:
        pytest.skip("the ahead-of-time module is not built from these sources: run python -m diffcode.kernels")
    paths, expected = files
    assert _decode_in_process(paths, "aot") == {"pixels": expected, "numba": False}


@pytest.mark.parametrize("threads", [1, 2])
def test_one_or_two_threads_decode_the_same_pixels(files, threads):
    """The engine's products are exact in any summation order and its blocks of rows are computed apart, so neither
    its threads (`parallel.threads`, from OMP_NUM_THREADS here) nor BLAS's can change a pixel."""
    paths, expected = files
    assert _decode_in_process(paths, "aot", threads)["pixels"] == expected


def test_the_command_line_decode_imports_no_numba(files, tmp_path):
    """`diffcode decode` as a user runs it (typer, the batch runner, the jobs module) keeps numba out too, and
    tqdm where no progress bar can show."""
    if kernels.aot_module() is None:
        pytest.skip("the ahead-of-time module is not built from these sources: run python -m diffcode.kernels")
    paths, _ = files
    script = ("import runpy, sys\n"
              f"sys.argv = ['cli.py', 'decode', {str(paths[-1])!r}, '-o', {str(tmp_path / 'out.png')!r}, '-q']\n"
              "try:\n    runpy.run_path('cli.py', run_name='__main__')\nexcept SystemExit as exit:\n"
              "    assert not exit.code, exit.code\n"
              "print(sorted(m for m in ('numba', 'llvmlite', 'scipy', 'torch', 'tqdm') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != kernels.ENV}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]" and (tmp_path / "out.png").exists()


def test_kernels_of_modules_imported_after_the_first_call_are_bound(files):
    """The classic family's loops run first (as in `compress`'s mode decision), then a pyramid decode imports the
    pyramid's modules: their kernels must be bound too (they were left pending, and called themselves forever)."""
    if kernels.aot_module() is None:
        pytest.skip("the ahead-of-time module is not built from these sources: run python -m diffcode.kernels")
    paths, expected = files
    script = ("import sys\nimport numpy as np\nfrom diffcode import api\n"
              "assert 'diffcode.families.pyramid.engine' not in sys.modules\n"
              "api.compress(np.zeros((8, 8, 3), np.uint8), variant='classic')\n" + DECODE)
    env = {k: v for k, v in os.environ.items() if k != kernels.ENV}
    out = subprocess.run([sys.executable, "-c", script, *map(str, paths)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["pixels"] == expected


def test_a_build_from_other_sources_is_not_used(tmp_path, monkeypatch):
    """The module's name is a hash of the sources: an edited source names another module."""
    copy = tmp_path / "diffcode"
    shutil.copytree(kernels.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data", "_kernels_*"))
    monkeypatch.setattr(kernels, "PACKAGE", copy)
    before = kernels.module_name()
    entropy = copy / "families" / "pyramid" / "entropy.py"
    entropy.write_text(entropy.read_text().replace("PRECISION = 24", "PRECISION = 24  # edited"))
    assert kernels.module_name() != before


def test_every_module_with_kernels_is_built():
    """`python -m diffcode.kernels` compiles the kernels of the modules it imports (KERNEL_MODULES): a module whose
    kernels it did not import would run them just in time, numba's start-up and all."""
    using = {".".join(path.relative_to(ROOT).with_suffix("").parts) for path in kernels.PACKAGE.rglob("*.py")
             if path.name != "kernels.py" and "@kernels.jit" in path.read_text()}
    assert using == set(kernels.KERNEL_MODULES)
