"""The API's contract details (issue 12): the gradient verdict in every trace answer."""

from __future__ import annotations

from app.api.schemas import TraceOut

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
    assert set(item["properties"]) == {"field", "reason"}
    assert error["examples"][0]["errors"]
