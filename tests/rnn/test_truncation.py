"""Truncated BPTT: the path-cost definition across layers and directions, and its clamp."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence, truncation
from app.rnn.network import network_forward
from app.rnn.params import direction_suffix
from app.rnn.truncation import effective_truncate, longest_path
from tests.rnn.reference import reference_step, state_size
from tests.rnn.test_gradcheck import EPS, rel_error


def weights_of(params, layer, d):
    sfx = f"l{layer}{direction_suffix(d)}"
    return [params[f"rnn.{n}_{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def expanded_loss(config, params, x, y, k, base, offset=None, x_offset=None):
    """Sum over loss positions tau of the loss in tau's cost-expanded graph.

    A copy of state (layer, d, t) at cost c reads the previous state in d's order as its
    copy at cost c+1, or, past the budget k, as a detached constant (the plain forward
    value in `base`); it reads the layer below at the same position at the same cost c.
    The loss at tau reads the top layer's copies at cost 0 at tau. So the derivative
    flows exactly along the paths of cost <= k. `offset` = ((layer, d, t), (H,)) is added
    to h in every copy of that state; `x_offset` = ((t, i), value) to one input.
    """
    L, D, H, T = config.num_layers, config.num_directions, config.hidden_size, x.shape[0]
    xs = x.copy()
    if x_offset is not None:
        xs[x_offset[0]] += x_offset[1]

    @cache
    def state(layer, d, t, c):
        t_prev = t - 1 if d == 0 else t + 1
        if not 0 <= t_prev < T:
            s_prev = np.zeros(state_size(config.cell, H))
        elif c + 1 <= k:
            s_prev = state(layer, d, t_prev, c + 1)
        else:
            s_prev = base[layer][d][t_prev]  # out of budget: a constant
        if layer == 0:
            inp = xs[t]
        else:
            inp = np.concatenate([state(layer - 1, e, t, c)[:H] for e in range(D)])
        s = reference_step(config.cell, inp, s_prev, *weights_of(params, layer, d))[0]
        if offset is not None and offset[0] == (layer, d, t):
            s = s.copy()
            s[:H] += offset[1]
        return s

    total = 0.0
    for tau in range(T):
        top = np.concatenate([state(L - 1, d, tau, 0)[:H] for d in range(D)])
        out = params["head.weight"] @ top + params["head.bias"]
        total += float(np.sum((out - y[tau]) ** 2)) / y.size
    return total


def plain_states(config, params, x):
    """[layer][d][t] -> state (S,), by the reference step: the detached constants."""
    H, T = config.hidden_size, x.shape[0]
    states, inp = [], x
    for layer in range(config.num_layers):
        per_d, outs = [], []
        for d in range(config.num_directions):
            s, seq = np.zeros(state_size(config.cell, H)), [None] * T
            for t in range(T - 1, -1, -1) if d == 1 else range(T):
                s = reference_step(config.cell, inp[t], s, *weights_of(params, layer, d))[0]
                seq[t] = s
            per_d.append(seq)
            outs.append(np.array([v[:H] for v in seq]))
        states.append(per_d)
        inp = np.concatenate(outs, axis=1)
    return states


TRUNCATION_GRID = [
    (cell, layers, bidirectional, 1)
    for cell in CELLS
    for layers in (1, 2, 3)
    for bidirectional in (False, True)
] + [(cell, 3, True, 2) for cell in CELLS]


@pytest.mark.parametrize(("cell", "layers", "bidirectional", "k"), TRUNCATION_GRID)
def test_truncated_bptt_follows_paths_of_cost_at_most_k(cell, layers, bidirectional, k):
    """Every state gradient, the input gradient and the bottom layer's weights against
    central differences of the cost-expanded graph."""
    config = ModelConfig(
        cell=cell, input_size=1, hidden_size=2, num_layers=layers, bidirectional=bidirectional
    )
    params = init_params(config, seed=7, scale=2.0)
    rng = np.random.default_rng(8)
    T = 4
    x, y = rng.standard_normal((T, 1)), rng.standard_normal((T, 1))
    trace = run_sequence(config, params, x, y, truncate=k)
    assert trace.truncate == k
    base = plain_states(config, params, x)

    def central(f, h=1e-3):
        """Five-point central difference: small entries (1e-5) need its O(h^4) error."""
        return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)

    H = config.hidden_size
    numeric = np.zeros_like(trace.grad_hidden)
    for layer, d, t, unit in np.ndindex(numeric.shape):
        e = np.eye(H)[unit]
        numeric[layer, d, t, unit] = central(
            lambda h, w=(layer, d, t), e=e: expanded_loss(
                config, params, x, y, k, base, offset=(w, h * e)
            )
        )
    assert rel_error(trace.grad_hidden, numeric) < 1e-6

    numeric_x = np.array(
        [
            central(
                lambda v, t=t: expanded_loss(config, params, x, y, k, base, x_offset=((t, 0), v))
            )
            for t in range(T)
        ]
    )
    assert rel_error(trace.grad_inputs[:, 0], numeric_x) < 1e-6

    for d in range(config.num_directions):
        for name in (
            f"rnn.weight_hh_l0{direction_suffix(d)}",
            f"rnn.bias_ih_l0{direction_suffix(d)}",
        ):
            value = params[name]
            numeric_w = np.zeros_like(value)
            for idx in np.ndindex(value.shape):
                orig = value[idx]

                def shifted(v, idx=idx, orig=orig, value=value):
                    value[idx] = orig + v
                    try:
                        return expanded_loss(config, params, x, y, k, base)
                    finally:
                        value[idx] = orig

                numeric_w[idx] = central(shifted)
            assert rel_error(trace.grads[name], numeric_w) < 1e-6, name

    if layers > 1 and cell != "rnn_relu":  # the budget really cuts something here
        full = run_sequence(config, params, x, y)
        assert rel_error(trace.grad_hidden, full.grad_hidden) > 1e-6


def truncated_reference(config, params, x, y, k):
    """BPTT(k) for one layer, by definition: the loss at position s differentiated with the
    state k+1 steps before it (in the direction's order) held constant."""
    H, T = config.hidden_size, x.shape[0]
    base = run_sequence(config, params, x)

    def position_loss(p, s):
        """Loss term of position s with frozen earlier states, as a function of params p."""
        hs = []
        for d in range(config.num_directions):
            sfx = f"l0{direction_suffix(d)}"
            weights = [
                p[f"rnn.{n}_{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            order = list(range(T - 1, -1, -1)) if d == 1 else list(range(T))
            pos = order.index(s)
            start = max(0, pos - k)
            state = np.zeros(state_size(config.cell, H))
            if start > 0:
                t0 = order[start - 1]
                state = np.concatenate(
                    [base.hidden[0, d, t0]]
                    + ([base.cell[0, d, t0]] if config.cell == "lstm" else [])
                )
            for t in order[start : pos + 1]:
                state = reference_step(config.cell, x[t], state, *weights)[0]
            hs.append(state[:H])
        out = np.concatenate(hs) @ p["head.weight"].T + p["head.bias"]
        return float(np.sum((out - y[s]) ** 2)) / y.size

    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            total = 0.0
            for s in range(T):
                orig = value[idx]
                value[idx] = orig + EPS
                plus = position_loss(params, s)
                value[idx] = orig - EPS
                minus = position_loss(params, s)
                value[idx] = orig
                total += (plus - minus) / (2 * EPS)
            g[idx] = total
        grads[name] = g
    return grads


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_one_layer_truncation_matches_williams_and_peng(cell, bidirectional, k):
    config = ModelConfig(
        cell=cell, input_size=2, hidden_size=3, bidirectional=bidirectional, output_size=2
    )
    params = init_params(config, seed=5, scale=2.0)
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    trace = run_sequence(config, params, x, y, truncate=k)
    reference = truncated_reference(config, params, x, y, k)
    for name in params:
        assert rel_error(trace.grads[name], reference[name]) < 1e-6, name
    full = run_sequence(config, params, x, y)
    assert rel_error(trace.grads["rnn.weight_hh_l0"], full.grads["rnn.weight_hh_l0"]) > 1e-4


@pytest.mark.parametrize(
    ("layers", "bidirectional"), [(1, False), (3, False), (1, True), (3, True)]
)
def test_truncation_is_clamped_to_the_longest_path(layers, bidirectional):
    config = ModelConfig(
        cell="lstm", input_size=2, hidden_size=3, num_layers=layers, bidirectional=bidirectional
    )
    params = init_params(config, seed=1)
    rng = np.random.default_rng(2)
    T = 6
    x, y = rng.standard_normal((T, 2)), rng.standard_normal((T, 1))
    longest = longest_path(layers, bidirectional, T)
    assert longest == (T - 1) * (layers if bidirectional else 1)
    full = run_sequence(config, params, x, y)
    for k in (longest, longest + 1, 10**6):
        clamped = run_sequence(config, params, x, y, truncate=k)
        assert clamped.truncate is None  # reported as what ran: full BPTT
        for name in params:
            assert np.array_equal(clamped.grads[name], full.grads[name])
    # one step short of the longest path still cuts the path that uses every step
    cut = run_sequence(config, params, x, y, truncate=longest - 1)
    assert cut.truncate == longest - 1
    assert rel_error(cut.grad_inputs, full.grad_inputs) > 1e-12
    assert effective_truncate(None, layers, bidirectional, T) is None


@pytest.mark.parametrize("layers", [1, 2, 4])
def test_the_budget_does_not_restart_in_each_layer(layers):
    """The issue's case: truncate=1, loss at t=9 only. The earliest input with a gradient
    is t=8 at every depth (it was t=8, 7, 5 for 1, 2, 4 layers)."""
    config = ModelConfig(
        cell="gru", input_size=1, hidden_size=3, num_layers=layers, output_mode="last"
    )
    params = init_params(config, seed=3, scale=2.0)
    x = np.random.default_rng(4).standard_normal((10, 1))
    trace = run_sequence(config, params, x, np.zeros(1), truncate=1)
    reached = np.flatnonzero(trace.grad_inputs[:, 0] != 0)
    assert reached.tolist() == [8, 9]
    assert np.all(trace.grad_hidden[:, 0, :8] == 0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("T", "k"), [(7, 1), (9, 3), (12, 5), (13, 11), (20, 6)])
def test_one_layer_window_method_equals_the_levels(cell, bidirectional, T, k, monkeypatch):
    """The O(T) block method for one-layer networks against the level-by-level loop
    (itself checked against the cost-expanded graph above)."""
    config = ModelConfig(
        cell=cell, input_size=2, hidden_size=3, bidirectional=bidirectional, output_size=2
    )
    params = init_params(config, seed=1, scale=1.5)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((T, 2)), rng.standard_normal((T, 2))
    runs = {}
    for window in (True, False):
        monkeypatch.setattr(truncation, "_window_is_cheaper", lambda *a, w=window: w)
        runs[window] = run_sequence(config, params, x, y, truncate=k)
    for name in params:
        assert rel_error(runs[True].grads[name], runs[False].grads[name]) < 1e-12, name
    assert rel_error(runs[True].grad_hidden, runs[False].grad_hidden) < 1e-12
    assert rel_error(runs[True].grad_inputs, runs[False].grad_inputs) < 1e-12


def test_the_cheaper_method_is_chosen_by_its_work():
    """Long windows in one-layer networks go to the block method, short ones (and 'last'
    mode, where the head reaches one position) to the levels."""
    config = ModelConfig(cell="lstm", input_size=1, hidden_size=8)
    params = init_params(config, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 200, 1))
    _, cache = network_forward(config, params, x)
    lc = cache.layers[0][0]
    everywhere = np.ones((200, 1, 8))
    assert truncation._window_is_cheaper(everywhere, lc, 150)
    assert not truncation._window_is_cheaper(everywhere, lc, 2)
    last_only = np.zeros((200, 1, 8))
    last_only[-1] = 1.0
    assert not truncation._window_is_cheaper(last_only, lc, 150)
