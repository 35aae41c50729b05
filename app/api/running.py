"""One request's work in the compute pool, for its client: stopped when the client leaves
or the work overruns its budget. Every route that computes for one answer runs it here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from app.api.compute import CancelToken, ComputePool
from app.api.inputs import client_of, is_heavy, overrun, time_limit
from app.cost import Estimate
from app.rnn import Cancelled

T = TypeVar("T")

CLIENT_CLOSED = 499  # the status logged when the client left before its answer


class ClientGone(Exception):
    """The client left before its answer: nobody is listening (answered 499, for the log)."""


async def run_for_client(
    request: Request,
    fn: Callable[..., T],
    *args: Any,
    estimate: Estimate,
    heavy: bool | None = None,
) -> T:
    """fn(*args, token) in a worker thread under this client's slot; `token` is the cancel
    check the engine polls. A client that disconnects stops the work (ClientGone); work
    past twice its budget is stopped too (422 naming the estimate). `heavy` defaults to
    the estimate's verdict."""
    settings = request.app.state.settings
    pool: ComputePool = request.app.state.pool
    limit = time_limit(settings)
    token = CancelToken(limit)
    try:
        return await pool.run(
            fn,
            *args,
            token,
            client=client_of(request),
            heavy=is_heavy(estimate, settings) if heavy is None else heavy,
            token=token,
            gone=request.is_disconnected,
        )
    except Cancelled:
        if token.expired:
            raise overrun(estimate, limit) from None
        raise ClientGone from None
