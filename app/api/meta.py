"""GET /api/v1/cells, /tasks and /limits: what can be run, in words."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.api.schemas import CellInfo, TaskInfo

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


@router.get("/limits", summary="The caps on every size a request controls")
def limits(request: Request) -> dict[str, int]:
    """The server's limits (from UNROLL_* settings); requests over them get 422 or 413."""
    return request.app.state.settings.limits()
