"""A catalogue of hostile requests: each gets a clear 4xx (or error frame), quickly, and the
server keeps serving.

Oversized and chunked bodies, deeply nested JSON, NaN and Infinity (Python's json reads
them), wrong types, huge declared sizes, files that are not weights, path-like model ids,
and a WebSocket flood. Every HTTP case runs under a wall-clock bound and is followed by a
/healthz check; every 4xx body is JSON with "detail" and "field".
"""

from __future__ import annotations

import io
import json
import pickle
import threading
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
from fastapi.testclient import TestClient

from app.main import create_app
from app.rnn import ModelConfig, init_params, weights_to_bytes
from app.settings import Settings

BODY_LIMIT = 1024 * 1024
UPLOAD_LIMIT = 256 * 1024
WS_LIMIT = 64 * 1024
TIME_LIMIT_S = 10.0  # generous: every case here is refused in well under a second
JSON_HEADERS = {"content-type": "application/json"}

TRACE = {"config": {"cell": "rnn_tanh", "hidden_size": 1}, "inputs": [[0.5], [1.0]]}
TRAIN = {
    "config": {"cell": "gru", "hidden_size": 4},
    "task": {"name": "adding", "length": 10},
    "steps": 3,
    "batch_size": 4,
}
CONFIG = ModelConfig(cell="rnn_tanh", input_size=1, hidden_size=1)
PARAMS = {k: v.tolist() for k, v in init_params(CONFIG, seed=0).items()}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hostile"),
        max_body_bytes=BODY_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
        max_ws_message_bytes=WS_LIMIT,
        max_train_steps=20,
        max_batch_size=8,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """call(), failing (not hanging) if it has not answered after `seconds`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the test's thread below
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"no answer within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def assert_error(response, status: int | tuple[int, ...], field: str | None) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert {"detail", "field"} <= set(body), body
    assert isinstance(body["detail"], str) and body["detail"], body
    if field is not None:
        assert body["field"] == field, body
        assert body["detail"].startswith(f"{field}:"), body
    return body


def still_serving(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def raw_json(obj: Any) -> bytes:
    """JSON as Python writes it: NaN, Infinity and -Infinity as bare literals."""
    return json.dumps(obj).encode()


def with_inputs(text: str, body: dict[str, Any] | None = None) -> bytes:
    """A trace body whose inputs are `text`, spliced in verbatim."""
    return raw_json({**(body or TRACE), "inputs": 0}).replace(
        b'"inputs": 0', b'"inputs": ' + text.encode()
    )


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body streamed without a Content-Length (chunked)."""
    yield b'{"config": {}, "inputs": [' + b" " * (size - 26)
    for _ in range(total // size):
        yield b" " * size
    yield b"]}"


def multipart_chunks(total: int) -> Iterator[bytes]:
    yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="w.npz"\r\n\r\n'
    for _ in range(total // 65536):
        yield b"\0" * 65536
    yield b"\r\n--xx--\r\n"


def nested(depth: int, leaf: str = "0.5") -> str:
    return "[" * depth + leaf + "]" * depth


# (id, request keywords, expected status, expected field)
CATALOGUE: list[tuple[str, dict[str, Any], int | tuple[int, ...], str | None]] = []


def case(name: str, status: int | tuple[int, ...], field: str | None, **request: Any) -> None:
    request.setdefault("method", "POST")
    request.setdefault("url", "/api/v1/trace")
    if "content" in request and not callable(request["content"]):
        request.setdefault("headers", JSON_HEADERS)
    CATALOGUE.append((name, request, status, field))


# ---------------------------------------------------------------- oversized bodies
case("body over the limit, declared", 413, "body", content=b" " * (BODY_LIMIT + 1))
case(
    "body over the limit, chunked without content-length",
    413,
    "body",
    content=lambda: chunks(2 * BODY_LIMIT),
    headers=JSON_HEADERS,
)
case(
    "multipart upload over the body limit, chunked",
    413,
    "body",
    url="/api/v1/models",
    content=lambda: multipart_chunks(2 * BODY_LIMIT),
    headers={"content-type": "multipart/form-data; boundary=xx"},
)
case(
    "train body over the limit, declared",
    413,
    "body",
    url="/api/v1/train/stream",
    content=b" " * (BODY_LIMIT + 1),
)
case(
    "upload over the file limit, under the body limit",
    413,
    "file",
    url="/api/v1/models",
    files={"file": ("w.safetensors", b"\0" * (UPLOAD_LIMIT + 1))},
)

# ---------------------------------------------------------------- deeply nested JSON
case("100k '[' in inputs", 400, "body", content=with_inputs(nested(100_000)))
case("100k unclosed '[' in inputs", (400, 422), "body", content=with_inputs("[" * 100_000))
case(
    "100k nested objects in params",
    400,
    "body",
    content=raw_json(TRACE)[:-1] + b', "params": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
)
case(
    "500 '[' in inputs, under the parser's depth",
    422,
    "inputs.0.0",
    content=with_inputs(nested(500)),
)
case(
    "100k '[' in a task parameter",
    400,
    "body",
    url="/api/v1/train/stream",
    content=raw_json(TRAIN).replace(b'"length": 10', b'"length": ' + nested(100_000).encode()),
)
case(
    "500 '[' in a task parameter",
    422,
    "task.length",
    url="/api/v1/train/stream",
    content=raw_json(TRAIN).replace(b'"length": 10', b'"length": ' + nested(500).encode()),
)
case(
    "100k '[' in sample params",
    400,
    "body",
    url="/api/v1/tasks/sine/sample",
    content=b'{"params": {"length": ' + nested(100_000).encode() + b"}}",
)

# ---------------------------------------------------------------- NaN and Infinity
for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
    case(f"{literal} in inputs", 422, "inputs", content=with_inputs(f"[[0.5], [{literal}]]"))
case(
    "NaN in targets",
    422,
    "targets",
    content=raw_json({**TRACE, "targets": [[0.0], [float("nan")]]}),
)
case(
    "Infinity as a scalar target",
    422,
    "targets",
    content=raw_json({**TRACE, "targets": float("inf")}),
)
case(
    "NaN in init.scale",
    422,
    "init.scale",
    content=raw_json({**TRACE, "init": {"scale": float("nan")}}),
)
case(
    "Infinity in init.scale",
    422,
    "init.scale",
    content=raw_json({**TRACE, "init": {"scale": float("inf")}}),
)
case(
    "NaN in params",
    422,
    "params.rnn.weight_hh_l0",
    content=raw_json({**TRACE, "params": {**PARAMS, "rnn.weight_hh_l0": [[float("nan")]]}}),
)
case(
    "-Infinity in params",
    422,
    "params.head.bias",
    content=raw_json({**TRACE, "params": {**PARAMS, "head.bias": [float("-inf")]}}),
)
case(
    "an integer too large for a float in params",
    422,
    "params.head.bias.0",
    content=raw_json(TRACE)[:-1]
    + b', "params": '
    + raw_json({**PARAMS, "head.bias": [0]}).replace(b"[0]", b"[1" + b"0" * 400 + b"]")
    + b"}",
)
for name in ("clip_norm", "clip_value"):
    case(
        f"Infinity in {name}",
        422,
        name,
        url="/api/v1/train/stream",
        content=raw_json({**TRAIN, name: float("inf")}),
    )
case(
    "NaN learning rate",
    422,
    "optimizer.learning_rate",
    url="/api/v1/train/stream",
    content=raw_json({**TRAIN, "optimizer": {"learning_rate": float("nan")}}),
)
case(
    "NaN task length",
    422,
    "task.length",
    url="/api/v1/train/stream",
    content=raw_json({**TRAIN, "task": {"name": "adding", "length": float("nan")}}),
)
case(
    "Infinity sample length",
    422,
    "task.length",
    url="/api/v1/tasks/sine/sample",
    content=raw_json({"params": {"length": float("inf")}}),
)
case(
    "NaN in a stored-model config form field",
    422,
    "config.hidden_size",
    url="/api/v1/models",
    files={"file": ("w.safetensors", weights_to_bytes(CONFIG, init_params(CONFIG), "safetensors"))},
    data={"config": '{"hidden_size": NaN}'},
)

# ---------------------------------------------------------------- wrong types
WRONG_TYPES = [
    ("config.hidden_size", {"config": {"hidden_size": "8"}}),
    ("config.hidden_size", {"config": {"hidden_size": True}}),
    ("config.hidden_size", {"config": {"hidden_size": 8.5}}),
    ("config.hidden_size", {"config": {"hidden_size": {"value": 8}}}),
    ("config.bidirectional", {"config": {"bidirectional": "yes"}}),
    ("config.cell", {"config": {"cell": 3}}),
    ("config", {"config": [1, 2]}),
    ("inputs.1.0", {"inputs": [[0.5], [True]]}),
    ("inputs.1.0", {"inputs": [[0.5], ["0.5"]]}),
    ("inputs.1.0", {"inputs": [[0.5], [{"x": 1}]]}),
    ("inputs.1.0", {"inputs": [[0.5], [None]]}),
    ("inputs", {"inputs": "0.5, 1.0"}),
    ("inputs", {"inputs": {"0": [0.5]}}),
    ("targets", {"targets": True}),
    ("targets", {"targets": "1"}),
    ("init.seed", {"init": {"seed": "1"}}),
    ("init.scale", {"init": {"scale": True}}),
    ("truncate", {"truncate": "2"}),
    ("jacobians", {"jacobians": "false"}),
    ("params.head.bias.0", {"params": {**PARAMS, "head.bias": [True]}}),
    ("params.head.bias", {"params": {**PARAMS, "head.bias": "0.5"}}),
    ("params", {"params": [1, 2]}),
]
for field, patch in WRONG_TYPES:
    body = {**TRACE, **patch}
    if "config" in patch and isinstance(patch["config"], dict):
        body["config"] = {**TRACE["config"], **patch["config"]}
    case(f"{field} = {json.dumps(patch)[:40]}", 422, field, json=body)
for field, value in (("steps", "3"), ("batch_size", True), ("seed", 1.5), ("probe_every", [1])):
    case(
        f"train {field}={value!r}",
        422,
        field,
        url="/api/v1/train/stream",
        json={**TRAIN, field: value},
    )
for field, value in (("count", "2"), ("seed", False), ("params", [1])):
    case(
        f"sample {field}={value!r}",
        422,
        field,
        url="/api/v1/tasks/sine/sample",
        json={field: value},
    )
case("body is a JSON array", 422, "body", json=[TRACE])
case("body is JSON null", 422, "body", content=b"null")
case("body is not UTF-8", 400, "body", content=b'{"config": {}, "inputs": [[\xff\xfe]]}')
case("body is malformed JSON", 422, "body", content=b'{"config": {}, "inputs": [[0.5]')
case("body is a pickle", (400, 422), "body", content=pickle.dumps(TRACE))

# ---------------------------------------------------------------- huge declared sizes
for name, value in (("hidden_size", 10**9), ("num_layers", 10**9), ("input_size", 10**30)):
    case(
        f"config.{name} = {value:.0e}",
        422,
        f"config.{name}",
        json={**TRACE, "config": {**TRACE["config"], name: value}},
    )
case(
    "100k positions, under the body limit",
    422,
    "inputs",
    content=with_inputs("[[0]" + ",[0]" * 99_999 + "]"),
)
case(
    "10**6 positions, over the body limit",
    413,
    "body",
    content=with_inputs("[[0]" + ",[0]" * 999_999 + "]"),
)
case("truncate 10**12", 422, "truncate", json={**TRACE, "truncate": 10**12})
case("init.seed 2**64", 422, "init.seed", json={**TRACE, "init": {"seed": 2**64}})
for field, value in (("steps", 10**12), ("batch_size", 10**9), ("truncate", 10**9)):
    case(
        f"train {field} {value:.0e}",
        422,
        field,
        url="/api/v1/train/stream",
        json={**TRAIN, field: value},
    )
case(
    "train task length 10**9",
    422,
    "task.length",
    url="/api/v1/train/stream",
    json={**TRAIN, "task": {"name": "adding", "length": 10**9}},
)
case(
    "train hidden_size 10**9",
    422,
    "config.hidden_size",
    url="/api/v1/train/stream",
    json={**TRAIN, "config": {"hidden_size": 10**9}},
)
case(
    "sample length 10**9",
    422,
    "task.length",
    url="/api/v1/tasks/sine/sample",
    json={"params": {"length": 10**9}},
)
case("sample count 10**6", 422, "count", url="/api/v1/tasks/sine/sample", json={"count": 10**6})
case(
    "stored-model config hidden_size 10**9",
    422,
    "config.hidden_size",
    url="/api/v1/models",
    files={"file": ("w.safetensors", b"\0" * 16)},
    data={"config": '{"hidden_size": 1000000000}'},
)


# ---------------------------------------------------------------- files that are not weights
def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return header.getvalue()


def _zip_bomb(unpacked: int) -> bytes:
    """An npz entry of `unpacked` zero bytes, deflated to a few hundred kilobytes."""
    buffer = io.BytesIO()
    archive = zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9)
    with archive, archive.open("rnn.weight_hh_l0.npy", "w", force_zip64=True) as entry:
        entry.write(_npy_header((unpacked // 8,)))
        zeros = b"\0" * (1 << 20)
        for _ in range(unpacked >> 20):
            entry.write(zeros)
    return buffer.getvalue()


def _safetensors_header(header: dict[str, Any], data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


GOOD = weights_to_bytes(CONFIG, init_params(CONFIG), "safetensors")
BAD_FILES: dict[str, bytes] = {
    "empty file": b"",
    "truncated safetensors": GOOD[: len(GOOD) // 2],
    "safetensors cut inside its header": GOOD[:20],
    "pickle of a state_dict": pickle.dumps({"rnn.weight_hh_l0": np.zeros((1, 1))}),
    "pickle of a plain dict": pickle.dumps({"a": 1}, protocol=2),
    "npz with an object array": _npz(weights=np.array([{"a": 1}, None], dtype=object)),
    "zip that is not an npz": _zip({"readme.txt": b"hello"}),
    "torch.save-style zip of pickles": _zip({"archive/data.pkl": pickle.dumps({})}),
    "truncated npz": _npz(**{"rnn.weight_hh_l0": np.zeros((4, 4))})[:100],
    "npz entry declaring 10**12 floats": _zip({"rnn.weight_hh_l0.npy": _npy_header((10**12,))}),
    "npz entry declaring a (10**6, 10**6) int matrix": _zip(
        {"rnn.weight_hh_l0.npy": _npy_header((10**6, 10**6), "<i8")}
    ),
    "safetensors declaring a (10**9, 10**9) tensor with no data": _safetensors_header(
        {"w": {"dtype": "F64", "shape": [10**9, 10**9], "data_offsets": [0, 8 * 10**18]}}
    ),
    "safetensors header length of 2**63": (2**63).to_bytes(8, "little") + b"{}",
    "safetensors of int tensors": _safetensors_header(
        {"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8
    ),
    "random bytes": bytes(range(256)) * 4,
    "npz whose entry is not .npy data": _zip({"rnn.weight_hh_l0.npy": b"hello world"}),
    "npz of 2000 empty entries": _zip({f"m{i}.npy": b"" for i in range(2000)}),
    "npz whose .npy header claims 10**6 header bytes": _zip(
        {"rnn.weight_hh_l0.npy": b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little")}
    ),
    "safetensors whose header is a JSON list": _safetensors_header([1]),  # type: ignore[arg-type]
}
for name, data in BAD_FILES.items():
    case(f"upload: {name}", 422, "file", url="/api/v1/models", files={"file": ("w.bin", data)})
case(
    "upload: npz that unpacks to 256 MB (a zip bomb)",
    413,
    "file",
    url="/api/v1/models",
    # built when the case runs, not at import: deflating 256 MB takes a second
    files=lambda: {"file": ("w.npz", _zip_bomb(256 << 20))},
)
# a few hundred bytes whose declared config or tensor names mean a huge network:
# refused from the header, before any shape list or array is built
for name, field, data in (
    (
        "304-byte safetensors whose stored config says num_layers=10**6",
        "config.num_layers",
        safetensors.numpy.save(
            {"rnn.weight_ih_l0": np.zeros((1, 1))},
            metadata={"unroll_config": json.dumps({**CONFIG.to_dict(), "num_layers": 10**6})},
        ),
    ),
    (
        "safetensors whose stored config says hidden_size=10**7",
        "config.hidden_size",
        safetensors.numpy.save(
            {"rnn.weight_ih_l0": np.zeros((1, 1))},
            metadata={"unroll_config": json.dumps({**CONFIG.to_dict(), "hidden_size": 10**7})},
        ),
    ),
    (
        "state_dict whose tensor name says weight_ih_l99999999",
        "config.num_layers",
        safetensors.numpy.save(
            {
                "rnn.weight_ih_l99999999": np.zeros((1, 1)),
                "fc.weight": np.zeros((1, 1)),
                "fc.bias": np.zeros(1),
            }
        ),
    ),
):
    case(f"upload: {name}", 422, field, url="/api/v1/models", files={"file": ("w.bin", data)})
case(
    "upload: no file, only text fields",
    422,
    "file",
    url="/api/v1/models",
    data={"config": "{}"},
    files={"other": ("x", b"1")},
)

# ---------------------------------------------------------------- path-like model ids
for bad_id in ("../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2f", "/etc/passwd"):
    case(f"trace body model_id {bad_id!r}", 422, "model_id", json={**TRACE, "model_id": bad_id})
case(
    "trace body model_id of 100k characters",
    422,
    "model_id",
    json={**TRACE, "model_id": "a" * 100_000},
)
case("trace body model_id not stored", 404, "model_id", json={**TRACE, "model_id": "e" * 64})
case(
    "train body model_id '../x'",
    422,
    "model_id",
    url="/api/v1/train/stream",
    json={**TRAIN, "model_id": "../x"},
)

# ---------------------------------------------------------------- other sites' pages
EVIL = {"Origin": "http://evil.example"}
case("trace from a page on another site", 403, "origin", json=TRACE, headers=EVIL)
case(
    "upload from a page on another site",
    403,
    "origin",
    url="/api/v1/models",
    files={"file": ("w.safetensors", GOOD)},
    headers=EVIL,
)
case(
    "training from a sandboxed page (Origin: null)",
    403,
    "origin",
    url="/api/v1/train/stream",
    json=TRAIN,
    headers={"Origin": "null"},
)
case(
    "pin from a page on another site",
    403,
    "origin",
    url=f"/api/v1/models/{'e' * 64}/pin",
    headers=EVIL,
)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [pytest.param(r, s, f, id=name) for name, r, s, f in CATALOGUE],
)
def test_hostile_request_gets_a_clear_4xx(client, request_kwargs, status, field):
    kwargs = dict(request_kwargs)
    for key in ("content", "files"):
        if callable(kwargs.get(key)):
            kwargs[key] = kwargs[key]()  # a fresh generator (or a costly body) for each run
    response = within(TIME_LIMIT_S, lambda: client.request(**kwargs))
    assert_error(response, status, field)
    still_serving(client)


PATH_IDS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e",
    "..",
    "%00",
    "e" * 64 + "%2F..%2F..",
    "e" * 63 + "%0A",
    "E" * 64,
    "a" * 10_000,
]


@pytest.mark.parametrize("suffix", ["", "/weights", "/weights?format=npz"])
@pytest.mark.parametrize("model_id", PATH_IDS)
def test_path_like_model_ids_are_404_or_422(client, model_id, suffix):
    response = within(TIME_LIMIT_S, lambda: client.get(f"/api/v1/models/{model_id}{suffix}"))
    body = assert_error(response, (404, 422), None)
    assert body["field"] in ("model_id", "path"), body  # path: no route has such a path
    still_serving(client)


# ---------------------------------------------------------------- the WebSocket session
SESSION = "/api/v1/session"


def _answers(ws, count: int, seconds: float = TIME_LIMIT_S) -> list[dict[str, Any]]:
    """The last frame of each of the next `count` answers (a session or error frame),
    failing if they have not all come within `seconds`."""

    def read() -> list[dict[str, Any]]:
        ends: list[dict[str, Any]] = []
        while len(ends) < count:
            frame = json.loads(ws.receive_text())
            if frame["type"] in ("session", "error"):
                ends.append(frame)
        return ends

    return within(seconds, read)


def _configure(ws, body: dict[str, Any] = TRACE) -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "configure", **body}))
    return _answers(ws, 1)[0]


FLOOD: list[tuple[str | bytes, str]] = [
    ('{"type": "step_forward"}', "ok"),
    ('{"type": "step_back"}', "ok"),
    ("not json at all", "message"),
    (pickle.dumps({"type": "run"}), "message"),
    ("[]", "message"),
    ('{"type": "nope"}', "type"),
    ('{"cursor": 1}', "type"),
    ('{"type": "seek", "cursor": 1e999}', "cursor"),
    ('{"type": "seek", "cursor": -1}', "cursor"),
    ('{"type": "seek", "cursor": "0"}', "cursor"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": NaN}', "value"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": true}', "value"),
    ('{"type": "edit_input", "position": 99999, "feature": 0, "value": 1.0}', "position"),
    ('{"type": "edit_weight", "name": "../../etc/passwd", "index": [0], "value": 1.0}', "name"),
    (nested(100_000), "message"),
    (
        '{"type": "configure", "config": {"hidden_size": 1000000000}, "inputs": [[0]]}',
        "config.hidden_size",
    ),
    ('{"type": "configure", "config": {}, "inputs": [[NaN]]}', "inputs"),
    ('{"type": "configure", "config": {}, "inputs": [[0]], "model_id": "../x"}', "model_id"),
]


def test_websocket_flood_gets_one_answer_per_command_and_goes_on(client):
    """2,000 commands sent without waiting, most of them garbage or refused: each gets
    exactly one answer, in order, an error frame naming the field where it is refused."""
    commands = [FLOOD[i % len(FLOOD)] for i in range(2000)]
    with client.websocket_connect(SESSION) as ws:
        assert _configure(ws)["type"] == "session"
        for message, _ in commands:
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)
        ends = _answers(ws, len(commands), seconds=60)
        for (message, expected), end in zip(commands, ends, strict=True):
            if expected == "ok":
                # step_forward past the end and step_back at the start are refused (409)
                assert end["type"] == "session" or end["status"] == 409, (message, end)
            else:
                assert end["type"] == "error", (message, end)
                assert 400 <= end["status"] < 500 and end["field"] == expected, (message, end)
                assert end["detail"].startswith(f"{expected}:"), end
        ws.send_text('{"type": "seek", "cursor": 1}')
        assert _answers(ws, 1)[0]["cursor"] == 1
    still_serving(client)


def test_websocket_flood_of_configures_is_answered_in_order(client):
    with client.websocket_connect(SESSION) as ws:
        for i in range(50):
            body = {**TRACE, "inputs": [[0.1 * i]] * (i % 7 + 1)}
            ws.send_text(json.dumps({"type": "configure", **body}))
        ends = _answers(ws, 50)
        # each is answered, in order: done, or cancelled by the configure after it (409)
        for i, end in enumerate(ends):
            if end["type"] == "error":
                assert end["status"] == 409 and "cancelled by a later configure" in end["detail"]
                assert i < 49
            else:
                assert end["timeline_length"] == i % 7 + 2
        assert ends[-1]["type"] == "session"
    still_serving(client)


@pytest.mark.parametrize("kind", ["text", "bytes"])
def test_oversize_websocket_message_is_an_error_frame(client, kind):
    huge = json.dumps({"type": "configure", **TRACE, "inputs": [[0.5]] * 20_000})
    assert len(huge) > WS_LIMIT
    with client.websocket_connect(SESSION) as ws:
        _configure(ws)
        if kind == "text":
            ws.send_text(huge)
        else:
            ws.send_bytes(huge.encode())
        [error] = _answers(ws, 1)
        assert (error["type"], error["status"], error["field"]) == ("error", 413, "message")
        assert str(WS_LIMIT) in error["detail"]
        ws.send_text('{"type": "step_forward"}')
        assert _answers(ws, 1)[0]["cursor"] == 1  # the configured session is intact
    still_serving(client)


def test_the_server_still_computes_after_the_catalogue(client):
    r = client.post("/api/v1/trace", json={**TRACE, "targets": [[0.0], [1.0]]})
    assert r.status_code == 200 and r.json()["finite"] is True
