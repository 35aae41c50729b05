"""The engine's stages apart: forward, backward and diagnostics on one record, as run_sequence."""

from __future__ import annotations

import numpy as np
import pytest

import app.rnn.trace as trace_module
from app.rnn import (
    CELLS,
    ModelConfig,
    backward_trace,
    diagnose_trace,
    forward_trace,
    init_params,
    run_sequence,
)

FIELDS = (
    "outputs",
    "hidden",
    "cell",
    "loss_per_step",
    "grad_hidden",
    "grad_cell",
    "grad_inputs",
    "grad_step_norms",
    "jacobian_norm",
    "jacobian_product_norm",
)


def same(a, b) -> bool:
    return (a is None and b is None) or np.array_equal(a, b)


def problem(cell, num_layers=2):
    config = ModelConfig(
        cell=cell, input_size=2, hidden_size=3, num_layers=num_layers, bidirectional=True
    )
    rng = np.random.default_rng(3)
    return (
        config,
        init_params(config, seed=2),
        rng.standard_normal((7, 2)),
        rng.standard_normal((7, 1)),
    )


@pytest.mark.parametrize("cell", CELLS)
def test_stages_one_after_another_equal_run_sequence(cell, monkeypatch):
    config, params, x, y = problem(cell)
    whole = run_sequence(config, params, x, y, jacobians=True, truncate=2)
    calls = []
    real_forward = trace_module.network_forward
    monkeypatch.setattr(
        trace_module, "network_forward", lambda *a: calls.append(1) or real_forward(*a)
    )
    staged = forward_trace(config, params, x, y)
    assert staged.grads is None and staged.jacobian_norm is None and staged.loss == whole.loss
    diagnose_trace(staged)  # diagnostics may come before the backward pass
    backward_trace(staged, truncate=2)
    assert calls == [1]  # the forward pass ran once for all three stages
    for field in FIELDS:
        assert same(getattr(staged, field), getattr(whole, field)), field
    for name in whole.grads:
        assert np.array_equal(staged.grads[name], whole.grads[name])
    assert staged.truncate == whole.truncate == 2
    assert staged.finite and staged.jacobian_layers == whole.jacobian_layers == (0, 1)


def test_diagnostics_of_chosen_layers_only():
    config, params, x, y = problem("lstm", num_layers=3)
    whole = run_sequence(config, params, x, y, jacobians=True)
    staged = forward_trace(config, params, x, y)
    diagnose_trace(staged, layers=[1])
    assert staged.jacobian_layers == (1,) and staged.finite
    assert np.array_equal(staged.jacobian_norm[1], whole.jacobian_norm[1])
    assert np.all(np.isnan(staged.jacobian_norm[[0, 2]]))  # not computed: NaN, not a number
    assert np.all(np.isnan(staged.jacobian_product_norm[[0, 2]]))
    diagnose_trace(staged, layers=(2, 0))
    assert staged.jacobian_layers == (0, 1, 2)
    assert np.array_equal(staged.jacobian_product_norm, whole.jacobian_product_norm)


def test_stage_misuse_names_the_field():
    config, params, x, y = problem("gru")
    no_targets = forward_trace(config, params, x)
    with pytest.raises(ValueError, match="^targets:"):
        backward_trace(no_targets)
    with pytest.raises(ValueError, match="^layers:"):
        diagnose_trace(no_targets, layers=[2])
    with pytest.raises(ValueError, match="^layers:"):
        diagnose_trace(no_targets, layers=["0", 1])
    with pytest.raises(ValueError, match="^truncate:"):
        backward_trace(forward_trace(config, params, x, y), truncate=0)
    no_targets.release()
    with pytest.raises(ValueError, match="^trace:"):
        diagnose_trace(no_targets)
    assert run_sequence(config, params, x, y).engine is None  # the one-call form keeps nothing
