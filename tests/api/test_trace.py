"""POST /api/v1/trace and /trace/stream, checked against run_sequence frame by frame."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import inputs as inputs_module
from app.api import trace as trace_module
from app.api.frames import FRAME_ADAPTER
from app.api.timeline import Timeline
from app.main import create_app
from app.rnn import ModelConfig, init_params, run_sequence
from app.settings import Settings
from tests.api.bodies import BIDI_LSTM, reference_trace

BODY = {**BIDI_LSTM, "truncate": None}


def reference(body=BODY):
    return reference_trace(body)


def close(a, b):
    np.testing.assert_allclose(
        np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-15
    )


def test_trace_matches_run_sequence(client):
    r = client.post("/api/v1/trace", json=BODY)
    assert r.status_code == 200, r.text
    got, ref = r.json(), reference()
    for field in (
        "outputs",
        "hidden",
        "cell",
        "grad_hidden",
        "grad_cell",
        "grad_inputs",
        "grad_step_norms",
        "jacobian_norm",
        "jacobian_product_norm",
        "loss_per_step",
    ):
        close(got[field], getattr(ref, field))
    assert got["loss"] == ref.loss
    for name, value in ref.grads.items():
        close(got["grads"][name], value)
    for name, value in ref.gates.items():
        close(got["gates"][name], value)
    assert got["finite"] is True
    assert len(got["spectrum"]) == 2 * 2 * 4


def test_trace_npz_download(client):
    r = client.post("/api/v1/trace?format=npz", json=BODY)
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    data = np.load(io.BytesIO(r.content), allow_pickle=False)
    ref = reference()
    close(data["hidden"], ref.hidden)
    close(data["grads.rnn.weight_hh_l1_reverse"], ref.grads["rnn.weight_hh_l1_reverse"])
    assert json.loads(str(data["config_json"]))["cell"] == "lstm"


def test_overflow_is_null_not_invalid_json(client):
    body = {
        "config": {"cell": "rnn_relu", "input_size": 1, "hidden_size": 4},
        "init": {"scheme": "identity", "scale": 50.0, "seed": 0},
        "inputs": [[5.0]] * 300,
        "targets": [[0.0]] * 300,
    }
    r = client.post("/api/v1/trace", json=body)
    assert r.status_code == 200
    got = json.loads(r.text)  # strict JSON: no NaN or Infinity tokens
    assert got["finite"] is False
    assert any(v is None for row in got["hidden"][0][0] for v in row)


def test_forward_only(client):
    body = {k: v for k, v in BODY.items() if k != "targets"}
    got = client.post("/api/v1/trace", json=body).json()
    assert got["loss"] is None and got["grads"] is None and got["grad_hidden"] is None
    close(got["hidden"], reference(body).hidden)


def test_explicit_params(client):
    config = ModelConfig(cell="gru", input_size=1, hidden_size=2)
    params = init_params(config, seed=9)
    body = {
        "config": config.to_dict(),
        "params": {k: v.tolist() for k, v in params.items()},
        "inputs": [[1.0], [2.0]],
        "targets": [[0.0], [1.0]],
    }
    got = client.post("/api/v1/trace", json=body).json()
    ref = run_sequence(config, params, [[1.0], [2.0]], [[0.0], [1.0]])
    close(got["grads"]["rnn.weight_hh_l0"], ref.grads["rnn.weight_hh_l0"])


def parse_sse(text):
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        events.append((fields["event"], int(fields["id"]), json.loads(fields["data"])))
    return events


@pytest.mark.parametrize("fmt", ["sse", "ndjson"])
def test_stream_frames_match_run_sequence(client, fmt):
    headers = {"accept": "application/x-ndjson"} if fmt == "ndjson" else {}
    r = client.post("/api/v1/trace/stream", json=BODY, headers=headers)
    assert r.status_code == 200
    if fmt == "sse":
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.text)
        assert all(name == frame["type"] and i == frame["id"] for name, i, frame in events)
        frames = [frame for _, _, frame in events]
    else:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        frames = [json.loads(line) for line in r.text.splitlines()]
    for frame in frames:
        FRAME_ADAPTER.validate_python(frame)
    assert [f["id"] for f in frames] == list(range(len(frames)))
    ref = reference()
    L, D, T = 2, 2, 4
    types = [f["type"] for f in frames]
    assert types == ["config"] + ["forward"] * (L * D * T) + ["backward"] * (L * D * T) + [
        "summary",
        "done",
    ]

    forward = frames[1 : 1 + L * D * T]
    # the frames follow the one timeline (app/api/timeline.py, tested in test_timeline.py)
    timeline = Timeline(L, D, T, with_backward=True)
    assert frames[0]["timeline"] == timeline.describe()
    expected_order = [entry for index in range(T) for entry in timeline.entries(index)]
    assert [(f["layer"], f["direction"], f["position"]) for f in forward] == expected_order
    for f in forward:
        layer, d, t = f["layer"], f["direction"], f["position"]
        close(f["hidden"], ref.hidden[layer, d, t])
        close(f["cell"], ref.cell[layer, d, t])
        close(f["gates"]["forget"], ref.gates["forget"][layer, d, t])
        expected_input = (
            BODY["inputs"][t] if layer == 0 else ref.hidden[layer - 1, :, t].reshape(-1)
        )
        close(f["input"], expected_input)
        if f["output"] is not None:  # once both top-layer directions have shown t
            assert layer == L - 1 and f["step"] == timeline.output_step(t)
            close(f["output"], ref.outputs[t])
            assert f["loss"] == pytest.approx(ref.loss_per_step[t], rel=1e-12)
        else:
            assert f["loss"] is None
    assert sorted(f["position"] for f in forward if f["output"] is not None) == list(range(T))

    backward = frames[1 + L * D * T : 1 + 2 * L * D * T]
    expected_back = [entry for index in range(T, 2 * T) for entry in timeline.entries(index)]
    assert [(f["layer"], f["direction"], f["position"]) for f in backward] == expected_back
    for f in backward:
        layer, d, t = f["layer"], f["direction"], f["position"]
        close(f["grad_hidden"], ref.grad_hidden[layer, d, t])
        close(f["grad_cell"], ref.grad_cell[layer, d, t])
        assert f["grad_step_norm"] == pytest.approx(ref.grad_step_norms[layer, d, t], rel=1e-12)
        assert f["jacobian_product_norm"] == pytest.approx(
            ref.jacobian_product_norm[layer, d, t], rel=1e-12
        )

    summary, done = frames[-2], frames[-1]
    assert summary["loss"] == pytest.approx(ref.loss, rel=1e-14)
    assert done["events"] == len(frames)


def test_final_mode_streams_its_one_output_once_the_top_layer_has_run(client):
    """final reads h_n (forward at T-1, reverse at 0): one output, at forward step T-1."""
    config = {**BODY["config"], "output_mode": "final"}
    body = {**BODY, "config": config, "targets": [0.5, -0.5]}
    ref = reference(body)
    r = client.post("/api/v1/trace", json=body)
    assert r.status_code == 200, r.text
    close(r.json()["outputs"], ref.outputs)
    close(r.json()["grads"]["head.weight"], ref.grads["head.weight"])
    frames = [
        json.loads(line)
        for line in client.post(
            "/api/v1/trace/stream", json=body, headers={"accept": "application/x-ndjson"}
        ).text.splitlines()
    ]
    for frame in frames:
        FRAME_ADAPTER.validate_python(frame)
    with_output = [f for f in frames if f["type"] == "forward" and f["output"] is not None]
    assert [(f["layer"], f["direction"], f["position"], f["step"]) for f in with_output] == [
        (1, 0, 3, 3)
    ]
    close(with_output[0]["output"], ref.outputs)
    close(with_output[0]["target"], [0.5, -0.5])
    assert with_output[0]["loss"] == pytest.approx(ref.loss, rel=1e-12)
    last = reference({**body, "config": {**config, "output_mode": "last"}})
    assert not np.allclose(ref.outputs, last.outputs)  # the reverse half reads position 0


def test_stream_rejects_bad_body_before_streaming(client):
    r = client.post("/api/v1/trace/stream", json={**BODY, "inputs": [[1.0]]})
    assert r.status_code == 422
    assert r.json()["field"] == "inputs"


def test_first_event_leaves_before_the_trace_is_computed(monkeypatch, settings):
    """The config frame reaches the client while the computation is held back."""
    release = threading.Event()
    real = trace_module.forward_trace

    def held(*args, **kwargs):
        if not release.wait(timeout=20):
            raise AssertionError("the config frame never reached the client")
        return real(*args, **kwargs)

    monkeypatch.setattr(trace_module, "forward_trace", held)
    with (
        TestClient(create_app(settings)) as client,
        client.stream(
            "POST", "/api/v1/trace/stream", json=BODY, headers={"accept": "application/x-ndjson"}
        ) as r,
    ):
        lines = r.iter_lines()
        first = json.loads(next(lines))
        assert first["type"] == "config"
        release.set()
        rest = [json.loads(line) for line in lines if line]
    assert rest[-1]["type"] == "done"


def test_healthz_answers_while_a_long_computation_runs(monkeypatch, tmp_path):
    """One heavy request must not stall the event loop (a semantic check, not a timing)."""
    started, release = threading.Event(), threading.Event()
    real = inputs_module.run_sequence

    def slow(*args, **kwargs):
        started.set()
        release.wait(timeout=30)
        return real(*args, **kwargs)

    monkeypatch.setattr(inputs_module, "run_sequence", slow)
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        result = {}
        worker = threading.Thread(
            target=lambda: result.update(r=client.post("/api/v1/trace", json=BODY))
        )
        worker.start()
        assert started.wait(timeout=20)
        t0 = time.monotonic()
        assert client.get("/healthz").status_code == 200  # answered while the trace is held
        assert time.monotonic() - t0 < 10
        assert worker.is_alive()
        release.set()
        worker.join(timeout=30)
    assert result["r"].status_code == 200


@pytest.mark.parametrize(
    ("patch", "status", "field"),
    [
        ({"config": {**BODY["config"], "hidden_size": 10_000}}, 422, "config.hidden_size"),
        ({"config": {**BODY["config"], "num_layers": 50}}, 422, "config.num_layers"),
        ({"config": {**BODY["config"], "cell": "transformer"}}, 422, "config.cell"),
        ({"config": {**BODY["config"], "dropout": 0.5}}, 422, "config.dropout"),
        ({"inputs": [[0.0, 0.0]] * 5000, "targets": None}, 422, "inputs"),
        ({"inputs": [[0.0]] * 4}, 422, "inputs"),
        ({"targets": [[0.0]] * 4}, 422, "targets"),
        ({"truncate": 0}, 422, "truncate"),
        ({"init": {"scheme": "he"}}, 422, "init.scheme"),
        ({"init": {"scale": -1}}, 422, "init.scale"),
        ({"params": {"rnn.weight_ih_l0": [[1.0]]}}, 422, "params"),
        ({"model_id": "../../etc/passwd"}, 422, "model_id"),
        ({"model_id": "0" * 64}, 404, "model_id"),
        ({"jacobians": "yes"}, 422, "jacobians"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, patch, status, field):
    r = client.post("/api/v1/trace", json={**BODY, **patch})
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field
    assert body["detail"].startswith(field)


def test_malformed_and_oversized_bodies(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, max_body_bytes=2000))) as client:
        r = client.post(
            "/api/v1/trace", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["field"] == "body"
        r = client.post("/api/v1/trace", json={**BODY, "inputs": [[0.5, 0.5]] * 400})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_cells_and_limits(client):
    cells = client.get("/api/v1/cells").json()
    assert [c["name"] for c in cells] == ["rnn_tanh", "rnn_relu", "lstm", "gru"]
    assert all(len(c["description"]) > 80 for c in cells)
    limits = client.get("/api/v1/limits").json()
    assert limits["max_hidden_size"] == 128


def test_openapi_documents_every_endpoint_with_examples(client):
    spec = client.get("/openapi.json").json()
    assert "/api/v1/trace" in spec["paths"] and "/api/v1/trace/stream" in spec["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("chunk", [1, 5, 1 << 16])
def test_big_answers_are_encoded_in_pieces_byte_for_byte(monkeypatch, chunk):
    """The trace JSON is written in pieces (the GIL is let go between them), identically."""
    from app.api import encoding
    from app.rnn import recurrent_spectrum

    ref = reference()
    body = encoding.trace_to_dict(ref, recurrent_spectrum(ref.config, initial_params()))
    body["extra"] = {"nan": np.full((3, 4, 2), np.nan), 7: [1, 2]}
    monkeypatch.setattr(encoding, "CHUNK_NUMBERS", chunk)
    assert encoding.dumps_chunked(body) == encoding.dumps(body)


def initial_params():
    config = ModelConfig(**BODY["config"])
    return init_params(config, seed=BODY["init"]["seed"])


def test_a_big_answer_is_sent_in_pieces_with_its_length(client, monkeypatch):
    from app.api import encoding

    whole = client.post("/api/v1/trace", json=BODY).content
    monkeypatch.setattr(encoding, "SEND_BYTES", 1000)
    r = client.post("/api/v1/trace", json=BODY)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(whole) > 1000
    assert r.content == whole
    npz = client.post("/api/v1/trace?format=npz", json=BODY)
    assert "attachment" in npz.headers["content-disposition"]
    assert np.load(io.BytesIO(npz.content), allow_pickle=False)["hidden"].shape == (2, 2, 4, 3)


def test_the_stream_runs_each_stage_once_diagnostics_after_the_gradients(client, monkeypatch):
    calls = []
    for name in ("forward_trace", "backward_trace", "diagnose_trace"):
        real = getattr(trace_module, name)

        def recorded(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(trace_module, name, recorded)
    r = client.post("/api/v1/trace/stream", json=BODY, headers={"accept": "application/x-ndjson"})
    frames = [json.loads(line) for line in r.text.splitlines()]
    assert frames[-1]["type"] == "done"
    assert calls == ["forward_trace", "backward_trace", "diagnose_trace"]
    backward = [f for f in frames if f["type"] == "backward"]
    assert backward and all(f["jacobian_norm"] is not None for f in backward)
