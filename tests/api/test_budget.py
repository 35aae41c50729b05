"""The budget (422 with the estimate, naming the field), admission over HTTP (429 for a
second heavy request from one client), /estimate, and the session's idle timeout and
message rate."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.api import inputs as inputs_module
from app.main import create_app
from app.settings import Settings
from tests.api.bodies import BIDI_LSTM

TRAIN = {
    "config": {"cell": "gru", "hidden_size": 4},
    "task": {"name": "sine", "length": 8},
    "batch_size": 4,
    "steps": 20,
    "probe_every": 10,
}
LONG = {
    "config": {"cell": "lstm", "input_size": 1, "hidden_size": 64, "num_layers": 2},
    "inputs": [[0.1]] * 400,
    "targets": [[0.0]] * 400,
}


def app_with(tmp_path, **settings):
    return create_app(Settings(data_dir=tmp_path, **settings))


def _estimate(kind: str, body: dict):
    from app.api.inputs import estimate_trace_request
    from app.api.schemas import TraceRequest

    return estimate_trace_request(TraceRequest(**body), Settings(), kind)[1]


@pytest.mark.parametrize(
    ("path", "kind"), [("/api/v1/trace", "trace"), ("/trace/stream", "stream")]
)
def test_a_trace_over_the_budget_is_a_422_with_the_estimate(tmp_path, path, kind):
    path = path if path.startswith("/api") else "/api/v1" + path
    on, off = _estimate(kind, LONG), _estimate(kind, {**LONG, "jacobians": False})
    assert off.seconds < on.seconds
    budget = (on.seconds + off.seconds) / 2
    with TestClient(app_with(tmp_path, max_request_seconds=budget)) as client:
        r = client.post(path, json=LONG)
        assert r.status_code == 422, r.text
        body = r.json()
        field = on.reduce[0].split()[0]
        assert body["field"] == field and field in ("jacobians", "inputs")
        assert body["detail"].startswith(f"{field}: about ")
        assert "over this server's budget of" in body["detail"]
        assert "inputs (the sequence length)" in body["detail"]
        # without the Jacobians the same request fits
        assert client.post(path, json={**LONG, "jacobians": False}).status_code == 200


def test_memory_and_answer_size_budgets(tmp_path):
    with TestClient(app_with(tmp_path, max_request_bytes=1_000_000)) as client:
        r = client.post("/api/v1/trace", json=LONG)
        assert r.status_code == 422 and "of memory" in r.json()["detail"]
    # the npz answer is smaller than the JSON one, and is estimated as such
    json_size = _estimate("trace", LONG).response_bytes
    npz_size = _estimate("npz", LONG).response_bytes
    assert npz_size < json_size
    budget = (json_size + npz_size) // 2
    with TestClient(app_with(tmp_path, max_response_bytes=budget)) as client:
        r = client.post("/api/v1/trace", json=LONG)
        assert r.status_code == 422 and "answer" in r.json()["detail"]
        r = client.post("/api/v1/trace?format=npz", json={**LONG, "jacobians": False})
        assert r.status_code == 200 and len(r.content) <= budget


def test_probing_every_step_is_counted(tmp_path):
    with TestClient(app_with(tmp_path, max_train_seconds=0.5)) as client:
        body = {**TRAIN, "steps": 2000, "probe_every": 1}
        r = client.post("/api/v1/train/stream", json=body)
        assert r.status_code == 422
        assert r.json()["field"] == "probe_every"
        assert "probe_every (raise it)" in r.json()["detail"]
        body = {**TRAIN, "batch_size": 64, "steps": 5000, "probe_every": 5000}
        r = client.post("/api/v1/train/stream", json=body)
        assert r.status_code == 422 and r.json()["field"] == "steps"


def test_estimate_answers_before_anything_runs(client):
    r = client.post("/api/v1/estimate/trace", json=BIDI_LSTM)
    assert r.status_code == 200
    small = r.json()
    assert small["within_budget"] and small["detail"] is None and not small["heavy"]
    assert 0 < small["seconds"] < 1 and small["memory_bytes"] > 0
    big = {
        "config": {"cell": "lstm", "hidden_size": 128, "num_layers": 4, "bidirectional": True},
        "inputs": [[0.1]] * 1000,
        "targets": [[0.0]] * 1000,
    }
    for kind in ("trace", "npz", "stream", "session"):
        r = client.post(f"/api/v1/estimate/trace?kind={kind}", json=big)
        assert r.status_code == 200
        assert r.json()["heavy"] and r.json()["seconds"] > small["seconds"]
    r = client.post("/api/v1/estimate/train", json=TRAIN)
    assert r.status_code == 200 and r.json()["within_budget"]
    r = client.post("/api/v1/estimate/train", json={**TRAIN, "batch_size": 10**6})
    assert r.status_code == 422 and r.json()["field"] == "batch_size"
    limits = client.get("/api/v1/limits").json()
    for name in ("max_request_seconds", "max_train_seconds", "max_request_bytes", "max_queue"):
        assert name in limits


def test_a_second_heavy_request_from_one_client_gets_429(tmp_path, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = inputs_module.run_sequence

    def held(*args, **kwargs):
        started.set()
        assert release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(inputs_module, "run_sequence", held)
    # every request is heavy: one per client at a time
    with TestClient(app_with(tmp_path, heavy_request_seconds=0.0)) as client:
        result = {}
        first = threading.Thread(
            target=lambda: result.update(r=client.post("/api/v1/trace", json=BIDI_LSTM))
        )
        first.start()
        assert started.wait(20)
        r = client.post("/api/v1/trace", json=BIDI_LSTM)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "heavy computation" in r.json()["detail"]
        release.set()
        first.join(20)
        assert result["r"].status_code == 200
        assert client.post("/api/v1/trace", json=BIDI_LSTM).status_code == 200


def test_an_idle_session_is_closed(tmp_path):
    with (
        TestClient(app_with(tmp_path, max_session_idle_seconds=0.2)) as client,
        client.websocket_connect("/api/v1/session") as ws,
    ):
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        frames = [json.loads(ws.receive_text())]
        while frames[-1]["type"] not in ("session", "error"):  # one frame per layer-direction
            frames.append(json.loads(ws.receive_text()))
        assert frames[-1]["type"] == "session"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()  # nothing more is sent: the server closes it
        assert info.value.code == 1001


def test_a_session_over_its_message_rate_gets_429_frames(tmp_path):
    with (
        TestClient(app_with(tmp_path, max_session_messages_per_second=1)) as client,
        client.websocket_connect("/api/v1/session") as ws,
    ):
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        for _ in range(4):
            ws.receive_text()
        for _ in range(30):  # a burst of 10 is allowed at 1 a second
            ws.send_text('{"type": "seek", "cursor": 1}')
        ends = []
        while len(ends) < 30:
            frame = json.loads(ws.receive_text())
            if frame["type"] in ("session", "error"):
                ends.append(frame)
        refused = [e for e in ends if e["type"] == "error"]
        assert 15 <= len(refused) <= 21
        assert all(e["status"] == 429 and e["field"] == "message" for e in refused)
        assert ends[0]["type"] == "session"


def test_a_second_heavy_training_is_refused_before_its_stream_starts(tmp_path, monkeypatch):
    from app.api import training as training_module

    started, release = threading.Event(), threading.Event()
    real = training_module.train

    def held(*args, **kwargs):
        started.set()
        assert release.wait(20)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(training_module, "train", held)
    with TestClient(app_with(tmp_path, heavy_request_seconds=0.0)) as client:
        result = {}
        first = threading.Thread(
            target=lambda: result.update(
                r=client.post("/api/v1/train/stream", json={**TRAIN, "store": False})
            )
        )
        first.start()
        assert started.wait(20)
        r = client.post("/api/v1/train/stream", json=TRAIN)
        assert r.status_code == 429 and r.headers["content-type"] == "application/json"
        release.set()
        first.join(20)
        assert result["r"].status_code == 200 and '"type":"done"' in result["r"].text


def test_a_full_wait_queue_is_a_503_with_retry_after(tmp_path, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = inputs_module.run_sequence

    def held(*args, **kwargs):
        started.set()
        assert release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(inputs_module, "run_sequence", held)
    with TestClient(app_with(tmp_path, max_concurrent=1, max_queue=0)) as client:
        result = {}
        first = threading.Thread(
            target=lambda: result.update(r=client.post("/api/v1/trace", json=BIDI_LSTM))
        )
        first.start()
        assert started.wait(20)
        r = client.post("/api/v1/trace", json=BIDI_LSTM)
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert r.json()["detail"].startswith("compute: the server is busy")
        release.set()
        first.join(20)
        assert result["r"].status_code == 200
