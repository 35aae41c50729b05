"""Training: batched gradients agree with the single-sequence path, loss falls, runs repeat."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import Finished, Probe, Progress, TrainConfig, batch_loss_and_grads, train


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("truncate", [None, 2])
def test_batched_gradients_equal_the_mean_of_single_sequences(cell, truncate):
    config = ModelConfig(
        cell=cell, input_size=2, hidden_size=3, num_layers=2, bidirectional=True, output_size=2
    )
    params = init_params(config, seed=1)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, 5, 2)), rng.standard_normal((4, 5, 2))
    loss, grads, profile = batch_loss_and_grads(config, params, x, y, truncate)
    singles = [run_sequence(config, params, x[b], y[b], truncate=truncate) for b in range(4)]
    assert loss == pytest.approx(np.mean([s.loss for s in singles]), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(
            grads[name], np.mean([s.grads[name] for s in singles], axis=0), rtol=1e-10, atol=1e-14
        )
    expected = np.mean([np.linalg.norm(s.grad_hidden, axis=-1) for s in singles], axis=0)
    np.testing.assert_allclose(profile, expected, rtol=1e-10)


def records(**overrides):
    task = make_task("sine", length=12)
    config = task.config(cell="gru", hidden_size=8)
    settings = TrainConfig(
        **{
            "batch_size": 16,
            "steps": 60,
            "seed": 3,
            "probe_every": 20,
            "clip_norm": 1.0,
            **overrides,
        }
    )
    return list(train(config, task, OptimizerConfig("adam", 0.02), settings))


def test_training_lowers_the_loss_and_reports_everything():
    recs = records()
    progress = [r for r in recs if isinstance(r, Progress)]
    probes = [r for r in recs if isinstance(r, Probe)]
    assert [p.step for p in progress] == list(range(1, 61))
    assert [p.step for p in probes] == [0, 20, 40, 60]
    assert probes[-1].eval_loss < 0.5 * probes[0].eval_loss
    assert np.mean([p.loss for p in progress[-10:]]) < np.mean([p.loss for p in progress[:10]])
    assert progress[0].grad_profile.shape == (1, 1, 12)
    assert probes[-1].trace.jacobian_product_norm is not None
    assert isinstance(recs[-1], Finished) and not recs[-1].stopped


def test_training_is_bit_reproducible():
    a, b = records(steps=15), records(steps=15)
    for ra, rb in zip(a, b, strict=True):
        if isinstance(ra, Progress):
            assert ra.loss == rb.loss and np.array_equal(ra.grad_profile, rb.grad_profile)
    for name, value in a[-1].params.items():
        assert np.array_equal(value, b[-1].params[name])
    c = records(steps=15, seed=4)
    assert not np.array_equal(c[-1].params["head.weight"], a[-1].params["head.weight"])


def test_stopping_early():
    task = make_task("adding", length=10)
    stop = False
    recs = []
    for rec in train(
        task.config(cell="lstm", hidden_size=4),
        task,
        OptimizerConfig(),
        TrainConfig(steps=50, batch_size=4),
        should_stop=lambda: stop,  # noqa: B023 - reads the flag the loop body sets
    ):
        recs.append(rec)
        stop = isinstance(rec, Progress) and rec.step == 5
    assert isinstance(recs[-1], Finished) and recs[-1].stopped and recs[-1].step == 5


def test_exploding_training_is_reported_not_raised():
    task = make_task("adding", length=30)
    config = task.config(cell="rnn_relu", hidden_size=8)
    settings = TrainConfig(steps=5, batch_size=4, init_scheme="identity", init_scale=40.0)
    recs = list(train(config, task, OptimizerConfig("sgd", 0.1), settings))
    progress = [r for r in recs if isinstance(r, Progress)]
    assert not all(np.isfinite(p.grad_norm) for p in progress)
    assert all(np.all(np.isfinite(v)) for v in recs[-1].params.values())  # updates were skipped
