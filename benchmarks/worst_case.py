"""Worst cases within the default caps (issue 10): time and peak memory.

Run from the repo root:

    OPENBLAS_NUM_THREADS=1 python benchmarks/worst_case.py [--quick] [--repeats 3]
    OPENBLAS_NUM_THREADS=1 python benchmarks/worst_case.py --truncation

Engine section: one trace (`run_sequence`, forward + full BPTT, regression head, sequence
mode, input_size 1) with and without Jacobian norms, over a grid of cells, hidden sizes,
depths and lengths up to the caps (LSTM, 4 layers, bidirectional, hidden 128, length
1000). Each case runs in its own child process so its peak RSS is its own; the child
reports the median CPU time (process_time, which background load distorts less than wall
time) and wall time of `--repeats` runs after a warm-up, the tracemalloc peak of one run,
and the process's peak RSS. `ratio` is CPU time with Jacobians over without, both measured
in the same child. `--truncation`: truncated against full BPTT on the same traces (CPU
time, tracemalloc peak). This is a measurement, not a test: it exits 0 whatever the
numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from machine import code_version, cpu_model, system_busy_seconds  # noqa: E402

from app.rnn import ModelConfig, init_params, run_sequence  # noqa: E402

HEAVIEST = ("lstm", 128, 4, True, 1000)
GRID = [
    (cell, H, L, bi, T)
    for cell in ("rnn_tanh", "gru", "lstm")
    for H in (8, 32, 128)
    for L, bi in ((1, False), (4, True))
    for T in (100, 1000)
]


def run_case(cell: str, H: int, L: int, bi: bool, T: int, repeats: int) -> dict:
    """In the child: time one trace without and with Jacobians; memory of the second."""
    config = ModelConfig(cell=cell, input_size=1, hidden_size=H, num_layers=L, bidirectional=bi)
    params = init_params(config, seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((T, 1)), rng.standard_normal((T, 1))
    result: dict = {"case": [cell, H, L, bi, T]}
    for jac in (False, True):
        run_sequence(config, params, x, y, jacobians=jac)  # warm-up
        cpu, wall = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            run_sequence(config, params, x, y, jacobians=jac)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        key = "jac" if jac else "plain"
        result[f"{key}_cpu"] = statistics.median(cpu)
        result[f"{key}_wall"] = statistics.median(wall)
    tracemalloc.start()
    run_sequence(config, params, x, y, jacobians=True)
    result["jac_traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


TRUNCATIONS = [
    # (cell, H, L, bidirectional, T, truncate): the case, then deeper and wider
    ("lstm", 128, 1, False, 1000, None),
    ("lstm", 128, 1, False, 1000, 999),
    ("lstm", 128, 1, False, 1000, 998),
    ("lstm", 128, 1, False, 1000, 300),
    ("lstm", 128, 1, False, 1000, 100),
    ("lstm", 128, 1, False, 1000, 10),
    ("lstm", 128, 4, True, 1000, None),
    ("lstm", 128, 4, True, 1000, 10),
    ("lstm", 128, 4, True, 1000, 50),
    ("lstm", 128, 4, False, 1000, 100),
]


def truncation_table() -> None:
    """Truncated BPTT against full BPTT on the same trace: CPU time and traced peak."""
    print(
        f"{'cell':6}{'H':>4}{'L':>3}{'D':>3}{'T':>6}{'truncate':>10}{'ran':>6}"
        f"  {'ms':>9}{'peak MB':>9}"
    )
    for cell, H, L, bi, T, k in TRUNCATIONS:
        config = ModelConfig(cell=cell, input_size=1, hidden_size=H, num_layers=L, bidirectional=bi)
        params = init_params(config, seed=0)
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((T, 1)), rng.standard_normal((T, 1))
        c0 = time.process_time()
        tracemalloc.start()
        trace = run_sequence(config, params, x, y, truncate=k)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        ms = (time.process_time() - c0) * 1e3  # includes tracemalloc's own overhead
        ran = "full" if trace.truncate is None else str(trace.truncate)
        print(
            f"{cell:6}{H:>4}{L:>3}{2 if bi else 1:>3}{T:>6}{k!s:>10}{ran:>6}"
            f"  {ms:>9.0f}{peak:>9.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the heaviest trace")
    parser.add_argument("--truncation", action="store_true", help="the truncated-BPTT table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # the child's entry point
    args = parser.parse_args()
    if args.case:
        cell, H, L, bi, T = json.loads(args.case)
        print(json.dumps(run_case(cell, H, L, bi, T, args.repeats)))
        return

    print(f"code {code_version()}; cpu {cpu_model()}; numpy {np.__version__}")
    if args.truncation:
        truncation_table()
        return
    cases = [HEAVIEST] if args.quick else GRID
    busy0, wall0 = system_busy_seconds(), time.perf_counter()
    print(
        f"{'cell':9}{'H':>4}{'L':>3}{'D':>3}{'T':>6}  {'plain ms':>9}{'jac ms':>10}"
        f"{'ratio':>7}{'wall ratio':>11}{'traced MB':>10}{'RSS MB':>8}"
    )
    worst = 0.0
    for case in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--case", json.dumps(case), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout)
        cell, H, L, bi, T = case
        ratio = r["jac_cpu"] / r["plain_cpu"]
        worst = max(worst, ratio)
        print(
            f"{cell:9}{H:>4}{L:>3}{2 if bi else 1:>3}{T:>6}  {r['plain_cpu'] * 1e3:>9.1f}"
            f"{r['jac_cpu'] * 1e3:>10.1f}{ratio:>7.1f}{r['jac_wall'] / r['plain_wall']:>11.1f}"
            f"{r['jac_traced_peak_mb']:>10.1f}{r['peak_rss_mb']:>8.0f}",
            flush=True,
        )
    busy1, wall1 = system_busy_seconds(), time.perf_counter()
    if busy0 is not None and busy1 is not None:
        print(f"machine busy: {(busy1 - busy0) / (wall1 - wall0):.2f} cores on average")
    print(f"worst Jacobians-on/off CPU ratio: {worst:.1f}x")


if __name__ == "__main__":
    main()
