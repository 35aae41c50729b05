"""The built-in tasks: generated sequences (sines, walks, memory and gap tasks, text) and
the registry that builds any task, real-series ones included, from a name and parameters
(`make_task("adding", length=50)`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.rnn.series_tasks import CustomTask, StocksTask
from app.rnn.task import SPLITS, Task, TaskSpec, check_split
from app.rnn.task import int_param as _int
from app.rnn.types import Array

TEXT_PATH = Path(__file__).parent / "data" / "sonnets.txt"

__all__ = [
    "SPLITS",
    "TASKS",
    "CustomTask",
    "StocksTask",
    "Task",
    "TaskSpec",
    "check_split",
    "describe_tasks",
    "make_task",
]


class _Forecast(Task):
    """Shared by the series tasks: predict the next `horizon` values at every position."""

    forecast = "level"

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

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
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

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
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

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
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

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
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

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
        T, V = _int(self, "length"), len(self.vocabulary)
        starts = rng.integers(0, len(self.codes) - T - 1, size=batch_size)
        windows = self.codes[starts[:, None] + np.arange(T + 1)]
        return np.eye(V)[windows[:, :T]], windows[:, 1:].astype(np.float64)


class GapTask(Task):
    name = "gap"
    title = "Fill the gap"
    description = (
        "A random walk with a stretch of `gap` values hidden somewhere in its middle. Two "
        "inputs: the value (0 inside the gap) and a mask that is 1 inside the gap. At every "
        "position the network outputs the true value. Outside the gap that is a copy of "
        "the input; inside it the best guess uses both sides: a one-direction layer has "
        "seen only the values before the gap, a bidirectional one also those after it. The "
        "loss covers every position, so the gap's share of it is what differs."
    )
    defaults = {"length": 30, "gap": 8}
    limits = {"length": (4, 1000), "gap": (1, 500)}
    # positions on each side of the gap always visible: a quarter of the sequence
    _MARGIN = 4

    def __init__(self, **params: Any):
        super().__init__(**params)
        T, g = _int(self, "length"), _int(self, "gap")
        if g > T - 2 * (T // self._MARGIN):
            raise ValueError(
                f"task.gap: a gap of {g} leaves too little context in a sequence of {T}; "
                f"at most {T - 2 * (T // self._MARGIN)}"
            )

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec(
            self.name, 2, 1, "regression", "sequence", _int(self, "length"), self.params
        )

    def gap_mask(self, inputs: Array) -> np.ndarray:
        """(B, T) True inside the gap, read from the mask channel of inputs (B, T, 2)."""
        return inputs[:, :, 1] > 0.5

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        check_split(split)  # fresh draws: a generated task's test split cannot leak
        T, g = _int(self, "length"), _int(self, "gap")
        margin = T // self._MARGIN
        # steps scaled so that the walk moves about one unit across the gap
        walk = np.cumsum(rng.standard_normal((batch_size, T)) / np.sqrt(g), axis=1)
        starts = rng.integers(margin, T - margin - g + 1, size=batch_size)
        mask = (np.arange(T) >= starts[:, None]) & (np.arange(T) < starts[:, None] + g)
        inputs = np.stack([np.where(mask, 0.0, walk), mask.astype(np.float64)], axis=2)
        return inputs, walk[:, :, None]


TASKS: dict[str, type[Task]] = {
    t.name: t
    for t in (
        SineTask,
        RandomWalkTask,
        StocksTask,
        AddingTask,
        CopyTask,
        ParityTask,
        GapTask,
        TextTask,
        CustomTask,
    )
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
