"""Forecasts and the honest comparisons beside them, all on held-out data: the naive
baselines, several future values two ways (direct and recursive), the error by horizon
step, and the gap task's loss inside its gap.

Every forecasting task feeds one value per position and its first target is the next
input, so a one-step model can run free: its prediction becomes the next input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.loss import mse_forward
from app.rnn.network import network_forward
from app.rnn.task import Task
from app.rnn.train import held_out
from app.rnn.types import Array, Params

BASELINES = {
    "naive": "tomorrow = today",
    "window_mean": "window mean",
}
MODES = ("direct", "recursive")


def check_forecasting(task: Task) -> None:
    """ValueError unless `task` forecasts a series (one input, next values as targets)."""
    if task.forecast is None:
        raise ValueError(f"task.name: the {task.name} task does not forecast a series")


def baseline_predictions(task: Task, inputs: Array, horizon: int) -> dict[str, Array]:
    """What the baselines predict at every position: inputs (B, T, 1) -> (B, T, horizon).

    naive: tomorrow's price is today's, so a level is repeated and a change is 0.
    window_mean: the mean of the window's values so far (for changes: the drift so far).
    """
    check_forecasting(task)
    x = inputs[:, :, 0]  # (B, T)
    mean = np.cumsum(x, axis=1) / np.arange(1, x.shape[1] + 1)
    naive = x if task.forecast == "level" else np.zeros_like(x)
    return {
        "naive": np.repeat(naive[:, :, None], horizon, axis=2),
        "window_mean": np.repeat(mean[:, :, None], horizon, axis=2),
    }


def baseline_losses(task: Task, seed: int, size: int = 1000) -> dict[str, float]:
    """Each baseline's MSE on the held-out set `held_out(task, seed, size)`: the same
    sequences, positions, normalisation and loss as the network's held-out loss."""
    inputs, targets = held_out(task, seed, size)
    predictions = baseline_predictions(task, inputs, targets.shape[2])
    return {name: mse_forward(p, targets)[0] for name, p in predictions.items()}


def direct_forecast(config: ModelConfig, params: Params, context: Array, steps: int) -> Array:
    """A multi-output model's `steps` values after the context: context (B, T, 1) -> (B, steps)."""
    _check_model(config)
    if config.output_size < steps:
        raise ValueError(
            f"steps: the direct model forecasts {config.output_size} value(s) at once, "
            f"asked for {steps}"
        )
    with np.errstate(all="ignore"):
        outputs, _ = network_forward(config, params, context)
    return outputs[:, -1, :steps]


def recursive_forecast(config: ModelConfig, params: Params, context: Array, steps: int) -> Array:
    """Free running: each one-step prediction is appended as the next input, `steps` times.
    context (B, T, 1) -> (B, steps). The whole window is rerun each step, so a model is
    always read exactly as it was trained (from a zero state at the window's start)."""
    _check_model(config)
    sequence = context
    predictions = np.empty((context.shape[0], steps))
    with np.errstate(all="ignore"):
        for j in range(steps):
            outputs, _ = network_forward(config, params, sequence)
            predictions[:, j] = outputs[:, -1, 0]
            sequence = np.concatenate([sequence, predictions[:, j, None, None]], axis=1)
    return predictions


def horizon_errors(
    task: Task,
    seed: int,
    steps: int,
    models: dict[str, tuple[str, ModelConfig, Params]],
    size: int = 200,
) -> dict[str, Any]:
    """Mean squared error at each of `steps` future values, forecast from the end of each
    held-out window, for every model (name -> (mode, config, params), mode direct or
    recursive) and every baseline.

    Returns {"errors": name -> (steps,), "example": the first window's context, truth,
    forecasts (and dates and raw values, for a real series)}.
    """
    check_forecasting(task)
    longer = task.with_params(horizon=steps)
    inputs, targets, info = longer.sample_info(held_out_rng(seed), size, "test")
    truth = targets[:, -1, :]  # (B, steps): the values after each window's last position
    forecasts = {
        name: values[:, -1, :] for name, values in baseline_predictions(task, inputs, steps).items()
    }
    for name, (mode, config, params) in models.items():
        if mode not in MODES:
            raise ValueError(f"{name}.mode: must be one of {', '.join(MODES)}, got {mode!r}")
        run = direct_forecast if mode == "direct" else recursive_forecast
        forecasts[name] = run(config, params, inputs, steps)
    errors = {name: np.mean((f - truth) ** 2, axis=0) for name, f in forecasts.items()}
    example: dict[str, Any] = {
        "context": inputs[0, :, 0],
        "truth": truth[0],
        "forecasts": {name: f[0] for name, f in forecasts.items()},
    }
    for key in ("dates", "values"):
        if key in info:
            example[key] = info[key][0]
    return {"errors": errors, "example": example}


def held_out_rng(seed: int) -> np.random.Generator:
    """The generator `train.held_out` draws from: same seed, same held-out windows."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def probe_rng(seed: int) -> np.random.Generator:
    """The generator `train` draws its probe sequence from (its first draw, one held-out
    sequence): how the page finds the dates of the sequence a training run shows."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])


def gap_losses(
    config: ModelConfig, params: Params, task: Task, seed: int, size: int = 1000
) -> dict[str, float]:
    """The gap task's held-out MSE over all positions, inside the gap only, and outside it."""
    if not hasattr(task, "gap_mask"):
        raise ValueError(f"task.name: the {task.name} task has no gap")
    inputs, targets = held_out(task, seed, size)
    with np.errstate(all="ignore"):
        outputs, _ = network_forward(config, params, inputs)
    squared = ((outputs - targets) ** 2)[:, :, 0]  # (B, T)
    gap = task.gap_mask(inputs)
    return {
        "loss": float(squared.mean()),
        "gap_loss": float(squared[gap].mean()),
        "outside_loss": float(squared[~gap].mean()),
    }


def gap_baselines(task: Task, seed: int, size: int = 1000) -> dict[str, dict[str, float]]:
    """What needs no network, on the same held-out set as `gap_losses`: carry the last value
    before the gap across it (all one direction can know), and draw a straight line between
    the values on either side (what both directions together can know)."""
    if not hasattr(task, "gap_mask"):
        raise ValueError(f"task.name: the {task.name} task has no gap")
    inputs, targets = held_out(task, seed, size)
    values, gap = inputs[:, :, 0], task.gap_mask(inputs)  # (B, T)
    T = values.shape[1]
    start = np.argmax(gap, axis=1)  # first masked position
    end = start + gap.sum(axis=1)  # first visible position after the gap
    rows = np.arange(len(values))
    before, after = values[rows, start - 1], values[rows, end]
    fraction = (np.arange(T) - start[:, None] + 1) / (end - start + 1)[:, None]  # (B, T)
    line = before[:, None] + fraction * (after - before)[:, None]  # (B, T)
    guesses = {
        "carry_forward": np.where(gap, before[:, None], values),
        "interpolate": np.where(gap, line, values),
    }
    scores = {}
    for name, guess in guesses.items():
        squared = (guess - targets[:, :, 0]) ** 2
        scores[name] = {
            "loss": float(squared.mean()),
            "gap_loss": float(squared[gap].mean()),
            "outside_loss": float(squared[~gap].mean()),
        }
    return scores


def _check_model(config: ModelConfig) -> None:
    if config.input_size != 1 or config.head != "regression" or config.output_mode != "sequence":
        raise ValueError(
            "config: forecasting needs input_size 1, a regression head and sequence output"
        )
