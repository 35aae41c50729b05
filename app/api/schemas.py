"""Request and response bodies of the JSON API: one pydantic model per body."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    model_validator,
)

from app.rnn import ModelConfig

Cell = Literal["rnn_tanh", "rnn_relu", "lstm", "gru"]
Vector = list[float | None]
Matrix = list[Vector]

MODEL_ID_PATTERN = r"^[0-9a-f]{64}$"
# request numbers are strict: a string, boolean or object where a number goes is a 422,
# never quietly read as one ("8" as 8, true as 1)
Number = StrictFloat


def _rank(value: Any) -> str:
    nested = isinstance(value, list) and bool(value) and isinstance(value[0], list)
    return "list[list[float]]" if nested else "list[float]"


# a weight matrix or a bias vector; told apart by the first element, so a bad number gets
# one error naming it rather than one per shape tried
Tensor = Annotated[
    Annotated[list[list[Number]], Tag("list[list[float]]")]
    | Annotated[list[Number], Tag("list[float]")],
    Discriminator(_rank),
]


class ConfigIn(BaseModel):
    """The network: the fields of `app.rnn.ModelConfig`."""

    model_config = ConfigDict(extra="forbid")

    cell: Cell = "lstm"
    input_size: StrictInt = Field(1, ge=1, description="features per position")
    hidden_size: StrictInt = Field(8, ge=1, description="units per layer and direction")
    num_layers: StrictInt = Field(1, ge=1)
    bidirectional: StrictBool = False
    output_size: StrictInt = Field(1, ge=1, description="outputs, or classes for classification")
    head: Literal["regression", "classification"] = "regression"
    output_mode: Literal["sequence", "last", "final"] = "sequence"

    def to_core(self) -> ModelConfig:
        """The numeric core's config (raises ValueError on cross-field problems)."""
        return ModelConfig(**self.model_dump())


class InitIn(BaseModel):
    """How fresh weights are drawn when neither params nor model_id is given."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["pytorch", "xavier", "orthogonal", "identity"] = "pytorch"
    scale: Number = Field(
        1.0, ge=0.0, le=100.0, allow_inf_nan=False, description="multiplies the recurrent weights"
    )
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)


class TraceRequest(BaseModel):
    """One sequence through a network: forward, and with targets, full BPTT."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {"cell": "lstm", "input_size": 1, "hidden_size": 4},
                    "init": {"scheme": "pytorch", "scale": 1.0, "seed": 0},
                    "inputs": [[0.0], [0.5], [1.0], [0.5]],
                    "targets": [[0.5], [1.0], [0.5], [0.0]],
                    "jacobians": True,
                }
            ]
        },
    )

    config: ConfigIn = Field(
        default_factory=ConfigIn,
        description="the network; required unless model_id is given, when the stored "
        "model's config is used (a config given with model_id must match it)",
    )
    params: dict[str, Tensor] | None = Field(
        None, description="PyTorch-style name -> nested lists, e.g. rnn.weight_hh_l0"
    )
    model_id: str | None = Field(
        None, pattern=MODEL_ID_PATTERN, description="a stored model: its weights and config"
    )
    init: InitIn = Field(default_factory=InitIn)
    inputs: list[list[Number]] = Field(..., description="(T, input_size)")
    targets: list[list[Number]] | list[Number] | Number | None = Field(
        None,
        description="regression: (T, O) or (O,) in last mode; classification: (T,) or a "
        "scalar class index. Omit for a forward pass only.",
    )
    truncate: StrictInt | None = Field(None, ge=1, description="BPTT(k): at most k steps back")
    jacobians: StrictBool | list[StrictInt] = Field(
        True,
        description="record Jacobian norms per step: true for every layer, false for none, "
        "or a list of layer indices (0 = the bottom layer) to diagnose only those",
    )

    @model_validator(mode="after")
    def _config_or_model_id(self) -> TraceRequest:
        if not self.config_given and self.model_id is None:
            raise ValueError("config: Field required (unless model_id names a stored model)")
        return self

    @property
    def config_given(self) -> bool:
        """Whether the body names its config (else the stored model's is used)."""
        return "config" in self.model_fields_set


class SpectrumOut(BaseModel):
    """Eigenvalues of one recurrent weight block."""

    layer: int
    direction: int
    gate: str
    param: str
    eigenvalues_real: list[float]
    eigenvalues_imag: list[float]
    spectral_radius: float
    spectral_norm: float


class TimelinePhaseOut(BaseModel):
    """One phase of the timeline (app/api/timeline.py): steps start .. start + steps - 1."""

    phase: Literal["forward", "backward", "summary"]
    start: int
    steps: int
    layers: list[int] | None = Field(None, description="the order a step lists layers in")
    reversed: list[bool] | None = Field(
        None, description="per direction: step k shows position T-1-k (else k)"
    )


class TimelineOut(BaseModel):
    """The order every stream, session and page shows a trace in: by position, with
    every layer and direction advancing together; 2T+1 steps (T+1 without targets)."""

    length: int
    sequence_length: int
    phases: list[TimelinePhaseOut]


VerdictLabel = Literal["vanishing", "stable", "exploding", "overflowed", "none"]


class VerdictLayerOut(BaseModel):
    """The gradient verdict of one layer-direction (`app/rnn/verdict.py`)."""

    layer: int
    direction: int = Field(description="0 forward, 1 reverse")
    verdict: VerdictLabel
    reason: str = Field(description="why, in words: saturation, gates, spectral radius")
    rate: float | None = Field(
        description="per step: geometric mean of the successive ratios of the gradient's "
        "size walking back from the last position; null when not measured or overflowed"
    )
    surviving: float | None = Field(description="the fraction left after `steps` steps")
    steps: int = Field(description="steps measured: T-1, or the truncation when shorter")
    surviving_to_start: float | None = Field(
        description="the fraction of the last position's gradient reaching the first "
        "position this direction computes (0 when truncation stops it before)"
    )
    truncated: bool = Field(description="truncation, not the sequence's start, ends the steps")
    source: Literal["jacobian_product", "grad_hidden"] | None = Field(
        description="measured on ||ds_last/ds_t||, or on ||dL/ds_t|| (one layer, last mode, "
        "no Jacobian norms)"
    )
    from_position: int = Field(description="the position the gradient starts from")
    to_position: int = Field(description="the furthest position it reaches")
    spectral_radius: float | None = Field(description="the largest of this W_hh's blocks")
    linked: bool = Field(
        description="false for the top reverse direction in bidirectional last mode: its "
        "gradient is zero except at the last position, so its profile has no link to the loss"
    )


class VerdictOut(BaseModel):
    """Whether the gradient vanishes, holds or explodes on its way back, and why: the
    decisive layer-direction's numbers (the worst linked to the loss), and every one."""

    verdict: VerdictLabel
    reason: str
    rate: float | None
    surviving: float | None
    steps: int
    surviving_to_start: float | None
    truncated: bool
    truncate: int | None
    source: Literal["jacobian_product", "grad_hidden"] | None
    layer: int
    direction: int
    layers: list[VerdictLayerOut]
    notes: list[str] = Field(description="caveats, e.g. bidirectional last mode")


class TraceOut(BaseModel):
    """A whole trace. L layers, D directions, T positions, H units; null marks an overflow."""

    config: ConfigIn
    inputs: Matrix
    targets: Any = None
    outputs: Any = Field(description="(T, O) in sequence mode, (O,) in last mode")
    loss: float | None
    loss_per_step: Vector | None = Field(description="(T,); loss is their mean")
    hidden: list[list[Matrix]] = Field(description="(L, D, T, H)")
    cell: list[list[Matrix]] | None = Field(description="(L, D, T, H), LSTM only")
    gates: dict[str, list[list[Matrix]]] = Field(description="gate -> (L, D, T, H)")
    grad_hidden: list[list[Matrix]] | None = Field(description="(L, D, T, H) total dL/dh_t")
    grad_cell: list[list[Matrix]] | None
    grad_inputs: Matrix | None = Field(description="(T, input_size)")
    grads: dict[str, Any] | None = Field(description="same names and shapes as the params")
    grad_step_norms: list[Matrix] | None = Field(description="(L, D, T)")
    jacobian_norm: list[Matrix] | None = Field(description="(L, D, T) ||ds_t/ds_{t-1}||")
    jacobian_product_norm: list[Matrix] | None = Field(description="(L, D, T) ||ds_last/ds_t||")
    spectrum: list[SpectrumOut]
    truncate: int | None
    finite: bool = Field(description="false if any number overflowed")
    timeline: TimelineOut | None = None
    verdict: VerdictOut | None = Field(
        None, description="the gradient verdict: decay rate per step, label and reason"
    )


class CellInfo(BaseModel):
    """A cell the engine runs."""

    name: Cell
    title: str
    gates: list[str]
    state: list[str]
    description: str


class TaskInfo(BaseModel):
    """A built-in training task."""

    name: str
    title: str
    description: str
    defaults: dict[str, Any]


class TaskIn(BaseModel):
    """A built-in task: its name, and its parameters nested under `params` as
    POST /api/v1/tasks/{name}/sample takes them (defaults: GET /api/v1/tasks).

    Deprecated: parameters inline beside `name` ({"name": "adding", "length": 50}) are
    still read, as before; give them under `params` instead. Both at once is a 422."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"name": "adding", "params": {"length": 50}}]},
    )

    name: str = Field(description="a task from GET /api/v1/tasks")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description='the task\'s parameters, e.g. {"length": 50}; left out, its defaults',
    )

    @model_validator(mode="after")
    def _one_form(self) -> TaskIn:
        if self.model_extra and "params" in self.model_fields_set:
            inline = ", ".join(sorted(self.model_extra))
            raise ValueError(
                f"params: give every parameter under params; {inline} beside name is the "
                "deprecated inline form, not to be mixed with params"
            )
        return self

    @property
    def task_params(self) -> dict[str, Any]:
        """The parameters, from `params` or the deprecated inline form."""
        return {**(self.model_extra or {}), **self.params}


class ErrorItemOut(BaseModel):
    """One problem found while validating a body."""

    field: str | None = Field(
        description="dotted path, e.g. config.hidden_size; body for the whole"
    )
    reason: str
    line: int | None = Field(None, description="the line of an uploaded file, where it has one")


class ErrorOut(BaseModel):
    """Every 4xx answer (404 and 405 included): what is wrong, and where."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "config.hidden_size: Input should be greater than or equal to 1 "
                    "(and 1 more problem(s))",
                    "field": "config.hidden_size",
                    "errors": [
                        {
                            "field": "config.hidden_size",
                            "reason": "Input should be greater than or equal to 1",
                        },
                        {"field": "inputs", "reason": "Field required"},
                    ],
                }
            ]
        }
    )

    detail: str = Field(description='"<field>: <reason>", the first problem in words')
    field: str | None = Field(None, description="the field at fault; null when none is")
    errors: list[ErrorItemOut] | None = Field(
        None,
        description="422 from body validation only: every problem found (the first 20), "
        "each with its field and reason; absent from other answers",
    )


# answered before any route code runs, for a body that cannot be decoded at all
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorOut,
        "description": "the body cannot be read: not UTF-8, JSON nested too deeply, or "
        "broken multipart",
    },
}
