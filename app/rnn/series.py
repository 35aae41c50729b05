"""Series the user brings: CSV text or pasted numbers read into columns of floats, every
bad value reported by its line or position, never silently dropped."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from app.rnn.types import Array

MAX_VALUES = 100_000  # numbers in one series: a few weeks of minutes, many decades of days
MAX_REPORTED = 20  # bad lines named in one error; the count covers the rest

# a plain decimal: no thousands separators, no nan/inf, no Python-only forms like 1_000
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SEPARATORS = re.compile(r"[\s,;]+")
_DATE_NAMES = {"date", "time", "day", "datetime", "timestamp", "week", "month"}


class SeriesError(ValueError):
    """A 'field: reason' error that also lists each problem as (line or position, reason)."""

    def __init__(self, field: str, problems: list[tuple[int, str]], unit: str = "line"):
        self.field = field
        self.problems = problems
        shown = "; ".join(f"{unit} {where}: {why}" for where, why in problems[:MAX_REPORTED])
        more = len(problems) - MAX_REPORTED
        tail = f" (and {more} more)" if more > 0 else ""
        super().__init__(f"{field}: {shown}{tail}")


@dataclass(frozen=True)
class Series:
    """Numeric columns of equal length, in file order, with their dates if the file had any."""

    columns: dict[str, Array]  # name -> (N,) float64
    dates: list[str] | None  # N ISO dates (YYYY-MM-DD, or with a time), ascending

    @property
    def length(self) -> int:
        return len(next(iter(self.columns.values())))


def parse_number(text: str) -> float | None:
    """The float a cell spells, or None when it is not a plain finite decimal."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if np.isfinite(value) else None


def parse_numbers(value: Any, field: str = "series", max_values: int = MAX_VALUES) -> Array:
    """Numbers from a list, or from text separated by commas, semicolons or white space.

    Returns (N,) float64. SeriesError names every position (1-based) that is not a finite
    number: "1, abc, 3" is an error at position 2, not [1, 3].
    """
    if isinstance(value, str):
        items: list[Any] = [p for p in _SEPARATORS.split(value.strip()) if p]
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
        if any(isinstance(v, list | tuple | np.ndarray) for v in items):
            raise ValueError(f"{field}: must be a flat list of numbers, not nested lists")
    else:
        raise ValueError(f"{field}: must be a list of numbers or text of numbers")
    if not items:
        raise ValueError(f"{field}: no numbers given")
    if len(items) > max_values:
        raise ValueError(f"{field}: {len(items)} values is over the limit of {max_values}")
    if all(type(v) is float or type(v) is int for v in items):
        values = np.array(items, dtype=np.float64)  # the common case, without a loop per value
        if np.all(np.isfinite(values)):
            return values
    values = np.empty(len(items))
    problems: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        number = _number(item)
        if number is None:
            problems.append((i + 1, f"{str(item)[:40]!r} is not a finite number"))
        else:
            values[i] = number
    if problems:
        raise SeriesError(field, problems, unit="position")
    return values


def parse_csv(text: str, field: str = "file", max_values: int = MAX_VALUES) -> Series:
    """A CSV table: an optional header row, an optional date column, numeric columns.

    The header is the first row when any of its cells is not a number; a column is the date
    column when its header says so (date, time, day...) or, without a header, when its first
    cell is an ISO date. Entirely blank lines are skipped; every other line must have a
    value in every column. SeriesError lists each bad line by its 1-based line number.
    """
    lines = text.splitlines()
    rows = [(n + 1, cells) for n, cells in enumerate(csv.reader(lines)) if _has_content(cells)]
    if not rows:
        raise ValueError(f"{field}: no rows")
    first = rows[0][1]
    has_header = any(parse_number(c) is None and _parse_date(c) is None for c in first)
    names = [c.strip() for c in first] if has_header else []
    body = rows[1:] if has_header else rows
    if len(body) < 2:  # one value is no series: nothing comes after it
        raise ValueError(f"{field}: a series needs at least two rows of values, got {len(body)}")
    width = len(first)
    date_col = _date_column(names, body[0][1], width)
    if not names:
        names = [f"column {i + 1}" for i in range(width)]
    names = _unique(names)
    value_cols = [i for i in range(width) if i != date_col]
    if not value_cols:
        raise ValueError(f"{field}: no numeric column, only dates")
    if len(body) * len(value_cols) > max_values:
        raise ValueError(
            f"{field}: {len(body)} rows x {len(value_cols)} columns is over the limit of "
            f"{max_values} values"
        )
    values = np.empty((len(body), len(value_cols)))
    dates: list[str] = []
    problems: list[tuple[int, str]] = []
    previous: str | None = None
    for r, (line, cells) in enumerate(body):
        if len(cells) != width:
            problems.append((line, f"{len(cells)} cells, expected {width}"))
            continue
        if date_col is not None:
            day = _parse_date(cells[date_col])
            if day is None:
                problems.append((line, f"{cells[date_col].strip()[:40]!r} is not a date"))
            elif previous is not None and day <= previous:
                problems.append((line, f"date {day} is not after the previous date {previous}"))
            else:
                previous = day
            dates.append(day or "")
        for j, c in enumerate(value_cols):
            number = parse_number(cells[c])
            if number is None:
                shown = cells[c].strip()[:40]
                problems.append(
                    (
                        line,
                        f"{names[c]}: {shown!r} is not a number" if shown else f"{names[c]}: empty",
                    )
                )
            else:
                values[r, j] = number
    if problems:
        raise SeriesError(field, problems)
    columns = {names[c]: np.ascontiguousarray(values[:, j]) for j, c in enumerate(value_cols)}
    return Series(columns, dates if date_col is not None else None)


def _number(item: Any) -> float | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int | float | np.integer | np.floating):
        value = float(item)
        return value if np.isfinite(value) else None
    if isinstance(item, str):
        return parse_number(item)
    return None


def _has_content(cells: list[str]) -> bool:
    return any(c.strip() for c in cells)


def _parse_date(text: str) -> str | None:
    """ISO date or date-time as written, normalised to YYYY-MM-DD[THH:MM[:SS]]; else None."""
    text = text.strip()
    if len(text) < 8 or not text[:4].isdigit():
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _date_column(names: list[str], first_row: list[str], width: int) -> int | None:
    for i, name in enumerate(names):
        if name.strip().lower() in _DATE_NAMES:
            return i
    for i in range(min(width, len(first_row))):
        if _parse_date(first_row[i]) is not None:
            return i
    return None


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name or f"column {i + 1}"
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name} ({count + 1})")
    return out
