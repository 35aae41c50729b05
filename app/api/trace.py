"""POST /api/v1/trace and /api/v1/trace/stream: one sequence, whole or frame by frame."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from app.api.compute import ComputePool
from app.api.encoding import JSONBytesResponse, dumps, trace_to_dict, trace_to_npz_arrays
from app.api.errors import ApiError
from app.api.events import (
    FrameStamper,
    backward_frames,
    config_frame,
    forward_frames,
    summary_frame,
)
from app.api.frames import SCHEMA_VERSION
from app.api.inputs import TraceJob, resolve_trace_request
from app.api.schemas import BAD_BODY, ErrorOut, TraceOut, TraceRequest
from app.rnn import SpectrumBlock, Trace, recurrent_spectrum, run_sequence
from app.rnn.loss import loss_and_grad

router = APIRouter(prefix="/trace", tags=["trace"])

ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_BODY,
    404: {"model": ErrorOut, "description": "model_id not in the store"},
    413: {"model": ErrorOut, "description": "body over the byte limit"},
    422: {"model": ErrorOut, "description": "a field is invalid or over its limit"},
}
NDJSON = "application/x-ndjson"
SMALL_SPECTRUM_H = 32  # up to this hidden size, weights and spectrum are made on the event loop


async def _job(request: Request, body: TraceRequest) -> TraceJob:
    """Validate the body and make its weights: inline when that is cheap, in the pool
    when a big network's weights or a stored model (a database read) are involved."""
    state = request.app.state
    store = getattr(state, "store", None)
    # fresh weights for a small network are microseconds; anything bigger goes to the pool
    small = body.config.hidden_size <= SMALL_SPECTRUM_H and body.config.num_layers <= 2
    if body.model_id is None and small:
        return resolve_trace_request(body, state.settings, store)
    return await state.pool.run(resolve_trace_request, body, state.settings, store)


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
    a number that overflowed is `null` and `finite` is false.
    """
    job = await _job(request, body)
    pool: ComputePool = request.app.state.pool
    result, spectrum = await pool.run(_trace_and_spectrum, job)
    if format == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **trace_to_npz_arrays(result, spectrum))
        return Response(
            buffer.getvalue(),
            media_type="application/octet-stream",
            headers={"Content-Disposition": 'attachment; filename="trace.npz"'},
        )
    return JSONBytesResponse(trace_to_dict(result, spectrum))


def _forward_with_loss(job: TraceJob) -> Trace:
    """Forward pass only, plus each position's loss (no gradients yet)."""
    # Jacobian norms belong to the backward frames: the full pass computes them
    result = run_sequence(job.config, job.params, job.inputs, None, truncate=job.truncate)
    if job.targets is not None:
        with np.errstate(all="ignore"):
            loss, per_step, _ = loss_and_grad(
                job.config.head, result.outputs[None], job.targets[None]
            )
        result.targets, result.loss = job.targets, loss
        result.loss_per_step = per_step[0] if job.config.output_mode == "sequence" else None
    return result


def _trace_and_spectrum(job: TraceJob) -> tuple[Trace, list[SpectrumBlock]]:
    return job.run(), recurrent_spectrum(job.config, job.params)


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
    """Same body as `POST /trace`. Frames leave as they are computed: `config` first,
    one `forward` per (layer, direction, position) in compute order, one `backward` per
    (layer, direction, position) in the order BPTT visits them, then `summary` and `done`.
    """
    job = await _job(request, body)
    frames = _stream_frames(request, job)
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_ndjson(frames), media_type=NDJSON)
    return EventSourceResponse(
        _sse(frames), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def _stream_frames(request: Request, job: TraceJob) -> AsyncIterator[dict[str, Any]]:
    """Frames numbered from 0, computed stage by stage in the worker pool."""
    pool: ComputePool = request.app.state.pool
    stamp = FrameStamper()

    # a small model's eigenvalues take well under a millisecond: no queueing for them
    small = job.config.hidden_size <= SMALL_SPECTRUM_H
    spectrum = (
        recurrent_spectrum(job.config, job.params)
        if small
        else await pool.run(recurrent_spectrum, job.config, job.params)
    )
    has_targets = job.targets is not None
    # the config frame leaves before any position is computed
    skeleton = Trace(
        config=job.config,
        inputs=job.inputs,
        targets=None,
        outputs=np.zeros(0),
        hidden=np.zeros(0),
        cell=None,
        gates={},
        truncate=job.truncate,
    )
    for frame in map(stamp, [config_frame(skeleton, spectrum, has_targets)]):
        yield frame
    if await request.is_disconnected():
        return
    forward = await pool.run(_forward_with_loss, job)
    for frame in map(stamp, forward_frames(forward)):
        yield frame
    full = None
    if has_targets:
        if await request.is_disconnected():
            return
        full = await pool.run(job.run)
        for frame in map(stamp, backward_frames(full)):
            yield frame
    final = full or forward
    for frame in map(stamp, [summary_frame(final), {"type": "done"}]):
        if frame["type"] == "done":
            frame["events"] = frame["id"] + 1
        yield frame


async def _sse(frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for frame in frames:
            yield format_sse_event(
                data_str=dumps(frame).decode(), event=frame["type"], id=str(frame["id"])
            )
    except ApiError as exc:
        yield format_sse_event(data_str=dumps(_error(exc)).decode(), event="error")


async def _ndjson(frames: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for frame in frames:
            yield dumps(frame) + b"\n"
    except ApiError as exc:
        yield dumps(_error(exc)) + b"\n"


def _error(exc: ApiError) -> dict[str, Any]:
    return {
        "type": "error",
        "schema_version": SCHEMA_VERSION,
        "id": 0,
        "status": exc.status,
        "detail": exc.detail,
        "field": exc.field,
    }
