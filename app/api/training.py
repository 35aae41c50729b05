"""POST /api/v1/train/stream: train on a task and watch the loss and gradients change."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.api.compute import CancelToken, ComputePool
from app.api.encoding import FrameStream, ndjson_line, sse_event, trace_to_dict
from app.api.errors import ApiError, from_value_error
from app.api.events import FrameStamper
from app.api.inputs import check_budget, client_of, is_heavy, resolve_params, time_limit
from app.api.limits import check_config_limits, check_length, check_truncate
from app.api.schemas import BAD_BODY, ConfigIn, ErrorOut, InitIn, Number, TaskIn
from app.cost import Estimate, TrainShape, train_cost
from app.rnn import Cancelled, ModelConfig
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import Task, make_task
from app.rnn.train import (
    Finished,
    Probe,
    Progress,
    TrainConfig,
    check_memoryless,
    held_out_loss,
    train,
)
from app.settings import Settings

router = APIRouter(prefix="/train", tags=["train"])

NDJSON = "application/x-ndjson"
PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress frames a second
POLL_S = 0.01  # how often the stream looks for the training thread's records
FINAL_EVAL_SIZE = 1000
_DONE = object()


class OptimizerIn(BaseModel):
    """The optimizer, PyTorch's update rules and defaults."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["sgd", "momentum", "adam"] = "adam"
    learning_rate: Number = Field(0.01, gt=0, le=10, allow_inf_nan=False)
    momentum: Number = Field(0.9, ge=0, lt=1, allow_inf_nan=False)
    beta1: Number = Field(0.9, ge=0, lt=1, allow_inf_nan=False)
    beta2: Number = Field(0.999, ge=0, lt=1, allow_inf_nan=False)
    eps: Number = Field(1e-8, gt=0, le=1, allow_inf_nan=False)
    weight_decay: Number = Field(0.0, ge=0, le=1, allow_inf_nan=False)


class TrainRequest(BaseModel):
    """Train a network on a task. The task fixes input_size, output_size, head and output
    mode; `config` chooses the cell, hidden size, layers and directions."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "config": {"cell": "lstm", "hidden_size": 32},
                    "task": {"name": "adding", "params": {"length": 50}},
                    "optimizer": {"name": "adam", "learning_rate": 0.01},
                    "batch_size": 32,
                    "steps": 300,
                    "clip_norm": 1.0,
                    "seed": 0,
                }
            ]
        },
    )

    config: ConfigIn = Field(default_factory=ConfigIn)
    task: TaskIn
    optimizer: OptimizerIn = Field(default_factory=OptimizerIn)
    batch_size: StrictInt = Field(32, ge=1)
    steps: StrictInt = Field(500, ge=1)
    clip_norm: Number | None = Field(None, gt=0, allow_inf_nan=False)
    clip_value: Number | None = Field(None, gt=0, allow_inf_nan=False)
    truncate: StrictInt | None = Field(None, ge=1)
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1)
    init: InitIn = Field(default_factory=InitIn)
    model_id: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="continue from")
    probe_every: StrictInt = Field(50, ge=1, description="a full probe trace every this many steps")
    store: StrictBool = Field(True, description="store the trained weights as a model")
    memoryless: StrictBool = Field(
        False,
        description="hold every W_hh at zero (Elman cells only): each output sees only its "
        "own input, the article's regular model that sees only today's value",
    )


def fit_request(
    body: TrainRequest, settings: Settings
) -> tuple[ModelConfig, Task, TrainConfig, OptimizerConfig]:
    """Validate the request against the task, the core and the caps."""
    params = body.task.task_params
    try:
        task = make_task(body.task.name, **params)
    except ValueError as exc:
        raise from_value_error(exc) from None
    choices = ("cell", "hidden_size", "num_layers", "bidirectional", "output_mode")
    chosen = {k: getattr(body.config, k) for k in choices}  # a last task takes final too
    try:
        config = task.config(**chosen)
    except ValueError as exc:
        raise from_value_error(exc, "config.") from None
    for name in ("input_size", "output_size", "head", "output_mode"):
        if name in body.config.model_fields_set and getattr(body.config, name) != getattr(
            config, name
        ):
            raise ApiError(
                422,
                f"config.{name}: the {task.name} task needs {getattr(config, name)!r}, "
                f"got {getattr(body.config, name)!r}",
                f"config.{name}",
            )
    if body.memoryless:
        try:
            check_memoryless(config)
        except ValueError as exc:
            raise from_value_error(exc) from None
    check_config_limits(config, settings)
    check_length(task.spec.length, settings, "task.length")
    check_truncate(body.truncate, settings)
    if body.steps > settings.max_train_steps:
        raise ApiError(
            422, f"steps: {body.steps} is over the limit of {settings.max_train_steps}", "steps"
        )
    if body.batch_size > settings.max_batch_size:
        raise ApiError(
            422,
            f"batch_size: {body.batch_size} is over the limit of {settings.max_batch_size}",
            "batch_size",
        )
    try:  # a value the schema passes and the core refuses is a 422 (infinite clip_norm was a 500)
        train_config = TrainConfig(
            batch_size=body.batch_size,
            steps=body.steps,
            clip_norm=body.clip_norm,
            clip_value=body.clip_value,
            truncate=body.truncate,
            seed=body.seed,
            init_scheme=body.init.scheme,
            init_scale=body.init.scale,
            probe_every=body.probe_every,
            memoryless=body.memoryless,
        )
        optimizer = OptimizerConfig(**body.optimizer.model_dump())
    except ValueError as exc:
        raise from_value_error(exc) from None
    return config, task, train_config, optimizer


def estimate_training(config: ModelConfig, task: Task, train_config: TrainConfig) -> Estimate:
    """The whole run's cost: steps, probes, and the final evaluation."""
    shape = TrainShape(
        config,
        task.spec.length,
        train_config.batch_size,
        train_config.steps,
        train_config.probe_every,
        train_config.truncate,
        FINAL_EVAL_SIZE,
    )
    return train_cost(shape)


@router.post(
    "/stream",
    response_class=Response,
    responses={
        **BAD_BODY,
        413: {"model": ErrorOut},
        422: {"model": ErrorOut, "description": "a field is invalid or over its limit"},
        200: {
            "description": "Server-Sent Events (or JSON Lines with "
            "`Accept: application/x-ndjson`): "
            "`progress` (step, loss, gradient norm and profile; at most ~20 a second, the last "
            "step always; `losses` has every step's loss since the previous one), `probe` "
            "(a full trace of a fixed sequence and the eval loss), and "
            "last `done` with the stored `model_id`, `eval_loss` on 1,000 fresh sequences "
            "and the wall time.",
            "content": {"text/event-stream": {}, NDJSON: {}},
        },
    },
    summary="Train on a built-in task, streaming progress",
)
async def train_stream(request: Request, body: TrainRequest) -> Response:
    """Train and stream. Closing the connection stops training (its evaluation too)."""
    state = request.app.state
    config, task, train_config, optimizer = fit_request(body, state.settings)
    estimate = estimate_training(config, task, train_config)
    check_budget(estimate, state.settings, training=True)
    start_params = None
    client = client_of(request)
    if body.model_id is not None:
        start_params = await state.pool.run(
            resolve_params,
            config,
            None,
            body.model_id,
            body.init,
            getattr(state, "store", None),
            client=client,
        )
    run = _Run(config, task, train_config, optimizer, start_params, state.settings)
    # the slot is taken before the answer starts, so a refusal (429, 503) is a plain answer
    heavy = is_heavy(estimate, state.settings)
    release = await state.pool.hold(client, heavy, run.token, request.is_disconnected)
    ndjson = NDJSON in request.headers.get("accept", "")
    chunks = _frames(request, run, release, body.store, ndjson_line if ndjson else sse_event)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    media_type = NDJSON if ndjson else "text/event-stream"
    return FrameStream(chunks, media_type=media_type, headers=headers, on_close=release)


class _Run:
    """One training run's arguments, and the thread that runs it."""

    def __init__(
        self,
        config: ModelConfig,
        task: Task,
        train_config: TrainConfig,
        optimizer: OptimizerConfig,
        start_params: Any,
        settings: Settings,
    ):
        self.config, self.task = config, task
        self.train_config, self.optimizer = train_config, optimizer
        self.start_params = start_params
        self.records: queue.Queue[Any] = queue.Queue()
        self.limit = time_limit(settings, training=True)
        self.token = CancelToken(self.limit)
        self.thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        """Runs in its own thread: every record goes to `records`, then the final
        evaluation, then _DONE. The token stops both, between positions."""
        out, token, config = self.records, self.token, self.config
        try:
            started = time.perf_counter()
            token.begin()
            for record in train(
                config,
                self.task,
                self.optimizer,
                self.train_config,
                self.start_params,
                should_stop=token,
            ):
                out.put(record)
                if isinstance(record, Finished) and token.expired:
                    out.put(("eval", math.nan, time.perf_counter() - started))
                elif isinstance(record, Finished) and not token.cancelled:
                    seed = self.train_config.seed
                    loss = held_out_loss(
                        config, record.params, self.task, seed, FINAL_EVAL_SIZE, cancel=token
                    )
                    out.put(("eval", loss, time.perf_counter() - started))
        except Cancelled:
            pass  # the client left during the final evaluation
        except Exception as exc:  # reported to the client as an error frame
            out.put(exc)
        finally:
            out.put(_DONE)

    async def stop(self) -> None:
        """Cancel the run and wait, undisturbed by cancellation, until its thread ended."""
        self.token.cancel()
        with anyio.CancelScope(shield=True):
            while self.thread.is_alive():
                await anyio.sleep(POLL_S)


async def _frames(
    request: Request,
    run: _Run,
    release: Callable[[], Awaitable[None]],
    store_result: bool,
    encode: Callable[..., bytes],
) -> AsyncIterator[bytes]:
    """The stream's frames, encoded; probes (a whole trace each) in a worker thread.
    `release` gives back the compute slot, once the training thread has ended."""
    state = request.app.state
    pool: ComputePool = state.pool
    config, train_config, task = run.config, run.train_config, run.task
    stamp = FrameStamper()

    yield encode(
        stamp(
            {
                "type": "train_config",
                "config": config.to_dict(),
                "task": {"name": task.name, **task.spec.params},
                "steps": train_config.steps,
                "batch_size": train_config.batch_size,
                "seed": train_config.seed,
            }
        )
    )
    finished: Finished | None = None
    pending: Progress | None = None
    unsent: list[float | None] = []  # the loss of every step since the last progress frame
    last_sent = 0.0
    try:  # the slot is held until the training thread has ended, however the stream ends
        run.thread.start()
        while True:
            try:
                item = run.records.get_nowait()
            except queue.Empty:
                if await request.is_disconnected():
                    return
                await anyio.sleep(POLL_S)
                continue
            if item is _DONE:
                break
            if isinstance(item, Exception):
                raise item
            if isinstance(item, Progress):
                pending = item
                unsent.append(_finite(item.loss))
                now = time.monotonic()
                if now - last_sent >= PROGRESS_INTERVAL_S or item.step == train_config.steps:
                    yield encode(stamp(_progress(pending, unsent)))
                    pending, unsent, last_sent = None, [], now
                continue
            if pending is not None:  # the latest step goes out before anything after it
                yield encode(stamp(_progress(pending, unsent)))
                pending, unsent = None, []
            if isinstance(item, Probe):
                # a probe carries a whole trace: build its frame off the event loop
                yield await pool.encode(_encode_probe, item, stamp, encode)
            elif isinstance(item, Finished):
                finished = item
            elif isinstance(item, tuple) and item[0] == "eval":
                assert finished is not None
                note = (
                    f"stopped after {run.limit:.0f} s of work, this server's time limit for a "
                    "training run; no final evaluation"
                    if run.token.expired
                    else None
                )
                done = await _done(state, stamp, config, finished, item, store_result, note)
                yield encode(done)
    finally:
        if run.thread.ident is not None:  # started
            await run.stop()
        await release()


async def _done(
    state: Any,
    stamp: FrameStamper,
    config: ModelConfig,
    finished: Finished,
    evaluation: tuple[str, float, float],
    store_result: bool,
    note: str | None = None,
) -> dict[str, Any]:
    """The done frame, after storing the trained weights when asked."""
    model_id = None
    store = getattr(state, "store", None)
    if store_result and store is not None:
        try:
            # this run already holds a compute slot: store without asking for another
            model_id = await anyio.to_thread.run_sync(store.put, config, finished.params)
        except ValueError as exc:  # diverged weights, or over the store cap
            stored = f"the trained weights were not stored: {exc}"
            note = stored if note is None else f"{note}; {stored}"
    done = stamp(
        {
            "type": "done",
            "events": 0,
            "model_id": model_id,
            "eval_loss": evaluation[1] if math.isfinite(evaluation[1]) else None,
            "wall_time_s": evaluation[2],
            "steps": finished.step,
            "stopped": finished.stopped,
            "note": note,
        }
    )
    done["events"] = done["id"] + 1
    return done


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _progress(record: Progress, losses: list[float | None]) -> dict[str, Any]:
    """`losses`: every step's loss since the previous progress frame, this step's last."""
    return {
        "type": "progress",
        "step": record.step,
        "loss": _finite(record.loss),
        "losses": losses,
        "grad_norm": _finite(record.grad_norm),
        "grad_profile": record.grad_profile,
    }


def _encode_probe(record: Probe, stamp: FrameStamper, encode: Callable[..., bytes]) -> bytes:
    return encode(stamp(_probe(record)), chunked=True)  # a whole trace: in pieces


def _probe(record: Probe) -> dict[str, Any]:
    return {
        "type": "probe",
        "step": record.step,
        "eval_loss": record.eval_loss if math.isfinite(record.eval_loss) else None,
        "trace": trace_to_dict(record.trace, record.spectrum),
    }
