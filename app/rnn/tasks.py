"""Built-in training tasks: seeded generators of batches, each with its own sizes and head.

A task is built from a name and parameters (`make_task("adding", length=50)`); its
`sample(rng, batch_size)` returns inputs (B, T, I) and targets shaped for the task's head
and output mode: (B, T, O) or (B, O) for regression, (B, T) or (B,) class indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.types import Array

TEXT_PATH = Path(__file__).parent / "data" / "sonnets.txt"
MAX_CUSTOM_VALUES = 100_000


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

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        raise NotImplementedError

    def config(self, **overrides: Any) -> ModelConfig:
        """A ModelConfig whose sizes, head and output mode fit this task."""
        s = self.spec
        base = {"cell": "lstm", "hidden_size": 32}
        fitted = {
            "input_size": s.input_size,
            "output_size": s.output_size,
            "head": s.head,
            "output_mode": s.output_mode,
        }
        return ModelConfig(**{**base, **overrides, **fitted})

    def check_config(self, config: ModelConfig) -> None:
        """ValueError naming the config field that does not fit the task."""
        s = self.spec
        for name in ("input_size", "output_size", "head", "output_mode"):
            want, got = getattr(s, name), getattr(config, name)
            if want != got:
                raise ValueError(f"config.{name}: the {self.name} task needs {want!r}, got {got!r}")


def _int(task: Task, key: str) -> int:
    return int(task.params[key])


class _Forecast(Task):
    """Shared by the series tasks: predict the next `horizon` values at every position."""

    def _series(self, rng: np.random.Generator, batch_size: int, n: int) -> Array:
        raise NotImplementedError

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            self.name,
            1,
            _int(self, "horizon"),
            "regression",
            "sequence",
            _int(self, "length"),
            self.params,
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        T, k = _int(self, "length"), _int(self, "horizon")
        series = self._series(rng, batch_size, T + k)  # (B, T + k)
        inputs = series[:, :T, None]
        # target at t: the k values after position t
        windows = np.lib.stride_tricks.sliding_window_view(series[:, 1:], k, axis=1)
        return inputs, np.ascontiguousarray(windows[:, :T])


class SineTask(_Forecast):
    name = "sine"
    title = "Sum of sines"
    description = (
        "A noisy sum of two sine waves with random frequencies and phases. At every "
        "position the network sees the current value and forecasts the next `horizon` "
        "values: one step ahead, or several future values at once. Its hidden state has "
        "to carry the phase of each wave forward in time."
    )
    defaults = {"length": 40, "horizon": 1, "noise": 0.05}
    limits = {"length": (2, 1000), "horizon": (1, 20), "noise": (0, 1)}

    def _series(self, rng: np.random.Generator, batch_size: int, n: int) -> Array:
        t = np.arange(n)
        freq = rng.uniform(0.05, 0.3, size=(batch_size, 2, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(batch_size, 2, 1))
        amp = rng.uniform(0.3, 0.7, size=(batch_size, 2, 1))
        clean = np.sum(amp * np.sin(freq * t + phase), axis=1)
        return clean + self.params["noise"] * rng.standard_normal((batch_size, n))


class RandomWalkTask(_Forecast):
    name = "random_walk"
    title = "Price-like random walk"
    description = (
        "A geometric random walk, like a stock price, normalized so each sequence starts "
        "at 0 on a log scale. The network forecasts the next `horizon` values from the "
        "history so far. With no drift to find, the best forecast is close to the last "
        "value: a lesson in what a recurrent network can and cannot predict."
    )
    defaults = {"length": 40, "horizon": 1, "volatility": 0.05, "drift": 0.0}
    limits = {"length": (2, 1000), "horizon": (1, 20), "volatility": (0, 1), "drift": (-0.5, 0.5)}

    def _series(self, rng: np.random.Generator, batch_size: int, n: int) -> Array:
        steps = self.params["drift"] + self.params["volatility"] * rng.standard_normal(
            (batch_size, n)
        )
        log_price = np.cumsum(steps, axis=1)
        log_price -= log_price[:, :1]
        scale = max(self.params["volatility"] * np.sqrt(n), 1e-6)
        return log_price / scale  # keep values near unit size for any length


class AddingTask(Task):
    name = "adding"
    title = "Adding problem"
    description = (
        "Hochreiter and Schmidhuber's adding problem (1997). Two channels: random numbers "
        "in [0, 1], and a marker that is 1 at exactly two positions, one in each half. "
        "After the last position the network must output the sum of the two marked "
        "numbers. Predicting the mean scores about 0.167 MSE; doing better means carrying "
        "a number across up to `length` steps, which is where vanishing gradients bite."
    )
    defaults = {"length": 50}
    limits = {"length": (2, 1000)}

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(self.name, 2, 1, "regression", "last", _int(self, "length"), self.params)

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        T = _int(self, "length")
        values = rng.uniform(0.0, 1.0, size=(batch_size, T))
        half = T // 2
        first = rng.integers(0, half, size=batch_size)
        second = rng.integers(half, T, size=batch_size)
        markers = np.zeros((batch_size, T))
        rows = np.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = np.stack([values, markers], axis=2)
        targets = (values[rows, first] + values[rows, second])[:, None]
        return inputs, targets


class CopyTask(Task):
    name = "copy"
    title = "Copy memory"
    description = (
        "A string of `symbols` random symbols, then `delay` blank steps, then a go marker: "
        "the network must then reproduce the string, one symbol per step. Every other "
        "position should output blank. One-hot inputs, one class per symbol plus blank. "
        "Lengthen the delay to see how long each cell can hold information."
    )
    defaults = {"symbols": 5, "delay": 10, "alphabet": 8}
    limits = {"symbols": (1, 50), "delay": (0, 500), "alphabet": (2, 30)}

    @property
    def spec(self) -> TaskSpec:
        a, n, d = _int(self, "alphabet"), _int(self, "symbols"), _int(self, "delay")
        # inputs: alphabet symbols, blank, go; outputs: alphabet symbols, blank
        return TaskSpec(
            self.name, a + 2, a + 1, "classification", "sequence", 2 * n + d + 1, self.params
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        a, n, d = _int(self, "alphabet"), _int(self, "symbols"), _int(self, "delay")
        T = 2 * n + d + 1
        symbols = rng.integers(0, a, size=(batch_size, n))
        codes = np.full((batch_size, T), a)  # blank
        codes[:, :n] = symbols
        codes[:, n + d] = a + 1  # go
        inputs = np.eye(a + 2)[codes]
        targets = np.full((batch_size, T), a, dtype=np.float64)  # blank class
        targets[:, T - n :] = symbols
        return inputs, targets


class ParityTask(Task):
    name = "parity"
    title = "Delayed XOR"
    description = (
        "A stream of random bits. At each position the network outputs the XOR of the "
        "current bit and the bit seen `lag` steps earlier (bits before the start count "
        "as 0). No single input says anything about the answer: the network must keep the "
        "last `lag` bits in its state."
    )
    defaults = {"length": 30, "lag": 3}
    limits = {"length": (2, 1000), "lag": (1, 100)}

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            self.name, 1, 2, "classification", "sequence", _int(self, "length"), self.params
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        T, lag = _int(self, "length"), _int(self, "lag")
        bits = rng.integers(0, 2, size=(batch_size, T))
        earlier = np.zeros_like(bits)
        earlier[:, lag:] = bits[:, : T - lag] if lag < T else 0
        return bits[:, :, None].astype(np.float64), (bits ^ earlier).astype(np.float64)


class TextTask(Task):
    name = "text"
    title = "Next character"
    description = (
        "Next-character prediction on six of Shakespeare's sonnets (public domain, about "
        "3.7 KB, shipped with Unroll). Inputs are one-hot characters; at every position "
        "the network predicts the next one. Watch the loss per step fall faster where a "
        "word is well under way than at its first letter."
    )
    defaults = {"length": 40}
    limits = {"length": (2, 1000)}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.text = TEXT_PATH.read_text(encoding="utf-8")
        self.vocabulary = sorted(set(self.text))
        index = {ch: i for i, ch in enumerate(self.vocabulary)}
        self.codes = np.array([index[ch] for ch in self.text])

    @property
    def spec(self) -> TaskSpec:
        V = len(self.vocabulary)
        return TaskSpec(
            self.name,
            V,
            V,
            "classification",
            "sequence",
            _int(self, "length"),
            {**self.params, "vocabulary": "".join(self.vocabulary)},
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        T, V = _int(self, "length"), len(self.vocabulary)
        starts = rng.integers(0, len(self.codes) - T - 1, size=batch_size)
        windows = self.codes[starts[:, None] + np.arange(T + 1)]
        return np.eye(V)[windows[:, :T]], windows[:, 1:].astype(np.float64)


class CustomTask(Task):
    name = "custom"
    title = "Your own sequences"
    description = (
        "Your own data. Give one long `series` of numbers (pasted, or a CSV column) to "
        "forecast its next `horizon` values from windows of `length`; or give "
        "`sequences` (equal-length lists of numbers) with integer `labels` to classify "
        "each whole sequence."
    )
    defaults: dict[str, Any] = {
        "series": None,
        "sequences": None,
        "labels": None,
        "length": 20,
        "horizon": 1,
    }
    limits = {"length": (2, 1000), "horizon": (1, 20)}

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        if (p["series"] is None) == (p["sequences"] is None):
            raise ValueError(
                "task.series: give either series (to forecast) or sequences with labels"
            )
        if p["series"] is not None:
            self.series = _finite_array("task.series", p["series"], 1)
            need = _int(self, "length") + _int(self, "horizon")
            if self.series.size < need:
                raise ValueError(
                    f"task.series: needs at least length + horizon = {need} values, "
                    f"got {self.series.size}"
                )
        else:
            self.sequences = _finite_array("task.sequences", p["sequences"], 2)
            labels = _finite_array("task.labels", p["labels"] if p["labels"] is not None else [], 1)
            if labels.shape[0] != self.sequences.shape[0]:
                raise ValueError(
                    f"task.labels: need one label per sequence "
                    f"({self.sequences.shape[0]}), got {labels.shape[0]}"
                )
            if np.any(labels != np.round(labels)) or np.any(labels < 0):
                raise ValueError("task.labels: must be non-negative integers")
            self.labels = labels
            self.num_classes = max(2, int(labels.max()) + 1)

    @property
    def spec(self) -> TaskSpec:
        if self.params["series"] is not None:
            return TaskSpec(
                self.name,
                1,
                _int(self, "horizon"),
                "regression",
                "sequence",
                _int(self, "length"),
                {"mode": "forecast"},
            )
        return TaskSpec(
            self.name,
            1,
            self.num_classes,
            "classification",
            "last",
            self.sequences.shape[1],
            {"mode": "classify"},
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[Array, Array]:
        if self.params["series"] is not None:
            T, k = _int(self, "length"), _int(self, "horizon")
            starts = rng.integers(0, self.series.size - T - k + 1, size=batch_size)
            windows = self.series[starts[:, None] + np.arange(T + k)]
            targets = np.lib.stride_tricks.sliding_window_view(windows[:, 1:], k, axis=1)[:, :T]
            return windows[:, :T, None], np.ascontiguousarray(targets)
        rows = rng.integers(0, self.sequences.shape[0], size=batch_size)
        return self.sequences[rows][:, :, None], self.labels[rows]


def _finite_array(field: str, value: Any, ndim: int) -> Array:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}: must be {'a list' if ndim == 1 else 'equal-length lists'} of numbers"
        ) from None
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{field}: expected {ndim}-D numbers, got shape {arr.shape}")
    if arr.size > MAX_CUSTOM_VALUES:
        raise ValueError(f"{field}: {arr.size} values is over the limit of {MAX_CUSTOM_VALUES}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{field}: contains NaN or infinity")
    return arr


TASKS: dict[str, type[Task]] = {
    t.name: t
    for t in (SineTask, RandomWalkTask, AddingTask, CopyTask, ParityTask, TextTask, CustomTask)
}


def make_task(name: str, **params: Any) -> Task:
    """The task `name` with its parameters; ValueError naming a bad one."""
    if name not in TASKS:
        raise ValueError(f"task.name: must be one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name](**params)


def describe_tasks() -> list[dict[str, Any]]:
    """Name, title, description and default parameters of every task."""
    return [
        {
            "name": t.name,
            "title": t.title,
            "description": t.description,
            "defaults": dict(t.defaults),
        }
        for t in TASKS.values()
    ]
