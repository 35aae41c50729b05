"""Training benchmark (issue 4): the adding problem, ours vs PyTorch CPU in the same run.

Run from the repo root:

    python benchmarks/training.py [--steps 1500] [--cells lstm,gru,rnn_tanh] [--seed 0]
                                  [--torch-dtypes float32,float64] [--torch-threads N]
                                  [--skip-torch]

Setup, identical on both sides: the adding problem (`make_task("adding", length=50)`,
T=50, 2 inputs, regression head on the last position), hidden size 32, 1 layer,
batch 32, Adam lr 0.01 (PyTorch defaults otherwise), global gradient-norm clipping at
1.0, `--steps` steps, seed `--seed`.

- ours    `app.rnn.train.train(...)` with probe_every = steps, so the only probes are
          the one before step 1 and the one after the last step; neither is timed.
          float64 numpy. Every step also records the loss, the gradient norm and the
          (L, D, T) gradient profile, as the app streams them.
- torch   nn.LSTM / nn.GRU / nn.RNN(tanh), batch_first, + nn.Linear on output[:, -1];
          mse_loss, backward, clip_grad_norm_(1.0), torch.optim.Adam(lr=0.01), loss.item()
          each step. Started from *our* initial weights (init_params(config, seed)),
          cast to the dtype, and fed the *same* batches: the task sampler driven by the
          same seeded numpy stream train() uses, converted with torch.from_numpy.

Timed: the training loop only (steps 1..N, including batch sampling and, for torch,
conversion), with time.perf_counter; steps/s = N / seconds. Eval MSE: the trained
weights on `held_out(task, seed, 1000)` (1,000 fresh sequences, independent of every
training stream), forward only, in the model's own dtype.

Goals (issue 4): LSTM and GRU eval MSE < 0.01; tanh RNN eval MSE near 0.167 (here:
within +-0.02 of the held-out set's own variance-of-targets baseline, which predicting
the mean scores); our steps/s >= 0.5x PyTorch float32's for every cell. This is a
measurement, not a test: it exits 0 whether or not the goals are met.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from machine import code_version, cpu_model, system_busy_seconds  # noqa: E402 - benchmarks/ is on sys.path

from app.rnn.config import CELLS, ModelConfig  # noqa: E402
from app.rnn.optim import OptimizerConfig  # noqa: E402
from app.rnn.params import init_params  # noqa: E402
from app.rnn.tasks import Task, make_task  # noqa: E402
from app.rnn.train import (  # noqa: E402
    Finished,
    Probe,
    Progress,
    TrainConfig,
    _rngs,  # the batch stream train() draws from, so torch sees the very same batches
    evaluate,
    held_out,
)
from app.rnn.train import train as train_ours  # noqa: E402

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:  # torch is optional: ours is still measured
    torch = None  # type: ignore[assignment]

LENGTH = 50
HIDDEN = 32
BATCH = 32
LEARNING_RATE = 0.01
CLIP_NORM = 1.0
EVAL_SIZE = 1000
MSE_GOAL = 0.01  # LSTM and GRU must get below this
TANH_BAND = 0.02  # the tanh RNN must stay within this of the predict-the-mean baseline
SPEED_GOAL = 0.5  # ours / torch float32 steps per second
BUSY_WARN = 0.2  # cores of background load that make a timing suspect


# ----------------------------------------------------------------------------- machine


class LoadMeter:
    """Background load while a block runs: CPU used by anything but this process, in
    cores (0.0 = otherwise idle; ~1.0 = another process held a whole core)."""

    def start(self) -> None:
        self.busy0, self.own0 = system_busy_seconds(), time.process_time()
        self.wall0 = time.perf_counter()

    def stop(self) -> tuple[float, float, float | None]:
        """(wall seconds, this process's CPU seconds (all its threads), background cores
        or None where /proc/stat is missing)."""
        wall = time.perf_counter() - self.wall0
        busy1, own1 = system_busy_seconds(), time.process_time()
        own = own1 - self.own0
        if self.busy0 is None or busy1 is None or wall <= 0:
            return wall, own, None
        return wall, own, max(0.0, ((busy1 - self.busy0) - own) / wall)


def _openblas() -> ctypes.CDLL | None:
    """numpy's OpenBLAS, already loaded into this process, found via /proc/self/maps."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _blas_call(lib: ctypes.CDLL, stem: str, restype: type) -> object | None:
    """Call the first exported variant of an OpenBLAS query (plain, 64_ or scipy_ names)."""
    for name in (
        f"openblas_{stem}",
        f"openblas_{stem}64_",
        f"scipy_openblas_{stem}64_",
        f"scipy_openblas_{stem}",
    ):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            return fn()
    return None


def blas_facts() -> str:
    """numpy's BLAS: name, version, threads and the core type it picked."""
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = cfg["Build Dependencies"]["blas"]
        name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - informational only
        name = "unknown"
    lib = _openblas()
    if lib is None:
        return f"{name} (threads: unknown)"
    threads = _blas_call(lib, "get_num_threads", ctypes.c_int)
    core = _blas_call(lib, "get_corename", ctypes.c_char_p)
    core_text = core.decode() if isinstance(core, bytes) else "?"
    return f"{name}, threads {threads}, core {core_text}"


def machine_facts() -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    facts = [
        f"code     {code_version('app/rnn')}",
        f"python   {platform.python_version()} ({platform.machine()}, {platform.system()})",
        f"cpu      {cpu_model()}; usable cores {usable}, os.cpu_count {os.cpu_count()}",
        f"numpy    {np.__version__}, BLAS {blas_facts()}",
    ]
    if torch is not None:
        facts.append(
            f"torch    {torch.__version__}, intra-op threads {torch.get_num_threads()} "
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
    try:
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        facts.append(f"loadavg  {load} (1/5/15 min, at start)")
    except OSError:
        pass
    return facts


# ----------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One training run: who, which cell, how well and how fast."""

    engine: str  # "ours", "torch float32", "torch float64"
    cell: str
    eval_mse: float
    seconds: float  # wall
    cpu_seconds: float  # this process, all threads
    steps: int
    background: float | None
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # wall time of each step

    @property
    def steps_per_second(self) -> float:
        """The headline figure: steps over the wall time of the whole loop."""
        return self.steps / self.seconds

    @property
    def median_steps_per_second(self) -> float:
        """1 / median step time: less sensitive to bursts of other work than the mean."""
        return 1.0 / float(np.median(self.step_seconds))


def run_ours(task: Task, cell: str, steps: int, seed: int, eval_set) -> Run:
    config = task.config(cell=cell, hidden_size=HIDDEN)
    settings = TrainConfig(
        batch_size=BATCH, steps=steps, clip_norm=CLIP_NORM, seed=seed, probe_every=steps
    )
    meter = LoadMeter()
    losses: list[float] = []
    step_seconds: list[float] = []
    params = None
    seconds, cpu, background = float("nan"), float("nan"), None
    last = 0.0
    for record in train_ours(config, task, OptimizerConfig("adam", LEARNING_RATE), settings):
        if isinstance(record, Probe) and record.step == 0:
            meter.start()  # the initial probe is done; step 1 starts now
            last = time.perf_counter()
        elif isinstance(record, Progress):
            now = time.perf_counter()
            step_seconds.append(now - last)
            last = now
            losses.append(record.loss)
            if record.step == steps:
                seconds, cpu, background = meter.stop()  # before the final probe
        elif isinstance(record, Finished):
            params = record.params
    assert params is not None
    mse = evaluate(config, params, *eval_set)
    return Run("ours", cell, mse, seconds, cpu, steps, background, losses, step_seconds)


TORCH_CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN"}


def build_torch(config: ModelConfig, seed: int, dtype):
    """nn.LSTM/GRU/RNN(tanh) + nn.Linear holding our initial weights, in `dtype`."""
    kind = TORCH_CLASSES[config.cell]
    kwargs = {"nonlinearity": "tanh"} if kind == "RNN" else {}
    rnn = getattr(nn, kind)(config.input_size, config.hidden_size, batch_first=True, **kwargs)
    head = nn.Linear(config.hidden_size, config.output_size)
    rnn, head = rnn.to(dtype), head.to(dtype)
    start = init_params(config, seed)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, name).copy_(torch.from_numpy(start[f"rnn.{name}"]))
        head.weight.copy_(torch.from_numpy(start["head.weight"]))
        head.bias.copy_(torch.from_numpy(start["head.bias"]))
    return rnn, head


def run_torch(task: Task, cell: str, steps: int, seed: int, eval_set, dtype) -> Run:
    config = task.config(cell=cell, hidden_size=HIDDEN)
    rnn, head = build_torch(config, seed, dtype)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=LEARNING_RATE)
    batch_rng, _ = _rngs(seed)
    losses: list[float] = []
    step_seconds: list[float] = []
    meter = LoadMeter()
    meter.start()
    last = time.perf_counter()
    for _ in range(steps):
        x_np, y_np = task.sample(batch_rng, BATCH)
        x = torch.from_numpy(x_np).to(dtype)
        y = torch.from_numpy(y_np).to(dtype)
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = F.mse_loss(head(out[:, -1]), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
        opt.step()
        losses.append(loss.item())
        now = time.perf_counter()
        step_seconds.append(now - last)
        last = now
    seconds, cpu, background = meter.stop()
    with torch.no_grad():
        x = torch.from_numpy(eval_set[0]).to(dtype)
        y = torch.from_numpy(eval_set[1]).to(dtype)
        out, _ = rnn(x)
        mse = F.mse_loss(head(out[:, -1]), y).item()
    name = "torch " + str(dtype).removeprefix("torch.")
    return Run(name, cell, mse, seconds, cpu, steps, background, losses, step_seconds)


# ----------------------------------------------------------------------------- report


def _bg(run: Run) -> str:
    return "n/a" if run.background is None else f"{run.background:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per run")
    parser.add_argument(
        "--cells", default="lstm,gru,rnn_tanh", help="comma-separated: lstm, gru, rnn_tanh"
    )
    parser.add_argument("--seed", type=int, default=0, help="init, batches and held-out set")
    parser.add_argument(
        "--torch-dtypes",
        default="float32,float64",
        help="comma-separated torch dtypes to train (float32 is the speed reference)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) first (default: leave torch's own choice)",
    )
    parser.add_argument("--skip-torch", action="store_true", help="measure ours only")
    args = parser.parse_args(argv)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in TORCH_CLASSES]
    if bad or not cells:
        parser.error(f"--cells: choose from {', '.join(TORCH_CLASSES)} (got {args.cells!r})")
    assert set(TORCH_CLASSES) <= set(CELLS)
    if args.steps < 1 or args.seed < 0:
        parser.error("--steps must be positive and --seed non-negative")
    use_torch = torch is not None and not args.skip_torch
    if args.torch_threads is not None:
        if args.torch_threads < 1:
            parser.error("--torch-threads must be positive")
        if torch is not None:
            torch.set_num_threads(args.torch_threads)
    dtypes = []
    if use_torch:
        for name in args.torch_dtypes.split(","):
            dtype = getattr(torch, name.strip(), None)
            if dtype not in (torch.float32, torch.float64):
                parser.error(f"--torch-dtypes: float32 and/or float64, got {name!r}")
            dtypes.append(dtype)

    task = make_task("adding", length=LENGTH)
    eval_set = held_out(task, args.seed, EVAL_SIZE)
    baseline = float(np.var(eval_set[1]))  # MSE of predicting the held-out mean

    print("Training benchmark: the adding problem, ours vs PyTorch CPU")
    print(
        f"T={LENGTH} H={HIDDEN} batch {BATCH}, Adam lr {LEARNING_RATE}, clip_norm {CLIP_NORM}, "
        f"{args.steps} steps, seed {args.seed}; eval on {EVAL_SIZE} held-out sequences"
    )
    for line in machine_facts():
        print("  " + line)
    print(f"  held-out baseline (predict the mean): MSE {baseline:.4f}")
    if torch is None:
        print("  PyTorch is not installed: ours only; speed goals are skipped.")
    elif args.skip_torch:
        print("  --skip-torch: ours only; speed goals are skipped.")
    print(flush=True)

    runs: dict[tuple[str, str], Run] = {}
    for cell in cells:
        for dtype in [None, *dtypes]:  # None: ours; then torch in each dtype
            if dtype is None:
                run = run_ours(task, cell, args.steps, args.seed, eval_set)
            else:
                run = run_torch(task, cell, args.steps, args.seed, eval_set, dtype)
            runs[(cell, run.engine)] = run
            print(
                f"  {cell:<8} {run.engine:<14} eval MSE {run.eval_mse:.5f}  "
                f"{run.steps_per_second:7.1f} steps/s (median step: "
                f"{run.median_steps_per_second:.1f}/s; {run.seconds:.1f} s wall, "
                f"{1e3 * run.cpu_seconds / run.steps:.1f} CPU ms/step, bg cores {_bg(run)})",
                flush=True,
            )
    print()

    engines = ["ours"] + ["torch " + str(d).removeprefix("torch.") for d in dtypes]
    header = f"{'cell':<9}" + "".join(f"{e + ' MSE':>20}" for e in engines)
    header += "".join(f"{e + ' steps/s':>24}" for e in engines)
    if dtypes:
        header += f"{'ours/torch f32':>16}{'(median steps)':>16}"
    print(header)
    for cell in cells:
        row = f"{cell:<9}"
        row += "".join(f"{runs[(cell, e)].eval_mse:>20.5f}" for e in engines)
        row += "".join(f"{runs[(cell, e)].steps_per_second:>24.1f}" for e in engines)
        if "torch float32" in engines:
            ratio = (
                runs[(cell, "ours")].steps_per_second
                / runs[(cell, "torch float32")].steps_per_second
            )
            median_ratio = (
                runs[(cell, "ours")].median_steps_per_second
                / runs[(cell, "torch float32")].median_steps_per_second
            )
            row += f"{ratio:>16.2f}{median_ratio:>16.2f}"
        print(row)
    busy = [
        f"{r.cell}/{r.engine} ({_bg(r)})"
        for r in runs.values()
        if r.background is not None and r.background > BUSY_WARN
    ]
    if busy:
        print(
            f"WARNING: other processes used CPU while timing {', '.join(busy)} "
            f"(bg cores > {BUSY_WARN}); those steps/s are low and noisy: rerun on a quiet "
            "machine."
        )
    print()

    print("goals:")
    for cell in cells:
        ours = runs[(cell, "ours")]
        if cell == "rnn_tanh":
            ok = abs(ours.eval_mse - baseline) <= TANH_BAND
            goal = f"eval MSE within {TANH_BAND} of {baseline:.3f} (no learning)"
        else:
            ok = ours.eval_mse < MSE_GOAL
            goal = f"eval MSE < {MSE_GOAL}"
        print(f"  {cell:<8} {goal:<44} {ours.eval_mse:.5f}  {'PASS' if ok else 'FAIL'}")
    for cell in cells:
        if (cell, "torch float32") in runs:
            ours = runs[(cell, "ours")]
            ref = runs[(cell, "torch float32")]
            ratio = ours.steps_per_second / ref.steps_per_second
            verdict = "PASS" if ratio >= SPEED_GOAL else "FAIL"
            noisy = [
                r for r in (ours, ref) if r.background is not None and r.background > BUSY_WARN
            ]
            if noisy:
                verdict += (
                    " (unreliable: background load while timing "
                    + ", ".join(r.engine for r in noisy)
                    + ")"
                )
        else:
            ratio, verdict = float("nan"), "SKIP (no torch float32 run)"
        goal = f"steps/s >= {SPEED_GOAL} x torch float32"
        ratio_text = "n/a" if np.isnan(ratio) else f"{ratio:.2f}x"
        print(f"  {cell:<8} {goal:<44} {ratio_text}  {verdict}")
    if any(r.engine != "ours" for r in runs.values()):
        print()
        print("cross-check (same initial weights, same batches):")
        for (cell, engine), run in runs.items():
            if engine == "ours":
                continue
            ours = runs[(cell, "ours")]
            first = abs(ours.losses[0] - run.losses[0])
            print(
                f"  {cell:<8} {engine:<14} |step-1 loss ours - torch| {first:.1e}; "
                f"mean loss over the last 100 steps: ours {np.mean(ours.losses[-100:]):.5f}, "
                f"torch {np.mean(run.losses[-100:]):.5f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
