"""POST /api/v1/estimate/trace and /estimate/train: what a request would cost, before it runs."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.api.inputs import estimate_trace_request, is_heavy
from app.api.schemas import BAD_BODY, ErrorOut, TraceRequest
from app.api.training import TrainRequest, estimate_training, fit_request
from app.cost import Budget, Estimate

router = APIRouter(prefix="/estimate", tags=["estimate"])

ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_BODY,
    404: {"model": ErrorOut, "description": "model_id (given without a config) not stored"},
    413: {"model": ErrorOut},
    422: {"model": ErrorOut, "description": "a field is invalid or over its cap"},
}


class EstimateOut(BaseModel):
    """A request's estimated cost on this server, and whether the budget admits it."""

    seconds: float = Field(description="work, in seconds on the reference 2-core machine")
    memory_bytes: int = Field(description="peak working memory")
    response_bytes: int = Field(description="the answer's size (a stream's frames together)")
    reduce: list[str] = Field(description="fields to change to make it cheaper, best first")
    heavy: bool = Field(description="one per client at a time; never takes the last slot")
    within_budget: bool
    detail: str | None = Field(description="why the budget refuses it; null when it runs")
    budget: dict[str, float] = Field(description="the budget it was held against")


def _answer(request: Request, estimate: Estimate, training: bool) -> dict[str, Any]:
    settings = request.app.state.settings
    budget = Budget.from_settings(settings)
    refusal = budget.refusal(estimate, training)
    return {
        **estimate.to_dict(),
        "heavy": is_heavy(estimate, settings),
        "within_budget": refusal is None,
        "detail": refusal,
        "budget": {
            "seconds": budget.train_seconds if training else budget.seconds,
            "memory_bytes": budget.memory_bytes,
            "response_bytes": budget.response_bytes,
        },
    }


@router.post(
    "/trace",
    response_model=EstimateOut,
    responses=ERRORS,
    summary="Estimate a trace, stream or session command before sending it",
)
def estimate_trace(
    request: Request,
    body: TraceRequest,
    kind: Literal["trace", "npz", "stream", "session"] = Query(
        "trace", description="POST /trace (json or npz), /trace/stream, or a session configure"
    ),
) -> dict[str, Any]:
    """The body of `POST /trace`: its estimated work, memory and answer size, and whether
    this server's budget admits it (a request over it is refused with 422)."""
    store = getattr(request.app.state, "store", None)  # model_id without config: its config
    _, estimate = estimate_trace_request(body, request.app.state.settings, kind, store)
    return _answer(request, estimate, training=False)


@router.post(
    "/train",
    response_model=EstimateOut,
    responses=ERRORS,
    summary="Estimate a training run before starting it",
)
def estimate_train(request: Request, body: TrainRequest) -> dict[str, Any]:
    """The body of `POST /train/stream`: the whole run's estimated work (steps, probes and
    the final evaluation), peak memory and streamed bytes, and whether the budget admits it."""
    config, task, train_config, _ = fit_request(body, request.app.state.settings)
    return _answer(request, estimate_training(config, task, train_config), training=True)
