"""POST /api/v1/forecast/score and /forecast/horizon: a trained model's held-out loss
beside the naive baselines, and the error at each future step, direct and recursive."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.api.encoding import JSONBytesResponse
from app.api.errors import ApiError, from_value_error
from app.api.limits import check_length
from app.api.schemas import BAD_BODY, MODEL_ID_PATTERN, ErrorOut, TaskIn
from app.rnn import ModelConfig
from app.rnn.forecast import (
    BASELINES,
    baseline_losses,
    gap_baselines,
    gap_losses,
    horizon_errors,
)
from app.rnn.task import Task
from app.rnn.tasks import make_task
from app.rnn.train import held_out_loss
from app.rnn.types import Params
from app.settings import Settings

router = APIRouter(prefix="/forecast", tags=["forecast"])

MAX_EVAL_SIZE = 1000  # held-out windows; 1000 is what training reports its final loss on
MAX_STEPS = 20  # future values, as far as any task's horizon goes
# one request's forward passes, at most a few seconds on a small machine
MAX_MACS = 2e10  # multiply-adds over the batch (~3 s)
MAX_CELL_STEPS = 200_000  # layer x direction x position steps, each a Python-level call
ERRORS: dict[int | str, dict[str, Any]] = {
    **BAD_BODY,
    404: {"model": ErrorOut, "description": "no stored model has this id"},
    422: {"model": ErrorOut},
}


class ScoreRequest(BaseModel):
    """A task's held-out set (from its seed) and, optionally, a model to score on it."""

    model_config = ConfigDict(extra="forbid")

    task: TaskIn
    model_id: str | None = Field(None, pattern=MODEL_ID_PATTERN, description="a stored model")
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1, description="the training seed")
    size: StrictInt = Field(MAX_EVAL_SIZE, ge=1, le=MAX_EVAL_SIZE)


class HorizonRequest(BaseModel):
    """Forecast `steps` values from the end of each held-out window, two ways."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"task": {"name": "sine", "params": {"length": 40}}, "steps": 10, "seed": 0}
            ]
        },
    )

    task: TaskIn
    steps: StrictInt = Field(5, ge=1, le=MAX_STEPS)
    direct: str | None = Field(
        None, pattern=MODEL_ID_PATTERN, description="a model trained with horizon >= steps"
    )
    recursive: str | None = Field(
        None, pattern=MODEL_ID_PATTERN, description="a one-step model, run on its own outputs"
    )
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    size: StrictInt = Field(200, ge=1, le=MAX_EVAL_SIZE)


def build_task(task: TaskIn, settings: Settings, field: str = "task") -> Task:
    """The task a request names, validated against the core and the length cap."""
    try:
        built = make_task(task.name, **task.task_params)
    except ValueError as exc:
        raise from_value_error(exc) from None
    except TypeError as exc:
        raise ApiError(422, f"{field}: {exc}", field) from None
    check_length(built.spec.length, settings, f"{field}.length")
    return built


def stored_model(
    request: Request, model_id: str, field: str = "model_id"
) -> tuple[ModelConfig, Params]:
    """A stored model's config and weights; 404 naming `field` when there is none."""
    store = request.app.state.store
    found = store.get(model_id) if store is not None else None
    if found is None:
        raise ApiError(404, f"{field}: no stored model {model_id}", field)
    return found


def check_work(config: ModelConfig, batch: int, positions: int, field: str) -> None:
    """422 naming `field` when forward passes over `positions` positions in all (summed over
    passes run one after another), each over `batch` sequences, would be too much work."""
    G, H, D, L = config.gate_multiple, config.hidden_size, config.num_directions, config.num_layers
    inputs = config.input_size + (L - 1) * D * H
    macs = batch * positions * D * G * H * (L * H + inputs)
    steps = positions * L * D
    if macs > MAX_MACS or steps > MAX_CELL_STEPS:
        raise ApiError(
            422,
            f"{field}: {batch} x {positions} positions through this network is over the "
            f"limit for one request ({macs:.2g} multiply-adds of {MAX_MACS:.0e}, {steps} "
            f"cell steps of {MAX_CELL_STEPS}); ask for fewer",
            field,
        )


def _fits(task: Task, config: ModelConfig, field: str) -> None:
    try:
        task.check_config(config)
    except ValueError as exc:
        raise ApiError(422, f"{field}: {exc}", field) from None


def _score(task: Task, model: tuple[ModelConfig, Params] | None, seed: int, size: int) -> dict:
    answer: dict[str, Any] = {"task": task.name, "split": "test", "size": size, "seed": seed}
    if task.forecast is not None:
        answer["baselines"] = baseline_losses(task, seed, size)
        answer["labels"] = BASELINES
    if model is not None:
        config, params = model
        answer["loss"] = held_out_loss(config, params, task, seed, size)
        if task.name == "gap":
            answer["gap"] = gap_losses(config, params, task, seed, size)
    if task.name == "gap":
        answer["gap_baselines"] = gap_baselines(task, seed, size)
    return answer


@router.post("/score", responses=ERRORS, summary="Held-out loss of a model and the baselines")
async def score(request: Request, body: ScoreRequest) -> JSONBytesResponse:
    """The loss on held-out data (for real series: only dates after the split) with the
    same windows, positions, normalisation and loss as training's final `eval_loss` for
    the same seed: the model's (given `model_id`) and, for a forecasting task, the naive
    forecast's ("tomorrow = today") and the window mean's. On the gap task, also the loss
    inside the gap alone, and two guesses without a network: the last value before the gap
    carried across it (one direction's knowledge) and a straight line between its edges
    (both directions'). If the network does not beat the naive forecast, it has not
    learned anything the last value did not already say."""
    settings = request.app.state.settings
    task = build_task(body.task, settings)
    model = None
    if body.model_id is not None:
        model = stored_model(request, body.model_id)
        _fits(task, model[0], "model_id")
        chunks = -(-body.size // 250)  # held_out_loss runs chunks of 250 one after another
        check_work(model[0], min(body.size, 250), chunks * task.spec.length, "size")
    answer = await request.app.state.pool.run(_score, task, model, body.seed, body.size)
    return JSONBytesResponse(answer)


@router.post(
    "/horizon", responses=ERRORS, summary="Error at each future step: direct, recursive, naive"
)
async def horizon(request: Request, body: HorizonRequest) -> JSONBytesResponse:
    """From the last position of each held-out window, forecast `steps` values: with a
    `direct` model (trained with `horizon` >= steps: all values at once), with a
    `recursive` one (trained one step ahead with teacher forcing, then fed its own
    predictions), and with the baselines. Answers the mean squared error at each step, in
    the task's normalised units over `size` held-out windows, and the first window's
    forecasts to draw (with dates and raw values for a real series)."""
    settings = request.app.state.settings
    task = build_task(body.task, settings)
    if task.forecast is None:
        raise ApiError(
            422, f"task.name: the {task.name} task does not forecast a series", "task.name"
        )
    check_length(task.spec.length + body.steps, settings, "steps")
    models: dict[str, tuple[str, ModelConfig, Params]] = {}
    for mode in ("direct", "recursive"):
        model_id = getattr(body, mode)
        if model_id is not None:
            config, params = stored_model(request, model_id, mode)
            T = task.spec.length
            # recursive: one pass per step over a growing window
            positions = T if mode == "direct" else body.steps * T + body.steps**2 // 2
            check_work(config, body.size, positions, "size")
            models[mode] = (mode, config, params)
    run = partial(horizon_errors, task, body.seed, body.steps, models, body.size)
    try:
        answer = await request.app.state.pool.run(run)
    except ValueError as exc:
        raise from_value_error(exc) from None
    # params carry the normalisation (scale, shift) that turns forecasts back into prices
    head = {"task": task.name, "steps": body.steps, "size": body.size, "labels": BASELINES}
    extra = {"forecast": task.forecast, "params": task.spec.params}
    return JSONBytesResponse({**head, **extra, **answer})
