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
