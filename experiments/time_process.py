"""Time a command as a whole process: start-up, imports and file I/O included.

    python experiments/time_process.py -n 5 -- python cli.py decode kodim17.dfc -o out.png --force

Runs the command `--warmup` times uncounted, then `-n` times, and prints the minimum, median and
maximum of the wall seconds, the CPU seconds (user + system of the finished child) and the peak
memory (the child's largest resident set). Quote the median. The command's output is discarded
unless --show; a run that exits non-zero stops the timing with its exit code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def run_once(command: list[str], show: bool) -> tuple[float, float, float]:
    """(wall s, cpu s, peak MiB) of one run of `command`."""
    out = None if show else subprocess.DEVNULL
    t0 = time.perf_counter()
    process = subprocess.Popen(command, stdout=out, stderr=out)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0  # Linux: ru_maxrss in KiB


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--show", action="store_true", help="let the command print")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.runs < 1:
        ap.error("give a command after -- and at least one run")
    for _ in range(args.warmup):
        run_once(command, args.show)
    runs = [run_once(command, args.show) for _ in range(args.runs)]
    print(f"{len(runs)} runs of: {' '.join(command)}  (load average {os.getloadavg()[0]:.2f} at the end)")
    for name, values in zip(("wall s", "cpu s", "peak MiB"), zip(*runs)):
        print(f"  {name:9s} min {min(values):9.3f}  median {statistics.median(values):9.3f}  max {max(values):9.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
