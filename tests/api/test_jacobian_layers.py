"""Jacobian norms for chosen layers only: `jacobians: [1]` diagnoses layer 1 and no other."""

from __future__ import annotations

import json

import numpy as np

BODY = {
    "config": {"cell": "gru", "input_size": 1, "hidden_size": 4, "num_layers": 3},
    "init": {"scheme": "orthogonal", "scale": 1.2, "seed": 3},
    "inputs": [[0.1], [-0.4], [0.7], [0.2], [-0.3]],
    "targets": [[0.0], [0.5], [1.0], [0.5], [0.0]],
}


def test_only_the_chosen_layers_are_diagnosed_and_match_the_full_run(client):
    full = client.post("/api/v1/trace", json=BODY).json()
    chosen = client.post("/api/v1/trace", json={**BODY, "jacobians": [1]})
    assert chosen.status_code == 200, chosen.text
    part = chosen.json()
    for name in ("jacobian_norm", "jacobian_product_norm"):
        norms = part[name]
        assert all(v is None for v in np.ravel(norms[0])), name  # layer 0 not diagnosed
        assert all(v is None for v in np.ravel(norms[2])), name
        assert np.allclose(norms[1], full[name][1], rtol=1e-12, atol=0), name
    assert part["grad_hidden"] == full["grad_hidden"]  # the rest of the trace is unchanged
    assert part["finite"] is True  # not diagnosing a layer is not an overflow


def test_a_layer_outside_the_network_is_a_422_naming_jacobians(client):
    answer = client.post("/api/v1/trace", json={**BODY, "jacobians": [0, 3]})
    assert answer.status_code == 422
    assert answer.json()["field"] == "jacobians"
    assert "3 is outside 0..2" in answer.json()["detail"]


def test_fewer_layers_are_estimated_cheaper(client):
    def seconds(jacobians):
        answer = client.post("/api/v1/estimate/trace", json={**BODY, "jacobians": jacobians})
        assert answer.status_code == 200, answer.text
        return answer.json()["seconds"]

    assert seconds([]) <= seconds([2]) < seconds(True)


def test_the_stream_diagnoses_only_the_chosen_layers(client):
    headers = {"Accept": "application/x-ndjson"}
    with client.stream(
        "POST", "/api/v1/trace/stream", json={**BODY, "jacobians": [2]}, headers=headers
    ) as response:
        assert response.status_code == 200
        frames = [json.loads(line) for line in response.iter_lines() if line]
    backward = [f for f in frames if f["type"] == "backward"]
    assert backward
    for frame in backward:
        # one frame per layer-direction at each step, or the per-position frame of old
        rows = frame.get("frames") or [frame]
        for row in rows:
            norm = row.get("jacobian_norm")
            if row.get("layer") == 2:
                assert norm is not None
            else:
                assert norm is None
