"""The frame schema: the contract between engine, stream, WebSocket session and page.

Every frame carries `type` (the discriminator), `schema_version` and an increasing `id`.
`docs/frame-schema.json` is generated from `Frame` (`unroll export-schema`) and a test
keeps it in step with this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from app.api.schemas import (
    ConfigIn,
    Matrix,
    SpectrumOut,
    TimelineOut,
    TraceOut,
    Vector,
    VerdictOut,
)

SCHEMA_VERSION = 2  # 2: timeline steps by position, layers and directions together


class _FrameBase(BaseModel):
    schema_version: Literal[2] = 2  # SCHEMA_VERSION
    id: int = Field(ge=0, description="increasing within one stream or session")


class ConfigFrame(_FrameBase):
    """First frame: the model about to run."""

    type: Literal["config"] = "config"
    config: ConfigIn
    sequence_length: int
    num_params: int
    param_shapes: dict[str, list[int]]
    gate_names: list[str]
    spectrum: list[SpectrumOut]
    truncate: int | None
    has_targets: bool
    timeline: TimelineOut = Field(description="the order the frames follow (timeline.py)")


class ForwardFrame(_FrameBase):
    """One (layer, direction, position) as the network computes it."""

    type: Literal["forward"] = "forward"
    layer: int
    direction: int = Field(description="0 forward, 1 reverse")
    position: int = Field(description="index in the input, 0-based")
    step: int = Field(description="the forward step k showing it: every layer-direction's k-th")
    input: Vector = Field(description="what the layer reads at this position")
    hidden: Vector
    cell: Vector | None = None
    gates: dict[str, Vector] | None = None
    output: Vector | None = Field(None, description="the head's output, once it is known")
    target: Any = None
    loss: float | None = Field(None, description="this position's loss, with the output")


class BackwardFrame(_FrameBase):
    """One (layer, direction, position) as BPTT visits it: top layer first, latest step first."""

    type: Literal["backward"] = "backward"
    layer: int
    direction: int
    position: int
    step: int = Field(description="the backward step k showing it, in BPTT order")
    grad_hidden: Vector = Field(description="total dL/dh_t reaching this state")
    grad_hidden_norm: float | None
    grad_cell: Vector | None = None
    grad_step_norm: float | None = Field(description="||this step's share of dL/dW_hh||_F")
    jacobian_norm: float | None = None
    jacobian_product_norm: float | None = None


class SummaryFrame(_FrameBase):
    """After the backward pass: totals."""

    type: Literal["summary"] = "summary"
    loss: float | None
    loss_per_step: Vector | None
    outputs: Any
    grad_norms: dict[str, float | None] = Field(description="Frobenius norm of each gradient")
    grad_inputs: list[Vector] | None
    finite: bool


class DoneFrame(_FrameBase):
    """Last frame of a stream; a training stream's also says what training produced."""

    type: Literal["done"] = "done"
    events: int = Field(description="frames sent, this one included")
    model_id: str | None = Field(None, description="training: the stored trained weights")
    eval_loss: float | None = Field(None, description="training: loss on 1,000 fresh sequences")
    wall_time_s: float | None = Field(None, description="training: seconds from start to end")
    steps: int | None = Field(None, description="training: optimizer steps taken")
    stopped: bool | None = Field(None, description="training: true if stopped early")
    note: str | None = Field(None, description="training: why model_id is null, if it is")


class TrainConfigFrame(_FrameBase):
    """First frame of a training stream: the network and task as fitted."""

    type: Literal["train_config"] = "train_config"
    config: ConfigIn
    task: dict[str, Any] = Field(description="name and resolved parameters")
    steps: int
    batch_size: int
    seed: int


class ProgressFrame(_FrameBase):
    """One optimizer step (at most ~20 a second are sent; the last step always is)."""

    type: Literal["progress"] = "progress"
    step: int = Field(ge=1)
    loss: float | None = Field(description="this step's batch loss, before the update")
    losses: list[float | None] = Field(
        description="the batch loss of every step since the previous progress frame, this "
        "step's last (frames are thinned to ~20 a second; these make the curve whole)"
    )
    grad_norm: float | None = Field(description="global gradient norm before clipping")
    grad_profile: list[list[Vector]] = Field(
        description="(L, D, T): mean over the batch of ||d loss / d h_t||, per sequence"
    )


class ProbeFrame(_FrameBase):
    """Every probe_every steps (and at 0 and the end): a full trace of one fixed sequence."""

    type: Literal["probe"] = "probe"
    step: int = Field(ge=0)
    eval_loss: float | None = Field(description="on a fixed held-out batch")
    trace: TraceOut


class ErrorFrame(_FrameBase):
    """A problem with a request or command; a WebSocket session stays open after it."""

    type: Literal["error"] = "error"
    status: int
    detail: str
    field: str | None = None


class StageFrame(_FrameBase):
    """A session command's progress: the stage it starts computing now."""

    type: Literal["stage"] = "stage"
    stage: Literal["forward", "backward", "diagnostics"] = Field(
        description="forward pass and loss; BPTT; the Jacobian norms and the spectrum"
    )
    detail: str = Field(description="what is being computed, in words")


class GradientsFrame(_FrameBase):
    """A progressive configure's BPTT results, completing the trace frame before it (which
    had the forward pass only); fields left out by `omit` are null."""

    type: Literal["gradients"] = "gradients"
    grad_hidden: list[list[Matrix]] | None = Field(description="(L, D, T, H) total dL/dh_t")
    grad_cell: list[list[Matrix]] | None = None
    grad_inputs: Matrix | None = Field(description="(T, input_size)")
    grads: dict[str, Any] | None = Field(description="same names and shapes as the params")
    grad_step_norms: list[Matrix] | None = Field(description="(L, D, T)")
    truncate: int | None = Field(description="the truncation that ran (null: full BPTT)")
    verdict: VerdictOut | None = Field(
        None, description="the gradient verdict the gradients allow (no Jacobian norms yet)"
    )


class DiagnosticsFrame(_FrameBase):
    """A progressive session answer's Jacobian norms (null when not asked for) and
    spectrum, sent after the trace frame they complete."""

    type: Literal["diagnostics"] = "diagnostics"
    jacobian_norm: list[list[Vector]] | None = Field(description="(L, D, T) ||ds_t/ds_{t-1}||")
    jacobian_product_norm: list[list[Vector]] | None = Field(
        description="(L, D, T) ||ds_last/ds_t||"
    )
    spectrum: list[SpectrumOut] = Field(description="the recurrent weights' eigenvalues")
    verdict: VerdictOut | None = Field(
        None, description="the final gradient verdict, with the Jacobian norms and spectrum"
    )


class TraceFrame(_FrameBase):
    """A WebSocket session's whole trace, sent when its values change: after configure,
    after an edit, and after a reset that undid edits."""

    type: Literal["trace"] = "trace"
    cause: Literal["configure", "edit_input", "edit_weight", "reset"]
    edit: dict[str, Any] | None = Field(
        None, description="the edit just applied, with the value it replaced (`old`)"
    )
    trace: TraceOut


class SessionFrame(_FrameBase):
    """Where a WebSocket session stands; the last frame of every successful command."""

    type: Literal["session"] = "session"
    command: str = Field(description="the command this answers")
    cursor: int = Field(ge=0, description="the current step of the timeline")
    timeline_length: int = Field(description="forward, then backward, then summary steps")
    phase: Literal["forward", "backward", "done"] = Field(
        description="the kind of frames at the cursor; done at the summary"
    )
    forward_steps: int
    backward_steps: int = Field(description="0 without targets")
    edits: int = Field(description="edits in effect since configure or reset")
    jacobians: bool = Field(False, description="the trace has its Jacobian norms")
    model_id: str | None = Field(
        None, description="answering save: the stored model of the current weights"
    )


Frame = Annotated[
    ConfigFrame
    | ForwardFrame
    | BackwardFrame
    | SummaryFrame
    | DoneFrame
    | ErrorFrame
    | TraceFrame
    | StageFrame
    | GradientsFrame
    | DiagnosticsFrame
    | SessionFrame
    | TrainConfigFrame
    | ProgressFrame
    | ProbeFrame,
    Field(discriminator="type"),
]
FRAME_ADAPTER: TypeAdapter[Any] = TypeAdapter(Frame)


def frame_json_schema() -> dict[str, Any]:
    """JSON Schema of every frame, as exported to docs/frame-schema.json."""
    schema = FRAME_ADAPTER.json_schema()
    schema["title"] = "Unroll frame"
    schema["$comment"] = f"schema_version {SCHEMA_VERSION}"
    return schema
