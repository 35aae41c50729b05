"""The binary transport to the page: one frame, its arrays as little-endian float32 (or
float16 where only colour depends on them) after a small JSON header. docs/transport.md
describes the format; static/js/transport.js is the one decoder.

    bytes 0-3    b"UNRL"
    byte  4      format version (1)
    bytes 5-7    zero
    bytes 8-11   header length N, uint32 little-endian
    bytes 12..   the header: N bytes of UTF-8 JSON, padded with spaces to a multiple of 8
    then         each array's bytes, starting at a multiple of 8 from the message start

The header is {"frame": ..., "arrays": [...]}: the frame with every float array (except
the small ones under EXACT_KEYS, which stay JSON) replaced by {"$array": i}, and per
array its dtype ("f4", "f2", or "f8" where float32 cannot hold its values), shape, byte
offset from the message start and count of non-finite values (NaN and infinities travel
as themselves).
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import Any

import numpy as np
import orjson

from app.api.encoding import dumps

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)  # below this float32 loses digits, then rounds to 0
MAGIC = b"UNRL"
VERSION = 1
ALIGN = 8  # every array starts on a multiple of 8: a typed-array view needs no copy
# frame keys whose arrays only colour a picture: float16 keeps 3 significant digits
HALF_KEYS = frozenset({"gates"})
# small arrays the page edits or prints exactly: they stay JSON (float64, non-finite null)
EXACT_KEYS = frozenset({"inputs", "targets", "outputs", "loss_per_step", "spectrum"})


def _pad(size: int) -> int:
    return -size % ALIGN


def _dtype(value: np.ndarray, half: bool) -> str:
    """float16 for colours; float32, unless a finite value is beyond its range (a state
    of 1e40 would read as overflow, a vanished gradient of 1e-50 as exactly 0): float64."""
    if half:
        return "<f2"
    magnitude = np.abs(value[np.isfinite(value)])
    nonzero = magnitude[magnitude > 0]
    if nonzero.size and (nonzero.max() > F32_MAX or nonzero.min() < F32_TINY):
        return "<f8"
    return "<f4"


def encode(
    frame: dict[str, Any], half: Collection[str] = HALF_KEYS, exact: Collection[str] = EXACT_KEYS
) -> bytes:
    """One frame as a binary message; float arrays under a key in `half` as float16, those
    under a key in `exact` left as JSON."""
    blobs: list[bytes] = []
    arrays: list[dict[str, Any]] = []

    def walk(value: Any, in_half: bool) -> Any:
        if isinstance(value, dict):
            return {
                k: value[k] if k in exact else walk(v, in_half or k in half)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [walk(v, in_half) for v in value]
        if isinstance(value, np.ndarray) and value.ndim > 0 and value.dtype.kind == "f":
            dtype = _dtype(value, in_half)
            data = np.ascontiguousarray(value, dtype=dtype)
            arrays.append(
                {
                    "dtype": dtype[1:],
                    "shape": list(value.shape),
                    "nonfinite": int(value.size - np.count_nonzero(np.isfinite(value))),
                }
            )
            blobs.append(data.tobytes())
            return {"$array": len(arrays) - 1}
        return value

    body = walk(frame, False)
    # offsets depend on the header's length, which depends on the offsets' digits:
    # write them with room to spare, then pad the header to its reserved size
    offsets = [0] * len(arrays)
    header = b""
    for _ in range(8):
        for entry, offset in zip(arrays, offsets, strict=True):
            entry["offset"] = offset
        header = dumps({"frame": body, "arrays": arrays})
        start = 12 + len(header) + _pad(12 + len(header))
        position, fresh = start, []
        for blob in blobs:
            fresh.append(position)
            position += len(blob) + _pad(len(blob))
        if fresh == offsets:
            break
        offsets = fresh
    else:
        raise AssertionError("binary header offsets did not settle")
    header += b" " * _pad(12 + len(header))
    parts = [MAGIC, struct.pack("<B3xI", VERSION, len(header)), header]
    for blob in blobs:
        parts += [blob, b"\0" * _pad(len(blob))]
    return b"".join(parts)


def decode(message: bytes) -> dict[str, Any]:
    """The frame of a binary message, arrays as float64 numpy arrays (tests, clients)."""
    if message[:4] != MAGIC:
        raise ValueError("message: not an Unroll binary frame")
    version, size = struct.unpack_from("<B3xI", message, 4)
    if version != VERSION:
        raise ValueError(f"message: binary format {version}, expected {VERSION}")
    header = orjson.loads(message[12 : 12 + size])
    arrays = [
        np.frombuffer(
            message, dtype="<" + a["dtype"], count=int(np.prod(a["shape"])), offset=a["offset"]
        )
        .reshape(a["shape"])
        .astype(np.float64)
        for a in header["arrays"]
    ]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$array"}:
                return arrays[value["$array"]]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(header["frame"])
