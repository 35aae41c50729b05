"""POST /api/v1/horizon: the gradient reaching each state of one layer-direction, split by
the loss position it came from (the gradient horizon, after RNNbow)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.compute import CancelToken
from app.api.encoding import JSONBytesResponse
from app.api.errors import ApiError, from_value_error
from app.api.inputs import TraceJob, is_heavy, request_config
from app.api.inspect import ERRORS, StepRequest, resolve_step
from app.api.limits import check_config_limits
from app.api.running import CLIENT_CLOSED, ClientGone, run_for_client
from app.rnn import ModelConfig
from app.rnn.horizon import check_horizon, gradient_horizon, horizon_cost

router = APIRouter(prefix="/horizon", tags=["inspect"])

HEAVY_MACS = 2e8  # above this the split takes a noticeable fraction of a second: heavy


@router.post("", responses=ERRORS, summary="The gradient at each state, by the loss it came from")
async def horizon(request: Request, body: StepRequest) -> Response:
    """For layer-direction (layer, direction): `norms[t][k]`, the size of the part of
    dL/dh_t that comes from the loss at position `sources[k]` (every position in sequence
    mode, the last in last mode), and at `position` the parts themselves (`hidden` (N, H),
    `cell` for the LSTM) and their sum `total`, which is the trace's grad_hidden there.
    Needs `targets`. Costs N backward passes run as one (see `cost`); over the caps a 422
    names `inputs` before any work."""
    if body.targets is None:
        raise ApiError(
            422, "targets: the gradient horizon needs targets (a loss to split)", "targets"
        )
    if body.config_given:  # the cost caps, from sizes alone, before any weight is made
        config = request_config(body)
        check_config_limits(config, request.app.state.settings)  # names the field over its cap
        _check_caps(body, config)
    job = await resolve_step(request, body)
    config = job.config  # the stored model's when the body gives only model_id
    _check_caps(body, config)
    cost = horizon_cost(config, len(body.inputs), body.layer)
    heavy = cost.macs > HEAVY_MACS or is_heavy(job.estimate, request.app.state.settings)
    try:
        answer = await run_for_client(
            request, _split, job, body, estimate=job.estimate, heavy=heavy
        )
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    return JSONBytesResponse(answer)


def _check_caps(body: StepRequest, config: ModelConfig) -> None:
    try:
        check_horizon(config, len(body.inputs), body.layer, body.direction, body.position)
    except ValueError as exc:
        raise from_value_error(exc) from None


def _split(job: TraceJob, body: StepRequest, cancel: CancelToken) -> dict[str, Any]:
    try:
        split = gradient_horizon(
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
    cost = horizon_cost(job.config, len(job.inputs), body.layer)
    return {"config": job.config.to_dict(), "cost": asdict(cost), **asdict(split)}
