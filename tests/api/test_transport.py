"""The binary transport (app/api/transport.py) and the session's answer options: binary
trace frames, progressive answers, parameter gradients only when asked, and cancel."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from app.api import transport
from app.api.frames import FRAME_ADAPTER
from app.rnn import ModelConfig, init_params, recurrent_spectrum
from app.rnn.verdict import gradient_verdict
from tests.api.bodies import BIDI_LSTM, reference_trace

URL = "/api/v1/session"


def test_round_trip_keeps_values_shapes_and_non_finite_numbers():
    hidden = np.array([[1.5, np.nan, -2.0], [np.inf, -np.inf, 3e-30]])
    frame = {
        "type": "trace",
        "trace": {"hidden": hidden, "gates": {"input": np.array([0.1, 0.9, np.nan])}},
        "n": 3,
        "labels": [1, 2],
    }
    message = transport.encode(frame)
    assert message[:4] == b"UNRL" and message[4] == transport.VERSION
    (size,) = struct.unpack_from("<I", message, 8)
    header = json.loads(message[12 : 12 + size])
    assert (12 + size) % 8 == 0
    assert [a["dtype"] for a in header["arrays"]] == ["f4", "f2"]
    assert [a["nonfinite"] for a in header["arrays"]] == [3, 1]
    assert all(a["offset"] % 8 == 0 for a in header["arrays"])
    back = transport.decode(message)
    assert back["n"] == 3 and back["labels"] == [1, 2]
    np.testing.assert_array_equal(back["trace"]["hidden"], hidden.astype(np.float32))
    gates = back["trace"]["gates"]["input"]
    assert np.isnan(gates[2]) and np.allclose(gates[:2], [0.1, 0.9], atol=1e-3)


def test_a_foreign_message_is_refused():
    with pytest.raises(ValueError, match="not an Unroll binary frame"):
        transport.decode(b"JSON{}")


def answer(ws):
    """Frames up to the session or error frame ending an answer; binary ones decoded."""
    frames = []
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            frame = transport.decode(message["bytes"])
            frame["binary"] = True
        else:
            frame = json.loads(message["text"])
        frames.append(frame)
        if frame["type"] in ("session", "error"):
            return frames


def test_binary_progressive_session_without_the_gradients_left_out(client):
    ref = reference_trace(BIDI_LSTM)
    with client.websocket_connect(URL) as ws:
        omit = ["grads", "grad_cell"]
        body = {**BIDI_LSTM, "encoding": "binary", "progressive": True, "omit": omit}
        ws.send_text(json.dumps({"type": "configure", **body}))
        frames = answer(ws)
    kinds = [f["type"] for f in frames]
    assert kinds == [
        *["stage", "config", "trace"],  # the forward pass: the page's first picture
        *["stage", "gradients"],  # BPTT
        *["stage", "diagnostics"],  # Jacobian norms and spectrum
        *["forward"] * 4,
        "session",
    ]
    binary = [f.get("binary", False) for f in frames]
    assert binary == [False, False, True, False, True, False, True] + [False] * 5
    trace, gradients, diagnostics = frames[2]["trace"], frames[4], frames[6]
    assert trace["grad_hidden"] is None and trace["timeline"]["length"] == 2 * 4 + 1
    trace = {**trace, **{k: v for k, v in gradients.items() if k.startswith("grad")}}
    # float32 on the wire: as close as float32 rounding allows
    np.testing.assert_allclose(trace["hidden"], ref.hidden, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(trace["grad_hidden"], ref.grad_hidden, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(trace["gates"]["forget"], ref.gates["forget"], atol=1e-3)
    assert trace["grads"] is None and trace["grad_cell"] is None
    # the diagnostics come after the picture: Jacobian norms and spectrum
    assert trace["jacobian_norm"] is None and trace["spectrum"] == [] == frames[1]["spectrum"]
    assert len(diagnostics["spectrum"]) == 2 * 2 * 4  # L*D blocks of 4 LSTM gates
    np.testing.assert_allclose(
        diagnostics["jacobian_product_norm"], ref.jacobian_product_norm, rtol=1e-6
    )
    for frame in frames:
        if not frame.get("binary"):
            FRAME_ADAPTER.validate_python(frame)
    assert frames[-1]["jacobians"] is True
    # the verdict: BPTT's first, then the final one with the Jacobian norms and spectrum
    config = ModelConfig(**BIDI_LSTM["config"])
    params = init_params(config, seed=BIDI_LSTM["init"]["seed"])
    final = gradient_verdict(ref, recurrent_spectrum(config, params))
    assert gradients["verdict"]["source"] != "jacobian_product"
    assert diagnostics["verdict"]["verdict"] == final["verdict"]
    assert diagnostics["verdict"]["source"] == final["source"] == "jacobian_product"
    np.testing.assert_allclose(diagnostics["verdict"]["rate"], final["rate"], rtol=1e-6)


def test_json_session_keeps_its_answer_and_the_parameter_gradients(client):
    with client.websocket_connect(URL) as ws:
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        frames = answer(ws)
    assert [f["type"] for f in frames][:2] == ["config", "trace"]
    assert frames[1]["trace"]["grads"] is not None
    assert frames[1]["trace"]["jacobian_norm"] is not None


def test_cancel_before_configure_and_after(client):
    with client.websocket_connect(URL) as ws:
        ws.send_text(json.dumps({"type": "cancel"}))
        (error,) = answer(ws)
        assert error["status"] == 409 and error["detail"] == "cancel: send configure first"
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        answer(ws)
        ws.send_text(json.dumps({"type": "cancel"}))  # nothing running: the session stands
        (state,) = answer(ws)
        assert state["type"] == "session" and state["command"] == "cancel"


def test_cancel_stops_a_running_configure(client, monkeypatch):
    from app.api import session as session_module
    from tests.api.test_cancel import Blocker

    blocker = Blocker()
    monkeypatch.setattr(session_module, "forward_trace", blocker)
    with client.websocket_connect(URL) as ws:
        ws.send_text(json.dumps({"type": "configure", **BIDI_LSTM}))
        assert blocker.started.wait(20)
        ws.send_text(json.dumps({"type": "cancel"}))
        assert blocker.saw_cancel.wait(20)
        blocker.release.set()
        (error,) = answer(ws)
        assert error["status"] == 409 and error["detail"] == "configure: cancelled by cancel"
        (refused,) = answer(ws)  # the cancel itself: no session was ever configured
        assert refused["status"] == 409


def test_values_float32_cannot_hold_go_as_float64():
    tiny, huge = np.array([1e-50, 0.5, 0.0]), np.array([1e300, np.inf, 1.0])
    usual = np.array([1e-30, 3.0e38, np.nan])
    message = transport.encode({"type": "trace", "a": tiny, "b": huge, "c": usual})
    (size,) = struct.unpack_from("<I", message, 8)
    header = json.loads(message[12 : 12 + size])
    assert [a["dtype"] for a in header["arrays"]] == ["f8", "f8", "f4"]
    back = transport.decode(message)
    np.testing.assert_array_equal(back["a"], tiny)
    np.testing.assert_array_equal(back["b"], huge)
