"""POST /api/v1/models and GET /api/v1/models/{id}[/weights]: upload, describe and download
stored weights."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.compute import ComputePool
from app.api.errors import ApiError, from_value_error, validation_detail
from app.api.limits import check_config_limits, check_declared_weights
from app.api.schemas import BAD_BODY, MODEL_ID_PATTERN, ConfigIn, ErrorOut
from app.rnn import ModelConfig, weights_from_bytes
from app.settings import Settings
from app.store import ModelStore, ModelTooLarge, PinRefused

router = APIRouter(prefix="/models", tags=["models"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "no stored model has this id (or it was evicted)"},
    422: {"model": ErrorOut, "description": "model_id is not 64 lowercase hex characters"},
}
EXAMPLE_ID = "5dd81bdf22bb161e" + "3c" * 24
EXAMPLE_CONFIG = '{"cell": "lstm", "input_size": 1, "hidden_size": 4, "output_size": 1}'
EXAMPLE_MODEL: dict[str, Any] = {
    "model_id": EXAMPLE_ID,
    "config": {
        "cell": "lstm",
        "input_size": 1,
        "hidden_size": 4,
        "num_layers": 1,
        "bidirectional": False,
        "output_size": 1,
        "head": "regression",
        "output_mode": "sequence",
    },
    "shapes": {
        "rnn.weight_ih_l0": [16, 1],
        "rnn.weight_hh_l0": [16, 4],
        "rnn.bias_ih_l0": [16],
        "rnn.bias_hh_l0": [16],
        "head.weight": [1, 4],
        "head.bias": [1],
    },
    "num_params": 133,
    "size_bytes": 1624,
    "created_at": "2025-01-01T12:00:00Z",
    "last_used_at": "2025-01-01T12:00:00Z",
    "pinned": False,
}
ModelId = Annotated[
    str,
    Path(
        pattern=MODEL_ID_PATTERN,
        description="sha256 of the model's safetensors file, as POST /models answers it",
        examples=[EXAMPLE_ID],
    ),
]


class ModelOut(BaseModel):
    """A stored model: its id, config and tensor shapes."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_MODEL]})

    model_id: str = Field(description="sha256 hex of the safetensors file; same weights, same id")
    config: ConfigIn
    shapes: dict[str, list[int]] = Field(description="PyTorch-style name -> dims, in order")
    num_params: int
    size_bytes: int = Field(description="bytes of the stored safetensors file")
    created_at: datetime
    last_used_at: datetime
    pinned: bool = Field(
        description="kept apart from the least-recently-used eviction (a shared link's model)"
    )


class UploadOut(ModelOut):
    """The answer to an upload: the stored model, and whether it was new."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**EXAMPLE_MODEL, "created": True}]})

    created: bool = Field(description="true (201) if newly stored, false (200) if already there")


def _model_out(info: dict[str, Any]) -> dict[str, Any]:
    return {
        **info,
        "created_at": datetime.fromtimestamp(info["created_at"], tz=UTC),
        "last_used_at": datetime.fromtimestamp(info["last_used_at"], tz=UTC),
    }


def _parse_config(text: str | None) -> ModelConfig | None:
    """The `config` form field: JSON with ConfigIn's fields; empty means none given."""
    if text is None or not text.strip():
        return None
    try:
        body = ConfigIn.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors()
        if errors[0]["type"] == "json_invalid":
            reason = errors[0].get("ctx", {}).get("error", errors[0]["msg"])
            raise ApiError(422, f"config: malformed JSON ({reason})", "config") from None
        detail, field = validation_detail([{**e, "loc": ("config", *e["loc"])} for e in errors])
        raise ApiError(422, detail, field) from None
    try:
        return body.to_core()
    except ValueError as exc:
        raise from_value_error(exc, "config.") from None


def _read_weights(data: bytes, settings: Settings, **options: Any) -> tuple[ModelConfig, Any]:
    """`weights_from_bytes`, once the file's headers declare nothing past the caps."""
    check_declared_weights(data, settings, explicit=options.get("config"))
    return weights_from_bytes(data, **options)


def _store(store: ModelStore, config: ModelConfig, params: Any) -> tuple[bool, dict[str, Any]]:
    """Put the model and read back its info, in one worker-thread trip."""
    model_id, created = store.add(config, params)
    info = store.info(model_id)
    if info is None:  # evicted by other uploads in between: the store is far too small
        raise ModelTooLarge("model: the store evicted it at once; it is too full to keep it")
    return created, info


@router.post(
    "",
    status_code=201,
    response_model=UploadOut,
    responses={
        201: {"description": "newly stored"},
        200: {"model": UploadOut, "description": "the same weights were already stored"},
        **BAD_BODY,
        403: {"model": ErrorOut, "description": "uploads are turned off on this server"},
        413: {"model": ErrorOut, "description": "file over the upload or store byte limit"},
        422: {"model": ErrorOut, "description": "unreadable file, or a bad or over-limit config"},
    },
    summary="Upload weights (.safetensors or .npz); answers their content-hash id",
)
async def upload_model(
    request: Request,
    response: Response,
    file: Annotated[
        UploadFile,
        File(
            description="weights saved by Unroll, or a PyTorch state_dict (one "
            "nn.RNN/LSTM/GRU and one nn.Linear) saved with safetensors or numpy.savez; "
            "never a pickle"
        ),
    ],
    config: Annotated[
        str | None,
        Form(
            description="the network as JSON, with the fields of the trace `config`; "
            "overrides the file's own config or the one inferred from the tensor shapes",
            examples=[EXAMPLE_CONFIG],
        ),
    ] = None,
    nonlinearity: Annotated[
        Literal["tanh", "relu"],
        Form(description="plain-RNN cell when inferring the config from a state_dict"),
    ] = "tanh",
    head: Annotated[
        Literal["regression", "classification"],
        Form(description="head when inferring the config from a state_dict"),
    ] = "regression",
    output_mode: Annotated[
        Literal["sequence", "last", "final"],
        Form(description="output mode when inferring the config from a state_dict"),
    ] = "sequence",
) -> dict[str, Any]:
    """Store a model for later `model_id` traces, downloads and shared links.

    The id is the sha256 of the model's safetensors file, so the same weights always get
    the same id: 201 when newly stored, 200 when they were already there. Files written
    by Unroll carry their config; for a plain state_dict it is inferred from the shapes.
    The store keeps the most recently used models within its byte cap.

        curl -F file=@model.safetensors http://127.0.0.1:8000/api/v1/models
    """
    settings = request.app.state.settings
    pool: ComputePool = request.app.state.pool
    if not settings.uploads:
        raise ApiError(403, "file: uploads are turned off on this server", "file")
    limit = settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"file: upload is over the limit of {limit} bytes", "file")
    explicit = _parse_config(config)
    if explicit is not None:  # before parsing: the caps are the clearer answer
        check_config_limits(explicit, settings, prefix="config.")
    parse = partial(
        _read_weights,
        settings=settings,
        config=explicit,
        nonlinearity=nonlinearity,
        head=head,
        output_mode=output_mode,
    )
    try:
        model_config, params = await pool.run(parse, data)
    except ValueError as exc:
        raise ApiError(422, f"file: {exc}", "file") from None
    check_config_limits(model_config, settings, prefix="config.")
    try:
        created, info = await pool.run(_store, request.app.state.store, model_config, params)
    except ModelTooLarge as exc:
        raise ApiError(413, f"file: {exc}", "file") from None
    response.status_code = 201 if created else 200
    response.headers["Location"] = str(request.url_for("get_model", model_id=info["model_id"]))
    return {**_model_out(info), "created": created}


@router.get(
    "/{model_id}",
    response_model=ModelOut,
    responses=NOT_FOUND,
    summary="A stored model's config and tensor shapes",
)
async def get_model(request: Request, model_id: ModelId) -> dict[str, Any]:
    """The config, parameter shapes and sizes of a stored model; reading it counts as a
    use, so it stays in the store longer."""
    store: ModelStore = request.app.state.store
    info = await run_in_threadpool(store.info, model_id)
    if info is None:
        raise ApiError(404, f"model_id: no stored model {model_id}", "model_id")
    return _model_out(info)


@router.get(
    "/{model_id}/weights",
    response_class=Response,
    responses={
        **NOT_FOUND,
        200: {
            "description": "the weights file, with its config inside",
            "content": {"application/octet-stream": {}},
        },
    },
    summary="Download a stored model as .safetensors or .npz",
)
async def get_weights(
    request: Request,
    model_id: ModelId,
    format: Literal["safetensors", "npz"] = Query(
        "safetensors", description="safetensors (the stored file, whose sha256 is the id) or npz"
    ),
) -> Response:
    """The weights as a file, loadable with `safetensors.numpy.load` or `numpy.load`
    (names as in a PyTorch state_dict: rnn.* and head.*), with the config inside."""
    pool: ComputePool = request.app.state.pool
    data = await pool.run(request.app.state.store.get_bytes, model_id, format)
    if data is None:
        raise ApiError(404, f"model_id: no stored model {model_id}", "model_id")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{model_id[:12]}.{format}"'},
    )


def _pin(store: ModelStore, model_id: str, client: str) -> dict[str, Any] | None:
    """Pin the model and read back its info, in one worker-thread trip."""
    if store.pin(model_id, client) is None:
        return None
    return store.info(model_id)


@router.post(
    "/{model_id}/pin",
    response_model=ModelOut,
    responses={
        **NOT_FOUND,
        429: {"model": ErrorOut, "description": "this client pinned its quota of models"},
        507: {"model": ErrorOut, "description": "the pinned models fill their byte cap"},
    },
    summary="Keep a stored model for a shared link: never evicted by other uploads",
)
async def pin_model(request: Request, model_id: ModelId) -> dict[str, Any]:
    """Take the model out of the least-recently-used eviction, so a link that names it
    keeps working however many models others upload. Pinned models have their own byte
    cap (`max_pinned_bytes`) and each client address may pin `max_pins_per_client` of
    them; pinning an already pinned model is a no-op. The page pins when it shares a link.
    """
    client = request.client.host if request.client else "unknown"
    try:
        info = await run_in_threadpool(_pin, request.app.state.store, model_id, client)
    except PinRefused as exc:
        raise ApiError(429 if exc.per_client else 507, str(exc), "model_id") from None
    if info is None:
        raise ApiError(404, f"model_id: no stored model {model_id}", "model_id")
    return _model_out(info)
