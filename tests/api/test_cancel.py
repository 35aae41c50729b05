"""A client that leaves stops its computation, and the compute slot stays taken until the
worker has actually stopped: POST /trace, /trace/stream, the session and training.

The engine call is replaced by a stand-in that runs until its cancel token is set, so the
tests see the token arrive, and hold the worker there to check the slot is still held.
"""

from __future__ import annotations

import json
import threading
import time

import anyio
import pytest
from fastapi.testclient import TestClient

from app.api import inputs as inputs_module
from app.api import session as session_module
from app.api import trace as trace_module
from app.api import training as training_module
from app.main import create_app
from app.rnn import Cancelled
from tests.api.bodies import BIDI_LSTM

NDJSON = {"accept": "application/x-ndjson"}


class Blocker:
    """Stands in for an engine call: runs until its `cancel` says stop, then waits for
    `release` (the test looks at the slot meanwhile) and raises Cancelled."""

    def __init__(self, calls: int = 1):
        self.started = threading.Event()
        self.saw_cancel = threading.Event()
        self.release = threading.Event()
        self.calls = calls  # the first `calls` calls block; later ones run the real thing
        self.real = None

    def __call__(self, *args, cancel=None, **kwargs):
        if self.calls == 0:
            return self.real(*args, cancel=cancel, **kwargs)
        self.calls -= 1
        self.started.set()
        assert cancel is not None, "the engine call got no cancel token"
        deadline = time.monotonic() + 20
        while not cancel():
            if time.monotonic() > deadline:
                raise AssertionError("the cancel token was never set")
            time.sleep(0.005)
        self.saw_cancel.set()
        assert self.release.wait(20)
        raise Cancelled("cancelled")


def session_engine() -> str:
    """The engine call the session makes first (the one-call trace, or its first stage)."""
    return "run_sequence" if hasattr(session_module, "run_sequence") else "forward_trace"


def wait(condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def check_slot_held_until_the_worker_stops(app, blocker: Blocker) -> None:
    pool = app.state.pool
    assert blocker.saw_cancel.wait(20), "the worker was never told to stop"
    assert pool.running == 1  # the worker has not returned: its slot is still taken
    blocker.release.set()
    wait(lambda: pool.running == 0, "the slot is released once the worker returned")


@pytest.fixture
def app(settings):
    return create_app(settings)


def _post_and_leave(app, path: str, body: dict, leave: threading.Event) -> list[dict]:
    """Drive the ASGI app directly: send the body, then report the client gone once
    `leave` is set. Returns the messages the app sent."""
    data = json.dumps(body).encode()
    sent: list[dict] = []

    async def main() -> None:
        body_sent = False

        async def receive() -> dict:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            while not leave.is_set():
                await anyio.sleep(0.005)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"localhost"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)

    anyio.run(main)
    return sent


def test_leaving_post_trace_stops_the_trace(app, monkeypatch):
    blocker = Blocker()
    monkeypatch.setattr(inputs_module, "run_sequence", blocker)
    leave = threading.Event()
    result: list[list[dict]] = []
    request = threading.Thread(
        target=lambda: result.append(_post_and_leave(app, "/api/v1/trace", BIDI_LSTM, leave))
    )
    request.start()
    assert blocker.started.wait(20)
    leave.set()  # the client hangs up while its trace computes
    check_slot_held_until_the_worker_stops(app, blocker)
    request.join(20)
    assert not request.is_alive()
    assert result[0][0]["status"] == trace_module.CLIENT_CLOSED


def _in_thread(fn) -> threading.Thread:
    """Run a client in a thread: closing a response waits for the app, which waits for
    the held worker, so the test looks at the slot from outside."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_leaving_the_stream_stops_its_backward_pass(app, monkeypatch):
    blocker = Blocker()
    monkeypatch.setattr(trace_module, "backward_trace", blocker)
    with TestClient(app) as client:

        def leave_early() -> None:
            with client.stream("POST", "/api/v1/trace/stream", json=BIDI_LSTM, headers=NDJSON) as r:
                for line in r.iter_lines():
                    if json.loads(line)["type"] == "forward":
                        break  # the client goes while BPTT runs
                assert blocker.started.wait(20)

        thread = _in_thread(leave_early)
        check_slot_held_until_the_worker_stops(app, blocker)
        thread.join(20)
        assert not thread.is_alive()
        assert client.get("/healthz").status_code == 200


def test_leaving_a_session_stops_its_configure(app, monkeypatch):
    blocker = Blocker()
    monkeypatch.setattr(session_module, session_engine(), blocker)
    with TestClient(app) as client:

        def leave_early() -> None:
            with client.websocket_connect("/api/v1/session") as ws:
                ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
                assert blocker.started.wait(20)

        thread = _in_thread(leave_early)
        check_slot_held_until_the_worker_stops(app, blocker)
        thread.join(20)
        assert not thread.is_alive()


def test_a_new_configure_cancels_the_running_one(app, monkeypatch):
    blocker = Blocker(calls=1)
    blocker.real = getattr(session_module, session_engine())
    monkeypatch.setattr(session_module, session_engine(), blocker)
    other = {**BIDI_LSTM, "inputs": BIDI_LSTM["inputs"][:2], "targets": BIDI_LSTM["targets"][:2]}
    with TestClient(app) as client, client.websocket_connect("/api/v1/session") as ws:
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        assert blocker.started.wait(20)
        ws.send_text(json.dumps({"type": "configure", **other}))
        assert blocker.saw_cancel.wait(20)
        blocker.release.set()
        first = json.loads(ws.receive_text())
        assert first["type"] == "error" and first["status"] == 409
        assert first["detail"] == "configure: cancelled by a later configure"
        frames = [json.loads(ws.receive_text())]
        while frames[-1]["type"] not in ("session", "error"):
            frames.append(json.loads(ws.receive_text()))
        # the later configure is answered in full: the shorter sequence
        assert [f["type"] for f in frames[:2]] == ["config", "trace"]
        assert frames[0]["sequence_length"] == 2 and frames[-1]["type"] == "session"
    wait(lambda: app.state.pool.running == 0, "no slot left taken")


def test_leaving_training_stops_its_final_evaluation(app, monkeypatch):
    blocker = Blocker()
    monkeypatch.setattr(training_module, "held_out_loss", blocker)
    body = {
        "config": {"cell": "gru", "hidden_size": 4},
        "task": {"name": "sine", "length": 8},
        "batch_size": 4,
        "steps": 3,
        "probe_every": 3,
    }
    with TestClient(app) as client:

        def leave_early() -> None:
            with client.stream("POST", "/api/v1/train/stream", json=body, headers=NDJSON) as r:
                assert json.loads(next(r.iter_lines()))["type"] == "train_config"
                assert blocker.started.wait(20)  # training is over, the evaluation runs

        thread = _in_thread(leave_early)
        # the client is gone: the evaluation stops, and only then is the slot free
        check_slot_held_until_the_worker_stops(app, blocker)
        thread.join(20)
        assert not thread.is_alive()


def _busy(seconds: float) -> None:
    """Spend CPU time (the time limit counts CPU seconds, not wall time)."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def _runs_until_cancelled(*args, cancel=None, **kwargs):
    """An engine call the cost model underestimated: it only stops when told to."""
    deadline = time.monotonic() + 20
    while not cancel():
        assert time.monotonic() < deadline, "the time limit never stopped the work"
        _busy(0.005)
    raise Cancelled("cancelled")


def test_work_past_its_time_limit_is_stopped(tmp_path, monkeypatch):
    """Twice the budget's seconds is the limit, whatever the estimate said."""
    from app.settings import Settings

    monkeypatch.setattr(inputs_module, "run_sequence", _runs_until_cancelled)
    monkeypatch.setattr(session_module, session_engine(), _runs_until_cancelled)
    app = create_app(Settings(data_dir=tmp_path, max_request_seconds=0.1))
    with TestClient(app) as client:
        r = client.post("/api/v1/trace", json=BIDI_LSTM)
        assert r.status_code == 422, r.text
        assert "stopped after 0 s of work, this server's time limit" in r.json()["detail"]
        with client.websocket_connect("/api/v1/session") as ws:
            ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
            error = json.loads(ws.receive_text())
            assert error["type"] == "error" and error["status"] == 422
            assert "time limit" in error["detail"]
        assert app.state.pool.running == 0


def test_training_past_its_time_limit_ends_with_a_note(tmp_path, monkeypatch):
    from app.rnn.train import Finished, Progress
    from app.settings import Settings

    def endless(config, task, optimizer, settings, params=None, should_stop=None):
        step = 0
        while not should_stop():
            step += 1
            yield Progress(step, 1.0, 1.0, [[[0.0]]])
            _busy(0.005)
        yield Finished(step, {}, stopped=True)

    monkeypatch.setattr(training_module, "train", endless)
    app = create_app(Settings(data_dir=tmp_path, max_train_seconds=0.1))
    body = {
        "config": {"cell": "gru", "hidden_size": 4},
        "task": {"name": "sine", "length": 8},
        "batch_size": 4,
        "steps": 3,
        "probe_every": 3,
        "store": False,
    }
    with TestClient(app) as client:
        r = client.post("/api/v1/train/stream", json=body, headers=NDJSON)
        assert r.status_code == 200, r.text
        done = json.loads(r.text.splitlines()[-1])
        assert done["type"] == "done" and done["stopped"] is True
        assert "time limit" in done["note"] and done["eval_loss"] is None


def test_the_real_engine_stops_when_the_client_of_post_trace_leaves(app, monkeypatch):
    """Not a stand-in: the core's own polling raises Cancelled in the middle of a trace
    that would take many seconds (the largest the caps allow)."""
    real = inputs_module.run_sequence
    outcome: dict[str, object] = {}
    started = threading.Event()

    def watched(*args, **kwargs):
        started.set()
        try:
            outcome["result"] = real(*args, **kwargs)
        except Cancelled:
            outcome["cancelled"] = True
            raise

    monkeypatch.setattr(inputs_module, "run_sequence", watched)
    body = {
        "config": {
            "cell": "lstm",
            "input_size": 1,
            "hidden_size": 128,
            "num_layers": 4,
            "bidirectional": True,
        },
        "inputs": [[0.1]] * 1000,
        "targets": [[0.0]] * 1000,
    }
    leave = threading.Event()
    result: list[list[dict]] = []
    request = threading.Thread(
        target=lambda: result.append(_post_and_leave(app, "/api/v1/trace", body, leave))
    )
    request.start()
    assert started.wait(20)
    leave.set()
    request.join(60)
    assert not request.is_alive()
    assert outcome == {"cancelled": True}
    assert result[0][0]["status"] == trace_module.CLIENT_CLOSED
    assert app.state.pool.running == 0
