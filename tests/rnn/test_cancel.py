"""Cooperative cancellation: a cancel callable stops every long loop; unused, it changes nothing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.rnn import CELLS, Cancelled, ModelConfig, init_params, run_sequence
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import Finished, Probe, Progress, TrainConfig, held_out_loss, train

FIELDS = (
    "outputs",
    "hidden",
    "cell",
    "grad_hidden",
    "grad_cell",
    "grad_inputs",
    "grad_step_norms",
    "jacobian_norm",
    "jacobian_product_norm",
    "loss_per_step",
)


class FlipAfter:
    """A cancel callable that returns True from its n-th poll on, counting its polls."""

    def __init__(self, n: int):
        self.n, self.polls = n, 0

    def __call__(self) -> bool:
        self.polls += 1
        return self.polls > self.n


def same(a, b) -> bool:
    """Bit-identical arrays, or both None."""
    return (a is None and b is None) or np.array_equal(a, b)


def problem(cell, T=100):
    config = ModelConfig(cell=cell, input_size=2, hidden_size=3, num_layers=2, bidirectional=True)
    rng = np.random.default_rng(0)
    return (
        config,
        init_params(config, seed=1),
        rng.standard_normal((T, 2)),
        rng.standard_normal((T, 1)),
    )


@pytest.mark.parametrize("cell", CELLS)
def test_a_cancel_that_never_fires_changes_nothing(cell):
    config, params, x, y = problem(cell)
    never = FlipAfter(10**9)
    a = run_sequence(config, params, x, y, jacobians=True, truncate=3)
    b = run_sequence(config, params, x, y, jacobians=True, truncate=3, cancel=never)
    assert never.polls > 10  # it was really polled along the way
    for field in FIELDS:
        assert same(getattr(a, field), getattr(b, field)), field
    for name in a.grads:
        assert np.array_equal(a.grads[name], b.grads[name])


@pytest.mark.parametrize("jacobians", [False, True])
@pytest.mark.parametrize("truncate", [None, 2])
def test_cancel_stops_every_stage(jacobians, truncate):
    """Flip at each poll in turn: every one of them raises, and none is far from the last."""
    config, params, x, y = problem("lstm")
    total = FlipAfter(10**9)
    run_sequence(config, params, x, y, jacobians=jacobians, truncate=truncate, cancel=total)
    for n in range(total.polls):
        cancel = FlipAfter(n)
        with pytest.raises(Cancelled):
            run_sequence(
                config, params, x, y, jacobians=jacobians, truncate=truncate, cancel=cancel
            )
        assert cancel.polls == n + 1  # raised at the first poll that said True


def test_polls_come_every_few_positions():
    """A long single layer polls about every 16 positions in each stage."""
    config = ModelConfig(cell="gru", input_size=1, hidden_size=2)
    x, y = np.ones((320, 1)), np.zeros((320, 1))
    counter = FlipAfter(10**9)
    run_sequence(config, init_params(config), x, y, jacobians=True, cancel=counter)
    assert counter.polls >= 3 * 320 // 16


def test_held_out_loss_honours_cancel():
    task = make_task("adding", length=10)
    config = task.config(cell="gru", hidden_size=3)
    params = init_params(config)
    plain = held_out_loss(config, params, task, seed=0, size=20, chunk=5)
    assert held_out_loss(config, params, task, 0, 20, 5, cancel=lambda: False) == plain
    with pytest.raises(Cancelled):
        held_out_loss(config, params, task, 0, 20, 5, cancel=FlipAfter(3))


def _train(**kwargs):
    task = make_task("adding", length=20)
    config = task.config(cell="lstm", hidden_size=3)
    return train(config, task, OptimizerConfig(), TrainConfig(steps=6, batch_size=2), **kwargs)


def test_should_stop_inside_a_probe_finishes_stopped():
    """should_stop flipping during the first probe ends training at once, weights intact."""
    recs = list(_train(should_stop=FlipAfter(2)))
    assert len(recs) == 1 and isinstance(recs[0], Finished)
    assert recs[0].stopped and recs[0].step == 0


def test_should_stop_inside_a_step_keeps_the_last_completed_step():
    polls_per_run = FlipAfter(10**9)
    list(_train(should_stop=polls_per_run))
    for n in range(0, polls_per_run.polls, 7):
        recs = list(_train(should_stop=FlipAfter(n)))
        assert isinstance(recs[-1], Finished) and recs[-1].stopped
        steps = [r.step for r in recs if isinstance(r, Progress)]
        assert recs[-1].step == (steps[-1] if steps else 0)


def test_cancel_raises_out_of_training():
    with pytest.raises(Cancelled):
        for _ in itertools.islice(_train(cancel=FlipAfter(40)), 1000):
            pass
    probes = [r for r in _train(cancel=lambda: False) if isinstance(r, Probe)]
    assert len(probes) == 2
