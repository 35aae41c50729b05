"""POST /api/v1/train/stream: frames, limits, stored result and reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.api.frames import FRAME_ADAPTER
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import Finished, Progress, TrainConfig, train

BODY = {
    "config": {"cell": "gru", "hidden_size": 8},
    "task": {"name": "sine", "length": 12, "horizon": 2},
    "optimizer": {"name": "adam", "learning_rate": 0.02},
    "batch_size": 8,
    "steps": 40,
    "clip_norm": 1.0,
    "seed": 7,
    "probe_every": 20,
}


def stream(client, body=BODY):
    r = client.post("/api/v1/train/stream", json=body, headers={"accept": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    frames = [json.loads(line) for line in r.text.splitlines()]
    for frame in frames:
        FRAME_ADAPTER.validate_python(frame)
    return frames


def test_train_stream(client):
    frames = stream(client)
    types = [f["type"] for f in frames]
    assert types[0] == "train_config" and types[-1] == "done"
    assert [f["id"] for f in frames] == list(range(len(frames)))
    progress = [f for f in frames if f["type"] == "progress"]
    probes = [f for f in frames if f["type"] == "probe"]
    assert progress[-1]["step"] == 40  # the last step is always sent
    # thinned frames, a whole curve: every step's loss once, in order, ending at the frame's own
    losses = [loss for f in progress for loss in f["losses"]]
    assert len(losses) == 40
    assert all(f["losses"][-1] == f["loss"] for f in progress)
    assert [p["step"] for p in probes] == [0, 20, 40]
    assert np.asarray(progress[0]["grad_profile"]).shape == (1, 1, 12)
    assert probes[-1]["eval_loss"] < probes[0]["eval_loss"]
    assert len(probes[0]["trace"]["spectrum"]) == 3
    done = frames[-1]
    assert done["events"] == len(frames) and done["steps"] == 40 and done["stopped"] is False
    assert done["eval_loss"] > 0 and done["wall_time_s"] > 0

    # the trained weights are stored, and equal the Python API's training with the same seed
    task = make_task("sine", length=12, horizon=2)
    config = task.config(cell="gru", hidden_size=8)
    records = list(
        train(
            config,
            task,
            OptimizerConfig("adam", 0.02),
            TrainConfig(batch_size=8, steps=40, clip_norm=1.0, seed=7, probe_every=20),
        )
    )
    final = records[-1]
    assert isinstance(final, Finished)
    assert losses == [r.loss for r in records if isinstance(r, Progress)]  # the numbers too
    weights = client.get(f"/api/v1/models/{done['model_id']}/weights?format=npz")
    assert weights.status_code == 200
    import io

    stored = np.load(io.BytesIO(weights.content), allow_pickle=False)
    for name, value in final.params.items():
        assert np.array_equal(stored[name], value), name

    # and a trace with that model_id runs
    trace = client.post(
        "/api/v1/trace",
        json={"config": config.to_dict(), "model_id": done["model_id"], "inputs": [[0.1]] * 12},
    )
    assert trace.status_code == 200


def test_training_is_reproducible_over_the_api(client):
    a = [f for f in stream(client) if f["type"] in ("probe", "done")]
    b = [f for f in stream(client) if f["type"] in ("probe", "done")]
    assert [f.get("eval_loss") for f in a] == [f.get("eval_loss") for f in b]
    assert a[-1]["model_id"] == b[-1]["model_id"]


def test_sse_format(client):
    r = client.post("/api/v1/train/stream", json={**BODY, "steps": 3})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [block for block in r.text.strip().split("\n\n") if not block.startswith(":")]
    assert events[0].startswith("event: train_config") and events[-1].startswith("event: done")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"steps": 10**6}, "steps"),
        ({"batch_size": 10**5}, "batch_size"),
        ({"task": {"name": "nope"}}, "task.name"),
        ({"task": {"name": "adding", "length": 1}}, "task.length"),
        ({"task": {"name": "adding", "length": 5000}}, "task.length"),
        ({"config": {"cell": "gru", "input_size": 3}}, "config.input_size"),
        ({"config": {"cell": "gru", "hidden_size": 100000}}, "config.hidden_size"),
        ({"optimizer": {"name": "rmsprop"}}, "optimizer.name"),
        ({"optimizer": {"learning_rate": -1}}, "optimizer.learning_rate"),
        ({"clip_norm": 0}, "clip_norm"),
        ({"model_id": "0" * 64}, "model_id"),
        ({"config": {"cell": "gru", "output_mode": "final"}}, "config.output_mode"),
    ],
)
def test_bad_train_requests(client, patch, field):
    r = client.post("/api/v1/train/stream", json={**BODY, **patch})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["field"] == field


def test_a_last_task_trains_in_final_mode(client):
    config = {"cell": "gru", "hidden_size": 4, "bidirectional": True, "output_mode": "final"}
    body = {**BODY, "config": config, "task": {"name": "adding", "length": 6}, "steps": 2}
    frames = stream(client, {**body, "probe_every": 2})
    assert frames[0]["config"]["output_mode"] == "final"
    assert frames[-1]["type"] == "done" and frames[-1]["steps"] == 2


def test_disconnecting_stops_training(client, monkeypatch):
    """Closing the stream mid-run ends the training thread early (Finished.stopped)."""
    import threading
    import time

    from app.api import training as training_module

    finished = {}
    done = threading.Event()
    real = training_module.train

    def watched(*args, **kwargs):
        for record in real(*args, **kwargs):
            if isinstance(record, Finished):
                finished["record"] = record
                done.set()
            yield record

    monkeypatch.setattr(training_module, "train", watched)
    body = {**BODY, "steps": 5000, "probe_every": 5000, "task": {"name": "sine", "length": 8}}
    with client.stream(
        "POST", "/api/v1/train/stream", json=body, headers={"accept": "application/x-ndjson"}
    ) as r:
        for line in r.iter_lines():
            if json.loads(line)["type"] == "progress":
                break  # the client goes away mid-run
    deadline = time.monotonic() + 20
    while not done.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done.is_set(), "training did not stop after the client left"
    assert finished["record"].stopped and finished["record"].step < 5000
