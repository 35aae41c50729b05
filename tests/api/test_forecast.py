"""The real-data routes: scores beside the baselines, error by horizon step, CSV upload,
text guesses and samples."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn.forecast import baseline_losses
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import TrainConfig, held_out_loss, train


def store_trained(client, task, steps=30, **config):
    config = task.config(**{"cell": "gru", "hidden_size": 6, **config})
    settings = TrainConfig(batch_size=8, steps=steps, seed=0, probe_every=10**6, eval_size=4)
    params = list(train(config, task, OptimizerConfig("adam", 0.02), settings))[-1].params
    return client.app.state.store.put(config, params), config, params


def test_score_answers_the_same_losses_as_the_core(client):
    task = make_task("stocks", ticker="MSFT", length=12)
    model_id, config, params = store_trained(client, task)
    body = {"task": {"name": "stocks", "ticker": "MSFT", "length": 12}, "model_id": model_id}
    r = client.post("/api/v1/forecast/score", json={**body, "seed": 2, "size": 200})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["split"] == "test" and answer["labels"]["naive"] == "tomorrow = today"
    assert answer["loss"] == pytest.approx(held_out_loss(config, params, task, 2, 200))
    assert answer["baselines"] == pytest.approx(baseline_losses(task, 2, 200))


def test_score_without_a_model_gives_the_baselines_and_gap_scores_its_gap(client):
    r = client.post("/api/v1/forecast/score", json={"task": {"name": "sine"}, "size": 50})
    assert r.status_code == 200 and "loss" not in r.json()
    assert set(r.json()["baselines"]) == {"naive", "window_mean"}
    task = make_task("gap", length=12, gap=3)
    model_id, *_ = store_trained(client, task, steps=5)
    body = {"task": {"name": "gap", "length": 12, "gap": 3}, "model_id": model_id, "size": 20}
    gap = client.post("/api/v1/forecast/score", json=body).json()["gap"]
    assert set(gap) == {"loss", "gap_loss", "outside_loss"}
    baselines = client.post("/api/v1/forecast/score", json=body).json()["gap_baselines"]
    assert set(baselines) == {"carry_forward", "interpolate"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"task": {"name": "stocks", "ticker": "X"}}, 422, "task.ticker"),
        ({"task": {"name": "sine"}, "model_id": "0" * 64}, 404, "model_id"),
        ({"task": {"name": "sine"}, "size": 5000}, 422, "size"),
    ],
)
def test_score_refuses_clearly(client, body, status, field):
    r = client.post("/api/v1/forecast/score", json=body)
    assert r.status_code == status and r.json()["field"] == field


def test_score_refuses_a_model_of_another_task(client):
    model_id, *_ = store_trained(client, make_task("gap", length=8, gap=2), steps=2)
    r = client.post("/api/v1/forecast/score", json={"task": {"name": "sine"}, "model_id": model_id})
    assert r.status_code == 422 and r.json()["detail"].startswith("model_id: config.input_size")


def test_horizon_errors_direct_and_recursive(client):
    one, *_ = store_trained(client, make_task("sine", length=15))
    three, *_ = store_trained(client, make_task("sine", length=15, horizon=3))
    body = {"task": {"name": "sine", "length": 15}, "steps": 3, "size": 40}
    r = client.post("/api/v1/forecast/horizon", json={**body, "direct": three, "recursive": one})
    assert r.status_code == 200, r.text
    errors = r.json()["errors"]
    assert set(errors) == {"naive", "window_mean", "direct", "recursive"}
    assert all(len(e) == 3 for e in errors.values())
    # a one-step model cannot answer three values at once
    r = client.post("/api/v1/forecast/horizon", json={**body, "direct": one})
    assert r.status_code == 422 and r.json()["field"] == "steps"
    r = client.post("/api/v1/forecast/horizon", json={"task": {"name": "adding"}})
    assert r.status_code == 422 and r.json()["field"] == "task.name"


def test_horizon_example_on_real_prices_has_dates(client):
    body = {"task": {"name": "stocks", "length": 20}, "steps": 5, "size": 10}
    answer = client.post("/api/v1/forecast/horizon", json=body).json()
    assert answer["size"] == 10  # the windows its errors average over, for the page to say
    assert answer["forecast"] == "change" and answer["params"]["scale"] > 0
    example = answer["example"]
    assert len(example["dates"]) == 25 and example["dates"][0] >= "2011-01-01"
    assert set(example["forecasts"]) == {"naive", "window_mean"}


def test_sample_route_returns_dates_for_real_prices(client):
    r = client.post(
        "/api/v1/tasks/stocks/sample", json={"params": {"length": 10}, "count": 2, "split": "test"}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert np.asarray(answer["dates"]).shape == (2, 11)
    assert min(min(d) for d in answer["dates"]) >= "2011-01-01"
    assert np.asarray(answer["values"]).shape == (2, 11)
    assert answer["forecast"] == "change"  # log returns: tomorrow = today predicts 0
    sine = client.post("/api/v1/tasks/sine/sample", json={}).json()
    assert sine["forecast"] == "level" and "dates" not in sine
    assert client.post("/api/v1/tasks/adding/sample", json={}).json()["forecast"] is None


def test_csv_upload(client):
    text = "date,close,volume\n2020-01-02,1.5,10\n2020-01-03,2.5,20\n"
    r = client.post("/api/v1/series", files={"file": ("p.csv", text, "text/csv")})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rows": 2,
        "columns": [
            {"name": "close", "values": [1.5, 2.5]},
            {"name": "volume", "values": [10, 20]},
        ],
        "dates": ["2020-01-02", "2020-01-03"],
    }


def test_csv_upload_names_every_bad_line(client):
    text = "x,y\n1,2\n3,abc\n\n5,\n"
    r = client.post("/api/v1/series", files={"file": ("p.csv", text, "text/csv")})
    assert r.status_code == 422
    assert r.json()["field"] == "file"
    assert [e["line"] for e in r.json()["errors"]] == [3, 5]
    assert r.json()["detail"] == "file: line 3: y: 'abc' is not a number; line 5: y: empty"


def test_csv_upload_is_capped(client):
    limit = client.app.state.settings.max_series_bytes
    r = client.post("/api/v1/series", files={"file": ("p.csv", "1\n" * (limit // 2 + 1))})
    assert r.status_code == 413 and r.json()["field"] == "file"
    r = client.post("/api/v1/series", files={"file": ("p.csv", b"\xff\xfe1,2")})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]


def test_text_guesses_and_sample(client):
    task = make_task("text", length=10)
    model_id, *_ = store_trained(client, task, steps=3)
    r = client.post("/api/v1/text/guesses", json={"model_id": model_id, "text": "Shall"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert len(answer["chars"]) == 5 and len(answer["probs"][0]) == 5
    assert answer["vocabulary"] == "".join(task.vocabulary)
    body = {"model_id": model_id, "prompt": "Thy", "length": 30, "temperature": 0.7, "seed": 3}
    first = client.post("/api/v1/text/sample", json=body).json()["text"]
    assert (
        len(first) == 30 and first == client.post("/api/v1/text/sample", json=body).json()["text"]
    )
    r = client.post("/api/v1/text/guesses", json={"model_id": model_id, "text": "S#"})
    assert r.status_code == 422 and r.json()["detail"].startswith("text: position 2")
    sine_id, *_ = store_trained(client, make_task("sine", length=5), steps=1)
    r = client.post("/api/v1/text/sample", json={**body, "model_id": sine_id})
    assert r.status_code == 422 and r.json()["field"] == "config"


def test_too_much_work_is_refused_before_it_starts(client):
    model_id, *_ = store_trained(client, make_task("text", length=10), steps=1)
    body = {"model_id": model_id, "prompt": "S", "length": 2000, "context": 1000}
    r = client.post("/api/v1/text/sample", json=body)
    assert r.status_code == 422 and r.json()["field"] == "length"
    assert "over the limit for one request" in r.json()["detail"]


def test_sample_route_gives_the_training_probe_with_its_dates(client):
    task = make_task("stocks", length=12)
    config = task.config(cell="gru", hidden_size=3)
    settings = TrainConfig(batch_size=2, steps=1, seed=9, probe_every=10**6, eval_size=2)
    probe = next(iter(train(config, task, OptimizerConfig(), settings)))
    body = {"params": {"length": 12}, "seed": 9, "probe": True, "split": "test"}
    answer = client.post("/api/v1/tasks/stocks/sample", json=body).json()
    np.testing.assert_array_equal(answer["inputs"][0], probe.trace.inputs)
    assert len(answer["dates"][0]) == 13 and answer["dates"][0][0] >= "2011-01-01"
    r = client.post("/api/v1/tasks/stocks/sample", json={**body, "split": "train"})
    assert r.status_code == 422 and r.json()["field"] == "probe"


def test_a_bad_csv_line_is_an_error_item_of_the_documented_shape(client):
    answer = client.post(
        "/api/v1/series", files={"file": ("s.csv", b"value\n1.0\n2.0,3.0\nabc\n4.0\n")}
    )
    assert answer.status_code == 422
    items = answer.json()["errors"]
    assert [(i["field"], i["line"]) for i in items] == [("file", 3), ("file", 4)]
    assert all(set(i) == {"field", "line", "reason"} for i in items)
