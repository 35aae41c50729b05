"""The gradient horizon: parts that sum to the engine's dL/dh, each checked by central
differences against a textbook forward pass with a push on one state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence
from app.rnn.horizon import MAX_HORIZON_ELEMENTS, gradient_horizon, horizon_cost
from app.rnn.loss import loss_and_grad
from app.rnn.params import direction_suffix
from tests.rnn.reference import reference_step, state_size
from tests.rnn.test_gradcheck import make_problem, rel_error

EPS = 1e-6
SHAPES = [(1, False), (2, False), (1, True), (2, True)]


def losses_with_push(config, params, x, y, layer, direction, position, push):
    """Each loss position's share of the loss (N,), with `push` (S,) added to the state of
    (layer, direction) right after `position`: a textbook forward pass, one step at a time."""
    T, H, D = len(x), config.hidden_size, config.num_directions
    S = state_size(config.cell, H)
    xs = x
    for lyr in range(config.num_layers):
        outs = []
        for d in range(D):
            sfx = f"l{lyr}{direction_suffix(d)}"
            weights = [params[f"rnn.{k}_{sfx}"] for k in ("weight_ih", "weight_hh", "bias_ih")]
            bhh = params[f"rnn.bias_hh_{sfx}"]
            s = np.zeros(S)
            hs = np.zeros((T, H))
            for t in reversed(range(T)) if d == 1 else range(T):
                s, _ = reference_step(config.cell, xs[t], s, *weights, bhh)
                if (lyr, d, t) == (layer, direction, position):
                    s = s + push
                hs[t] = s[:H]
            outs.append(hs)
        xs = np.concatenate(outs, axis=1)  # (T, D*H)
    W, b = params["head.weight"], params["head.bias"]
    if config.output_mode == "sequence":
        _, per_step, _ = loss_and_grad(config.head, (xs @ W.T + b)[None], np.asarray(y)[None])
        return per_step[0] / T
    loss, _, _ = loss_and_grad(config.head, (xs[-1] @ W.T + b)[None], np.asarray(y)[None])
    return np.array([loss])


CASES = [
    (cell, layers, bi, head, mode)
    for cell, (layers, bi), (head, mode) in itertools.product(
        CELLS, SHAPES, [("regression", "sequence"), ("classification", "last")]
    )
]


@pytest.mark.parametrize(("cell", "layers", "bi", "head", "mode"), CASES)
def test_parts_sum_to_the_engine_gradient_at_every_state(cell, layers, bi, head, mode):
    config, params, x, y = make_problem(cell, layers, bi, head, mode, T=5)
    trace = run_sequence(config, params, x, y)
    for layer, d in itertools.product(range(layers), range(config.num_directions)):
        split = gradient_horizon(config, params, x, y, layer, d, position=2)
        assert split.norms.shape == (5, 5 if mode == "sequence" else 1)
        assert np.allclose(split.total, trace.grad_hidden[layer, d, 2], rtol=1e-10, atol=1e-13)
        assert np.isclose(split.loss_per_source.sum(), trace.loss, rtol=1e-12)
        if cell == "lstm":
            assert np.allclose(split.cell.sum(axis=0), trace.grad_cell[layer, d, 2], atol=1e-13)
        # every position's parts, not only the one asked for: their norms are consistent
        total_norms = np.linalg.norm(trace.grad_hidden[layer, d], axis=1)
        assert np.all(split.norms.sum(axis=1) >= total_norms * (1 - 1e-9))


@pytest.mark.parametrize(("cell", "layers", "bi"), [(c, *s) for c in CELLS for s in SHAPES])
def test_each_part_matches_central_differences(cell, layers, bi):
    config, params, x, y = make_problem(cell, layers, bi, "regression", "sequence", T=4)
    S = state_size(cell, config.hidden_size)
    H = config.hidden_size
    for layer, d, position in [(0, 0, 1), (layers - 1, config.num_directions - 1, 2)]:
        split = gradient_horizon(config, params, x, y, layer, d, position)
        numeric = np.zeros((len(split.sources), H))
        for u in range(H):
            push = np.zeros(S)
            push[u] = EPS
            plus = losses_with_push(config, params, x, y, layer, d, position, push)
            minus = losses_with_push(config, params, x, y, layer, d, position, -push)
            numeric[:, u] = (plus - minus) / (2 * EPS)
        assert rel_error(split.hidden, numeric) < 1e-6, (layer, d, position)
        # a loss before the position cannot reach a forward state of the bottom layer
        if layers == 1 and d == 0:
            assert np.all(split.hidden[:position] == 0.0)


@pytest.mark.parametrize(("output_mode", "layer"), [("last", 0), ("final", 0), ("final", 1)])
def test_last_mode_has_one_source_the_whole_gradient(output_mode, layer):
    config, params, x, y = make_problem("gru", 2, True, "regression", output_mode, T=6)
    split = gradient_horizon(config, params, x, y, layer, 1, 0)
    assert list(split.sources) == [5]
    trace = run_sequence(config, params, x, y)
    assert np.allclose(split.norms[:, 0], np.linalg.norm(trace.grad_hidden[layer, 1], axis=1))
    assert np.allclose(split.hidden[0], trace.grad_hidden[layer, 1, 0], rtol=1e-10, atol=1e-14)


def test_cost_cap_refuses_before_running():
    config = ModelConfig(cell="lstm", input_size=1, hidden_size=128, bidirectional=True)
    T = 400
    assert horizon_cost(config, T, 0).elements > MAX_HORIZON_ELEMENTS
    params = init_params(config, seed=0)
    x, y = np.zeros((T, 1)), np.zeros((T, 1))
    with pytest.raises(ValueError, match="^inputs: splitting the gradient"):
        gradient_horizon(config, params, x, y, 0, 0, 0)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("layer", {"layer": 1}), ("direction", {"direction": 1}), ("position", {"position": 9})],
)
def test_bad_arguments_name_their_field(field, kwargs):
    config, params, x, y = make_problem("rnn_tanh", 1, False, "regression", "sequence", T=4)
    where = {"layer": 0, "direction": 0, "position": 0, **kwargs}
    with pytest.raises(ValueError, match=f"^{field}: "):
        gradient_horizon(config, params, x, y, **where)
    with pytest.raises(ValueError, match="^targets: "):
        gradient_horizon(config, params, x, None, 0, 0, 0)


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize(("cell", "bidirectional"), [("lstm", True), ("gru", False)])
def test_cost_in_closed_form_is_the_sum_over_layers(cell, bidirectional, layer):
    config = ModelConfig(
        cell=cell, input_size=3, hidden_size=5, num_layers=3, bidirectional=bidirectional
    )
    T, D, G, H = 7, config.num_directions, config.gate_multiple, 5
    want = sum(T * T * D * G * H * (H + (3 if lyr == 0 else D * H)) for lyr in range(layer, 3))
    assert horizon_cost(config, T, layer).macs == want
