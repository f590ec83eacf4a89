"""Files whose header declares a larger image than they hold: peak memory and time of their refusal.

    python experiments/crafted_sizes.py [--families per-pixel,weights,pyramid] [--sides 2000,4000]
                                        [--image 32] [--memory-gib 12] [--name crafted-sizes]

For each family, a real file of a --image x --image crop of kodim23 (the family's default preset
with 3 fit steps: the per-image weights are there, only less fitted) has its header's height and
width set to S x S with the CRC fixed (every section kept), and is decoded in a fresh child process
as `diffcode decode` does (`codec.load_image`), limited to --memory-gib of address space (so a
regression cannot take the shared machine's memory). Each row: how the decode ended, its wall
time and the child's peak resident memory (VmHWM of /proc/self/status: ru_maxrss can
include the parent's memory from before the exec). Writes
experiments/results/<name>.md|csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

COLUMNS = ["family", "file_bytes", "declared", "outcome", "seconds", "peak_rss_mib", "detail"]

CHILD = r"""
import json, resource, sys, time
limit = int(float(sys.argv[2]) * (1 << 30))
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
from diffcode import codec
from diffcode.errors import CorruptFileError, DecoderMismatchError, DiffcodeError
data = sys.stdin.buffer.read()
try:
    codec.load_image(data)
    kind, detail = "decoded", ""
except (CorruptFileError, DecoderMismatchError) as exc:
    kind, detail = "refused", f"{type(exc).__name__}: {exc}"
except DiffcodeError as exc:
    kind, detail = "refused", f"{type(exc).__name__}: {exc}"
except BaseException as exc:
    kind, detail = "other", f"{type(exc).__name__}: {exc}"
seconds = time.perf_counter() - start
try:  # this process's own high-water mark (ru_maxrss can carry the parent's from before the exec)
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"kind": kind, "detail": detail[:300], "seconds": seconds, "peak_rss_mib": peak}))
"""


def decode_in_child(data: bytes, memory_gib: float, env: dict | None = None) -> dict:
    """How a decode of `data` ends in a fresh process: kind (refused, decoded, other), detail,
    seconds (wall, from before the first diffcode import) and peak_rss_mib."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(memory_gib)], input=data,
                          capture_output=True, check=False, env=env)
    lines = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"kind": "other", "detail": f"child died (exit {proc.returncode}): {proc.stderr.decode()[-300:]}",
                "seconds": float("nan"), "peak_rss_mib": float("nan")}
    return json.loads(lines[-1])


def with_size(data: bytes, height: int, width: int) -> bytes:
    """The same file with the header declaring height x width (CRCs recomputed, sections kept)."""
    from diffcode.storage import container

    header, sections = container.unpack(data)
    return container.pack(container.Header(**{**header.__dict__, "height": height, "width": width}), sections)


def real_file(family: str, side: int) -> bytes:
    from diffcode import api, kodak

    image = kodak.load("kodim23")
    h, w, _ = image.shape
    crop = np.ascontiguousarray(image[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2])
    fit = api.fit(crop, variant=family, steps=3, seed=0)
    return api.store(fit)[0]


def main() -> None:
    from diffcode import report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", default="per-pixel,weights,pyramid")
    parser.add_argument("--sides", default="2000,4000")
    parser.add_argument("--image", type=int, default=32, help="side of the real image the file holds")
    parser.add_argument("--memory-gib", type=float, default=12.0, help="address-space limit of each decode")
    parser.add_argument("--name", default="crafted-sizes")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args()
    rows = []
    for family in args.families.split(","):
        data = real_file(family, args.image)
        for side in [args.image] + [int(s) for s in args.sides.split(",") if s]:
            t = time.perf_counter()
            result = decode_in_child(with_size(data, side, side), args.memory_gib)
            row = {"family": family, "file_bytes": len(data), "declared": f"{side}x{side}",
                   "outcome": result["kind"], "seconds": round(result["seconds"], 2),
                   "peak_rss_mib": round(result["peak_rss_mib"]), "detail": result["detail"][:160]}
            rows.append(row)
            print(json.dumps(row), f"(child {time.perf_counter() - t:.1f} s)", flush=True)
            report.write_table(rows, args.out_dir / args.name, "python experiments/crafted_sizes.py "
                               + " ".join(sys.argv[1:]), COLUMNS)


if __name__ == "__main__":
    main()
