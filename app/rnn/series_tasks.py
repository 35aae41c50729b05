"""Tasks on one real series: the shipped stock prices and the user's own numbers, cut into
windows by date (or position) so that training never sees the held-out part."""

from __future__ import annotations

import bisect
import csv
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from app.rnn.series import MAX_VALUES, Series, parse_numbers
from app.rnn.task import Task, TaskSpec, check_split
from app.rnn.task import int_param as _int
from app.rnn.types import Array

STOCKS_PATH = Path(__file__).parent / "data" / "stocks.csv"
NORMALISATIONS = ("log_returns", "window")


class _SeriesForecast(Task):
    """Shared by the tasks on one real series: windows of `length + horizon` model values,
    training windows wholly before the split, held-out windows wholly after it.

    A subclass sets, in __init__: `_raw` (N,) the series as given, `_dates` (N ISO strings
    or None), `_cut` the first index of the held-out part, and `_offset`: 1 when a model
    value is a change from the previous raw value (it reads one raw value more), else 0.
    """

    forecast: str | None = "level"
    _raw: Array
    _dates: list[str] | None
    _cut: int
    _offset = 0

    def _values(self, index: np.ndarray) -> Array:
        """Model values at raw indices (B, n), for windows starting at index[:, 0]."""
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
            self._described(),
        )

    def _described(self) -> dict[str, Any]:
        return dict(self.params)

    def _start_range(self, split: str) -> tuple[int, int]:
        """Inclusive range of window starts (raw indices) for `split`."""
        check_split(split)
        span = _int(self, "length") + _int(self, "horizon") + self._offset
        if split == "train" or self._cut >= len(self._raw):  # no held-out part
            return 0, min(self._cut, len(self._raw)) - span
        return self._cut, len(self._raw) - span

    def _check_fits(self, before: str, after: str) -> None:
        """ValueError on task.length saying why a window does not fit in each part."""
        T, k = _int(self, "length"), _int(self, "horizon")
        need = T + k + self._offset
        for split, where in (("train", before), ("test", after)):
            lo, hi = self._start_range(split)
            if hi < lo:
                have = hi - lo + need
                longest = have - k - self._offset
                hint = (
                    f"; the longest length that fits is {longest}"
                    if longest >= 2
                    else "; shorten the horizon or move the split"
                )
                raise ValueError(
                    f"task.length: a window needs length + horizon"
                    f"{' + 1' if self._offset else ''} = {need} values, but only {have} lie "
                    f"{where}{hint}"
                )

    def _window_index(self, rng: np.random.Generator, batch_size: int, split: str) -> np.ndarray:
        lo, hi = self._start_range(split)
        starts = rng.integers(lo, hi + 1, size=batch_size)
        n = _int(self, "length") + _int(self, "horizon")
        return starts[:, None] + self._offset + np.arange(n)  # (B, n) raw index of each value

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        return self._windows(self._window_index(rng, batch_size, split))

    def sample_info(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array, dict[str, Any]]:
        index = self._window_index(rng, batch_size, split)
        inputs, targets = self._windows(index)
        info: dict[str, Any] = {"values": self._raw[index]}
        if self._dates is not None:
            info["dates"] = [[self._dates[i] for i in row] for row in index.tolist()]
        return inputs, targets, info

    def _windows(self, index: np.ndarray) -> tuple[Array, Array]:
        T, k = _int(self, "length"), _int(self, "horizon")
        values = self._values(index)  # (B, T + k)
        # target at t: the k values after position t
        targets = np.lib.stride_tricks.sliding_window_view(values[:, 1:], k, axis=1)[:, :T]
        return values[:, :T, None], np.ascontiguousarray(targets)


@lru_cache(maxsize=1)
def load_stocks() -> tuple[list[str], dict[str, Array]]:
    """The shipped prices: trading dates, and each ticker's adjusted closes (NaN before its
    listing). See data/README.md for the source and licence."""
    with STOCKS_PATH.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    dates = [r[0] for r in body]
    prices = {
        name: np.array([float(r[i]) if r[i] else np.nan for r in body])
        for i, name in enumerate(header[1:], start=1)
    }
    return dates, prices


def _iso_date(field: str, value: Any) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"{field}: must be a date as YYYY-MM-DD, got {value!r}") from None


class StocksTask(_SeriesForecast):
    name = "stocks"
    title = "Real stock prices"
    description = (
        "Daily adjusted closing prices of Apple, Google, IBM and Microsoft, 2000 to 2013 "
        "(Quandl WIKI, public domain, shipped with Unroll). The network reads a window of "
        "`length` trading days and forecasts the next `horizon` values at every position. "
        "It trains only on windows that end before `split` and is scored only on windows "
        "that start on or after it. `normalisation` log_returns: each value is the day's "
        "log return, log(p_t / p_(t-1)), in units of the typical daily move before the "
        "split; window: the log price relative to the window's first day, in the same "
        "units. Compare with tomorrow = today: on real prices it is very hard to beat."
    )
    defaults = {
        "ticker": "AAPL",
        "length": 40,
        "horizon": 1,
        "split": "2011-01-01",
        "normalisation": "log_returns",
    }
    limits = {"length": (2, 1000), "horizon": (1, 20)}

    def __init__(self, **params: Any):
        super().__init__(**params)
        dates, prices = load_stocks()
        ticker = self.params["ticker"]
        if ticker not in prices:
            raise ValueError(f"task.ticker: must be one of {', '.join(prices)}, got {ticker!r}")
        normalisation = self.params["normalisation"]
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"task.normalisation: must be one of {', '.join(NORMALISATIONS)}, "
                f"got {normalisation!r}"
            )
        split = _iso_date("task.split", self.params["split"])
        self.params["split"] = split
        listed = int(np.argmax(np.isfinite(prices[ticker])))  # first day with a price
        self._raw = prices[ticker][listed:]
        self.days = dates[listed:]  # trading days from the listing on
        self._dates = self.days
        self._log = np.log(self._raw)
        self._cut = bisect.bisect_left(self._dates, split)
        self._offset = 1 if normalisation == "log_returns" else 0
        self.forecast = "change" if normalisation == "log_returns" else "level"
        self._check_fits(f"before {split}", f"from {split} on")
        # the unit: the typical daily move, measured on training days only
        self.scale = float(np.std(np.diff(self._log[: self._cut])))

    def _values(self, index: np.ndarray) -> Array:
        if self._offset:  # log return into each day
            return (self._log[index] - self._log[index - 1]) / self.scale
        return (self._log[index] - self._log[index[:, :1]]) / self.scale

    def _described(self) -> dict[str, Any]:
        return {
            **self.params,
            "tickers": list(load_stocks()[1]),
            "scale": self.scale,
            "first_date": self.days[0],
            "last_date": self.days[-1],
            "train_days": self._cut,
            "test_days": len(self.days) - self._cut,
        }


class CustomTask(_SeriesForecast):
    name = "custom"
    title = "Your own sequences"
    description = (
        "Your own data. Give one long `series` of numbers (a list, text such as "
        '"1, 2.5, 3", or a column of an uploaded CSV; `dates` optional) to forecast its '
        "next `horizon` values from windows of `length`. The last `test_fraction` of the "
        "series is held out: training windows lie wholly before it, scored windows wholly "
        "in it (0: no held-out part). `normalisation` standard: values minus the training "
        "part's mean, over its standard deviation; none: as given. Or give `sequences` "
        "(equal-length lists of numbers) with integer `labels` to classify each whole "
        "sequence."
    )
    defaults: dict[str, Any] = {
        "series": None,
        "dates": None,
        "sequences": None,
        "labels": None,
        "length": 20,
        "horizon": 1,
        "test_fraction": 0.2,
        "normalisation": "standard",
    }
    limits = {"length": (2, 1000), "horizon": (1, 20), "test_fraction": (0, 0.9)}

    def __init__(self, **params: Any):
        Task.__init__(self, **params)
        p = self.params
        if (p["series"] is None) == (p["sequences"] is None):
            raise ValueError(
                "task.series: give either series (to forecast) or sequences with labels"
            )
        if p["series"] is not None:
            self._init_series(p)
            return
        self.forecast = None
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

    def _init_series(self, p: dict[str, Any]) -> None:
        self._raw = parse_numbers(p["series"], "task.series", MAX_VALUES)
        self.series = self._raw
        N = self._raw.size
        self._dates = None
        if p["dates"] is not None:
            if not isinstance(p["dates"], list | tuple) or len(p["dates"]) != N:
                raise ValueError(f"task.dates: need one date per value ({N})")
            self._dates = [str(d) for d in p["dates"]]
            if any(a >= b for a, b in zip(self._dates, self._dates[1:], strict=False)):
                raise ValueError("task.dates: must be ascending")
        if p["normalisation"] not in ("standard", "none"):
            raise ValueError(
                f"task.normalisation: must be standard or none, got {p['normalisation']!r}"
            )
        fraction = float(p["test_fraction"])
        self._cut = N - int(round(N * fraction))
        held = f"in the held-out last {N - self._cut} values (test_fraction {fraction:g})"
        if self._cut < N:
            before = f"in the first {self._cut} of {N} values (before the held-out part)"
            self._check_fits(before, held)
        else:
            self._check_fits(f"in the {N} values", held)
        train_part = self._raw[: self._cut]
        standard = p["normalisation"] == "standard"
        self.shift = float(train_part.mean()) if standard else 0.0
        spread = float(train_part.std()) if standard else 1.0
        self.scale = spread if spread > 0 else 1.0

    def _values(self, index: np.ndarray) -> Array:
        return (self._raw[index] - self.shift) / self.scale

    @property
    def spec(self) -> TaskSpec:
        if self.params["series"] is not None:
            return super().spec
        return TaskSpec(
            self.name,
            1,
            self.num_classes,
            "classification",
            "last",
            self.sequences.shape[1],
            {"mode": "classify"},
        )

    def _described(self) -> dict[str, Any]:
        N = self._raw.size
        return {
            "mode": "forecast",
            "length": _int(self, "length"),
            "horizon": _int(self, "horizon"),
            "test_fraction": self.params["test_fraction"],
            "normalisation": self.params["normalisation"],
            "shift": self.shift,
            "scale": self.scale,
            "train_values": self._cut,
            "test_values": N - self._cut,
        }

    def sample(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array]:
        if self.params["series"] is not None:
            return super().sample(rng, batch_size, split)
        check_split(split)  # labelled sequences: both splits draw from all of them
        rows = rng.integers(0, self.sequences.shape[0], size=batch_size)
        return self.sequences[rows][:, :, None], self.labels[rows]

    def sample_info(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[Array, Array, dict[str, Any]]:
        if self.params["series"] is not None:
            return super().sample_info(rng, batch_size, split)
        return Task.sample_info(self, rng, batch_size, split)


def series_task(series: Series, column: str, **params: Any) -> CustomTask:
    """The custom forecasting task on one column of a parsed CSV, with its dates."""
    if column not in series.columns:
        raise ValueError(f"column: must be one of {', '.join(series.columns)}, got {column!r}")
    return CustomTask(series=series.columns[column], dates=series.dates, **params)


def _finite_array(field: str, value: Any, ndim: int) -> Array:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{field}: must be {'a list' if ndim == 1 else 'equal-length lists'} of numbers"
        ) from None
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{field}: expected {ndim}-D numbers, got shape {arr.shape}")
    if arr.size > MAX_VALUES:
        raise ValueError(f"{field}: {arr.size} values is over the limit of {MAX_VALUES}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{field}: contains NaN or infinity")
    return arr
