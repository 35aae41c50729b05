"""WebSocket /api/v1/session: every frame checked against run_sequence and the schema."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.api import session as session_module
from app.api.frames import FRAME_ADAPTER
from app.api.timeline import Timeline
from app.main import create_app
from app.rnn import ModelConfig, init_params, recurrent_spectrum
from app.settings import Settings
from tests.api.bodies import BIDI_LSTM, reference_trace

URL = "/api/v1/session"

BIDI = BIDI_LSTM
# unidirectional, so an input edit reaches only later positions
UNI = {
    "config": {"cell": "gru", "input_size": 2, "hidden_size": 3, "num_layers": 2},
    "init": {"seed": 3},
    "inputs": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6], [0.7, -0.8], [0.2, 0.2], [0.0, 0.9]],
    "targets": [[0.0], [1.0], [0.5], [0.0], [0.3], [0.1]],
}


class Session:
    """A test-side client: validates every frame and checks ids increase."""

    def __init__(self, ws):
        self.ws = ws
        self.last_id = -1

    def send(self, type, **fields):
        self.ws.send_text(json.dumps({"type": type, **fields}))

    def recv(self):
        frame = json.loads(self.ws.receive_text())
        FRAME_ADAPTER.validate_python(frame)
        assert frame["schema_version"] == 2
        assert frame["id"] > self.last_id
        self.last_id = frame["id"]
        return frame

    def answer(self):
        """Frames up to and including the session or error frame that ends an answer."""
        frames = [self.recv()]
        while frames[-1]["type"] not in ("session", "error"):
            frames.append(self.recv())
        return frames

    def command(self, type, **fields):
        self.send(type, **fields)
        return self.answer()

    def error(self, type, **fields):
        frames = self.command(type, **fields)
        assert [f["type"] for f in frames] == ["error"], frames
        return frames[0]

    def configure(self, body):
        return self.command("configure", **body)


@pytest.fixture
def session(client):
    with client.websocket_connect(URL) as ws:
        yield Session(ws)


def reference(body, params=None, inputs=None):
    return reference_trace(body, params, inputs)


def initial_params(body):
    config = ModelConfig(**body["config"])
    return init_params(config, seed=body["init"]["seed"])


def close(a, b):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-15
    )


def check_forward(frame, ref):
    layer, d, t = frame["layer"], frame["direction"], frame["position"]
    close(frame["hidden"], ref.hidden[layer, d, t])
    if ref.cell is None:
        assert frame["cell"] is None
    else:
        close(frame["cell"], ref.cell[layer, d, t])
    for name, gate in ref.gates.items():
        close(frame["gates"][name], gate[layer, d, t])
    expected_input = ref.inputs[t] if layer == 0 else ref.hidden[layer - 1, :, t].reshape(-1)
    close(frame["input"], expected_input)
    config = ref.config
    if frame["output"] is not None:  # once, at the step every top-layer direction shows t
        assert layer == config.num_layers - 1
        close(frame["output"], ref.outputs[t])
        close(frame["target"], ref.targets[t])
        close(frame["loss"], ref.loss_per_step[t])
    else:
        assert frame["output"] is None and frame["loss"] is None


def check_backward(frame, ref):
    layer, d, t = frame["layer"], frame["direction"], frame["position"]
    close(frame["grad_hidden"], ref.grad_hidden[layer, d, t])
    close(frame["grad_hidden_norm"], np.linalg.norm(ref.grad_hidden[layer, d, t]))
    if ref.grad_cell is None:
        assert frame["grad_cell"] is None
    else:
        close(frame["grad_cell"], ref.grad_cell[layer, d, t])
    close(frame["grad_step_norm"], ref.grad_step_norms[layer, d, t])
    close(frame["jacobian_norm"], ref.jacobian_norm[layer, d, t])
    close(frame["jacobian_product_norm"], ref.jacobian_product_norm[layer, d, t])


def check_trace(body, ref):
    for field in (
        "outputs",
        "hidden",
        "grad_hidden",
        "grad_inputs",
        "grad_step_norms",
        "jacobian_norm",
        "jacobian_product_norm",
        "loss_per_step",
    ):
        close(body[field], getattr(ref, field))
    close(body["loss"], ref.loss)
    for name, value in ref.grads.items():
        close(body["grads"][name], value)


def without_id(frame):
    return {k: v for k, v in frame.items() if k != "id"}


def test_whole_session_steps_through_the_stream_frames(client, session):
    ref = reference(BIDI)
    L, D, T = 2, 2, 4
    answer = session.configure(BIDI)
    assert [f["type"] for f in answer] == ["config", "trace"] + ["forward"] * 4 + ["session"]
    config, trace, *first, state = answer
    assert config["sequence_length"] == T and config["has_targets"] is True
    assert config["timeline"]["length"] == 2 * T + 1
    assert trace["cause"] == "configure" and trace["edit"] is None
    assert trace["trace"]["timeline"] == config["timeline"]
    check_trace(trace["trace"], ref)
    assert state == {
        **state,
        "command": "configure",
        "cursor": 0,
        "phase": "forward",
        "timeline_length": 2 * T + 1,
        "forward_steps": T,
        "backward_steps": T,
        "edits": 0,
        "jacobians": True,
    }

    steps = [first]
    for cursor in range(1, state["timeline_length"]):
        *frames, state = session.command("step_forward")
        assert state["cursor"] == cursor
        kinds = {f["type"] for f in frames}
        assert len(kinds) == 1
        assert (
            state["phase"]
            == {"forward": "forward", "backward": "backward", "summary": "done"}[kinds.pop()]
        )
        steps.append(frames)

    assert [len(s) for s in steps] == [L * D] * (2 * T) + [1]
    timeline = [f for s in steps for f in s]
    forward = [f for f in timeline if f["type"] == "forward"]
    backward = [f for f in timeline if f["type"] == "backward"]
    every = {(layer, d, t) for layer in range(L) for d in range(D) for t in range(T)}
    assert {(f["layer"], f["direction"], f["position"]) for f in forward} == every
    assert {(f["layer"], f["direction"], f["position"]) for f in backward} == every
    order = Timeline(L, D, T, with_backward=True)  # the one order (test_timeline.py)
    for cursor, frames in enumerate(steps[:-1]):
        for frame in frames:
            where = (frame["layer"], frame["direction"], frame["position"])
            assert order.index_of(frame["type"], *where) == cursor
            assert frame["step"] == cursor % T
        # layers bottom up forward, top down in BPTT; directions in order
        layers = [f["layer"] for f in frames]
        assert layers == sorted(layers, reverse=frames[0]["type"] == "backward")
    # every output is shown once, with its loss
    assert sorted(f["position"] for f in forward if f["output"] is not None) == list(range(T))
    for frame in forward:
        check_forward(frame, ref)
    for frame in backward:
        check_backward(frame, ref)
    summary = timeline[-1]
    close(summary["loss"], ref.loss)
    close(summary["outputs"], ref.outputs)
    for name, grad in ref.grads.items():
        close(summary["grad_norms"][name], np.linalg.norm(grad))

    # the timeline is the stream's frames, in the stream's order
    lines = client.post(
        "/api/v1/trace/stream", json=BIDI, headers={"Accept": "application/x-ndjson"}
    ).text.splitlines()
    streamed = [json.loads(line) for line in lines]
    assert streamed[0]["timeline"] == config["timeline"]
    assert [without_id(f) for f in timeline] == [without_id(f) for f in streamed[1:-1]]

    error = session.error("step_forward")
    assert error["status"] == 409 and error["field"] == "cursor"


def test_step_back_seek_and_run(session):
    *_, state = session.configure(BIDI)
    steps = [session.command("seek", cursor=0)[:-1]]
    steps += [session.command("step_forward")[:-1] for _ in range(8)]
    assert session.error("step_forward")["status"] == 409

    *frames, state = session.command("seek", cursor=5)
    assert [without_id(f) for f in frames] == [without_id(f) for f in steps[5]]
    assert state["cursor"] == 5
    *frames, state = session.command("step_back")
    assert [without_id(f) for f in frames] == [without_id(f) for f in steps[4]]
    assert state["cursor"] == 4

    *frames, state = session.command("seek", cursor=0)
    assert state["phase"] == "forward"
    assert session.error("step_back")["status"] == 409

    *frames, state = session.command("seek", cursor=5)
    assert state["phase"] == "backward"
    *rest, state = session.command("run")
    assert [without_id(f) for f in rest] == [without_id(f) for s in steps[6:] for f in s]
    assert rest[-1]["type"] == "summary"
    assert state["cursor"] == 8 and state["phase"] == "done"
    assert [f["type"] for f in session.command("run")] == ["session"]  # already at the end
    *frames, state = session.command("step_back")
    assert state["cursor"] == 7 and {f["type"] for f in frames} == {"backward"}


def test_forward_only_session_has_no_backward_frames(session):
    body = {k: v for k, v in UNI.items() if k != "targets"}
    state = session.configure(body)[-1]
    assert state["backward_steps"] == 0 and state["timeline_length"] == 6 + 1
    *frames, state = session.command("run")
    assert [f["type"] for f in frames] == ["forward"] * 10 + ["summary"]
    assert frames[-1]["loss"] is None and state["phase"] == "done"


def test_edit_input_changes_states_from_that_position_on(session):
    session.configure(UNI)
    session.command("seek", cursor=4)
    trace, *frames, state = session.command("edit_input", position=2, feature=1, value=-3.0)
    assert trace["type"] == "trace" and trace["cause"] == "edit_input"
    assert trace["edit"] == {"position": 2, "feature": 1, "value": -3.0, "old": 0.6}
    assert state["cursor"] == 4 and state["edits"] == 1

    before = np.array(reference(UNI).hidden)
    inputs = np.array(UNI["inputs"])
    inputs[2, 1] = -3.0
    ref = reference(UNI, inputs=inputs)
    check_trace(trace["trace"], ref)
    after = np.array(trace["trace"]["hidden"])
    np.testing.assert_array_equal(after[:, :, :2], before[:, :, :2])  # earlier: untouched
    assert np.all(np.abs(after[:, :, 2:] - before[:, :, 2:]).max(axis=-1) > 0)
    assert len(frames) == 2  # one per layer
    for frame in frames:  # the frames at the unchanged cursor, recomputed
        check_forward(frame, ref)

    # stepping on walks the edited timeline
    for _ in range(7):  # to the last backward step
        *frames, _ = session.command("step_forward")
        for frame in frames:
            if frame["type"] == "forward":
                check_forward(frame, ref)
            else:
                check_backward(frame, ref)


def test_edit_weight_matches_run_sequence_with_the_edited_params(session):
    params = initial_params(UNI)
    session.configure(UNI)

    trace, *_, state = session.command(
        "edit_weight", name="rnn.weight_hh_l0", index=[4, 1], value=2.5
    )
    assert trace["edit"] == {
        "name": "rnn.weight_hh_l0",
        "index": [4, 1],
        "value": 2.5,
        "old": params["rnn.weight_hh_l0"][4, 1],
    }
    params["rnn.weight_hh_l0"][4, 1] = 2.5
    check_trace(trace["trace"], reference(UNI, params=params))
    # row 4 sits in the update gate's block: its spectrum moves, the others stay
    spectrum = recurrent_spectrum(ModelConfig(**UNI["config"]), params)
    got = {b["gate"]: b["spectral_radius"] for b in trace["trace"]["spectrum"] if b["layer"] == 0}
    assert got == {b.gate: b.spectral_radius for b in spectrum if b.layer == 0}
    before = recurrent_spectrum(ModelConfig(**UNI["config"]), initial_params(UNI))
    moved = {b.gate for b in before if b.layer == 0 and got[b.gate] != b.spectral_radius}
    assert moved == {"update"}

    trace, *frames, state = session.command("edit_weight", name="head.bias", index=[0], value=1)
    params["head.bias"][0] = 1.0
    ref = reference(UNI, params=params)
    check_trace(trace["trace"], ref)
    for frame in frames:
        check_forward(frame, ref)
    assert state["edits"] == 2 and state["cursor"] == 0


def test_reset_restores_the_configured_inputs_and_weights(session):
    original = session.configure(UNI)[1]["trace"]
    session.command("edit_input", position=0, feature=0, value=5.0)
    session.command("edit_weight", name="rnn.weight_ih_l1", index=[0, 0], value=-1.0)
    session.command("seek", cursor=7)
    trace, *frames, state = session.command("reset")
    assert trace["cause"] == "reset" and trace["trace"] == original
    assert state["cursor"] == 0 and state["edits"] == 0
    for frame in frames:
        check_forward(frame, reference(UNI))
    # nothing to undo: no trace frame
    assert [f["type"] for f in session.command("reset")] == ["forward", "forward", "session"]
    # edits after a reset start from the configured values again
    trace = session.command("edit_input", position=1, feature=0, value=0.3)[0]
    assert trace["edit"]["old"] == 0.3 and trace["trace"] == original


def test_save_stores_the_edited_weights_as_a_model(client, session):
    session.configure(UNI)
    session.command("edit_weight", name="rnn.weight_hh_l0", index=[1, 2], value=3.5)
    (state,) = session.command("save")
    assert state["command"] == "save" and state["edits"] == 1
    _, params = client.app.state.store.get(state["model_id"])
    expected = initial_params(UNI)
    expected["rnn.weight_hh_l0"][1, 2] = 3.5
    for name, tensor in expected.items():
        np.testing.assert_array_equal(params[name], tensor)


def test_stored_model_is_edited_on_a_copy(client, session):
    config = ModelConfig(**UNI["config"])
    params = initial_params(UNI)
    model_id = client.app.state.store.put(config, params)
    body = {
        "config": UNI["config"],
        "model_id": model_id,
        "inputs": UNI["inputs"],
        "targets": UNI["targets"],
    }
    original = session.configure(body)[1]["trace"]
    check_trace(original, reference(UNI))
    session.command("edit_weight", name="head.weight", index=[0, 2], value=9.0)
    _, stored = client.app.state.store.get(model_id)
    close(stored["head.weight"], params["head.weight"])
    assert session.command("reset")[0]["trace"] == original


BAD_MESSAGES = [
    ("{", 400, "message"),
    ("[1, 2]", 400, "message"),
    ("", 400, "message"),
    ('{"cursor": 1}', 422, "type"),
    ('{"type": "jump"}', 422, "type"),
    ('{"type": 3}', 422, "type"),
    ('{"type": "seek"}', 422, "cursor"),
    ('{"type": "seek", "cursor": "3"}', 422, "cursor"),
    ('{"type": "seek", "cursor": true}', 422, "cursor"),
    ('{"type": "seek", "cursor": 1.5}', 422, "cursor"),
    ('{"type": "seek", "cursor": 99}', 422, "cursor"),
    ('{"type": "seek", "cursor": -1}', 422, "cursor"),
    ('{"type": "step_back", "by": 2}', 422, "by"),
    ('{"type": "edit_input", "position": 6, "feature": 0, "value": 1}', 422, "position"),
    ('{"type": "edit_input", "position": 0, "feature": 2, "value": 1}', 422, "feature"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": NaN}', 422, "value"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": 1e400}', 422, "value"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": Infinity}', 422, "value"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": "1"}', 422, "value"),
    ('{"type": "edit_input", "position": 0, "feature": 0, "value": true}', 422, "value"),
    ('{"type": "edit_input", "position": 0, "value": 1}', 422, "feature"),
    ('{"type": "edit_weight", "name": "rnn.w", "index": [0, 0], "value": 1}', 422, "name"),
    ('{"type": "edit_weight", "name": "head.bias", "index": [0, 0], "value": 1}', 422, "index"),
    ('{"type": "edit_weight", "name": "head.bias", "index": [1], "value": 1}', 422, "index.0"),
    (
        '{"type": "edit_weight", "name": "rnn.weight_hh_l1", "index": [0, -1], "value": 1}',
        422,
        "index.1",
    ),
    (
        '{"type": "configure", "config": {"hidden_size": 4096}, "inputs": [[1.0]]}',
        422,
        "config.hidden_size",
    ),
    ('{"type": "configure", "config": {}, "inputs": [[1.0, 2.0]]}', 422, "inputs"),
    ('{"type": "configure", "config": {"cell": "tree"}, "inputs": [[1.0]]}', 422, "config.cell"),
    (
        '{"type": "configure", "config": {}, "inputs": [[1.0]], "model_id": "' + "0" * 64 + '"}',
        404,
        "model_id",
    ),
]


@pytest.mark.parametrize(("message", "status", "field"), BAD_MESSAGES)
def test_bad_message_gets_an_error_frame_and_the_session_goes_on(session, message, status, field):
    session.configure(UNI)
    session.command("seek", cursor=3)
    session.ws.send_text(message)
    (error,) = session.answer()
    assert error["type"] == "error"
    assert (error["status"], error["field"]) == (status, field), error
    assert error["detail"].startswith(f"{field}: ") or error["detail"].startswith("message: ")
    # the session is as it was: same configuration, same cursor
    *frames, state = session.command("step_forward")
    assert state["cursor"] == 4 and state["timeline_length"] == 13
    assert [(f["layer"], f["position"]) for f in frames] == [(0, 4), (1, 4)]


def test_out_of_range_detail_names_the_range(session):
    session.configure(UNI)
    error = session.error("edit_input", position=12, feature=0, value=1.0)
    assert error["detail"] == "position: 12 is outside 0..5"


def test_commands_before_configure_are_refused(session):
    for command in ("step_forward", "step_back", "run", "reset"):
        error = session.error(command)
        assert error["status"] == 409 and error["detail"] == f"{command}: send configure first"
    assert session.error("seek", cursor=0)["status"] == 409
    assert session.configure(UNI)[-1]["cursor"] == 0


def test_binary_messages_are_read_as_json(session):
    session.configure(UNI)
    session.ws.send_bytes(b'{"type": "step_forward"}')
    assert session.answer()[-1]["cursor"] == 1
    session.ws.send_bytes(b"\xff\xfe")
    assert session.answer()[0]["status"] == 400


def test_oversize_message_is_refused_and_the_session_goes_on(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, max_ws_message_bytes=600))
    with TestClient(app) as client, client.websocket_connect(URL) as ws:
        session = Session(ws)
        session.configure(UNI)
        big = {**UNI, "inputs": [[0.5, 0.5]] * 100, "targets": [[0.0]] * 100}
        error = session.error("configure", **big)
        assert error["status"] == 413 and error["field"] == "message"
        assert "over the limit of 600 bytes" in error["detail"]
        # the earlier configuration still stands
        assert session.command("run")[-1]["timeline_length"] == 13


def test_flood_of_step_commands(session):
    T = 600
    body = {
        "config": {"cell": "rnn_tanh", "input_size": 1, "hidden_size": 2},
        "inputs": [[np.sin(t / 10)] for t in range(T)],
        "targets": [[0.0]] * T,
    }
    assert session.configure(body)[-1]["timeline_length"] == 2 * T + 1
    for _ in range(1000):
        session.send("step_forward")
    cursors = [session.answer()[-1]["cursor"] for _ in range(1000)]
    assert cursors == list(range(1, 1001))
    # past the end: errors, one per command, and the session stays usable
    for _ in range(300):
        session.send("step_forward")
    answers = [session.answer()[-1] for _ in range(300)]
    assert [a["type"] for a in answers] == ["session"] * 200 + ["error"] * 100
    assert session.command("seek", cursor=5)[-1]["cursor"] == 5


def test_close_command_closes_cleanly(session):
    session.configure(UNI)
    session.send("close")
    with pytest.raises(WebSocketDisconnect) as info:
        session.ws.receive_text()
    assert info.value.code == 1000


def test_disconnect_mid_session_logs_nothing(client, caplog):
    with caplog.at_level(logging.WARNING), client.websocket_connect(URL) as ws:
        session = Session(ws)
        session.configure(BIDI)
        session.send("run")
        session.send("edit_input", position=0, feature=0, value=1.0)
    with client.websocket_connect(URL) as ws:  # the server still serves new sessions
        assert Session(ws).configure(UNI)[-1]["cursor"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("output_mode", ["last", "final"])
def test_classification_in_last_mode_runs_to_the_end(session, output_mode):
    body = {
        "config": {
            "cell": "lstm",
            "input_size": 1,
            "hidden_size": 2,
            "output_size": 3,
            "head": "classification",
            "output_mode": output_mode,
            "bidirectional": True,
        },
        "inputs": [[0.5], [-0.5], [1.0]],
        "targets": 2,
    }
    ref = reference(body)
    session.configure(body)
    *frames, state = session.command("run")
    assert state["phase"] == "done" and state["timeline_length"] == 7
    forward = [f for f in frames if f["type"] == "forward"]  # steps 1 and 2, both directions
    assert [f["output"] is not None for f in forward] == [False, False, True, False]
    for frame in forward:
        check_forward_last(frame, ref)
    close(frames[-1]["loss"], ref.loss)


def check_forward_last(frame, ref):
    """In last and final modes the output (logits) is known once, at the final step."""
    if frame["type"] == "forward" and frame["output"] is not None:
        close(frame["output"], ref.outputs)
        # a class index is a number, not a one-element list
        assert frame["target"] == 2.0 and not isinstance(frame["target"], list)


def test_a_server_fault_is_an_error_frame_and_the_session_goes_on(session, monkeypatch, caplog):
    session.configure(UNI)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(session_module, "forward_trace", broken)
    with caplog.at_level(logging.ERROR):
        error = session.error("edit_input", position=0, feature=0, value=1.0)
    assert (error["status"], error["detail"]) == (500, "internal error")
    assert "boom" in caplog.text  # logged for the operator, not sent to the client
    *frames, state = session.command("step_forward")
    assert state["cursor"] == 1 and state["edits"] == 0
    for frame in frames:
        check_forward(frame, reference(UNI))
