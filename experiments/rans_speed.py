"""Speed of the rANS coder with the Cauchy model on a 768x512 image's worth of symbols.

    python experiments/rans_speed.py

Prints encode and decode seconds (wall and CPU); the numbers quoted in `diffcode/storage/rans.py`'s
docstring come from this script.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from diffcode.cauchy import CauchyModel  # noqa: E402
from diffcode.storage import rans  # noqa: E402


def benchmark(n_symbols: int = 768 * 512 * 3) -> None:
    """Print encode/decode seconds for ``n_symbols`` CauchyModel symbols."""
    rng = np.random.default_rng(0)
    params = np.stack([rng.integers(-4, 1025, n_symbols), rng.integers(20, 70, n_symbols)], 1)
    model = CauchyModel()
    noise = 3 * rng.standard_cauchy(n_symbols)
    symbols = np.clip(np.round(params[:, 0] / 4 + noise), 0, 255).astype(np.int64)
    clocks = [(time.perf_counter(), time.process_time())]
    data = rans.encode(symbols, params, model)
    clocks.append((time.perf_counter(), time.process_time()))
    if not np.array_equal(rans.decode(data, params, model), symbols):
        raise RuntimeError("rANS round trip failed")
    clocks.append((time.perf_counter(), time.process_time()))
    (w0, c0), (w1, c1), (w2, c2) = clocks
    print(f"{n_symbols} symbols, {len(data)} bytes: encode {w1 - w0:.3f} s wall / {c1 - c0:.3f} s cpu, "
          f"decode {w2 - w1:.3f} s wall / {c2 - c1:.3f} s cpu")


if __name__ == "__main__":
    benchmark()
