"""Running CPU-heavy work off the event loop: admission, fairness and cancellation.

Every computation takes a slot before it runs (`max_concurrent` in all). Waiters queue
per client and are served round robin across clients, so one client's many requests
cannot starve another's; past `max_queue` waiters a request gets 503 with Retry-After.
A heavy computation (estimated at `heavy_request_seconds` or more) is one per client at
a time (a second gets 429, or waits while the first is stopping because its client left)
and never takes the last slot, so small requests keep moving while a heavy one runs. A
slot is released only once its worker thread has returned.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio import CapacityLimiter

from app.api.errors import ApiError

T = TypeVar("T")
WATCH_INTERVAL_S = 0.05  # how often a running computation asks whether its client is gone
STOPPING_WAIT_S = 10.0  # how long a heavy request waits for its client's abandoned one to stop


class CancelToken:
    """Set by the web layer when a client goes; the engine polls it (call it) between steps.

    With `limit` it also trips by itself once the work has used that many seconds of CPU
    in the threads that ran it between `begin()` and `end()` (the pool brackets each call),
    and `expired` then says so: the guard for work the cost model underestimated. CPU
    time, not wall time, so a busy machine does not stop work that is within its budget."""

    def __init__(self, limit: float | None = None) -> None:
        self._event = threading.Event()
        self.limit = limit
        self.expired = False
        self._spent = 0.0  # CPU seconds of stretches that have ended
        self._local = threading.local()  # the running stretch's start, per thread

    def begin(self) -> None:
        """In the worker thread: the work starts (again) here."""
        self._local.start = time.thread_time()

    def end(self) -> None:
        start = getattr(self._local, "start", None)
        if start is not None:
            self._spent += time.thread_time() - start
            self._local.start = None

    def spent(self) -> float:
        """CPU seconds the work has used so far (call from a thread running it)."""
        start = getattr(self._local, "start", None)
        return self._spent + (time.thread_time() - start if start is not None else 0.0)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __call__(self) -> bool:
        if self._event.is_set():
            return True
        if self.limit is not None and self.spent() > self.limit:
            self.expired = True
            self._event.set()
            return True
        return False


def _metered(token: CancelToken, fn: Callable[..., T], *args: Any) -> T:
    token.begin()
    try:
        return fn(*args)
    finally:
        token.end()


class Busy(ApiError):
    """429 (this client already runs a heavy computation) or 503 (the wait queue is full)."""

    def __init__(self, status: int, detail: str, retry_after: int):
        super().__init__(status, detail, None)
        self.retry_after = retry_after


@dataclass
class _Heavy:
    """A client's heavy computation: its token, whether its client left, and an event set
    when it has ended."""

    token: CancelToken | None
    gone: Callable[[], Awaitable[bool]] | None
    ended: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class _Waiter:
    heavy: bool
    event: anyio.Event = field(default_factory=anyio.Event)
    granted: bool = False


class ComputePool:
    """Slots for numpy work, a fair bounded wait queue, and worker threads."""

    def __init__(self, max_concurrent: int, max_queue: int = 32, retry_after: int = 2):
        self.max_concurrent = max_concurrent
        # heavy work leaves one slot free for small requests (unless there is only one)
        self.max_heavy = max(1, max_concurrent - 1)
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.running = 0
        self.running_heavy = 0
        self._waiting: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        self._heavy_clients: dict[str, _Heavy] = {}
        self._threads = CapacityLimiter(max_concurrent)
        self._encoders = CapacityLimiter(max_concurrent)

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @asynccontextmanager
    async def slot(
        self,
        client: str = "",
        heavy: bool = False,
        token: CancelToken | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> AsyncIterator[None]:
        """Hold one compute slot for the block; waits its turn, or raises Busy (429/503).
        `token` is the work's and `gone` says whether its client left: a later heavy
        request from the same client waits for this one to end once its client is gone,
        instead of a 429."""
        if heavy:
            await self._claim_heavy(client, token, gone)
        try:
            await self._acquire(client, heavy)
            try:
                yield
            finally:
                self._release(heavy)
        finally:
            if heavy:
                self._heavy_clients.pop(client).ended.set()

    async def _claim_heavy(
        self,
        client: str,
        token: CancelToken | None,
        gone: Callable[[], Awaitable[bool]] | None,
    ) -> None:
        while (current := self._heavy_clients.get(client)) is not None:
            if current.token is None:
                raise self._second_heavy()
            if not current.token.cancelled:
                # a client that hangs up and asks again can be quicker than the watcher
                if current.gone is None or not await current.gone():
                    raise self._second_heavy()
                current.token.cancel()
            # the client left that one and it is stopping: take its place when it has
            with anyio.move_on_after(STOPPING_WAIT_S) as waited:
                await current.ended.wait()
            if waited.cancelled_caught:
                raise self._second_heavy()
        self._heavy_clients[client] = _Heavy(token, gone)

    async def hold(
        self,
        client: str = "",
        heavy: bool = False,
        token: CancelToken | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> Callable[[], Awaitable[None]]:
        """Take a slot now (waiting its turn, or Busy) for work that outlives this call, such
        as a stream's; the returned coroutine function gives it back, once."""
        held = self.slot(client, heavy, token, gone)
        await held.__aenter__()
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                await held.__aexit__(None, None, None)

        return release

    async def check_heavy(self, client: str) -> None:
        """Busy (429) now, before a stream starts, if this client already runs heavy work
        (not work that is stopping, or should, because its client left)."""
        current = self._heavy_clients.get(client)
        if current is None or (current.token is not None and current.token.cancelled):
            return
        if current.token is None or current.gone is None or not await current.gone():
            raise self._second_heavy()
        current.token.cancel()

    def _second_heavy(self) -> Busy:
        return Busy(
            429,
            "compute: this client already runs a heavy computation; wait for it to "
            "finish, or cancel it, then retry",
            self.retry_after,
        )

    def _free_for(self, heavy: bool) -> bool:
        if self.running >= self.max_concurrent:
            return False
        return not heavy or self.running_heavy < self.max_heavy

    async def _acquire(self, client: str, heavy: bool) -> None:
        waiter = _Waiter(heavy)
        self._waiting.setdefault(client, deque()).append(waiter)
        self._grant()
        if waiter.granted:
            return
        if self.queued > self.max_queue:
            self._drop(client, waiter)
            raise Busy(
                503,
                f"compute: the server is busy ({self.max_queue} computations waiting); retry later",
                self.retry_after,
            )
        try:
            await waiter.event.wait()
        except BaseException:  # cancelled while waiting: give back a slot handed over meanwhile
            if waiter.granted:
                self._release(heavy)
            else:
                self._drop(client, waiter)
            raise

    def _drop(self, client: str, waiter: _Waiter) -> None:
        queue = self._waiting.get(client)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[client]

    def _take(self, heavy: bool) -> None:
        self.running += 1
        self.running_heavy += heavy

    def _release(self, heavy: bool) -> None:
        self.running -= 1
        self.running_heavy -= heavy
        self._grant()

    def _grant(self) -> None:
        """Hand free slots to waiters, one client after another (round robin)."""
        for client in list(self._waiting):
            if self.running >= self.max_concurrent:
                return
            queue = self._waiting[client]
            waiter = next((w for w in queue if self._free_for(w.heavy)), None)
            if waiter is None:
                continue
            queue.remove(waiter)
            del self._waiting[client]
            if queue:  # this client's next request waits behind every other client
                self._waiting[client] = queue
            self._take(waiter.heavy)
            waiter.granted = True
            waiter.event.set()

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        token: CancelToken | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> T:
        """fn(*args) in a worker thread, the caller already holding a slot.

        The await lasts until the thread has returned, even when the caller is cancelled;
        `token` is then set, and also as soon as `gone()` (polled meanwhile) says the
        client has left, so a computation that polls the token stops early.
        """
        if token is None:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)
        outcome: list[Any] = []

        async def work() -> None:
            try:
                outcome.append(
                    await anyio.to_thread.run_sync(
                        _metered, token, fn, *args, limiter=self._threads
                    )
                )
            except Exception as exc:  # re-raised below, outside the task group
                outcome.append(_Raised(exc))
            finally:
                tg.cancel_scope.cancel()

        async def watch() -> None:
            try:
                while True:
                    if gone is not None and await gone():
                        token.cancel()
                        return
                    await anyio.sleep(WATCH_INTERVAL_S)
            except anyio.get_cancelled_exc_class():
                if not outcome:  # the caller was cancelled while the thread still runs
                    token.cancel()
                raise

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await work()
        result = outcome[0]
        if isinstance(result, _Raised):
            raise result.exc
        return result

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        client: str = "",
        heavy: bool = False,
        token: CancelToken | None = None,
        gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> T:
        """Take a slot, run fn(*args) in a worker thread (see `call`), release the slot."""
        async with self.slot(client, heavy, token, gone):
            return await self.call(fn, *args, token=token, gone=gone)

    async def encode(self, fn: Callable[..., T], *args: Any) -> T:
        """Encoding of a large answer, in a worker thread (never on the event loop)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._encoders)


@dataclass
class _Raised:
    exc: Exception
