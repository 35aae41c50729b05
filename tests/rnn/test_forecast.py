"""Baselines, direct and recursive forecasts, the gap task's winner, and memoryless training."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import init_params
from app.rnn.forecast import (
    baseline_losses,
    baseline_predictions,
    direct_forecast,
    gap_baselines,
    gap_losses,
    held_out_rng,
    horizon_errors,
    recursive_forecast,
)
from app.rnn.network import network_forward
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import Finished, TrainConfig, held_out, held_out_loss, train


def trained(task, steps=60, seed=0, **config):
    config = task.config(**{"cell": "gru", "hidden_size": 8, **config})
    settings = TrainConfig(batch_size=16, steps=steps, seed=seed, probe_every=10**6, eval_size=8)
    records = list(train(config, task, OptimizerConfig("adam", 0.02), settings))
    assert isinstance(records[-1], Finished)
    return config, records[-1].params


def test_baselines_predict_the_last_value_and_the_mean_so_far():
    task = make_task("sine", length=4, horizon=2)
    x = np.array([[[1.0], [3.0], [2.0], [6.0]]])
    predicted = baseline_predictions(task, x, 2)
    np.testing.assert_array_equal(predicted["naive"][0, :, 0], [1, 3, 2, 6])
    np.testing.assert_array_equal(predicted["window_mean"][0, :, 1], [1, 2, 2, 3])
    # on log returns, tomorrow = today's price is a return of 0
    stocks = make_task("stocks")
    assert np.all(baseline_predictions(stocks, x, 1)["naive"] == 0)


def test_baseline_loss_is_the_networks_loss_of_a_network_that_predicts_the_same():
    """Same windows, positions and loss: a head that copies the input scores as `naive`."""
    task = make_task("random_walk", length=10)
    config = task.config(cell="rnn_tanh", hidden_size=1)
    params = init_params(config, seed=0)
    for name in params:
        params[name][...] = 0.0
    params["rnn.weight_ih_l0"][...] = 1e-4  # h = tanh(1e-4 x) ~ 1e-4 x
    params["head.weight"][...] = 1e4
    naive = baseline_losses(task, seed=3, size=300)["naive"]
    assert held_out_loss(config, params, task, seed=3, size=300) == pytest.approx(naive, rel=1e-3)


def test_held_out_rng_draws_the_training_held_out_set():
    task = make_task("stocks", length=8)
    x, y = held_out(task, 5, 20)
    x2, y2, _ = task.sample_info(held_out_rng(5), 20, "test")
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_recursive_forecast_feeds_each_prediction_back():
    task = make_task("sine", length=6)
    config = task.config(cell="lstm", hidden_size=3)
    params = init_params(config, seed=1)
    context, _ = task.sample(np.random.default_rng(0), 2)
    steps = recursive_forecast(config, params, context, 3)
    sequence = context
    for j in range(3):
        out, _ = network_forward(config, params, sequence)
        np.testing.assert_array_equal(steps[:, j], out[:, -1, 0])
        sequence = np.concatenate([sequence, out[:, -1:, :1]], axis=1)
    with pytest.raises(ValueError, match="^steps"):
        direct_forecast(config, params, context, 2)


def test_error_by_horizon_step_for_direct_recursive_and_baselines():
    one_step = make_task("sine", length=20, horizon=1)
    direct_task = make_task("sine", length=20, horizon=4)
    models = {
        "recursive": ("recursive", *trained(one_step, steps=80)),
        "direct": ("direct", *trained(direct_task, steps=80)),
    }
    result = horizon_errors(one_step, seed=0, steps=4, models=models, size=100)
    errors = result["errors"]
    assert set(errors) == {"naive", "window_mean", "recursive", "direct"}
    assert all(e.shape == (4,) for e in errors.values())
    # a sine drifts away from its last value: the naive error grows with the step
    assert np.all(np.diff(errors["naive"]) > 0)
    # trained even briefly, both forecasts beat the naive one at the first step
    assert errors["recursive"][0] < errors["naive"][0] and errors["direct"][0] < errors["naive"][0]
    example = result["example"]
    assert example["context"].shape == (20,) and example["truth"].shape == (4,)


def test_horizon_example_carries_dates_for_real_prices():
    task = make_task("stocks", length=10)
    result = horizon_errors(task, seed=0, steps=3, models={}, size=5)
    assert len(result["example"]["dates"]) == 13 and len(result["example"]["values"]) == 13
    with pytest.raises(ValueError, match="does not forecast"):
        horizon_errors(make_task("adding"), seed=0, steps=3, models={})


def test_bidirectional_fills_a_gap_better_with_the_same_budget():
    task = make_task("gap", length=16, gap=4)
    one_way = gap_losses(*trained(task, steps=150, bidirectional=False), task, seed=0, size=300)
    both_ways = gap_losses(*trained(task, steps=150, bidirectional=True), task, seed=0, size=300)
    assert both_ways["loss"] < 0.7 * one_way["loss"]
    assert both_ways["gap_loss"] < 0.7 * one_way["gap_loss"]


def test_gap_baselines_carry_forward_and_interpolate(monkeypatch):
    task = make_task("gap", length=8, gap=2)
    values = np.array([[0.0, 1.0, 2.0, 0.0, 0.0, 8.0, 6.0, 7.0]])
    mask = np.array([[0.0, 0, 0, 1, 1, 0, 0, 0]])
    truth = np.array([[0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 6.0, 7.0]])
    fixed = (np.stack([values, mask], axis=2), truth[:, :, None])
    monkeypatch.setattr("app.rnn.forecast.held_out", lambda task, seed, size: fixed)
    scores = gap_baselines(task, seed=0, size=1)
    assert scores["interpolate"]["loss"] == 0.0  # 2, [4, 6], 8 lies on a line
    assert scores["carry_forward"]["gap_loss"] == pytest.approx((2**2 + 4**2) / 2)


def test_a_straight_line_across_the_gap_beats_carrying_the_last_value():
    scores = gap_baselines(make_task("gap", length=16, gap=4), seed=0, size=500)
    assert scores["interpolate"]["gap_loss"] < 0.5 * scores["carry_forward"]["gap_loss"]
    assert scores["carry_forward"]["outside_loss"] == 0.0


def test_memoryless_training_keeps_every_recurrent_weight_at_zero():
    task = make_task("sine", length=10)
    config = task.config(cell="rnn_tanh", hidden_size=4, num_layers=2, bidirectional=True)
    settings = TrainConfig(batch_size=4, steps=5, memoryless=True, probe_every=10**6)
    records = list(train(config, task, OptimizerConfig("adam", 0.05), settings))
    params = records[-1].params
    held = [n for n in params if ".weight_hh_" in n]
    assert len(held) == 4 and all(np.all(params[n] == 0) for n in held)
    assert not np.all(params["rnn.weight_ih_l0"] == init_params(config, seed=0)["rnn.weight_ih_l0"])
    # so each output depends on its own input only
    x = np.random.default_rng(0).standard_normal((1, 10, 1))
    y = x.copy()
    y[0, :5] += 1.0
    out_x, _ = network_forward(config, params, x)
    out_y, _ = network_forward(config, params, y)
    np.testing.assert_array_equal(out_x[0, 5:], out_y[0, 5:])
    with pytest.raises(ValueError, match="^memoryless: needs an Elman cell"):
        list(train(task.config(cell="lstm", hidden_size=2), task, OptimizerConfig(), settings))
