"""Running CPU-heavy work off the event loop, a bounded number at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio import CapacityLimiter

T = TypeVar("T")


class ComputePool:
    """Worker threads for numpy work; `max_concurrent` run at once, the rest queue."""

    def __init__(self, max_concurrent: int):
        self.limiter = CapacityLimiter(max_concurrent)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) in a worker thread; the event loop keeps serving meanwhile."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)


class CancelToken:
    """Set by the web layer when a client disconnects; long loops check it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
