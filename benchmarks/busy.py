"""Wall time and busy core-seconds of whole commands, alternated, on a noisy machine.

    python benchmarks/busy.py --runs 2 -- "python -m pytest -q -n auto" \
        --in /tmp/old "python -m pytest -q -n auto"

Each command runs in its folder (`--in DIR` before it; default the current one), and the
commands take turns `--runs` times, so a host that speeds up or slows down meanwhile moves
them alike. Busy and idle time come from /proc/stat around each run: every process counts
(Chromium, servers, subprocesses), which the command's own rusage would miss. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(busy, idle) jiffies of all cores since boot."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal, idle + iowait


def run(command: str, folder: str) -> tuple[float, float, float, int]:
    """(wall s, busy core-s, idle core-s, exit code) of `command` run by the shell."""
    busy0, idle0 = cpu_ticks()
    start = time.perf_counter()
    code = subprocess.run(command, shell=True, cwd=folder, stdout=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - start
    busy1, idle1 = cpu_ticks()
    return wall, (busy1 - busy0) / TICK, (idle1 - idle0) / TICK, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="turns of each command")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- [--in DIR] CMD ...")
    args = parser.parse_args()
    commands, folder = [], "."
    words = [w for w in args.rest if w != "--"]
    while words:
        word = words.pop(0)
        if word == "--in":
            folder = words.pop(0)
        else:
            commands.append((word, folder))
            folder = "."
    if not commands:
        parser.error("no command given")
    print("| run | folder | command | wall s | busy core-s | idle core-s | exit |")
    print("|---|---|---|---:|---:|---:|---:|")
    for turn in range(args.runs):
        for command, where in commands:
            wall, busy, idle, code = run(command, where)
            cells = [str(turn + 1), where, f"`{command}`", f"{wall:.1f}", f"{busy:.1f}"]
            print("| " + " | ".join([*cells, f"{idle:.1f}", str(code)]) + " |")


if __name__ == "__main__":
    main()
