"""POST /api/v1/trace and /api/v1/trace/stream: one sequence, whole or frame by frame.

Each request is estimated (`app/cost.py`) and refused over the budget before anything is
allocated; its computation runs in the pool, stops when the client leaves, and its answer
is encoded in worker threads (a stream's frames in batches), never on the event loop.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.api.compute import CancelToken, ComputePool
from app.api.encoding import (
    FrameStream,
    bytes_response,
    dumps_chunked,
    ndjson_line,
    sse_event,
    trace_to_dict,
    trace_to_npz_arrays,
)
from app.api.errors import ApiError
from app.api.events import FrameStamper, config_frame, phase_frames, summary_frame
from app.api.frames import SCHEMA_VERSION
from app.api.inputs import (
    TraceJob,
    TraceKind,
    check_trace_request,
    client_of,
    is_heavy,
    overrun,
    resolve_trace_request,
    time_limit,
)
from app.api.running import CLIENT_CLOSED, ClientGone, run_for_client
from app.api.schemas import BAD_BODY, ErrorOut, TraceOut, TraceRequest
from app.rnn import (
    Cancelled,
    SpectrumBlock,
    Trace,
    backward_trace,
    diagnose_trace,
    forward_trace,
    recurrent_spectrum,
)

router = APIRouter(prefix="/trace", tags=["trace"])

ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_BODY,
    404: {"model": ErrorOut, "description": "model_id not in the store"},
    413: {"model": ErrorOut, "description": "body over the byte limit"},
    422: {
        "model": ErrorOut,
        "description": "a field is invalid or over its limit, or the request's estimated "
        "work, memory or answer is over the budget (GET /api/v1/limits)",
    },
    429: {"model": ErrorOut, "description": "this client already runs a heavy computation"},
    503: {"model": ErrorOut, "description": "the wait queue is full; see Retry-After"},
}
NDJSON = "application/x-ndjson"
SMALL_SPECTRUM_H = 32  # up to this hidden size, weights and spectrum are made on the event loop
FRAMES_PER_CHUNK = 256  # stream frames encoded per worker-thread call and sent together


async def _job(request: Request, body: TraceRequest, kind: TraceKind) -> TraceJob:
    """Validate the body and make its weights: inline when that is cheap, in the pool
    when a big network's weights or a stored model (a database read) are involved."""
    state = request.app.state
    store = getattr(state, "store", None)
    check_trace_request(body, state.settings, kind)  # arithmetic: 422s before any queueing
    # fresh weights for a small network are microseconds; anything bigger goes to the pool
    small = body.config.hidden_size <= SMALL_SPECTRUM_H and body.config.num_layers <= 2
    if body.model_id is None and small:
        return resolve_trace_request(body, state.settings, store, kind)
    return await state.pool.run(
        resolve_trace_request, body, state.settings, store, kind, client=client_of(request)
    )


@router.post(
    "",
    response_model=TraceOut,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
    summary="Run one sequence: every state, gate, loss and BPTT gradient",
)
async def trace(
    request: Request,
    body: TraceRequest,
    format: Literal["json", "npz"] = Query("json", description="json, or npz for a download"),
) -> Response:
    """Forward pass and (with `targets`) full or truncated BPTT over one sequence.

    Weights come from `params`, else `model_id`, else `init`. Arrays are nested lists;
    a number that overflowed is `null` and `finite` is false. A client that disconnects
    stops the computation.
    """
    npz = format == "npz"
    job = await _job(request, body, "npz" if npz else "trace")
    try:
        data = await run_for_client(request, _answer, job, npz, estimate=job.estimate)
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)  # nobody is listening any more
    if npz:
        return bytes_response(
            data,
            "application/octet-stream",
            {"Content-Disposition": 'attachment; filename="trace.npz"'},
        )
    return bytes_response(data, "application/json")


def _answer(job: TraceJob, npz: bool, cancel: Callable[[], bool]) -> bytes:
    """The trace and its spectrum, encoded: JSON or npz bytes. Runs in a worker thread."""
    result = job.run(cancel)
    spectrum = recurrent_spectrum(job.config, job.params)
    if cancel():  # encoding a big answer takes a while: not for a client who left
        raise Cancelled("cancelled")
    if npz:
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **trace_to_npz_arrays(result, spectrum))
        return buffer.getvalue()
    return dumps_chunked(trace_to_dict(result, spectrum))


@router.post(
    "/stream",
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "description": "Server-Sent Events (default) or JSON Lines when the request "
            "sends `Accept: application/x-ndjson`. Events: config, forward..., backward..., "
            "summary, done; each a frame of docs/frame-schema.json.",
            "content": {"text/event-stream": {}, NDJSON: {}},
        },
    },
    summary="Stream a sequence's forward steps and BPTT steps as they are computed",
)
async def trace_stream(request: Request, body: TraceRequest) -> Response:
    """Same body as `POST /trace`. Frames leave as they are computed, in the timeline's
    order (the config frame's `timeline`): `config` first, one `forward` per (layer,
    direction, position), all layer-directions of forward step k together, then one
    `backward` per (layer, direction, position) by backward step, then `summary` and `done`.
    The forward pass runs once; BPTT and then the Jacobian norms run on its record.
    """
    job = await _job(request, body, "stream")
    if is_heavy(job.estimate, request.app.state.settings):
        await request.app.state.pool.check_heavy(client_of(request))  # 429 before the stream starts
    ndjson = NDJSON in request.headers.get("accept", "")
    chunks = _stream(request, job, ndjson_line if ndjson else sse_event)
    if ndjson:
        return FrameStream(chunks, media_type=NDJSON)
    return FrameStream(
        chunks,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _encode_chunk(
    frames: Iterator[dict[str, Any]],
    stamp: FrameStamper,
    encode: Callable[[dict[str, Any]], bytes],
) -> bytes:
    """The next FRAMES_PER_CHUNK frames, stamped and encoded, joined. In a worker thread."""
    return b"".join(encode(stamp(f)) for f in itertools.islice(frames, FRAMES_PER_CHUNK))


async def _stream(
    request: Request, job: TraceJob, encode: Callable[[dict[str, Any]], bytes]
) -> AsyncIterator[bytes]:
    """The stream's bytes: frames numbered from 0, each stage computed in the pool (its
    slot released while the frames go out), encoded in batches in worker threads."""
    pool: ComputePool = request.app.state.pool
    client = client_of(request)
    settings = request.app.state.settings
    heavy = is_heavy(job.estimate, settings)
    token = CancelToken(time_limit(settings))
    stamp = FrameStamper()

    async def stage(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            return fn(*args, **kwargs)

        return await pool.run(
            call, client=client, heavy=heavy, token=token, gone=request.is_disconnected
        )

    async def frames_out(frames: Iterator[dict[str, Any]]) -> AsyncIterator[bytes]:
        while chunk := await pool.encode(_encode_chunk, frames, stamp, encode):
            yield chunk

    try:
        spectrum = await _spectrum(pool, job, client)
        has_targets = job.targets is not None
        # the config frame leaves before any position is computed
        yield encode(stamp(config_frame(_skeleton(job), spectrum, has_targets)))
        trace = await stage(
            forward_trace, job.config, job.params, job.inputs, job.targets, cancel=token
        )
        async for chunk in frames_out(phase_frames(trace, "forward")):
            yield chunk
        if has_targets:
            await stage(backward_trace, trace, job.truncate, cancel=token)
            if job.jacobians:  # the diagnostics come after the gradients
                await stage(diagnose_trace, trace, job.jacobian_layers, cancel=token)
            async for chunk in frames_out(phase_frames(trace, "backward")):
                yield chunk
        trace.release()
        done = {"type": "done"}
        final = [summary_frame(trace), done]
        yield await pool.encode(_encode_chunk, iter(final), _DoneStamper(stamp), encode)
    except Cancelled:
        if token.expired:
            yield encode(_error(overrun(job.estimate, time_limit(settings))))
    except ApiError as exc:
        yield encode(_error(exc))


class _DoneStamper:
    """Stamps like the stream's stamper, and gives `done` the count of frames sent."""

    def __init__(self, stamp: FrameStamper):
        self.stamp = stamp

    def __call__(self, frame: dict[str, Any]) -> dict[str, Any]:
        frame = self.stamp(frame)
        if frame["type"] == "done":
            frame["events"] = frame["id"] + 1
        return frame


async def _spectrum(pool: ComputePool, job: TraceJob, client: str) -> list[SpectrumBlock]:
    # a small model's eigenvalues take well under a millisecond: no queueing for them
    if job.config.hidden_size <= SMALL_SPECTRUM_H:
        return recurrent_spectrum(job.config, job.params)
    return await pool.run(recurrent_spectrum, job.config, job.params, client=client)


def _skeleton(job: TraceJob) -> Trace:
    """A trace with nothing computed yet: what the config frame describes."""
    return Trace(
        config=job.config,
        inputs=job.inputs,
        targets=None,
        outputs=np.zeros(0),
        hidden=np.zeros(0),
        cell=None,
        gates={},
        truncate=job.truncate,
    )


def _error(exc: ApiError) -> dict[str, Any]:
    return {
        "type": "error",
        "schema_version": SCHEMA_VERSION,
        "id": 0,
        "status": exc.status,
        "detail": exc.detail,
        "field": exc.field,
    }
