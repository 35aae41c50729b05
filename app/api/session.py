"""WebSocket /api/v1/session: configure once, then step, seek, run, edit and reset.

The protocol, with examples, is in docs/session-protocol.md. The session's timeline is
the stream's frames in order: forward frames, backward frames (with targets), summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
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

from app.api.compute import CancelToken, ComputePool
from app.api.encoding import dumps, trace_to_dict
from app.api.errors import ApiError, validation_detail
from app.api.events import (
    FrameStamper,
    backward_frame,
    config_frame,
    forward_frame,
    summary_frame,
    timeline_at,
)
from app.api.inputs import TraceJob, client_of, is_heavy, resolve_trace_request
from app.api.schemas import TraceRequest
from app.rnn import Cancelled, SpectrumBlock, Trace, recurrent_spectrum, run_sequence
from app.rnn.cancel import CancelCheck
from app.rnn.types import Array, Params

router = APIRouter(prefix="/session", tags=["session"])
logger = logging.getLogger(__name__)

FRAMES_PER_CHUNK = 256  # frames encoded per worker-thread call (a `run` sends thousands)
INLINE_FRAMES = 4  # answers this short, with no trace frame, are encoded on the loop
QUEUED_MESSAGES = 64  # messages read ahead of the one being answered; then backpressure
BURST_SECONDS = 10  # the message rate limit allows bursts of this many seconds' worth
IDLE_CLOSE_CODE = 1001  # "going away": the session was idle too long

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
    """One computed trace and the timeline the session walks through: forward frames,
    backward frames (with targets), summary. Frames are built when they are sent, never
    held: a long timeline would otherwise keep thousands of dicts per session."""

    trace: Trace
    spectrum: list[SpectrumBlock]
    forward_count: int
    backward_count: int

    def __len__(self) -> int:
        return self.forward_count + self.backward_count + 1

    def frame(self, index: int) -> dict[str, Any]:
        """The frame at `index` (0 .. len - 1), unstamped."""
        trace, T = self.trace, self.trace.sequence_length
        if index < self.forward_count:
            layer, d, t = timeline_at(trace.config, T, index, backward=False)
            return forward_frame(trace, layer, d, t, index % T)
        index -= self.forward_count
        if index < self.backward_count:
            layer, d, t = timeline_at(trace.config, T, index, backward=True)
            return backward_frame(trace, layer, d, t, index % T)
        return summary_frame(trace)

    def kind(self, index: int) -> str:
        if index < self.forward_count:
            return "forward"
        return "backward" if index < self.forward_count + self.backward_count else "summary"


def _compute(
    job: TraceJob,
    params: Params,
    inputs: Array,
    spectrum: list[SpectrumBlock] | None,
    cancel: CancelCheck = None,
) -> _Timeline:
    """Run the sequence; inputs (T, I). Runs in the worker pool."""
    trace = run_sequence(
        job.config,
        params,
        inputs,
        job.targets,
        jacobians=job.jacobians,
        truncate=job.truncate,
        cancel=cancel,
    )
    if spectrum is None:
        spectrum = recurrent_spectrum(job.config, params)
    config = job.config
    steps = config.num_layers * config.num_directions * trace.sequence_length
    backward = steps if trace.grad_hidden is not None else 0
    return _Timeline(trace, spectrum, steps, backward)


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


Frames = Sequence["dict[str, Any] | _Slice"]


@dataclass
class _Slice:
    """Timeline frames start .. stop - 1, built and encoded when they are sent."""

    timeline: _Timeline
    start: int
    stop: int


def _encode(frames: Frames, stamp: FrameStamper) -> list[str]:
    """Build, stamp and encode frames, in order."""
    out = []
    for item in frames:
        if isinstance(item, _Slice):
            out += [
                dumps(stamp(item.timeline.frame(i))).decode() for i in range(item.start, item.stop)
            ]
        else:
            out.append(dumps(stamp(item)).decode())
    return out


def _chunks(frames: Frames, size: int) -> list[list[dict[str, Any] | _Slice]]:
    """The frames in chunks of about `size`, long slices cut into pieces."""
    chunks: list[list[dict[str, Any] | _Slice]] = [[]]
    count = 0
    for item in frames:
        pieces: list[Any] = [item]
        if isinstance(item, _Slice):
            pieces = [
                _Slice(item.timeline, i, min(i + size, item.stop))
                for i in range(item.start, item.stop, size)
            ]
        for piece in pieces:
            n = piece.stop - piece.start if isinstance(piece, _Slice) else 1
            if count and count + n > size:
                chunks.append([])
                count = 0
            chunks[-1].append(piece)
            count += n
    return chunks


class _MessageRate:
    """A token bucket: `per_second` messages, in bursts of up to BURST_SECONDS' worth."""

    def __init__(self, per_second: int):
        self.per_second = per_second
        self.capacity = float(per_second * BURST_SECONDS)
        self.tokens, self.last = self.capacity, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def refusal(self) -> ApiError:
        return ApiError(
            429,
            f"message: over the limit of {self.per_second} messages a second for a session; "
            "slow down",
            "message",
        )


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
        self.client = client_of(websocket)
        self.rate = _MessageRate(self.settings.max_session_messages_per_second)
        self.running: CancelToken | None = None  # the command computing now, if any
        self.busy = False  # a command is being answered: the session is not idle

    async def serve(self) -> None:
        """Answer commands one at a time, in order, until the client goes or sends close.

        A reader takes messages as they arrive, so a new `configure` can cancel the
        computation in progress and a disconnect stops it; the answers stay in order."""
        send, receive = anyio.create_memory_object_stream[Any](QUEUED_MESSAGES)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read, send, tg.cancel_scope)
            await self._answer(receive)
            tg.cancel_scope.cancel()

    async def _read(self, queue: MemoryObjectSendStream[Any], scope: anyio.CancelScope) -> None:
        """Messages into `queue`, parsed (or the ApiError refusing them); None at the end."""
        idle = self.settings.max_session_idle_seconds
        async with queue:
            while True:
                with anyio.move_on_after(idle) as waited:
                    message = await self.websocket.receive()
                if waited.cancelled_caught:
                    if self.busy:
                        continue  # the client waits for an answer: not idle
                    await self.websocket.close(code=IDLE_CLOSE_CODE, reason="idle")
                    scope.cancel()
                    return
                if message["type"] == "websocket.disconnect":
                    self._cancel_running()
                    scope.cancel()
                    return
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                try:
                    if not self.rate.take():
                        raise self.rate.refusal()
                    command = self.parse(raw)
                except ApiError as exc:
                    command = exc
                if isinstance(command, ConfigureCommand):
                    # a new configure replaces the session: stop what is computing
                    self._cancel_running()
                await queue.send(command)
                if isinstance(command, CloseCommand):
                    return

    def _cancel_running(self) -> None:
        if self.running is not None:
            self.running.cancel()

    async def _answer(self, queue: MemoryObjectReceiveStream[Any]) -> None:
        async with queue:
            async for command in queue:
                self.busy = True
                try:
                    if isinstance(command, ApiError):
                        raise command
                    frames = await self.handle_command(command)
                except ApiError as exc:
                    frames = [_error_frame(exc)]
                except Cancelled:
                    frames = [
                        _error_frame(
                            ApiError(
                                409,
                                f"{command.type}: cancelled by a later configure",
                                "type",
                            )
                        )
                    ]
                except Exception:
                    logger.exception("session command failed")
                    frames = [_error_frame(ApiError(500, "internal error"))]
                if frames is None:
                    await self.websocket.close(code=1000)
                    return
                await self.send_all(frames)
                self.busy = False

    async def send_all(self, frames: Frames) -> None:
        """Build, stamp, encode and send frames in order; big answers are encoded in
        worker threads, FRAMES_PER_CHUNK at a time, so the event loop stays free."""
        small = len(frames) <= INLINE_FRAMES and all(
            isinstance(f, dict) and f["type"] != "trace" for f in frames
        )
        if small:
            for text in _encode(frames, self.stamp):
                await self.websocket.send_text(text)
            return
        for chunk in _chunks(frames, FRAMES_PER_CHUNK):
            for text in await self.pool.encode(_encode, chunk, self.stamp):
                await self.websocket.send_text(text)

    async def compute(
        self, job: TraceJob, params: Params, inputs: Array, spectrum: Any
    ) -> _Timeline:
        """The timeline for these weights and inputs, in the pool; a later configure or a
        disconnect sets the token and the computation stops (raising Cancelled)."""
        token = CancelToken()
        self.running = token
        try:
            return await self.pool.run(
                _compute,
                job,
                params,
                inputs,
                spectrum,
                token,
                client=self.client,
                heavy=is_heavy(job.estimate, self.settings),
                token=token,
            )
        finally:
            self.running = None

    def parse(self, raw: str | bytes) -> Any:
        """The command in a message; ApiError (400, 413 or 422) if it is refused."""
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        limit = self.settings.max_ws_message_bytes
        if size > limit:
            raise ApiError(
                413, f"message: {size} bytes is over the limit of {limit} bytes", "message"
            )
        return _parse(raw)

    async def handle(self, raw: str | bytes) -> Frames | None:
        """The frames answering one message (None for close); ApiError if it is refused."""
        return await self.handle_command(self.parse(raw))

    async def handle_command(self, command: Any) -> Frames | None:
        """The frames answering one command (None for close); ApiError if it is refused."""
        if isinstance(command, CloseCommand):
            return None
        if isinstance(command, ConfigureCommand):
            return await self.configure(command)
        if self.current is None:
            raise ApiError(409, f"{command.type}: send configure first", "type")
        if isinstance(command, StepForwardCommand):
            if self.cursor == len(self.current) - 1:
                raise ApiError(
                    409, f"cursor: already at the end of the timeline ({self.cursor})", "cursor"
                )
            return self.move(command.type, self.cursor + 1)
        if isinstance(command, StepBackCommand):
            if self.cursor == 0:
                raise ApiError(409, "cursor: already at the start of the timeline (0)", "cursor")
            return self.move(command.type, self.cursor - 1)
        if isinstance(command, SeekCommand):
            _check_index("cursor", command.cursor, len(self.current))
            return self.move(command.type, command.cursor)
        if isinstance(command, RunCommand):
            end = len(self.current) - 1
            rest = _Slice(self.current, self.cursor + 1, end + 1)  # built as it is sent
            self.cursor = end
            return [rest, self.session_frame(command.type)]
        if isinstance(command, EditInputCommand):
            return await self.edit_input(command)
        if isinstance(command, EditWeightCommand):
            return await self.edit_weight(command)
        assert isinstance(command, ResetCommand)
        return self.reset()

    async def configure(self, command: ConfigureCommand) -> list[dict[str, Any]]:
        # a refused configure leaves any earlier session as it was
        # a stored model_id means a database read: off the event loop
        job = await self.pool.run(
            resolve_trace_request, command, self.settings, self.store, "session", client=self.client
        )
        timeline = await self.compute(job, job.params, job.inputs, None)
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
        self.current = await self.compute(self.job, params, inputs, spectrum)
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
        return self.current.frame(self.cursor)

    def session_frame(self, command: str) -> dict[str, Any]:
        assert self.current is not None
        kind = self.current.kind(self.cursor)
        return {
            "type": "session",
            "command": command,
            "cursor": self.cursor,
            "timeline_length": len(self.current),
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
    except* WebSocketDisconnect:  # the client left while frames were being sent
        pass
