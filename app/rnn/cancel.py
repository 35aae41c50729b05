"""Cooperative cancellation: a cheap callable polled between positions and layer-directions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

CancelCheck = Callable[[], bool] | None
"""Returns True once the caller wants the computation to stop; None never cancels."""

POLL_EVERY = 16  # positions between polls: cheap enough for a lock-free flag read


class Cancelled(Exception):
    """A computation stopped early because its cancel callable returned True."""


def check(cancel: CancelCheck) -> None:
    """Raise `Cancelled` if `cancel` says so."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled")


def polled(items: Iterable[int], cancel: CancelCheck, every: int = POLL_EVERY) -> Iterable[int]:
    """`items` unchanged, checking `cancel` before the first and then every `every` items."""
    if cancel is None:
        return items
    return _polled(items, cancel, every)


def _polled(items: Iterable[int], cancel: Callable[[], bool], every: int) -> Iterator[int]:
    for n, item in enumerate(items):
        if n % every == 0 and cancel():
            raise Cancelled("cancelled")
        yield item
