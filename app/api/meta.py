"""GET /api/v1/cells, /tasks and /limits: what can be run, in words."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.api.encoding import JSONBytesResponse, plain
from app.api.errors import ApiError, from_value_error
from app.api.limits import check_length
from app.api.schemas import BAD_BODY, CellInfo, ErrorOut, TaskInfo

router = APIRouter(tags=["meta"])

CELLS: list[dict[str, Any]] = [
    {
        "name": "rnn_tanh",
        "title": "Elman RNN (tanh)",
        "gates": [],
        "state": ["h"],
        "description": "The plain recurrent network: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} "
        "+ b_hh). One matrix W_hh carries memory from step to step, so the gradient reaching "
        "an early step is a product of many Jacobians diag(1 - h^2) W_hh: it shrinks "
        "(vanishes) when their norms are below one and grows (explodes) when above.",
    },
    {
        "name": "rnn_relu",
        "title": "Elman RNN (ReLU)",
        "gates": [],
        "state": ["h"],
        "description": "The plain recurrent network with a ReLU: h_t = max(0, W_ih x_t + b_ih + "
        "W_hh h_{t-1} + b_hh). With identity-initialised W_hh (IRNN) it can hold information "
        "for long, but nothing bounds the state: with a spectral radius above one, states "
        "and gradients explode.",
    },
    {
        "name": "lstm",
        "title": "LSTM",
        "gates": ["input", "forget", "cell", "output"],
        "state": ["h", "c"],
        "description": "Long short-term memory (PyTorch gate order i, f, g, o). A cell state "
        "c_t = f * c_{t-1} + i * g is updated additively; the forget gate f decides how much "
        "survives each step, so gradients can flow across many steps through c without "
        "being squeezed by a matrix product each time.",
    },
    {
        "name": "gru",
        "title": "GRU",
        "gates": ["reset", "update", "new"],
        "state": ["h"],
        "description": "Gated recurrent unit (PyTorch gate order r, z, n). The update gate z "
        "mixes the old state with a candidate n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): "
        "h_t = (1 - z) * n + z * h_{t-1}. Where z is near one the state, and its gradient, "
        "pass through nearly unchanged.",
    },
]


@router.get("/cells", response_model=list[CellInfo], summary="The recurrent cells")
def cells() -> list[dict[str, Any]]:
    """Each cell the engine runs, its gates and state, with a paragraph on how it behaves."""
    return CELLS


@router.get("/tasks", response_model=list[TaskInfo], summary="The built-in training tasks")
def tasks() -> list[dict[str, Any]]:
    """Each built-in task with its description and default parameters."""
    from app.rnn.tasks import describe_tasks

    return describe_tasks()


class SampleRequest(BaseModel):
    """Which task, its parameters, and the seed that fixes the sequences."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"params": {"length": 20}, "seed": 0, "count": 1}]},
    )

    params: dict[str, Any] = Field(
        default_factory=dict,
        description="task parameters, the same object training and forecasts take as "
        "task.params; left out, the task's defaults (GET /api/v1/tasks)",
    )
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    count: StrictInt = Field(1, ge=1, le=16, description="sequences to draw")
    split: Literal["train", "test"] = Field(
        "train", description="real series: windows before the split date, or after it"
    )
    probe: StrictBool = Field(
        False,
        description="the sequence a training run with this seed probes and shows (count 1, "
        "held out), with its dates for a real series",
    )


class SampleOut(BaseModel):
    """Sequences drawn from a task, and what a network needs to fit it."""

    task: str
    input_size: int
    output_size: int
    head: str
    output_mode: str
    params: dict[str, Any]
    inputs: list[Any] = Field(description="(count, T, input_size)")
    targets: list[Any] = Field(description="per sequence, shaped for the head and output mode")
    forecast: str | None = Field(
        None,
        description="forecasting tasks: level (an input is the value: tomorrow = today "
        "repeats it) or change (an input is a step's change: tomorrow = today predicts 0)",
    )
    dates: list[list[str]] | None = Field(
        None, description="real series: (count, T + horizon) ISO dates of each window's values"
    )
    values: list[list[float]] | None = Field(
        None, description="real series: (count, T + horizon) raw values (prices) on those dates"
    )


@router.post(
    "/tasks/{name}/sample",
    response_model=SampleOut,
    responses={**BAD_BODY, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="Draw sequences from a task",
)
def sample_task(request: Request, name: str, body: SampleRequest) -> JSONBytesResponse:
    """The same seed always draws the same sequences: this is how the page gets the input
    it shows for a task, and how a shared link reproduces it."""
    import numpy as np

    from app.rnn.forecast import probe_rng
    from app.rnn.tasks import make_task

    try:
        task = make_task(name, **body.params)
    except ValueError as exc:
        raise from_value_error(exc) from None
    except TypeError as exc:
        raise ApiError(422, f"params: {exc}", "params") from None
    spec = task.spec
    check_length(spec.length, request.app.state.settings, "params.length")
    if body.probe and (body.count != 1 or body.split != "test"):
        raise ApiError(422, "probe: a training run probes one held-out sequence", "probe")
    rng = probe_rng(body.seed) if body.probe else np.random.default_rng(body.seed)
    inputs, targets, info = task.sample_info(rng, body.count, body.split)
    return JSONBytesResponse(
        {
            "task": name,
            "input_size": spec.input_size,
            "output_size": spec.output_size,
            "head": spec.head,
            "output_mode": spec.output_mode,
            "params": spec.params,
            "inputs": inputs,
            "targets": [plain(t) for t in targets],
            "forecast": task.forecast,
            **info,
        }
    )


@router.get("/limits", summary="The caps on every size a request controls")
def limits(request: Request) -> dict[str, int | float]:
    """The server's limits (from UNROLL_* settings); requests over them get 422 or 413."""
    return request.app.state.settings.limits()
