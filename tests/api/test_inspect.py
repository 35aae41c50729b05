"""POST /api/v1/inspect and /api/v1/horizon: one step's terms and the gradient horizon,
answering the same numbers as POST /trace for the same body."""

from __future__ import annotations

import numpy as np

BODY = {
    "config": {"cell": "lstm", "input_size": 1, "hidden_size": 3, "num_layers": 2},
    "init": {"scheme": "pytorch", "scale": 1.0, "seed": 4},
    "inputs": [[0.0], [0.5], [1.0], [-0.5], [0.25]],
    "targets": [[0.5], [1.0], [0.5], [0.0], [0.3]],
}


def test_inspect_answers_the_traces_numbers(client):
    trace = client.post("/api/v1/trace", json=BODY).json()
    for layer in range(2):
        for position in range(5):
            r = client.post("/api/v1/inspect", json={**BODY, "layer": layer, "position": position})
            assert r.status_code == 200, r.text
            step = r.json()
            assert step["gate_names"] == ["input", "forget", "cell", "output"]
            assert np.allclose(step["h"], trace["hidden"][layer][0][position], atol=1e-14)
            assert np.allclose(step["c"], trace["cell"][layer][0][position], atol=1e-14)
            for name in step["gate_names"]:
                assert np.allclose(step["gates"][name], trace["gates"][name][layer][0][position])
            back = step["backward"]
            assert np.allclose(back["dh"], trace["grad_hidden"][layer][0][position], atol=1e-14)
            assert np.isclose(back["dWhh_step_norm"], trace["grad_step_norms"][layer][0][position])
            assert np.isclose(step["jacobian_norm"], trace["jacobian_norm"][layer][0][position])
            assert np.array(back["dWhh_step"]).shape == (12, 3)


def test_inspect_without_targets_is_the_forward_half(client):
    body = {**BODY, "targets": None, "position": 4}
    step = client.post("/api/v1/inspect", json=body).json()
    assert step["backward"] is None and len(step["w_input"]) == 12


def test_inspect_refuses_out_of_range_steps_and_truncation(client):
    for extra, field in [
        ({"layer": 2}, "layer"),
        ({"position": 5}, "position"),
        ({"direction": 1}, "direction"),
        ({"truncate": 2}, "truncate"),
    ]:
        r = client.post("/api/v1/inspect", json={**BODY, **extra})
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["field"] == field


def test_horizon_parts_sum_to_the_traces_gradient(client):
    trace = client.post("/api/v1/trace", json=BODY).json()
    r = client.post("/api/v1/horizon", json={**BODY, "layer": 0, "position": 1})
    assert r.status_code == 200, r.text
    split = r.json()
    assert split["sources"] == [0, 1, 2, 3, 4]
    assert np.array(split["norms"]).shape == (5, 5)
    parts = np.array(split["hidden"])  # (N, H)
    assert np.allclose(parts.sum(axis=0), trace["grad_hidden"][0][0][1], atol=1e-14)
    assert np.allclose(split["total"], trace["grad_hidden"][0][0][1], atol=1e-14)
    # a bottom-layer forward state hears nothing from the losses before it
    assert np.all(parts[0] == 0) and np.all(np.array(split["norms"])[2][:2] == 0)
    assert split["cost"]["sources"] == 5


def test_horizon_refuses_over_its_cap_before_any_work(client):
    T = 600
    body = {
        "config": {"cell": "gru", "input_size": 1, "hidden_size": 64},
        "inputs": [[0.0]] * T,
        "targets": [[0.0]] * T,
    }
    r = client.post("/api/v1/horizon", json=body)
    assert r.status_code == 422
    assert r.json()["field"] == "inputs"
    assert "loss positions" in r.json()["detail"]
    r = client.post("/api/v1/horizon", json={**BODY, "targets": None})
    assert r.status_code == 422 and r.json()["field"] == "targets"
    # a billion layers: refused from sizes alone, at once (its cost summed layer by layer
    # before the caps hung the server; the fuzzer found it)
    huge = {**body, "config": {**body["config"], "num_layers": 10**9}, "inputs": [[0.0]] * 3}
    r = client.post("/api/v1/horizon", json={**huge, "targets": [[0.0]] * 3})
    assert r.status_code == 422 and r.json()["field"] == "config.num_layers", r.text
