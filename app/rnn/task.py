"""What a task is: a named, parametrized, seeded generator of (inputs, targets) batches.

`sample(rng, batch_size, split)` returns inputs (B, T, I) and targets shaped for the task's
head and output mode: (B, T, O) or (B, O) for regression, (B, T) or (B,) class indices.
`split` is "train" or "test": tasks on one real series draw training windows only from
before their split and held-out windows only from after it; generated tasks draw fresh
sequences either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.types import Array

SPLITS = ("train", "test")


@dataclass(frozen=True)
class TaskSpec:
    """What a task asks of the network, and its parameters as resolved."""

    name: str
    input_size: int
    output_size: int
    head: str
    output_mode: str
    length: int  # T of every sampled sequence
    params: dict[str, Any] = field(default_factory=dict)


class Task:
    """Base class: a named, parametrized generator of (inputs, targets) batches."""

    name = ""
    title = ""
    description = ""
    defaults: dict[str, Any] = {}
    limits: dict[str, tuple[float, float]] = {}
    # forecasting tasks: "level" when an input is the series' value (tomorrow = today
    # repeats it), "change" when it is a step's change (tomorrow = today predicts 0)
    forecast: str | None = None

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"task: unknown parameter(s) {', '.join(unknown)} for {self.name}")
        self.params = {**self.defaults, **params}
        for key, (lo, hi) in self.limits.items():
            value = self.params[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not lo <= value <= hi
            ):
                raise ValueError(f"task.{key}: must be a number in [{lo:g}, {hi:g}], got {value!r}")
            if isinstance(self.defaults[key], int) and value != int(value):
                raise ValueError(f"task.{key}: must be an integer, got {value!r}")

    @property
    def spec(self) -> TaskSpec:
        raise NotImplementedError

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        raise NotImplementedError

    def sample_info(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array, dict[str, Any]]:
        """Like `sample` (same draws for the same rng), plus what the page shows beside the
        numbers: for a real series `dates` (B, T + horizon) ISO strings and the raw
        `values` on those dates; empty for generated tasks."""
        inputs, targets = self.sample(rng, batch_size, split)
        return inputs, targets, {}

    def with_params(self, **params: Any) -> Task:
        """The same task with some parameters changed (e.g. a longer horizon)."""
        return type(self)(**{**self.params, **params})

    def config(self, **overrides: Any) -> ModelConfig:
        """A ModelConfig whose sizes, head and output mode fit this task (a `last` task
        keeps an `output_mode="final"` override: the same targets, read from h_n)."""
        s = self.spec
        base = {"cell": "lstm", "hidden_size": 32}
        mode = overrides.get("output_mode")
        fitted = {
            "input_size": s.input_size,
            "output_size": s.output_size,
            "head": s.head,
            "output_mode": mode if _mode_fits(s.output_mode, mode) else s.output_mode,
        }
        return ModelConfig(**{**base, **overrides, **fitted})

    def check_config(self, config: ModelConfig) -> None:
        """ValueError naming the config field that does not fit the task."""
        s = self.spec
        for name in ("input_size", "output_size", "head", "output_mode"):
            want, got = getattr(s, name), getattr(config, name)
            if want != got and not (name == "output_mode" and _mode_fits(want, got)):
                raise ValueError(f"config.{name}: the {self.name} task needs {want!r}, got {got!r}")


def _mode_fits(wanted: str, mode: object) -> bool:
    """Whether a config's output mode serves a task asking for `wanted`."""
    # last and final both give one output per sequence, so their targets are the same
    return mode == wanted or (wanted == "last" and mode == "final")


def int_param(task: Task, key: str) -> int:
    """An integer parameter, as resolved."""
    return int(task.params[key])


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
