"""A README command on a busy machine: run it while a CPU-bound process of the same priority spins on every
core the whole time, and report its wall time beside the quiet machine's (run without ``--busy``).

    python benchmarks/busy_machine.py --busy make book
    python benchmarks/busy_machine.py make book

The spinners start before the command and stop when it ends, also when it fails or is interrupted.
"""
import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time


def spin():
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="one spinning process per core")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    spinners = [mp.Process(target=spin, daemon=True) for _ in range(os.cpu_count() if args.busy else 0)]
    for p in spinners:
        p.start()
    start = time.perf_counter()
    try:
        rc = subprocess.call(args.command)
    finally:
        for p in spinners:
            p.terminate()
    print(f"{' '.join(args.command)}: exit {rc}, {time.perf_counter() - start:.0f} s, "
          f"{'busy: ' + str(len(spinners)) + ' spinning processes' if args.busy else 'quiet'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
