"""POST /api/v1/inspect: every term of one cell's equations at one (layer, direction,
position), forward and backward, for the page's look inside one step."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ConfigDict, Field, StrictInt

from app.api.compute import CancelToken
from app.api.encoding import JSONBytesResponse
from app.api.errors import ApiError, from_value_error
from app.api.inputs import TraceJob, client_of, resolve_trace_request
from app.api.running import CLIENT_CLOSED, ClientGone, run_for_client
from app.api.schemas import BAD_BODY, ErrorOut, TraceRequest
from app.rnn.inspect import inspect_step

router = APIRouter(prefix="/inspect", tags=["inspect"])

ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_BODY,
    404: {"model": ErrorOut, "description": "model_id not in the store"},
    413: {"model": ErrorOut, "description": "body over the byte limit"},
    422: {"model": ErrorOut, "description": "a field is invalid or over its limit"},
    429: {"model": ErrorOut, "description": "this client already runs a heavy computation"},
    503: {"model": ErrorOut, "description": "the wait queue is full; see Retry-After"},
}


class StepRequest(TraceRequest):
    """A trace request (the same network, weights and sequence) and one step of it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {"cell": "lstm", "input_size": 1, "hidden_size": 4},
                    "init": {"scheme": "pytorch", "scale": 1.0, "seed": 0},
                    "inputs": [[0.0], [0.5], [1.0], [0.5]],
                    "targets": [[0.5], [1.0], [0.5], [0.0]],
                    "layer": 0,
                    "direction": 0,
                    "position": 2,
                }
            ]
        },
    )

    layer: StrictInt = Field(0, ge=0, description="0-based layer")
    direction: StrictInt = Field(0, ge=0, le=1, description="0 forward, 1 reverse")
    position: StrictInt = Field(0, ge=0, description="0-based position t")
    jacobians: bool = Field(False, description="not used: the step's own norm is always given")


async def resolve_step(request: Request, body: StepRequest) -> TraceJob:
    """The body's network, weights and sequence, validated as `POST /trace` validates them
    (caps, budget, stored weights). Full BPTT only: a truncated run is a 422."""
    if body.truncate is not None:
        raise ApiError(
            422, "truncate: a single step is shown with full BPTT; leave truncate out", "truncate"
        )
    state = request.app.state
    store = getattr(state, "store", None)
    # a config left out stays left out: the stored model's is used
    skip = {"layer", "direction", "position"} | ({"config"} - body.model_fields_set)
    trace_body = TraceRequest(**body.model_dump(exclude=skip))
    return await state.pool.run(
        resolve_trace_request, trace_body, state.settings, store, "trace", client=client_of(request)
    )


@router.post("", responses=ERRORS, summary="Every term of one step's equations, with numbers")
async def inspect(request: Request, body: StepRequest) -> Response:
    """W_ih x_t, W_hh h_prev and both biases split by gate (PyTorch's gate order), each
    gate's pre-activation and activation, c_t (LSTM) and h_t at (layer, direction,
    position); the one-step Jacobian's norm; and with `targets`, the backward half: dL/dh_t
    split into what comes from outside the recurrence and from the next step, dL/dc_t,
    the pre-activation gradients, what the step sends back to h_prev (c_prev) and down to
    x_t, and the step's own share of dL/dW_hh ((G*H, H)) with its norm. Non-finite
    numbers are null."""
    job = await resolve_step(request, body)
    try:
        pieces = await run_for_client(request, _pieces, job, body, estimate=job.estimate)
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    return JSONBytesResponse(pieces)


def _pieces(job: TraceJob, body: StepRequest, cancel: CancelToken) -> dict[str, Any]:
    try:
        pieces = inspect_step(
            job.config,
            job.params,
            job.inputs,
            job.targets,
            body.layer,
            body.direction,
            body.position,
            cancel=cancel,
        )
    except ValueError as exc:
        raise from_value_error(exc) from None
    return {"config": job.config.to_dict(), **asdict(pieces)}
