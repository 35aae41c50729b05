"""The session's commands (docs/session-protocol.md): one model per command `type`, and
the parser that refuses a message naming the field at fault (400 or 422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from app.api.errors import ApiError, validation_detail
from app.api.schemas import TraceRequest

FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigureCommand(TraceRequest):
    """Start (or restart) the session: the body of POST /trace, plus the type and how the
    session's answers travel."""

    type: Literal["configure"]
    encoding: Literal["json", "binary"] = Field(
        "json", description="binary: trace and diagnostics frames as docs/transport.md says"
    )
    progressive: bool = Field(
        False,
        description="stage frames while computing, and the trace frame before the Jacobian "
        "norms and the spectrum, which follow in a diagnostics frame",
    )
    omit: list[Literal["grads", "grad_cell"]] = Field(
        [], description="trace fields to leave out: the parameter gradients, the cell's gradients"
    )


class StepForwardCommand(_Command):
    type: Literal["step_forward"]


class StepBackCommand(_Command):
    type: Literal["step_back"]


class SeekCommand(_Command):
    type: Literal["seek"]
    cursor: StrictInt = Field(description="index into the timeline")


class RunCommand(_Command):
    """Send every frame after the cursor; the cursor ends on the summary."""

    type: Literal["run"]


class EditInputCommand(_Command):
    type: Literal["edit_input"]
    position: StrictInt
    feature: StrictInt
    value: FiniteFloat


class EditWeightCommand(_Command):
    type: Literal["edit_weight"]
    name: str = Field(description="a parameter name, e.g. rnn.weight_hh_l0")
    index: list[StrictInt] = Field(description="one index per dimension of the parameter")
    value: FiniteFloat


class ResetCommand(_Command):
    """Back to the configured inputs and weights, cursor at 0."""

    type: Literal["reset"]


class SaveCommand(_Command):
    """Store the session's current weights (edits included) as a model: the session frame
    answering it carries the `model_id` (downloads, shared links, npz exports)."""

    type: Literal["save"]


class CancelCommand(_Command):
    """Stop the command computing now (it is answered with a 409 error frame)."""

    type: Literal["cancel"]


class CloseCommand(_Command):
    type: Literal["close"]


Command = Annotated[
    ConfigureCommand
    | StepForwardCommand
    | StepBackCommand
    | SeekCommand
    | RunCommand
    | EditInputCommand
    | EditWeightCommand
    | ResetCommand
    | SaveCommand
    | CancelCommand
    | CloseCommand,
    Field(discriminator="type"),
]
COMMAND_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)
COMMAND_TYPES = (
    "configure",
    "step_forward",
    "step_back",
    "seek",
    "run",
    "edit_input",
    "edit_weight",
    "reset",
    "save",
    "cancel",
    "close",
)


def parse_command(message: str | bytes) -> Any:
    """A command model; ApiError (400 or 422) naming the field otherwise."""
    try:
        return COMMAND_ADAPTER.validate_json(message)
    except ValidationError as exc:
        raise _command_error(exc) from None


def _command_error(exc: ValidationError) -> ApiError:
    errors = list(exc.errors())
    first = errors[0]
    kind = first["type"]
    expected = ", ".join(COMMAND_TYPES)
    if kind == "json_invalid":
        reason = first.get("ctx", {}).get("error", first["msg"])
        return ApiError(400, f"message: malformed JSON ({reason})", "message")
    if kind == "dict_type" and not first["loc"]:
        return ApiError(400, 'message: must be a JSON object with a "type"', "message")
    if kind == "union_tag_not_found":
        return ApiError(422, f"type: missing; expected one of {expected}", "type")
    if kind == "union_tag_invalid":
        tag = first.get("ctx", {}).get("tag")
        return ApiError(422, f"type: {tag!r} is not a command; expected one of {expected}", "type")
    # drop the union tag pydantic puts first in each location
    stripped = [{**e, "loc": tuple(e["loc"])[1:]} for e in errors]
    detail, field = validation_detail(stripped)
    return ApiError(422, detail, field)
