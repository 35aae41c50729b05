"""Fast JSON for arrays: numpy straight to bytes, with every non-finite number as null."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import anyio
import numpy as np
import orjson
from fastapi.responses import Response, StreamingResponse
from fastapi.sse import format_sse_event
from starlette.types import Receive, Scope, Send

from app.api.timeline import Timeline
from app.rnn import ModelConfig, SpectrumBlock, Trace
from app.rnn.verdict import gradient_verdict

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    # orjson hands back what it cannot encode natively: views, scalars, other dtypes
    if isinstance(obj, np.ndarray):
        return np.ascontiguousarray(obj, dtype=np.float64 if obj.dtype.kind == "f" else None)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    """JSON bytes; NaN and infinities become null (orjson's rule), arrays become lists."""
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


CHUNK_NUMBERS = 1 << 16  # numbers per orjson call when a big answer is encoded in pieces


def dumps_chunked(obj: Any) -> bytes:
    """`dumps`, byte for byte, in pieces of at most about CHUNK_NUMBERS numbers.

    orjson holds the GIL for a whole call: one 200 MB trace held it (and so the event
    loop, though the encoding ran in a worker thread) for over a second. Between pieces
    other threads, the event loop among them, get their turn.
    """
    parts: list[bytes] = []
    _encode_into(obj, parts)
    return b"".join(parts)


def _encode_into(obj: Any, parts: list[bytes]) -> None:
    if isinstance(obj, dict):
        parts.append(b"{")
        for i, (key, value) in enumerate(obj.items()):
            parts.append(b"," if i else b"")
            parts.append(orjson.dumps(str(key)) + b":")
            _encode_into(value, parts)
        parts.append(b"}")
    elif isinstance(obj, np.ndarray) and obj.ndim > 1 and obj.size > CHUNK_NUMBERS:
        rows = max(1, CHUNK_NUMBERS // (obj.size // obj.shape[0]))
        parts.append(b"[")
        for start in range(0, obj.shape[0], rows):
            parts.append(b"," if start else b"")
            parts.append(dumps(obj[start : start + rows])[1:-1])  # rows without the brackets
        parts.append(b"]")
    else:
        parts.append(dumps(obj))


def ndjson_line(frame: dict[str, Any], chunked: bool = False) -> bytes:
    """One frame as a line of JSON Lines (`chunked`: a big one, see `dumps_chunked`)."""
    return (dumps_chunked if chunked else dumps)(frame) + b"\n"


def sse_event(frame: dict[str, Any], chunked: bool = False) -> bytes:
    """One frame as a Server-Sent Event named by its type, with its id (errors have none)."""
    data = (dumps_chunked if chunked else dumps)(frame).decode()
    if frame["type"] == "error":
        return format_sse_event(data_str=data, event="error")
    return format_sse_event(data_str=data, event=frame["type"], id=str(frame["id"]))


class FrameStream(StreamingResponse):
    """A streaming answer that always closes its frame generator when it ends, however it
    ends: a client that leaves while a chunk is being sent would otherwise leave the
    generator suspended, and the work its `finally` stops running, until garbage collection.
    `on_close` runs after that (e.g. giving back a compute slot taken before the stream)."""

    def __init__(
        self,
        content: Any,
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                close = getattr(self.body_iterator, "aclose", None)
                if close is not None:
                    await close()
                if self.on_close is not None:
                    await self.on_close()


SEND_BYTES = 1 << 20  # an answer bigger than this is sent a piece at a time


def bytes_response(data: bytes, media_type: str, headers: dict[str, str] | None = None) -> Response:
    """An encoded answer. A big one goes out in SEND_BYTES pieces, its length declared:
    handing the server 200 MB in one message held the event loop while it was copied."""
    if len(data) <= SEND_BYTES:
        return Response(data, media_type=media_type, headers=headers)

    async def pieces() -> AsyncIterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), SEND_BYTES):
            yield bytes(view[start : start + SEND_BYTES])

    sized = {**(headers or {}), "Content-Length": str(len(data))}
    return StreamingResponse(pieces(), media_type=media_type, headers=sized)


class JSONBytesResponse(Response):
    """A JSON response encoded by `dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def plain(value: Any) -> Any:
    """A 0-d array as its number (orjson would write it as a list), anything else as is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def spectrum_to_dict(block: SpectrumBlock) -> dict[str, Any]:
    """One SpectrumOut."""
    return {
        "layer": block.layer,
        "direction": block.direction,
        "gate": block.gate,
        "param": block.param,
        "eigenvalues_real": block.eigenvalues.real,
        "eigenvalues_imag": block.eigenvalues.imag,
        "spectral_radius": block.spectral_radius,
        "spectral_norm": block.spectral_norm,
    }


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """One ConfigIn."""
    return config.to_dict()


def trace_to_dict(
    trace: Trace, spectrum: list[SpectrumBlock], omit: Collection[str] = ()
) -> dict[str, Any]:
    """A TraceOut, arrays left as numpy for `dumps` to encode; the optional fields named in
    `omit` (e.g. `grads`, as large as the weights) left out (null)."""
    body = {
        "config": config_to_dict(trace.config),
        "inputs": trace.inputs,
        "targets": plain(trace.targets),
        "outputs": trace.outputs,
        "loss": trace.loss,
        "loss_per_step": trace.loss_per_step,
        "hidden": trace.hidden,
        "cell": trace.cell,
        "gates": trace.gates,
        "grad_hidden": trace.grad_hidden,
        "grad_cell": trace.grad_cell,
        "grad_inputs": trace.grad_inputs,
        "grads": trace.grads,
        "grad_step_norms": trace.grad_step_norms,
        "jacobian_norm": trace.jacobian_norm,
        "jacobian_product_norm": trace.jacobian_product_norm,
        "spectrum": [spectrum_to_dict(b) for b in spectrum],
        "truncate": trace.truncate,
        "finite": trace.finite,
        "timeline": Timeline.of(trace).describe(),
        "verdict": gradient_verdict(trace, spectrum),
    }
    return {**body, **dict.fromkeys(omit)} if omit else body


def trace_to_npz_arrays(trace: Trace, spectrum: list[SpectrumBlock]) -> dict[str, np.ndarray]:
    """The same trace as flat named arrays for an .npz download (no objects, no pickle)."""
    arrays: dict[str, np.ndarray] = {
        "inputs": trace.inputs,
        "outputs": trace.outputs,
        "hidden": trace.hidden,
        "finite": np.array(trace.finite),
        "config_json": np.array(dumps(config_to_dict(trace.config)).decode()),
    }
    optional = {
        "targets": trace.targets,
        "loss": None if trace.loss is None else np.array(trace.loss),
        "loss_per_step": trace.loss_per_step,
        "cell": trace.cell,
        "grad_hidden": trace.grad_hidden,
        "grad_cell": trace.grad_cell,
        "grad_inputs": trace.grad_inputs,
        "grad_step_norms": trace.grad_step_norms,
        "jacobian_norm": trace.jacobian_norm,
        "jacobian_product_norm": trace.jacobian_product_norm,
    }
    arrays.update({k: np.asarray(v) for k, v in optional.items() if v is not None})
    arrays.update({f"gates.{k}": v for k, v in trace.gates.items()})
    arrays.update({f"grads.{k}": v for k, v in (trace.grads or {}).items()})
    for b in spectrum:
        arrays[f"eigenvalues.l{b.layer}.d{b.direction}.{b.gate}"] = b.eigenvalues
    return arrays
