"""POST /api/v1/train/stream with memoryless: W_hh held at zero, so each output sees only
its own input; gated cells are refused by name."""

from __future__ import annotations

import json

import numpy as np

BODY = {
    "config": {"cell": "rnn_tanh", "hidden_size": 4},
    "task": {"name": "sine", "length": 8},
    "batch_size": 4,
    "steps": 3,
    "seed": 1,
    "probe_every": 100,
    "memoryless": True,
}


def frames(client, body):
    r = client.post("/api/v1/train/stream", json=body, headers={"accept": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_memoryless_training_stores_weights_without_memory(client):
    done = frames(client, BODY)[-1]
    assert done["type"] == "done" and done["steps"] == 3
    config, params = client.app.state.store.get(done["model_id"])
    assert config.cell == "rnn_tanh"
    assert np.all(params["rnn.weight_hh_l0"] == 0)
    assert np.any(params["rnn.weight_ih_l0"] != 0)
    # the same request without memoryless learns a recurrent matrix
    plain = frames(client, {**BODY, "memoryless": False})[-1]
    _, plain_params = client.app.state.store.get(plain["model_id"])
    assert np.any(plain_params["rnn.weight_hh_l0"] != 0)


def test_memoryless_refuses_gated_cells_by_name(client):
    for cell in ("lstm", "gru"):
        body = {**BODY, "config": {"cell": cell, "hidden_size": 4}}
        r = client.post("/api/v1/train/stream", json=body)
        assert r.status_code == 422
        assert r.json()["field"] == "memoryless"
        assert r.json()["detail"].startswith("memoryless: needs an Elman cell")


def test_memoryless_must_be_a_boolean(client):
    r = client.post("/api/v1/train/stream", json={**BODY, "memoryless": "yes"})
    assert r.status_code == 422 and r.json()["field"] == "memoryless"
