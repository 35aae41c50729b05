"""WebSocket /api/v1/session: configure once, then step, seek, run, edit and reset.

The protocol, with examples, is in docs/session-protocol.md. The session's timeline is
the stream's frames in order: forward frames, backward frames (with targets), summary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from app.api.compute import ComputePool
from app.api.encoding import dumps, trace_to_dict
from app.api.errors import ApiError, validation_detail
from app.api.events import (
    FrameStamper,
    backward_frames,
    config_frame,
    forward_frames,
    summary_frame,
)
from app.api.inputs import TraceJob, resolve_trace_request
from app.api.schemas import TraceRequest
from app.rnn import SpectrumBlock, Trace, recurrent_spectrum, run_sequence
from app.rnn.types import Array, Params

router = APIRouter(prefix="/session", tags=["session"])
logger = logging.getLogger(__name__)

FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigureCommand(TraceRequest):
    """Start (or restart) the session: the body of POST /trace, plus the type."""

    type: Literal["configure"]


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
    "close",
)


@dataclass
class _Timeline:
    """One computed trace and the frames the session walks through."""

    trace: Trace
    spectrum: list[SpectrumBlock]
    frames: list[dict[str, Any]]  # forward..., backward..., summary; unstamped
    forward_count: int
    backward_count: int


def _compute(
    job: TraceJob, params: Params, inputs: Array, spectrum: list[SpectrumBlock] | None
) -> _Timeline:
    """Run the sequence and lay out its frames; inputs (T, I). Runs in the worker pool."""
    trace = run_sequence(
        job.config,
        params,
        inputs,
        job.targets,
        jacobians=job.jacobians,
        truncate=job.truncate,
    )
    if spectrum is None:
        spectrum = recurrent_spectrum(job.config, params)
    forward = list(forward_frames(trace))
    backward = list(backward_frames(trace)) if trace.grad_hidden is not None else []
    frames = [*forward, *backward, summary_frame(trace)]
    return _Timeline(trace, spectrum, frames, len(forward), len(backward))


def _parse(message: str | bytes) -> Any:
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


def _error_frame(exc: ApiError) -> dict[str, Any]:
    return {"type": "error", "status": exc.status, "detail": exc.detail, "field": exc.field}


def _check_index(field: str, value: int, size: int) -> None:
    if not 0 <= value < size:
        raise ApiError(422, f"{field}: {value} is outside 0..{size - 1}", field)


class _Session:
    """One connection's state: the configured job, the current timeline and the cursor."""

    def __init__(self, websocket: WebSocket):
        state = websocket.app.state
        self.websocket = websocket
        self.settings = state.settings
        self.store = getattr(state, "store", None)
        self.pool: ComputePool = state.pool
        self.stamp = FrameStamper()
        self.job: TraceJob | None = None
        self.origin: _Timeline | None = None  # as configured, for reset
        self.current: _Timeline | None = None
        self.params: Params = {}
        self.inputs: Array = np.zeros((0, 0))
        self.edits = 0
        self.cursor = 0

    async def serve(self) -> None:
        """Answer commands one at a time until the client goes or sends close."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            try:
                frames = await self.handle(raw)
            except ApiError as exc:
                frames = [_error_frame(exc)]
            except Exception:
                logger.exception("session command failed")
                frames = [_error_frame(ApiError(500, "internal error"))]
            if frames is None:
                await self.websocket.close(code=1000)
                return
            for frame in frames:
                await self.send(frame)

    async def send(self, frame: dict[str, Any]) -> None:
        self.stamp(frame)
        if frame["type"] == "trace":
            # a whole trace can run to megabytes: encode it off the event loop
            data = await self.pool.run(dumps, frame)
        else:
            data = dumps(frame)
        await self.websocket.send_text(data.decode())

    async def handle(self, raw: str | bytes) -> list[dict[str, Any]] | None:
        """The frames answering one message (None for close); ApiError if it is refused."""
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        limit = self.settings.max_ws_message_bytes
        if size > limit:
            raise ApiError(
                413, f"message: {size} bytes is over the limit of {limit} bytes", "message"
            )
        command = _parse(raw)
        if isinstance(command, CloseCommand):
            return None
        if isinstance(command, ConfigureCommand):
            return await self.configure(command)
        if self.current is None:
            raise ApiError(409, f"{command.type}: send configure first", "type")
        if isinstance(command, StepForwardCommand):
            if self.cursor == len(self.current.frames) - 1:
                raise ApiError(
                    409, f"cursor: already at the end of the timeline ({self.cursor})", "cursor"
                )
            return self.move(command.type, self.cursor + 1)
        if isinstance(command, StepBackCommand):
            if self.cursor == 0:
                raise ApiError(409, "cursor: already at the start of the timeline (0)", "cursor")
            return self.move(command.type, self.cursor - 1)
        if isinstance(command, SeekCommand):
            _check_index("cursor", command.cursor, len(self.current.frames))
            return self.move(command.type, command.cursor)
        if isinstance(command, RunCommand):
            end = len(self.current.frames) - 1
            frames = [dict(f) for f in self.current.frames[self.cursor + 1 :]]
            self.cursor = end
            return [*frames, self.session_frame(command.type)]
        if isinstance(command, EditInputCommand):
            return await self.edit_input(command)
        if isinstance(command, EditWeightCommand):
            return await self.edit_weight(command)
        assert isinstance(command, ResetCommand)
        return self.reset()

    async def configure(self, command: ConfigureCommand) -> list[dict[str, Any]]:
        # a refused configure leaves any earlier session as it was
        # a stored model_id means a database read: off the event loop
        job = await self.pool.run(resolve_trace_request, command, self.settings, self.store)
        timeline = await self.pool.run(_compute, job, job.params, job.inputs, None)
        self.job, self.origin, self.current = job, timeline, timeline
        self.params, self.inputs = job.params, job.inputs
        self.edits, self.cursor = 0, 0
        config = config_frame(timeline.trace, timeline.spectrum, job.targets is not None)
        return [
            config,
            self.trace_frame("configure", None),
            self.frame_at_cursor(),
            self.session_frame(command.type),
        ]

    def move(self, command: str, cursor: int) -> list[dict[str, Any]]:
        self.cursor = cursor
        return [self.frame_at_cursor(), self.session_frame(command)]

    async def edit_input(self, command: EditInputCommand) -> list[dict[str, Any]]:
        T, I = self.inputs.shape
        _check_index("position", command.position, T)
        _check_index("feature", command.feature, I)
        inputs = self.inputs.copy()
        old = float(inputs[command.position, command.feature])
        inputs[command.position, command.feature] = command.value
        assert self.current is not None
        spectrum = self.current.spectrum  # the weights are unchanged
        await self.recompute(self.params, inputs, spectrum)
        edit = {
            "position": command.position,
            "feature": command.feature,
            "value": command.value,
            "old": old,
        }
        return self.edited(command.type, edit)

    async def edit_weight(self, command: EditWeightCommand) -> list[dict[str, Any]]:
        if command.name not in self.params:
            names = ", ".join(self.params)
            raise ApiError(
                422, f"name: no parameter {command.name!r}; expected one of {names}", "name"
            )
        shape = self.params[command.name].shape
        if len(command.index) != len(shape):
            raise ApiError(
                422,
                f"index: {command.name} has shape {tuple(shape)}, so {len(shape)} "
                f"index(es), got {len(command.index)}",
                "index",
            )
        for axis, (i, size) in enumerate(zip(command.index, shape, strict=True)):
            _check_index(f"index.{axis}", i, size)
        index = tuple(command.index)
        tensor = self.params[command.name].copy()  # never write into the stored weights
        old = float(tensor[index])
        tensor[index] = command.value
        await self.recompute({**self.params, command.name: tensor}, self.inputs, None)
        edit = {"name": command.name, "index": command.index, "value": command.value, "old": old}
        return self.edited(command.type, edit)

    async def recompute(self, params: Params, inputs: Array, spectrum: Any) -> None:
        assert self.job is not None
        self.current = await self.pool.run(_compute, self.job, params, inputs, spectrum)
        self.params, self.inputs = params, inputs
        self.edits += 1

    def edited(self, command: str, edit: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            self.trace_frame(command, edit),
            self.frame_at_cursor(),
            self.session_frame(command),
        ]

    def reset(self) -> list[dict[str, Any]]:
        assert self.job is not None and self.origin is not None
        frames = []
        if self.edits:
            self.current, self.params, self.inputs = self.origin, self.job.params, self.job.inputs
            self.edits = 0
            frames.append(self.trace_frame("reset", None))
        self.cursor = 0
        return [*frames, self.frame_at_cursor(), self.session_frame("reset")]

    def trace_frame(self, cause: str, edit: dict[str, Any] | None) -> dict[str, Any]:
        assert self.current is not None
        body = trace_to_dict(self.current.trace, self.current.spectrum)
        return {"type": "trace", "cause": cause, "edit": edit, "trace": body}

    def frame_at_cursor(self) -> dict[str, Any]:
        assert self.current is not None
        return dict(self.current.frames[self.cursor])  # a copy: stamping must not stick

    def session_frame(self, command: str) -> dict[str, Any]:
        assert self.current is not None
        kind = self.current.frames[self.cursor]["type"]
        return {
            "type": "session",
            "command": command,
            "cursor": self.cursor,
            "timeline_length": len(self.current.frames),
            "phase": "done" if kind == "summary" else kind,
            "forward_frames": self.current.forward_count,
            "backward_frames": self.current.backward_count,
            "edits": self.edits,
        }


@router.websocket("")
async def session(websocket: WebSocket) -> None:
    """Interactive session over one sequence; see docs/session-protocol.md.

    Every command is answered in order and its answer ends with a `session` frame, or
    with an `error` frame if it was refused; the socket stays open after an error.
    """
    await websocket.accept()
    try:
        await _Session(websocket).serve()
    except WebSocketDisconnect:
        return
