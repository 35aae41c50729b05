"""Central-difference checks, in float64, of every gradient the trace reports."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence
from app.rnn.loss import loss_and_grad
from app.rnn.network import network_forward
from app.rnn.params import direction_suffix
from tests.rnn.reference import reference_step, state_size

EPS = 1e-6
TOL = 1e-6


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Norm-wise relative error, robust for tensors whose entries are near zero."""
    num = np.linalg.norm(np.asarray(analytic) - np.asarray(numeric))
    den = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(num / den) if den > 0 else float(num)


def make_problem(cell, num_layers, bidirectional, head, output_mode, seed=0, T=4):
    O = 3 if head == "classification" else 2
    config = ModelConfig(
        cell=cell,
        input_size=2,
        hidden_size=3,
        num_layers=num_layers,
        bidirectional=bidirectional,
        output_size=O,
        head=head,
        output_mode=output_mode,
    )
    # scale the recurrence up so gradients through many steps are not negligible
    params = init_params(config, seed=seed, scale=2.0)
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((T, 2))
    if head == "classification":
        y = rng.integers(0, O, size=(T,) if output_mode == "sequence" else ())
    else:
        y = rng.standard_normal((T, O) if output_mode == "sequence" else (O,))
    return config, params, x, y


def loss_of(config, params, x, y):
    # forward and loss only: central differences need no gradients (run_sequence does ~6x more)
    outputs, _ = network_forward(config, params, np.asarray(x, dtype=np.float64)[None])
    return loss_and_grad(config.head, outputs, np.asarray(y, dtype=np.float64)[None])[0]


def numeric_param_grads(config, params, x, y):
    grads = {}
    for name, value in params.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            orig = value[idx]
            value[idx] = orig + EPS
            plus = loss_of(config, params, x, y)
            value[idx] = orig - EPS
            minus = loss_of(config, params, x, y)
            value[idx] = orig
            g[idx] = (plus - minus) / (2 * EPS)
        grads[name] = g
    return grads


def reference_loss_with_offset(config, params, x, y, where, offset):
    """Loss with `offset` added to h at (layer, direction, position) as it is computed.

    An independent loop over the cell steps, B = 1, so stacking and direction order are
    checked too: its derivative in `offset` is the total dL/dh_t.
    """
    H, T = config.hidden_size, x.shape[0]
    inp = x
    for layer in range(config.num_layers):
        outs = []
        for d in range(config.num_directions):
            sfx = f"l{layer}{direction_suffix(d)}"
            Wih, Whh = params[f"rnn.weight_ih_{sfx}"], params[f"rnn.weight_hh_{sfx}"]
            bih, bhh = params[f"rnn.bias_ih_{sfx}"], params[f"rnn.bias_hh_{sfx}"]
            s = np.zeros(state_size(config.cell, H))
            hs = np.zeros((T, H))
            for t in range(T - 1, -1, -1) if d == 1 else range(T):
                s, _ = reference_step(config.cell, inp[t], s, Wih, Whh, bih, bhh)
                if where == (layer, d, t):
                    s = s.copy()
                    s[:H] += offset
                hs[t] = s[:H]
            outs.append(hs)
        inp = np.concatenate(outs, axis=1)
    W, b = params["head.weight"], params["head.bias"]
    if config.output_mode == "sequence":
        read = inp
    elif config.output_mode == "final" and config.bidirectional:
        read = np.concatenate([inp[-1, :H], inp[0, H:]])  # forward at T-1, reverse at 0
    else:
        read = inp[-1]
    out = read @ W.T + b
    if config.head == "regression":
        return float(np.mean((out - y) ** 2))
    logits = np.atleast_2d(out)
    labels = np.atleast_1d(y).astype(int)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


GRID = list(
    itertools.product(
        CELLS,
        (1, 2),
        (False, True),
        ("regression", "classification"),
        ("sequence", "last", "final"),
    )
)


@pytest.mark.parametrize(("cell", "num_layers", "bidirectional", "head", "output_mode"), GRID)
def test_gradients_match_central_differences(cell, num_layers, bidirectional, head, output_mode):
    config, params, x, y = make_problem(cell, num_layers, bidirectional, head, output_mode)
    trace = run_sequence(config, params, x, y)
    assert trace.finite

    # the reference forward agrees with the engine before its derivatives are trusted
    ref = reference_loss_with_offset(config, params, x, y, None, 0.0)
    assert abs(ref - trace.loss) < 1e-12

    numeric = numeric_param_grads(config, params, x, y)
    for name in params:
        err = rel_error(trace.grads[name], numeric[name])
        assert err < TOL, f"{name}: rel. error {err:.2e}"

    g_inputs = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += EPS
        xm[idx] -= EPS
        g_inputs[idx] = (loss_of(config, params, xp, y) - loss_of(config, params, xm, y)) / (
            2 * EPS
        )
    assert rel_error(trace.grad_inputs, g_inputs) < TOL

    H = config.hidden_size
    g_hidden = np.zeros_like(trace.grad_hidden)
    for layer, d, t in np.ndindex(g_hidden.shape[:3]):
        for k in range(H):
            e = np.zeros(H)
            e[k] = EPS
            plus = reference_loss_with_offset(config, params, x, y, (layer, d, t), e)
            minus = reference_loss_with_offset(config, params, x, y, (layer, d, t), -e)
            g_hidden[layer, d, t, k] = (plus - minus) / (2 * EPS)
    assert rel_error(trace.grad_hidden, g_hidden) < TOL


@pytest.mark.parametrize("bidirectional", [False, True])
def test_final_reads_each_directions_last_computed_state(bidirectional):
    """final is last with one direction; with two, the reverse half reads position 0."""
    config, params, x, _ = make_problem("gru", 2, bidirectional, "regression", "final")
    last = dataclasses.replace(config, output_mode="last")
    final_out = run_sequence(config, params, x).outputs
    last_out = run_sequence(last, params, x).outputs
    if not bidirectional:
        np.testing.assert_array_equal(final_out, last_out)
        return
    trace = run_sequence(last, params, x)
    H = config.hidden_size
    read = np.concatenate([trace.hidden[-1, 0, -1], trace.hidden[-1, 1, 0]])
    W, b = params["head.weight"], params["head.bias"]
    np.testing.assert_allclose(final_out, read @ W.T + b, rtol=1e-14, atol=1e-15)
    assert not np.allclose(final_out, last_out)
    assert read.shape == (2 * H,)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_cell_state_gradient(bidirectional):
    """grad_cell is the total dL/dc_t, through h_t = o * tanh(c_t) and through c_{t+1}."""
    config, params, x, y = make_problem("lstm", 1, bidirectional, "regression", "sequence")
    trace = run_sequence(config, params, x, y)
    H, T = config.hidden_size, x.shape[0]

    def loss_with_c_offset(d_where, t_where, offset):
        outs = []
        for d in range(config.num_directions):
            sfx = f"l0{direction_suffix(d)}"
            weights = [
                params[f"rnn.{n}_{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            s = np.zeros(2 * H)
            hs = np.zeros((T, H))
            for t in range(T - 1, -1, -1) if d == 1 else range(T):
                s, gates = reference_step("lstm", x[t], s, *weights)
                if (d, t) == (d_where, t_where):
                    # perturb c_t where it is made, so h_t = o * tanh(c_t) sees it too
                    c = s[H:] + offset
                    s = np.concatenate([gates["o"] * np.tanh(c), c])
                hs[t] = s[:H]
            outs.append(hs)
        out = np.concatenate(outs, axis=1) @ params["head.weight"].T + params["head.bias"]
        return float(np.mean((out - y) ** 2))

    numeric = np.zeros_like(trace.grad_cell)
    for d, t, k in np.ndindex(numeric.shape[1:]):
        e = np.zeros(H)
        e[k] = EPS
        numeric[0, d, t, k] = (loss_with_c_offset(d, t, e) - loss_with_c_offset(d, t, -e)) / (
            2 * EPS
        )
    assert rel_error(trace.grad_cell, numeric) < TOL


def test_step_norms_sum_to_weight_hh_gradient():
    """The per-step contributions are real pieces of dL/dW_hh: rebuild it from them."""
    config, params, x, y = make_problem("gru", 1, True, "regression", "sequence")
    trace = run_sequence(config, params, x, y)
    from app.rnn.loss import loss_and_grad
    from app.rnn.network import network_backward, network_forward

    outputs, cache = network_forward(config, params, x[None])
    _, _, d_out = loss_and_grad(config.head, outputs, y[None])
    back = network_backward(d_out, cache)
    for d in range(2):
        lc, lg = cache.layers[0][d], back.layers[0][d]
        h_prev = lc.states_prev[:, 0, : config.hidden_size]
        pieces = np.einsum("tg,th->tgh", lg.da_h[:, 0], h_prev)
        np.testing.assert_allclose(
            pieces.sum(0), trace.grads[f"rnn.weight_hh_l0{direction_suffix(d)}"], atol=1e-14
        )
        np.testing.assert_allclose(
            np.linalg.norm(pieces, axis=(1, 2)), trace.grad_step_norms[0, d], rtol=1e-12
        )
