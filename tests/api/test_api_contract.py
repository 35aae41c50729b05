"""The API's contract details (issue 12): the gradient verdict in every trace answer."""

from __future__ import annotations

import numpy as np
import pytest

from app.api.schemas import TraceOut
from app.rnn import ModelConfig, init_params, run_sequence

RELU_100 = {
    "config": {"cell": "rnn_relu", "input_size": 1, "hidden_size": 4},
    "init": {"scheme": "identity", "scale": 100.0, "seed": 0},
    "inputs": [[1.0]] * 200,
    "targets": [[0.0]] * 200,
}


def test_trace_answer_carries_the_verdict(client):
    r = client.post("/api/v1/trace", json=RELU_100)
    assert r.status_code == 200, r.text
    body = r.json()
    TraceOut.model_validate(body)
    verdict = body["verdict"]
    assert verdict["verdict"] == "overflowed"
    assert "ReLU overflow" in verdict["reason"]
    assert verdict["layers"][0]["spectral_radius"] == 100.0


def test_truncated_trace_verdict_says_truncation_stops_it(client):
    body = {
        "config": {"cell": "gru", "input_size": 1, "hidden_size": 3},
        "inputs": [[0.1 * t] for t in range(12)],
        "targets": [[0.0]] * 12,
        "truncate": 3,
    }
    verdict = client.post("/api/v1/trace", json=body).json()["verdict"]
    assert verdict["truncated"] and verdict["steps"] == 3 and verdict["truncate"] == 3
    assert verdict["surviving_to_start"] == 0.0
    assert "truncation, not decay" in verdict["reason"]


def assert_error_shape(response, status: int, field: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field and body["detail"].startswith(f"{field}: "), body
    return body


def test_unknown_path_answers_the_error_shape(client):
    body = assert_error_shape(client.get("/api/v1/no-such-thing"), 404, "path")
    assert "/api/v1/no-such-thing" in body["detail"]
    assert_error_shape(client.get("/vendor/swagger/missing.js"), 404, "path")


def test_wrong_method_answers_the_error_shape_and_allow(client):
    r = client.get("/api/v1/trace")
    body = assert_error_shape(r, 405, "method")
    assert "GET" in body["detail"] and "POST" in body["detail"]
    assert r.headers["allow"] == "POST"
    assert_error_shape(client.delete("/healthz"), 405, "method")


def test_body_parse_errors_answer_the_error_shape(client):
    headers = {"content-type": "application/json"}
    body = assert_error_shape(
        client.post("/api/v1/trace", content=b"{bad", headers=headers), 422, "body"
    )
    assert "malformed JSON" in body["detail"]
    assert body["errors"] == [{"field": "body", "reason": body["detail"].removeprefix("body: ")}]
    assert_error_shape(client.post("/api/v1/trace", content=b"[1]", headers=headers), 422, "body")
    assert_error_shape(client.post("/api/v1/trace", content=b"", headers=headers), 422, "body")


def test_validation_errors_list_every_problem(client):
    bad = {"config": {"hidden_size": 0}, "inputs": "x"}
    body = assert_error_shape(client.post("/api/v1/trace", json=bad), 422, "config.hidden_size")
    fields = [item["field"] for item in body["errors"]]
    assert fields == ["config.hidden_size", "inputs"]
    assert all(item["reason"] for item in body["errors"])


def test_error_out_documents_the_errors_array(client):
    spec = client.get("/openapi.json").json()
    error = spec["components"]["schemas"]["ErrorOut"]
    assert set(error["properties"]) == {"detail", "field", "errors"}
    item = spec["components"]["schemas"]["ErrorItemOut"]
    assert set(item["properties"]) == {"field", "reason", "line"}  # line: a CSV upload's
    assert error["examples"][0]["errors"]


# ---------------------------------------------------------------- model_id without config
STORED = ModelConfig(cell="gru", input_size=2, hidden_size=3, num_layers=2)


@pytest.fixture
def model_id(client):
    return client.app.state.store.put(STORED, init_params(STORED, seed=7))


def _by_id(model_id, **more):
    inputs = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]
    return {"model_id": model_id, "inputs": inputs, "targets": [[0.0]] * 3, **more}


def test_trace_with_model_id_needs_no_config(client, model_id):
    r = client.post("/api/v1/trace", json=_by_id(model_id))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["config"]["cell"] == "gru" and got["config"]["num_layers"] == 2
    ref = run_sequence(
        STORED,
        init_params(STORED, seed=7),
        _by_id(model_id)["inputs"],
        np.zeros((3, 1)),
        jacobians=True,
    )
    assert got["loss"] == pytest.approx(ref.loss, rel=1e-12)
    config = {"cell": "gru", "input_size": 2, "hidden_size": 3, "num_layers": 2}
    same = client.post("/api/v1/trace", json=_by_id(model_id, config=config))
    assert same.status_code == 200 and same.json()["loss"] == got["loss"]


def test_a_config_given_with_model_id_must_still_match(client, model_id):
    config = {"cell": "gru", "input_size": 2, "hidden_size": 4, "num_layers": 2}
    r = client.post("/api/v1/trace", json=_by_id(model_id, config=config))
    assert_error_shape(r, 422, "config")


def test_no_config_and_no_model_id_names_config(client):
    r = client.post("/api/v1/trace", json={"inputs": [[0.0]]})
    body = assert_error_shape(r, 422, "config")
    assert "model_id" in body["detail"]


def test_model_id_without_config_unknown_is_404(client):
    r = client.post("/api/v1/trace", json=_by_id("e" * 64))
    assert_error_shape(r, 404, "model_id")
    r = client.post("/api/v1/estimate/trace", json=_by_id("e" * 64))
    assert_error_shape(r, 404, "model_id")


def test_stream_estimate_inspect_and_horizon_take_model_id_without_config(client, model_id):
    stream = client.post("/api/v1/trace/stream", json=_by_id(model_id))
    assert stream.status_code == 200 and '"gru"' in stream.text
    estimate = client.post("/api/v1/estimate/trace", json=_by_id(model_id))
    assert estimate.status_code == 200, estimate.text
    step = {**_by_id(model_id), "layer": 1, "position": 1}
    inspect = client.post("/api/v1/inspect", json=step)
    assert inspect.status_code == 200, inspect.text
    horizon = client.post("/api/v1/horizon", json=step)
    assert horizon.status_code == 200, horizon.text
    assert horizon.json()["config"]["num_layers"] == 2
    with client.websocket_connect("/api/v1/session") as ws:
        ws.send_json({"type": "configure", **_by_id(model_id)})
        frame = ws.receive_json()
        assert frame["type"] == "config" and frame["config"]["cell"] == "gru", frame


# ---------------------------------------------------------------- task parameters
TRAIN = {
    "config": {"cell": "rnn_tanh", "hidden_size": 2},
    "batch_size": 2,
    "steps": 2,
    "probe_every": 2,
    "store": False,
}


def test_training_takes_task_parameters_nested_as_sampling_does(client):
    nested = {**TRAIN, "task": {"name": "sine", "params": {"length": 7}}}
    inline = {**TRAIN, "task": {"name": "sine", "length": 7}}  # deprecated, still read
    a = client.post("/api/v1/estimate/train", json=nested)
    b = client.post("/api/v1/estimate/train", json=inline)
    assert a.status_code == 200, a.text
    assert a.json() == b.json()
    shorter = client.post("/api/v1/estimate/train", json={**nested, "task": {"name": "sine"}})
    assert shorter.json() != a.json()  # the length was read from params
    sample = client.post("/api/v1/tasks/sine/sample", json={"params": {"length": 7}})
    assert len(sample.json()["inputs"][0]) == 7
    stream = client.post("/api/v1/train/stream", json=nested)
    assert stream.status_code == 200 and "event: done" in stream.text, stream.text[-300:]


def test_task_parameters_nested_and_inline_at_once_is_a_422(client):
    mixed = {**TRAIN, "task": {"name": "sine", "length": 7, "params": {"length": 9}}}
    body = assert_error_shape(client.post("/api/v1/estimate/train", json=mixed), 422, "task.params")
    assert "deprecated" in body["detail"]


def test_forecast_takes_task_parameters_nested_too(client):
    nested = {"task": {"name": "sine", "params": {"length": 8}}, "size": 5}
    inline = {"task": {"name": "sine", "length": 8}, "size": 5}
    a = client.post("/api/v1/forecast/score", json=nested)
    assert a.status_code == 200, a.text
    assert a.json() == client.post("/api/v1/forecast/score", json=inline).json()


def test_openapi_examples_nest_task_parameters_the_same_way(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["TrainRequest"]["examples"][0]["task"] == {
        "name": "adding",
        "params": {"length": 50},
    }
    assert "params" in schemas["SampleRequest"]["examples"][0]
    assert "params" in schemas["HorizonRequest"]["examples"][0]["task"]
    assert "params" in schemas["TaskIn"]["properties"]
    assert "Deprecated" in schemas["TaskIn"]["description"]
