"""Decode a .dfc file again and again in one process: the batch and API case (issue 22, target 2).

    python experiments/decode_in_process.py kodim17.dfc [--repeats 7] [--name decode-in-process]

The first decode pays the imports' remainder, the prior's loading and the kernels' binding; the later ones
are what a batch or a server pays per file. One thread (set before numpy loads). Writes
experiments/results/<name>.md with the command, commit, machine and the load average.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import api, kernels, report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeats", type=int, default=7, help="decodes after the first")
    parser.add_argument("--name", default="decode-in-process")
    args = parser.parse_args()
    data = args.file.read_bytes()
    load_before = os.getloadavg()[0]
    times = []
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        api.decompress(data)
        times.append(time.perf_counter() - start)
    module = kernels.aot_module()
    later = times[1:]
    lines = ["# In-process decodes of one file (the batch and API case)\n",
             f"- command: `python experiments/decode_in_process.py {' '.join(sys.argv[1:])}`",
             f"- commit: {report.git_commit()}; machine: {report.machine_description()}",
             f"- file: {args.file.name}, {len(data):,} bytes; one thread; 1-minute load average {load_before:.2f} "
             f"before and {os.getloadavg()[0]:.2f} after",
             f"- compiled loops: {module.__name__ if module else 'numba, just in time'}\n",
             "| decode | seconds |", "|---|---|",
             f"| first (binds the kernels, loads the prior) | {times[0]:.3f} |",
             f"| later ones, median of {len(later)} (min {min(later):.3f}, max {max(later):.3f}) | "
             f"{statistics.median(later):.3f} |"]
    out = ROOT / "experiments" / "results" / f"{args.name}.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
