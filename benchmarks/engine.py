"""Engine benchmark (issue 2): one LSTM sequence, forward + full BPTT, ours vs PyTorch.

Run from the repo root:

    python benchmarks/engine.py [--repeats 30] [--T 100] [--H 64]

Cases (all: one sequence, batch 1, input_size 8, output_size 1, regression head,
output_mode "sequence", 1 layer, MSE loss, forward + backward):

- ours        `run_sequence(config, params, x, y, jacobians=False)`: float64 numpy,
              records every hidden/cell state, gate, per-step gradient and grad norm.
- ours+jac    the same with `jacobians=True` (adds per-step Jacobian spectral norms
              and the Jacobian-product norms).
- (a)         PyTorch `nn.LSTM(batch_first=True)` + `nn.Linear`, float32, autograd:
              forward, mse_loss, backward (grads zeroed each run). Records nothing per step.
- (b)         PyTorch `nn.LSTMCell` Python loop over t, float64, `retain_grad()` on every
              h_t and c_t, head on each h_t, mse_loss, backward.

Each case is warmed up, then timed `--repeats` times with time.perf_counter; the table
shows the median (and min) in milliseconds. This is a measurement, not a test: it exits
0 whether or not the goals are met.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from machine import code_version, cpu_model, system_busy_seconds  # noqa: E402 - benchmarks/ is on sys.path

from app.rnn import ModelConfig, init_params, run_sequence  # noqa: E402

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:  # torch is optional: ours is still timed
    torch = None  # type: ignore[assignment]

INPUT_SIZE = 8
OUTPUT_SIZE = 1
WARMUP = 5


def time_case(
    fn: Callable[[], object], repeats: int, warmup: int = WARMUP
) -> tuple[float, float, float | None]:
    """(median ms, min ms, background load) of `repeats` timed calls after `warmup` ones.

    Background load: CPU used by anything but this process while timing, in cores
    (0.0 = the machine was otherwise idle; ~1.0 = another process held a whole core).
    Resolution is a clock tick (10 ms), so short cases read coarsely.
    """
    for _ in range(warmup):
        fn()
    samples = []
    busy0, own0, wall0 = system_busy_seconds(), time.process_time(), time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    busy1, own1, wall1 = system_busy_seconds(), time.process_time(), time.perf_counter()
    background = None
    if busy0 is not None and busy1 is not None:
        background = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    return statistics.median(samples), min(samples), background


def blas_info() -> str:
    """numpy's BLAS name and version, as numpy.show_config reports it."""
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - informational only
        return "unknown (see numpy.show_config())"


def machine_facts() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    facts = [
        f"code     {code_version()}",
        f"python   {platform.python_version()} ({platform.machine()}, {platform.system()})",
        f"cpu      {cpu_model()}; nproc (usable) {usable}, os.cpu_count {os.cpu_count()}",
        f"numpy    {np.__version__}, BLAS {blas_info()}",
    ]
    if torch is not None:
        facts.append(
            f"torch    {torch.__version__}, threads {torch.get_num_threads()} "
            f"(interop {torch.get_num_interop_threads()})"
        )
    else:
        facts.append("torch    not installed")
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("OPENBLAS", "OMP_", "MKL_")) or k == "GOTO_NUM_THREADS"
    }
    shown = ", ".join(f"{k}={v}" for k, v in sorted(env.items()))
    facts.append("env      " + (shown or "(no OPENBLAS_*/OMP_*/MKL_* set)"))
    return facts


def build_torch_cases(config: ModelConfig, params: dict, x: np.ndarray, y: np.ndarray):
    """The two PyTorch closures, with our parameters loaded, plus a correctness cross-check."""
    T, H = x.shape[0], config.hidden_size

    # (a) nn.LSTM + nn.Linear, float32, cuDNN-style fused sequence op on CPU.
    lstm = nn.LSTM(INPUT_SIZE, H, batch_first=True)
    head_a = nn.Linear(H, OUTPUT_SIZE)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lstm, name).copy_(torch.from_numpy(params[f"rnn.{name}"]))
        head_a.weight.copy_(torch.from_numpy(params["head.weight"]))
        head_a.bias.copy_(torch.from_numpy(params["head.bias"]))
    xa = torch.from_numpy(x[None]).float()
    ya = torch.from_numpy(y[None]).float()
    params_a = list(lstm.parameters()) + list(head_a.parameters())

    def case_a() -> float:
        for p in params_a:
            p.grad = None
        out, _ = lstm(xa)
        loss = F.mse_loss(head_a(out), ya)
        loss.backward()
        return loss.item()

    # (b) nn.LSTMCell loop, float64, retain_grad on every h_t and c_t.
    cell = nn.LSTMCell(INPUT_SIZE, H).double()
    head_b = nn.Linear(H, OUTPUT_SIZE).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(params["rnn.weight_ih_l0"]))
        cell.weight_hh.copy_(torch.from_numpy(params["rnn.weight_hh_l0"]))
        cell.bias_ih.copy_(torch.from_numpy(params["rnn.bias_ih_l0"]))
        cell.bias_hh.copy_(torch.from_numpy(params["rnn.bias_hh_l0"]))
        head_b.weight.copy_(torch.from_numpy(params["head.weight"]))
        head_b.bias.copy_(torch.from_numpy(params["head.bias"]))
    xb = torch.from_numpy(x[None]).double()
    yb = torch.from_numpy(y[None]).double()
    params_b = list(cell.parameters()) + list(head_b.parameters())

    def run_b():
        for p in params_b:
            p.grad = None
        h = torch.zeros(1, H, dtype=torch.float64)
        c = torch.zeros(1, H, dtype=torch.float64)
        hs, cs, outs = [], [], []
        for t in range(T):
            h, c = cell(xb[:, t], (h, c))
            h.retain_grad()
            c.retain_grad()
            hs.append(h)
            cs.append(c)
            outs.append(head_b(h))
        loss = F.mse_loss(torch.stack(outs, dim=1), yb)
        loss.backward()
        return loss, hs, cs

    def case_b() -> float:
        return run_b()[0].item()

    # cross-check: same model, same numbers (float64 vs float64)
    trace = run_sequence(config, params, x, y)
    loss_b, hs, cs = run_b()
    check = {
        "loss |ours - (b)|": abs(trace.loss - loss_b.item()),
        "loss |ours - (a)|": abs(trace.loss - case_a()),
        "dL/dh_t max |ours - (b)|": float(
            np.max(np.abs(trace.grad_hidden[0, 0] - torch.cat([h.grad for h in hs]).numpy()))
        ),
        "dL/dc_t max |ours - (b)|": float(
            np.max(np.abs(trace.grad_cell[0, 0] - torch.cat([c.grad for c in cs]).numpy()))
        ),
        "dL/dW_hh max |ours - (b)|": float(
            np.max(np.abs(trace.grads["rnn.weight_hh_l0"] - cell.weight_hh.grad.numpy()))
        ),
    }
    return case_a, case_b, check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=30, help="timed runs per case (median taken)"
    )
    parser.add_argument("--T", type=int, default=100, help="sequence length")
    parser.add_argument("--H", type=int, default=64, help="hidden size")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.T < 1 or args.H < 1:
        parser.error("--repeats, --T and --H must be positive")

    config = ModelConfig(
        cell="lstm",
        input_size=INPUT_SIZE,
        hidden_size=args.H,
        num_layers=1,
        output_size=OUTPUT_SIZE,
        head="regression",
        output_mode="sequence",
    )
    params = init_params(config, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.T, INPUT_SIZE))
    y = rng.standard_normal((args.T, OUTPUT_SIZE))

    print("Engine benchmark: one LSTM sequence, forward + full BPTT")
    print(
        f"T={args.T} H={args.H} input_size={INPUT_SIZE} output_size={OUTPUT_SIZE} "
        f"regression/sequence, 1 layer, batch 1; warmup {WARMUP}, repeats {args.repeats}"
    )
    for line in machine_facts():
        print("  " + line)
    print()

    results: dict[str, tuple[float, float]] = {}
    results["ours"] = time_case(lambda: run_sequence(config, params, x, y), args.repeats)
    results["ours+jac"] = time_case(
        lambda: run_sequence(config, params, x, y, jacobians=True), args.repeats
    )

    labels = {
        "ours": "ours  run_sequence, jacobians=False (f64)",
        "ours+jac": "ours  run_sequence, jacobians=True  (f64)",
        "a": "(a)   torch nn.LSTM + Linear, autograd (f32)",
        "b": "(b)   torch LSTMCell loop + retain_grad (f64)",
    }
    check: dict[str, float] = {}
    if torch is None:
        print("PyTorch is not installed: timing ours only; goal checks are skipped.\n")
    else:
        case_a, case_b, check = build_torch_cases(config, params, x, y)
        results["a"] = time_case(case_a, args.repeats)
        results["b"] = time_case(case_b, args.repeats)

    width = max(len(labels[k]) for k in results)
    print(f"{'case':<{width}}  {'median ms':>10}  {'min ms':>9}  {'bg cores':>8}")
    busy_cases = []
    for key, (med, low, bg) in results.items():
        bg_text = "n/a" if bg is None else f"{bg:.2f}"
        print(f"{labels[key]:<{width}}  {med:>10.3f}  {low:>9.3f}  {bg_text:>8}")
        if bg is not None and bg > 0.2:
            busy_cases.append(key)
    if busy_cases:
        print(
            f"WARNING: other processes used CPU while timing {', '.join(busy_cases)} "
            "(bg cores > 0.2); those figures are inflated, rerun on a quiet machine."
        )
    print()

    ours = results["ours"][0]
    jac = results["ours+jac"][0]
    print(f"jacobians=True costs {jac - ours:.3f} ms extra ({jac / ours:.2f}x ours)")
    if "a" in results:
        a, b = results["a"][0], results["b"][0]
        print(f"ratio ours / (a) = {ours / a:.2f}   (goal <= 2.00)")
        print(f"ratio (b) / ours = {b / ours:.2f}   (goal >= 4.00)")
        print()
        ok1 = ours <= 2.0 * a
        ok2 = b >= 4.0 * ours
        print(f"goal ours <= 2x (a):             {'PASS' if ok1 else 'FAIL'}")
        print(f"goal ours >= 4x faster than (b): {'PASS' if ok2 else 'FAIL'}")
        print()
        print("cross-check (same weights and data):")
        for name, value in check.items():
            print(f"  {name:<26} {value:.2e}")
    else:
        print("goal ours <= 2x (a):             SKIP (torch not installed)")
        print("goal ours >= 4x faster than (b): SKIP (torch not installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
