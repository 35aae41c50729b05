"""Training on a task: an iterator of progress records, ending with the trained parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from app.rnn.cancel import CancelCheck, Cancelled, check
from app.rnn.config import ModelConfig
from app.rnn.loss import loss_and_grad
from app.rnn.network import network_backward, network_forward
from app.rnn.optim import Optimizer, OptimizerConfig, clip_by_norm, clip_by_value, global_norm
from app.rnn.params import check_params, init_params
from app.rnn.spectrum import SpectrumBlock, recurrent_spectrum
from app.rnn.tasks import Task
from app.rnn.trace import Trace, check_truncate, run_sequence
from app.rnn.types import Array, Params


@dataclass(frozen=True)
class TrainConfig:
    """How to train: batch, steps, clipping, truncation, seed, and how often to look."""

    batch_size: int = 32
    steps: int = 500
    clip_norm: float | None = None  # clip the global gradient norm to this
    clip_value: float | None = None  # clamp every gradient entry to +-this
    truncate: int | None = None  # BPTT(k); None is full BPTT
    seed: int = 0  # drives init, batches, probe and eval sets
    init_scheme: str = "pytorch"
    init_scale: float = 1.0
    probe_every: int = 50  # a full probe trace and eval loss every this many steps
    eval_size: int = 200  # sequences in the fixed held-out batch used while training
    # hold every W_hh at zero: each output sees only its own input (Elman cells only)
    memoryless: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "steps", "probe_every", "eval_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        check_truncate(self.truncate)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {self.seed!r}")


@dataclass
class Progress:
    """After one optimizer step."""

    step: int  # 1-based
    loss: float  # batch loss before the update
    grad_norm: float  # global gradient norm before clipping
    grad_profile: Array  # (L, D, T) mean over the batch of ||d loss_seq / d h_t||


@dataclass
class Probe:
    """Every `probe_every` steps and at the end: the fixed probe sequence, fully traced."""

    step: int
    trace: Trace
    eval_loss: float  # on the fixed held-out batch
    spectrum: list[SpectrumBlock]  # of the recurrent weights at this step


@dataclass
class Finished:
    """The last record: the trained parameters."""

    step: int
    params: Params
    stopped: bool  # True if cancelled before all steps ran


Record = Progress | Probe | Finished


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams: training batches, and the fixed probe/eval set."""
    batches, fixed = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(batches), np.random.default_rng(fixed)


def batch_loss_and_grads(
    config: ModelConfig,
    params: Params,
    inputs: Array,
    targets: Array,
    truncate: int | None,
    cancel: CancelCheck = None,
) -> tuple[float, Params, Array]:
    """Mean loss over a batch, its gradients, and the (L, D, T) gradient profile.

    inputs (B, T, I); targets (B, T, O) / (B, O) or class indices (B, T) / (B,).
    """
    outputs, cache = network_forward(config, params, inputs, cancel)
    loss, _, d_outputs = loss_and_grad(config.head, outputs, targets)
    back = network_backward(d_outputs, cache, truncate, cancel)
    H, B = config.hidden_size, inputs.shape[0]
    profile = np.array(
        [
            [np.linalg.norm(lg.ds_total[:, :, :H], axis=2).mean(axis=1) * B for lg in layer]
            for layer in back.layers
        ]
    )  # scaled by B: each sequence's own loss gradient, comparable across batch sizes
    return loss, back.grads, profile


def evaluate(
    config: ModelConfig, params: Params, inputs: Array, targets: Array, cancel: CancelCheck = None
) -> float:
    """Mean loss on a held-out batch, forward only. inputs (B, T, I), targets as for
    `batch_loss_and_grads`; `cancel` returning True raises `Cancelled`."""
    outputs, _ = network_forward(config, params, inputs, cancel)
    return loss_and_grad(config.head, outputs, targets)[0]


def held_out(task: Task, seed: int, size: int) -> tuple[Array, Array]:
    """A fresh held-out set, independent of every stream training uses."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    return task.sample(rng, size, "test")


def held_out_loss(
    config: ModelConfig,
    params: Params,
    task: Task,
    seed: int,
    size: int = 1000,
    chunk: int = 250,
    cancel: CancelCheck = None,
) -> float:
    """Mean loss on `size` fresh held-out sequences (`held_out`), evaluated in chunks so
    memory stays bounded; what training reports as its final eval loss. `cancel`
    returning True raises `Cancelled`."""
    check(cancel)
    inputs, targets = held_out(task, seed, size)
    with np.errstate(all="ignore"):
        losses = [
            evaluate(config, params, inputs[i : i + chunk], targets[i : i + chunk], cancel)
            * len(inputs[i : i + chunk])
            for i in range(0, size, chunk)
        ]
    return float(np.sum(losses) / size)


def check_memoryless(config: ModelConfig) -> None:
    """ValueError unless W_hh at zero leaves `config` without memory: a gated cell's cell
    state (LSTM) or update gate (GRU) would still carry it."""
    if config.cell not in ("rnn_tanh", "rnn_relu"):
        raise ValueError(
            f"memoryless: needs an Elman cell (rnn_tanh or rnn_relu), got {config.cell}: an "
            "LSTM's cell state and a GRU's update gate carry memory even with W_hh at zero"
        )


def _memoryless(config: ModelConfig, params: Params) -> list[str]:
    """Zero every W_hh in place and name them."""
    check_memoryless(config)
    held = [name for name in params if ".weight_hh_" in name]
    for name in held:
        params[name][...] = 0.0
    return held


def train(
    config: ModelConfig,
    task: Task,
    optimizer: OptimizerConfig,
    settings: TrainConfig,
    params: Params | None = None,
    should_stop: Callable[[], bool] | None = None,
    cancel: CancelCheck = None,
) -> Iterator[Record]:
    """Train `config` on `task`, yielding Progress every step, Probe every `probe_every`
    steps (and at the end), and Finished last. Same arguments give bit-identical records.

    `params` continues from given weights (else fresh from the seed). `should_stop` is
    polled between steps and inside every step and probe (between positions): True ends
    training early with Finished(stopped=True) carrying the weights after the last
    completed step. `cancel` is polled the same way but raises `Cancelled` instead.
    """

    def halt() -> bool:
        return bool(
            (cancel is not None and cancel()) or (should_stop is not None and should_stop())
        )

    watch = None if cancel is None and should_stop is None else halt
    task.check_config(config)
    params = (
        check_params(config, params)
        if params is not None
        else init_params(config, settings.seed, settings.init_scheme, settings.init_scale)
    )
    held = _memoryless(config, params) if settings.memoryless else []
    batch_rng, fixed_rng = _rngs(settings.seed)
    probe_inputs, probe_targets = task.sample(fixed_rng, 1, "test")
    eval_inputs, eval_targets = task.sample(fixed_rng, settings.eval_size, "test")
    opt = Optimizer(optimizer, params)

    def probe(step: int) -> Probe:
        trace = run_sequence(
            config,
            params,
            probe_inputs[0],
            probe_targets[0],
            jacobians=True,
            truncate=settings.truncate,
            cancel=watch,
        )
        loss = evaluate(config, params, eval_inputs, eval_targets, watch)
        return Probe(step, trace, loss, recurrent_spectrum(config, params))

    done = 0  # optimizer steps completed
    with np.errstate(all="ignore"):
        try:
            yield probe(0)
            for step in range(1, settings.steps + 1):
                check(watch)
                inputs, targets = task.sample(batch_rng, settings.batch_size)
                loss, grads, profile = batch_loss_and_grads(
                    config, params, inputs, targets, settings.truncate, watch
                )
                for name in held:  # W_hh stays zero: no memory to learn with
                    grads[name][...] = 0.0
                norm = (
                    clip_by_norm(grads, settings.clip_norm)
                    if settings.clip_norm is not None
                    else global_norm(grads)
                )
                if settings.clip_value is not None:
                    clip_by_value(grads, settings.clip_value)
                # a non-finite gradient would poison every weight: skip the update, report it
                if np.isfinite(norm):
                    opt.step(params, grads)
                done = step
                yield Progress(step, loss, norm, profile)
                if step % settings.probe_every == 0 and step != settings.steps:
                    yield probe(step)
            yield probe(done)
        except Cancelled:
            if cancel is not None and cancel():
                raise
            yield Finished(done, params, stopped=True)
            return
        yield Finished(done, params, stopped=False)
