"""WebSocket /api/v1/session: configure once, then step, seek, run, edit and reset.

The protocol, with examples, is in docs/session-protocol.md. The session's timeline is
`timeline.py`'s: forward steps, backward steps (with targets), summary; a step shows one
frame per layer-direction, the stream's frames in the stream's order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.api import transport
from app.api.commands import (
    CancelCommand,
    CloseCommand,
    ConfigureCommand,
    EditInputCommand,
    EditWeightCommand,
    ResetCommand,
    RunCommand,
    SaveCommand,
    SeekCommand,
    StepBackCommand,
    StepForwardCommand,
    parse_command,
)
from app.api.compute import CancelToken, ComputePool
from app.api.encoding import dumps, dumps_chunked, spectrum_to_dict, trace_to_dict
from app.api.errors import ApiError
from app.api.events import FrameStamper, config_frame, step_frames
from app.api.inputs import (
    TraceJob,
    client_of,
    is_heavy,
    overrun,
    resolve_trace_request,
    time_limit,
)
from app.api.timeline import Timeline
from app.rnn import (
    Cancelled,
    SpectrumBlock,
    Trace,
    backward_trace,
    diagnose_trace,
    forward_trace,
    recurrent_spectrum,
)
from app.rnn.cancel import CancelCheck
from app.rnn.truncation import effective_truncate
from app.rnn.types import Array, Params
from app.rnn.verdict import gradient_verdict
from app.store import ModelTooLarge

router = APIRouter(prefix="/session", tags=["session"])
logger = logging.getLogger(__name__)

FRAMES_PER_CHUNK = 256  # frames encoded per worker-thread call (a `run` sends thousands)
INLINE_FRAMES = 4  # answers this short, with no trace frame, are encoded on the loop
QUEUED_MESSAGES = 64  # messages read ahead of the one being answered; then backpressure
BURST_SECONDS = 10  # the message rate limit allows bursts of this many seconds' worth
IDLE_CLOSE_CODE = 1001  # "going away": the session was idle too long


@dataclass
class _Timeline:
    """One computed trace and the timeline the session walks through (`timeline.py`):
    forward steps, backward steps (with targets), summary. Frames are built when they
    are sent, never held: a long timeline would otherwise keep thousands of dicts."""

    trace: Trace
    spectrum: list[SpectrumBlock] | None  # None until a progressive answer's diagnostics
    steps: Timeline
    params: Params
    verdict: dict[str, Any] | None = None  # a progressive answer's, once its part is computed

    def __len__(self) -> int:
        return len(self.steps)

    def frames(self, index: int) -> list[dict[str, Any]]:
        """The frames shown at step `index` (0 .. len - 1), unstamped: one per
        layer-direction, or the summary."""
        return step_frames(self.trace, self.steps, index)

    def kind(self, index: int) -> str:
        return self.steps.at(index).phase


def _forward_backward(
    job: TraceJob,
    params: Params,
    inputs: Array,
    spectrum: list[SpectrumBlock] | None,
    with_spectrum: bool = True,
    cancel: CancelCheck = None,
) -> _Timeline:
    """Forward pass, loss and (with targets) BPTT; inputs (T, I); the spectrum too if not
    given and `with_spectrum` (else `_diagnose` makes it). The forward record stays on the
    trace for `_diagnose`. Runs in the worker pool."""
    trace = forward_trace(job.config, params, inputs, job.targets, cancel=cancel)
    if trace.targets is not None:
        backward_trace(trace, job.truncate, cancel=cancel)
    else:
        config = job.config
        T = trace.sequence_length
        L, bidirectional = config.num_layers, config.bidirectional
        trace.truncate = effective_truncate(job.truncate, L, bidirectional, T)
    if spectrum is None and with_spectrum:
        spectrum = recurrent_spectrum(job.config, params)
    return _Timeline(trace, spectrum, Timeline.of(trace), params)


def _with_cancel(fn: Any, cancel: CancelCheck) -> Any:
    """fn with the keyword `cancel` bound: the engine's stages poll it."""

    def call(*args: Any) -> Any:
        return fn(*args, cancel=cancel)

    return call


def _backward(trace: Trace, truncate: int | None, cancel: CancelCheck = None) -> dict[str, Any]:
    """BPTT on a forward_trace record (targets given), and the gradient verdict it allows
    (without Jacobian norms). Runs in the worker pool."""
    backward_trace(trace, truncate, cancel=cancel)
    return gradient_verdict(trace)


def _gradients_frame(
    trace: Trace, omit: tuple[str, ...], verdict: dict[str, Any] | None
) -> dict[str, Any]:
    """A progressive configure's BPTT results, completing its trace frame."""
    frame = {
        "type": "gradients",
        "grad_hidden": trace.grad_hidden,
        "grad_cell": trace.grad_cell,
        "grad_inputs": trace.grad_inputs,
        "grads": trace.grads,
        "grad_step_norms": trace.grad_step_norms,
        "truncate": trace.truncate,
        "verdict": verdict,
    }
    return {**frame, **dict.fromkeys(omit)}


def _diagnose(
    timeline: _Timeline, jacobians: bool | tuple[int, ...], cancel: CancelCheck = None
) -> None:
    """The spectrum (if missing), the Jacobian norms (if asked) and the final gradient
    verdict of a `_forward_backward` trace, then its forward record freed. Runs in the
    worker pool."""
    try:
        if timeline.spectrum is None:
            timeline.spectrum = recurrent_spectrum(timeline.trace.config, timeline.params)
        if jacobians:  # True: every layer; a tuple: the layers the request chose
            layers = None if isinstance(jacobians, bool) else jacobians
            diagnose_trace(timeline.trace, layers=layers, cancel=cancel)
        timeline.verdict = gradient_verdict(timeline.trace, timeline.spectrum)
    finally:
        timeline.trace.release()


def _compute(
    job: TraceJob,
    params: Params,
    inputs: Array,
    spectrum: list[SpectrumBlock] | None,
    cancel: CancelCheck = None,
) -> _Timeline:
    """The whole trace, Jacobian norms included if asked. Runs in the worker pool."""
    timeline = _forward_backward(job, params, inputs, spectrum, cancel=cancel)
    _diagnose(timeline, job.jacobians, cancel)
    return timeline


def _error_frame(exc: ApiError) -> dict[str, Any]:
    return {"type": "error", "status": exc.status, "detail": exc.detail, "field": exc.field}


Frames = Sequence["dict[str, Any] | _Slice"]


@dataclass
class _Slice:
    """The frames of timeline steps start .. stop - 1, built and encoded when they are sent."""

    timeline: _Timeline
    start: int
    stop: int


BINARY_TYPES = ("trace", "gradients", "diagnostics")  # what a binary session sends as bytes


def _encode(frames: Frames, stamp: FrameStamper, binary: bool = False) -> list[str | bytes]:
    """Build, stamp and encode frames, in order: JSON text, or with `binary` the frames
    holding whole traces as binary messages (transport.py)."""
    out: list[str | bytes] = []
    for item in frames:
        if isinstance(item, _Slice):
            for i in range(item.start, item.stop):
                out += [dumps(stamp(frame)).decode() for frame in item.timeline.frames(i)]
        elif binary and item["type"] in BINARY_TYPES:
            out.append(transport.encode(stamp(item)))
        elif item["type"] in BINARY_TYPES:  # a whole trace: in pieces, so the loop gets turns
            out.append(dumps_chunked(stamp(item)).decode())
        else:
            out.append(dumps(stamp(item)).decode())
    return out


def _chunks(frames: Frames, size: int) -> list[list[dict[str, Any] | _Slice]]:
    """The frames in chunks of about `size`, long slices cut into pieces."""
    chunks: list[list[dict[str, Any] | _Slice]] = [[]]
    count = 0
    for item in frames:
        pieces: list[Any] = [item]
        per_step = 1
        if isinstance(item, _Slice):
            config = item.timeline.trace.config
            per_step = config.num_layers * config.num_directions  # frames in a step
            span = max(1, size // per_step)
            pieces = [
                _Slice(item.timeline, i, min(i + span, item.stop))
                for i in range(item.start, item.stop, span)
            ]
        for piece in pieces:
            n = (piece.stop - piece.start) * per_step if isinstance(piece, _Slice) else 1
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
        self.running: CancelToken | None = None  # the command being answered, if any
        self.cancelled_by = ""  # why `running` was cancelled, for the 409's words
        self.busy = False  # a command is being answered: the session is not idle
        # the configured answer options: binary trace frames, progressive, fields left out
        self.binary, self.progressive = False, False
        self.omit: tuple[str, ...] = ()

    async def serve(self) -> None:
        """Answer commands one at a time, in order, until the client goes or sends close.

        A reader takes messages as they arrive, so a new `configure` or a `cancel` can stop
        the computation in progress and a disconnect stops it; the answers stay in order."""
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
                    self._cancel_running("a disconnect")
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
                    self._cancel_running("a later configure")
                elif isinstance(command, CancelCommand):
                    self._cancel_running("cancel")
                await queue.send(command)
                if isinstance(command, CloseCommand):
                    return

    def _cancel_running(self, why: str) -> None:
        if self.running is not None and not self.running.cancelled:
            self.cancelled_by = why
            self.running.cancel()

    async def _answer(self, queue: MemoryObjectReceiveStream[Any]) -> None:
        async with queue:
            async for command in queue:
                self.busy = True
                # the token every stage of this command polls; it trips at the time limit too
                self.running = CancelToken(time_limit(self.settings))
                self.cancelled_by = ""
                try:
                    if isinstance(command, ApiError):
                        raise command
                    frames = await self.handle_command(command)
                except ApiError as exc:
                    frames = [_error_frame(exc)]
                except Cancelled:
                    why = self.cancelled_by or "a later configure"
                    detail = f"{command.type}: cancelled by {why}"
                    frames = [_error_frame(ApiError(409, detail, "type"))]
                except Exception:
                    logger.exception("session command failed")
                    frames = [_error_frame(ApiError(500, "internal error"))]
                finally:
                    self.running = None
                if frames is None:
                    await self.websocket.close(code=1000)
                    return
                await self.send_all(frames)
                self.busy = False

    async def send_all(self, frames: Frames, binary: bool | None = None) -> None:
        """Build, stamp, encode and send frames in order; big answers are encoded in
        worker threads, FRAMES_PER_CHUNK at a time, so the event loop stays free. Trace
        frames go binary if `binary` (default: as the session was configured)."""
        binary = self.binary if binary is None else binary
        small = len(frames) <= INLINE_FRAMES and all(
            isinstance(f, dict) and f["type"] not in BINARY_TYPES for f in frames
        )
        if small:
            messages = _encode(frames, self.stamp)
        else:
            messages = []
            for chunk in _chunks(frames, FRAMES_PER_CHUNK):
                messages += await self.pool.encode(_encode, chunk, self.stamp, binary)
        for message in messages:
            if isinstance(message, bytes):
                await self.websocket.send_bytes(message)
            else:
                await self.websocket.send_text(message)

    async def compute(
        self, job: TraceJob, params: Params, inputs: Array, spectrum: Any, whole: bool = True
    ) -> _Timeline:
        """The timeline for these weights and inputs, in the pool (without the Jacobian
        norms unless `whole`); a later configure, a cancel or a disconnect sets the
        command's token and the computation stops (raising Cancelled)."""
        if whole:
            return await self.stage(job, _compute, job, params, inputs, spectrum)
        # progressive: the spectrum comes with the diagnostics
        return await self.stage(job, _forward_backward, job, params, inputs, spectrum, False)

    async def stage(self, job: TraceJob, fn: Any, *args: Any) -> Any:
        """fn(*args, cancel) in the pool with the command's token: a later configure, a
        cancel or a disconnect stops it (Cancelled); so does the time limit (422)."""
        token = self.running
        assert token is not None
        try:
            return await self.pool.run(
                _with_cancel(fn, token),
                *args,
                client=self.client,
                heavy=is_heavy(job.estimate, self.settings),
                token=token,
            )
        except Cancelled:
            if token.expired:
                raise overrun(job.estimate, time_limit(self.settings)) from None
            raise

    async def diagnose(self, timeline: _Timeline) -> None:
        """A progressive answer's second part: the spectrum and the Jacobian norms, sent when
        computed. Cut short (by a cancel, a later configure), the session stands without
        them."""
        assert self.job is not None
        jacobians = self.job.jacobians
        what = "eigenvalues of the recurrent weights"
        if jacobians:
            what = "Jacobian norms of every step and the " + what
        await self.send_all([_stage("diagnostics", what)])
        try:  # cancelled or past the time limit: the session stands without them
            await self.pool.run(
                _diagnose,
                timeline,
                jacobians,
                self.running,
                client=self.client,
                heavy=is_heavy(self.job.estimate, self.settings),
                token=self.running,
            )
        except Cancelled:
            timeline.trace.jacobian_norm = timeline.trace.jacobian_product_norm = None
            return
        trace = timeline.trace
        frame = {
            "type": "diagnostics",
            "jacobian_norm": trace.jacobian_norm,
            "jacobian_product_norm": trace.jacobian_product_norm,
            "spectrum": [spectrum_to_dict(b) for b in timeline.spectrum or []],
            "verdict": timeline.verdict,
        }
        await self.send_all([frame])

    def parse(self, raw: str | bytes) -> Any:
        """The command in a message; ApiError (400, 413 or 422) if it is refused."""
        size = len(raw.encode()) if isinstance(raw, str) else len(raw)
        limit = self.settings.max_ws_message_bytes
        if size > limit:
            raise ApiError(
                413, f"message: {size} bytes is over the limit of {limit} bytes", "message"
            )
        return parse_command(raw)

    async def handle(self, raw: str | bytes) -> Frames | None:
        """The frames answering one message (None for close); ApiError if it is refused."""
        return await self.handle_command(self.parse(raw))

    async def handle_command(self, command: Any) -> Frames | None:
        """The frames answering one command (None for close); ApiError if it is refused.
        A progressive configure or edit sends its first frames before it returns."""
        if isinstance(command, CloseCommand):
            return None
        if isinstance(command, ConfigureCommand):
            return await self.configure(command)
        if self.current is None:
            raise ApiError(409, f"{command.type}: send configure first", "type")
        if isinstance(command, CancelCommand):
            return [self.session_frame(command.type)]  # nothing was running, or it has ended
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
        if isinstance(command, SaveCommand):
            return await self.save()
        assert isinstance(command, ResetCommand)
        return self.reset()

    async def configure(self, command: ConfigureCommand) -> list[dict[str, Any]]:
        # a refused configure leaves any earlier session as it was
        # a stored model_id means a database read: off the event loop
        job = await self.pool.run(
            resolve_trace_request, command, self.settings, self.store, "session", client=self.client
        )
        binary, omit = command.encoding == "binary", tuple(command.omit)
        if command.progressive:
            timeline = await self.configure_in_stages(job, binary, omit)
        else:
            timeline = await self.compute(job, job.params, job.inputs, None)
        self.job, self.origin, self.current = job, timeline, timeline
        self.params, self.inputs = job.params, job.inputs
        self.edits, self.cursor = 0, 0
        self.binary, self.progressive, self.omit = binary, command.progressive, omit
        if command.progressive:
            await self.diagnose(timeline)
            return [*self.frames_at_cursor(), self.session_frame(command.type)]
        config = config_frame(timeline.trace, timeline.spectrum or [], job.targets is not None)
        return [
            config,
            self.trace_frame("configure", None),
            *self.frames_at_cursor(),
            self.session_frame(command.type),
        ]

    async def configure_in_stages(
        self, job: TraceJob, binary: bool, omit: tuple[str, ...]
    ) -> _Timeline:
        """A progressive configure's first parts, each sent as soon as it is computed: the
        forward pass (config and trace frames: the page's first picture), then BPTT (a
        gradients frame). Cut short, nothing changes: the session is committed after."""
        await self.send_all([_stage("forward", "forward pass and loss")])
        args = (job.config, job.params, job.inputs, job.targets)
        trace = await self.stage(job, forward_trace, *args)
        timeline = _Timeline(trace, None, Timeline.of(trace), job.params)
        config = config_frame(trace, [], job.targets is not None)
        body = trace_to_dict(trace, [], omit=omit)
        frames = [config, {"type": "trace", "cause": "configure", "edit": None, "trace": body}]
        await self.send_all(frames, binary)
        if trace.targets is None:
            return timeline
        await self.send_all([_stage("backward", "BPTT gradients")])
        try:
            verdict = await self.stage(job, _backward, trace, job.truncate)
        except BaseException:
            trace.release()
            raise
        await self.send_all([_gradients_frame(trace, omit, verdict)], binary)
        return timeline

    def move(self, command: str, cursor: int) -> list[dict[str, Any]]:
        self.cursor = cursor
        return [*self.frames_at_cursor(), self.session_frame(command)]

    async def edit_input(self, command: EditInputCommand) -> list[dict[str, Any]]:
        T, I = self.inputs.shape
        _check_index("position", command.position, T)
        _check_index("feature", command.feature, I)
        inputs = self.inputs.copy()
        old = float(inputs[command.position, command.feature])
        inputs[command.position, command.feature] = command.value
        assert self.current is not None
        spectrum = self.current.spectrum  # the weights are unchanged
        edit = {
            "position": command.position,
            "feature": command.feature,
            "value": command.value,
            "old": old,
        }
        return await self.recompute(command.type, edit, self.params, inputs, spectrum)

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
        edit = {"name": command.name, "index": command.index, "value": command.value, "old": old}
        params = {**self.params, command.name: tensor}
        return await self.recompute(command.type, edit, params, self.inputs, None)

    async def recompute(
        self, command: str, edit: dict[str, Any], params: Params, inputs: Array, spectrum: Any
    ) -> list[dict[str, Any]]:
        """The session with an edit applied: its trace frame, (progressive) its Jacobian
        norms, the frames at the unchanged cursor and the session frame."""
        assert self.job is not None
        progressive = self.progressive
        if progressive:
            await self.send_all([_stage("forward", "forward pass, loss and BPTT gradients")])
        timeline = await self.compute(self.job, params, inputs, spectrum, whole=not progressive)
        self.current = timeline
        self.params, self.inputs = params, inputs
        self.edits += 1
        first = [self.trace_frame(command, edit)]
        if progressive:
            await self.send_all(first)
            await self.diagnose(timeline)
            first = []
        return [*first, *self.frames_at_cursor(), self.session_frame(command)]

    async def save(self) -> list[dict[str, Any]]:
        """Store the current weights (edits included) as a model, in the store's byte cap
        like an upload; the session frame carries its id."""
        assert self.job is not None
        if self.store is None or not self.settings.uploads:
            raise ApiError(403, "type: storing weights is turned off on this server", "type")
        try:
            model_id, _ = await self.pool.run(
                self.store.add, self.job.config, self.params, client=self.client
            )
        except ModelTooLarge as exc:
            raise ApiError(413, f"type: {exc}", "type") from None
        return [{**self.session_frame("save"), "model_id": model_id}]

    def reset(self) -> list[dict[str, Any]]:
        assert self.job is not None and self.origin is not None
        frames = []
        if self.edits:
            self.current, self.params, self.inputs = self.origin, self.job.params, self.job.inputs
            self.edits = 0
            frames.append(self.trace_frame("reset", None))
        self.cursor = 0
        return [*frames, *self.frames_at_cursor(), self.session_frame("reset")]

    def trace_frame(self, cause: str, edit: dict[str, Any] | None) -> dict[str, Any]:
        assert self.current is not None
        body = trace_to_dict(self.current.trace, self.current.spectrum or [], omit=self.omit)
        return {"type": "trace", "cause": cause, "edit": edit, "trace": body}

    def frames_at_cursor(self) -> list[dict[str, Any]]:
        assert self.current is not None
        return self.current.frames(self.cursor)

    def session_frame(self, command: str) -> dict[str, Any]:
        assert self.current is not None
        kind = self.current.kind(self.cursor)
        return {
            "type": "session",
            "command": command,
            "cursor": self.cursor,
            "timeline_length": len(self.current),
            "phase": "done" if kind == "summary" else kind,
            "forward_steps": self.current.steps.forward_steps,
            "backward_steps": self.current.steps.backward_steps,
            "edits": self.edits,
            "jacobians": self.current.trace.jacobian_norm is not None,
        }


def _stage(stage: str, detail: str) -> dict[str, Any]:
    return {"type": "stage", "stage": stage, "detail": detail}


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
