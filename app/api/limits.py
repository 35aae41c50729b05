"""Caps on what one request may ask for: sizes (422) and bytes (413)."""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import ApiError
from app.cost import Budget, upload_cost
from app.rnn import ModelConfig, param_shapes
from app.rnn.weights import read_declared
from app.settings import Settings


def check_config_limits(config: ModelConfig, settings: Settings, prefix: str = "config.") -> None:
    """422 naming the field, the value and the cap when a size is over its limit."""
    caps = {
        "hidden_size": settings.max_hidden_size,
        "num_layers": settings.max_num_layers,
        "input_size": settings.max_input_size,
        "output_size": settings.max_output_size,
    }
    for name, cap in caps.items():
        value = getattr(config, name)
        if value > cap:
            raise ApiError(
                422, f"{prefix}{name}: {value} is over the limit of {cap}", prefix + name
            )


def check_length(length: int, settings: Settings, field: str = "inputs") -> None:
    """422 when a sequence is longer than the cap."""
    if length > settings.max_sequence_length:
        raise ApiError(
            422,
            f"{field}: sequence length {length} is over the limit of "
            f"{settings.max_sequence_length}",
            field,
        )


def check_truncate(truncate: int | None, settings: Settings) -> None:
    if truncate is not None and truncate > settings.max_truncate:
        raise ApiError(
            422, f"truncate: {truncate} is over the limit of {settings.max_truncate}", "truncate"
        )


def check_declared_weights(
    data: bytes, settings: Settings, explicit: ModelConfig | None = None
) -> None:
    """Refuse a weights file by what its headers declare, before any tensor is allocated:
    more or larger tensors than the largest model within the caps could have, a layer
    index or a stored config over the caps (422 naming the field), a config whose upload
    costs more than the budget (422, field "file", with the estimate), or an .npz whose
    entries unpack past that model (413: a 200 KB zip of zeros unpacks to gigabytes).
    `explicit`: the request's own config (already within the caps), used over the stored one."""
    widest = _widest_shapes(settings)
    _check_unpacked_size(data, 8 * sum(math.prod(s) for s in widest.values()) + 65536)
    try:
        declared = read_declared(data, max_entries=len(widest) + 1)  # + the config entry
    except ValueError as exc:
        raise ApiError(422, f"file: {exc}", "file") from None
    largest = max(math.prod(shape) for shape in widest.values())
    for name, shape in declared.tensors.items():
        if math.prod(shape) > largest:
            raise ApiError(
                422,
                f"file: {name} declares shape {shape}, more than the {largest} values of "
                "the largest tensor within this server's limits",
                "file",
            )
    total = sum(math.prod(shape) for shape in widest.values())
    if declared.num_elements() > total:
        raise ApiError(
            422,
            f"file: the tensors declare {declared.num_elements()} values, more than the "
            f"{total} of the largest model within this server's limits",
            "file",
        )
    for name, layer in declared.layer_indices().items():
        if layer >= settings.max_num_layers:
            raise ApiError(
                422,
                f"config.num_layers: tensor {name} implies {layer + 1} layers, over the "
                f"limit of {settings.max_num_layers}",
                "config.num_layers",
            )
    config = explicit
    if config is None and declared.config is not None:
        try:
            config = ModelConfig.from_dict(json.loads(declared.config))
        except (ValueError, TypeError, RecursionError):
            return  # unreadable: the weights reader names the problem
        check_config_limits(config, settings, prefix="config.")
    if config is not None:
        refusal = Budget.from_settings(settings).refusal(upload_cost(config, len(data)))
        if refusal is not None:
            raise ApiError(422, f"file: {refusal}", "file")


def _widest_shapes(settings: Settings) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the largest model within the caps."""
    widest = ModelConfig(
        cell="lstm",  # four gates: the most weights per unit
        input_size=settings.max_input_size,
        hidden_size=settings.max_hidden_size,
        num_layers=settings.max_num_layers,
        bidirectional=True,
        output_size=settings.max_output_size,
    )
    return param_shapes(widest)


def _check_unpacked_size(data: bytes, limit: int) -> None:
    """413 for an .npz whose entries unpack to more than `limit` bytes; reads only the
    zip's directory, and lets anything that is not a readable zip through."""
    if not data.startswith(b"PK"):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except Exception:  # a damaged archive: the weights reader names the problem
        return
    if unpacked > limit:
        raise ApiError(
            413,
            f"file: the npz entries unpack to {unpacked} bytes, more than the {limit} bytes "
            "of the largest model within this server's limits",
            "file",
        )


class BodySizeLimit:
    """ASGI middleware: answer 413 once a request body passes `max_bytes`, declared or sent."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


class _TooLarge(HTTPException):
    """Raised while the body is read. An HTTPException, since FastAPI turns any other error
    while reading a body into a 400; its handler answers the same 413 as `_send_413`."""

    def __init__(self, limit: int):
        super().__init__(413, f"body: request body is over the limit of {limit} bytes")


async def _send_413(send: Send, limit: int) -> None:
    body = (
        b'{"detail":"body: request body is over the limit of '
        + str(limit).encode()
        + b' bytes","field":"body"}'
    )
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
