"""ComputePool: slots, the bounded fair queue, one heavy computation per client, and
cancellation that keeps the slot until the worker thread has returned."""

from __future__ import annotations

import threading

import anyio
import pytest

from app.api.compute import Busy, CancelToken, ComputePool


async def _until(condition, what: str) -> None:
    """Wait (cooperatively) until condition() holds; fail after 20 s."""
    with anyio.move_on_after(20):
        while not condition():
            await anyio.sleep(0.005)
        return
    raise AssertionError(f"never happened: {what}")


def _held(release: threading.Event, started: threading.Event | None = None):
    def work() -> str:
        if started is not None:
            started.set()
        assert release.wait(20)
        return "done"

    return work


def test_slots_queue_and_503_when_the_queue_is_full():
    async def main() -> None:
        pool = ComputePool(max_concurrent=2, max_queue=1)
        release = threading.Event()
        results: list[str] = []

        async def one(client: str) -> None:
            results.append(await pool.run(_held(release), client=client))

        async with anyio.create_task_group() as tg:
            for client in ("a", "b", "c"):
                tg.start_soon(one, client)
            await _until(lambda: pool.running == 2 and pool.queued == 1, "two run, one waits")
            with pytest.raises(Busy) as info:
                await pool.run(_held(release), client="d")
            assert info.value.status == 503 and info.value.retry_after >= 1
            release.set()
        assert results == ["done"] * 3
        assert pool.running == 0 and pool.queued == 0

    anyio.run(main)


def test_one_heavy_computation_per_client_and_never_the_last_slot():
    async def main() -> None:
        pool = ComputePool(max_concurrent=2)
        release = threading.Event()
        order: list[str] = []

        async def one(client: str, heavy: bool) -> None:
            await pool.run(_held(release), client=client, heavy=heavy)
            order.append(client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "a", True)
            await _until(lambda: pool.running_heavy == 1, "a's heavy request runs")
            with pytest.raises(Busy) as info:
                await pool.run(_held(release), client="a", heavy=True)
            assert info.value.status == 429
            tg.start_soon(one, "b", True)  # another client's heavy request waits its turn
            await _until(lambda: pool.queued == 1, "b waits")
            assert pool.running == 1  # the last slot stays free for small requests
            assert await pool.run(lambda: "small", client="c") == "small"
            release.set()
        assert order == ["a", "b"]

    anyio.run(main)


def test_waiting_clients_are_served_in_turn():
    """A client with many queued requests does not starve one that came later."""

    async def main() -> None:
        pool = ComputePool(max_concurrent=1)
        gate = threading.Event()
        served: list[str] = []

        async def first() -> None:
            await pool.run(_held(gate), client="busy")

        async def queued(client: str) -> None:
            await pool.run(lambda: served.append(client), client=client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await _until(lambda: pool.running == 1, "the slot is taken")
            for _ in range(3):
                tg.start_soon(queued, "greedy")
                await _until(lambda n=pool.queued: pool.queued == n + 1, "queued")
            tg.start_soon(queued, "late")
            await _until(lambda: pool.queued == 4, "all queued")
            gate.set()
        assert served == ["greedy", "late", "greedy", "greedy"]

    anyio.run(main)


def test_a_cancelled_caller_sets_the_token_and_keeps_the_slot_until_the_thread_returns():
    async def main() -> None:
        pool = ComputePool(max_concurrent=1)
        token = CancelToken()
        saw_cancel, release, returned = threading.Event(), threading.Event(), threading.Event()

        def work() -> None:
            while not token():
                threading.Event().wait(0.005)
            saw_cancel.set()
            assert release.wait(20)
            returned.set()

        async with anyio.create_task_group() as tg:

            async def caller() -> None:
                await pool.run(work, token=token)

            tg.start_soon(caller)
            await _until(lambda: pool.running == 1, "the work runs")
            tg.cancel_scope.cancel()  # the caller goes away: the token must be set
            with anyio.CancelScope(shield=True):
                await _until(saw_cancel.is_set, "the worker saw the token")
                assert pool.running == 1  # still held: the thread has not returned
                release.set()
        assert returned.is_set() and pool.running == 0

    anyio.run(main)


def test_gone_sets_the_token_while_the_work_runs():
    async def main() -> None:
        pool = ComputePool(max_concurrent=1)
        token = CancelToken()
        left = False

        async def gone() -> bool:
            return left

        def work() -> str:
            while not token():
                threading.Event().wait(0.005)
            return "stopped"

        async with anyio.create_task_group() as tg:
            result: list[str] = []

            async def caller() -> None:
                result.append(await pool.run(work, token=token, gone=gone))

            tg.start_soon(caller)
            await _until(lambda: pool.running == 1, "the work runs")
            left = True
        assert result == ["stopped"] and pool.running == 0

    anyio.run(main)


def test_a_waiter_that_gives_up_leaves_the_queue():
    async def main() -> None:
        pool = ComputePool(max_concurrent=1)
        release = threading.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: pool.run(_held(release)))
            await _until(lambda: pool.running == 1, "the slot is taken")
            with anyio.move_on_after(0.05):
                await pool.run(lambda: None, client="impatient")
            assert pool.queued == 0
            release.set()
        assert pool.running == 0

    anyio.run(main)


def test_the_time_limit_counts_cpu_seconds_of_the_work_only():
    """Waiting (a busy machine, a queue) does not use up a token's limit; computing does."""
    import time

    token = CancelToken(limit=0.05)
    token.begin()
    time.sleep(0.1)  # no CPU spent
    assert not token() and not token.expired
    start = time.thread_time()
    while not token():
        assert time.thread_time() - start < 5
    assert token.expired and token.spent() > 0.05
    token.end()
    assert token.cancelled


def test_a_heavy_request_waits_for_the_clients_abandoned_one_to_stop():
    """A client that left its heavy work and asks again waits for it to end, no 429."""

    async def main() -> None:
        pool = ComputePool(max_concurrent=2)
        token = CancelToken()
        stopped = threading.Event()

        def abandoned() -> None:
            while not token():
                threading.Event().wait(0.005)
            threading.Event().wait(0.05)  # stopping takes a moment
            stopped.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: pool.run(abandoned, client="a", heavy=True, token=token))
            await _until(lambda: pool.running_heavy == 1, "the first runs")
            with pytest.raises(Busy):  # still wanted: a second heavy request is refused
                await pool.run(lambda: None, client="a", heavy=True)
            token.cancel()  # the client left
            assert await pool.run(lambda: stopped.is_set(), client="a", heavy=True)

    anyio.run(main)


def test_a_heavy_request_seen_before_the_watcher_noticed_the_hang_up_still_waits(monkeypatch):
    from app.api import compute

    monkeypatch.setattr(compute, "WATCH_INTERVAL_S", 30.0)  # the watcher looks once, early

    async def main() -> None:
        pool = ComputePool(max_concurrent=2)
        token = CancelToken()
        left = False

        async def gone() -> bool:
            return left

        def abandoned() -> None:
            while not token():
                threading.Event().wait(0.005)

        async with anyio.create_task_group() as tg:
            # its watcher is slow: only the second request's look at `gone` stops it
            tg.start_soon(
                lambda: pool.run(abandoned, client="a", heavy=True, token=token, gone=gone)
            )
            await _until(lambda: pool.running_heavy == 1, "the first runs")
            left = True
            assert await pool.run(lambda: token.cancelled, client="a", heavy=True)

    anyio.run(main)
