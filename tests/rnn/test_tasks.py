"""Built-in tasks: shapes, determinism under a seed, and each task's defining property."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn.tasks import TASKS, describe_tasks, make_task

SERIES = list(np.sin(np.arange(200) * 0.2))


def build(name, **params):
    if name == "custom" and not params:
        params = {"series": SERIES}
    return make_task(name, **params)


@pytest.mark.parametrize("name", list(TASKS))
def test_shapes_and_determinism(name):
    task = build(name)
    spec = task.spec
    x1, y1 = task.sample(np.random.default_rng(3), 5)
    x2, y2 = task.sample(np.random.default_rng(3), 5)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, _ = task.sample(np.random.default_rng(4), 5)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (5, spec.length, spec.input_size)
    if spec.head == "regression":
        expected = (
            (5, spec.length, spec.output_size)
            if spec.output_mode == "sequence"
            else (5, spec.output_size)
        )
    else:
        expected = (5, spec.length) if spec.output_mode == "sequence" else (5,)
        assert np.all((y1 >= 0) & (y1 < spec.output_size) & (y1 == np.round(y1)))
    assert y1.shape == expected
    config = task.config(cell="gru", hidden_size=4)
    task.check_config(config)


def test_descriptions():
    described = {d["name"]: d for d in describe_tasks()}
    assert set(described) == {
        "sine",
        "random_walk",
        "stocks",
        "adding",
        "copy",
        "parity",
        "gap",
        "text",
        "custom",
    }
    assert all(len(d["description"]) > 100 for d in described.values())


def test_adding_target_is_the_sum_of_the_marked_values():
    task = make_task("adding", length=20)
    x, y = task.sample(np.random.default_rng(0), 200)
    marks = x[:, :, 1]
    assert np.all(marks.sum(axis=1) == 2)
    assert np.all(marks[:, :10].sum(axis=1) == 1) and np.all(marks[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1))
    # predicting the mean scores about 1/6
    assert abs(np.mean((y - y.mean()) ** 2) - 1 / 6) < 0.03


@pytest.mark.parametrize("name", ["sine", "random_walk"])
def test_forecast_targets_are_the_next_values(name):
    task = make_task(name, length=12, horizon=3)
    x, y = task.sample(np.random.default_rng(1), 4)
    # target at t holds x_{t+1..t+3}: where those are inputs, they agree
    for t in range(12 - 3):
        np.testing.assert_array_equal(y[:, t, :], x[:, t + 1 : t + 4, 0])


def test_copy_targets_repeat_the_symbols_after_the_go_marker():
    task = make_task("copy", symbols=4, delay=6, alphabet=5)
    x, y = task.sample(np.random.default_rng(2), 8)
    codes = x.argmax(axis=2)
    T = 2 * 4 + 6 + 1
    assert x.shape[1] == T
    assert np.all(codes[:, 4 + 6] == 6)  # go marker
    np.testing.assert_array_equal(y[:, T - 4 :], codes[:, :4])
    assert np.all(y[:, : T - 4] == 5)  # blank class elsewhere


def test_parity_is_delayed_xor():
    task = make_task("parity", length=25, lag=4)
    x, y = task.sample(np.random.default_rng(5), 6)
    bits = x[:, :, 0].astype(int)
    np.testing.assert_array_equal(y[:, 4:], bits[:, 4:] ^ bits[:, :-4])
    np.testing.assert_array_equal(y[:, :4], bits[:, :4])


def test_text_is_next_character():
    task = make_task("text", length=15)
    x, y = task.sample(np.random.default_rng(6), 3)
    chars = x.argmax(axis=2)
    np.testing.assert_array_equal(y[:, :-1], chars[:, 1:])
    text = "".join(task.vocabulary[c] for c in chars[0])
    assert text in task.text


def test_custom_classification():
    seqs = [[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    task = make_task("custom", sequences=seqs, labels=[0, 1, 2])
    x, y = task.sample(np.random.default_rng(0), 10)
    assert task.spec.output_size == 3 and task.spec.output_mode == "last"
    for xi, yi in zip(x[:, :, 0], y, strict=True):
        assert seqs[int(yi)] == list(xi)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("nope", {}, "task.name"),
        ("adding", {"length": 1}, "task.length"),
        ("adding", {"length": 2.5}, "task.length"),
        ("adding", {"lenght": 5}, "task: unknown"),
        ("copy", {"delay": -1}, "task.delay"),
        ("custom", {}, "task.series"),
        ("custom", {"series": [1.0, 2.0]}, "task.length"),
        ("custom", {"series": [1.0, float("nan")] * 30}, "task.series"),
        ("custom", {"sequences": [[1.0, 2.0]], "labels": [0, 1]}, "task.labels"),
    ],
)
def test_bad_task_parameters(name, params, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_task(name, **params)


def test_config_must_fit_the_task():
    from app.rnn import ModelConfig

    with pytest.raises(ValueError, match="^config.input_size"):
        make_task("adding").check_config(ModelConfig(input_size=1))
