"""Jacobian norms against finite differences and against an SVD of the explicit matrices."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, jacobian, run_sequence
from app.rnn.cells import CELL_OPS
from app.rnn.jacobian import explicit_jacobian_norms, jacobian_norms, spectral_norms
from app.rnn.layer import layer_jacobians
from app.rnn.network import network_forward
from app.rnn.params import direction_suffix
from tests.rnn.reference import reference_step, state_size
from tests.rnn.test_gradcheck import EPS, rel_error


def fd_jacobian(f, s0):
    """Central-difference Jacobian of f: (S,) -> (S,) at s0, (S, S)."""
    S = s0.size
    J = np.zeros((S, S))
    for j in range(S):
        e = np.zeros(S)
        e[j] = EPS
        J[:, j] = (f(s0 + e) - f(s0 - e)) / (2 * EPS)
    return J


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_jacobian_norms_match_finite_differences(cell, bidirectional):
    config = ModelConfig(
        cell=cell, input_size=2, hidden_size=4, num_layers=2, bidirectional=bidirectional
    )
    params = init_params(config, seed=3, scale=1.5)
    x = np.random.default_rng(4).standard_normal((6, 2))
    trace = run_sequence(config, params, x, jacobians=True)
    _, cache = network_forward(config, params, x[None])
    T = x.shape[0]
    for layer in range(config.num_layers):
        for d in range(config.num_directions):
            lc = cache.layers[layer][d]
            sfx = f"l{layer}{direction_suffix(d)}"
            weights = [
                params[f"rnn.{n}_{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
            layer_in = lc.xs[:, 0]
            order = list(range(T - 1, -1, -1)) if d == 1 else list(range(T))

            def run_from(k, s, stop=None, weights=weights, layer_in=layer_in, order=order):
                """State after processing indices k..stop-1 (to the end by default) from s."""
                for t in order[k:stop]:
                    s = reference_step(cell, layer_in[t], s, *weights)[0]
                return s

            for k, t in enumerate(order):
                s_prev = lc.states_prev[t, 0]
                one = fd_jacobian(lambda s, k=k: run_from(k, s, stop=k + 1), s_prev)
                np.testing.assert_allclose(
                    trace.jacobian_norm[layer, d, t], np.linalg.norm(one, 2), rtol=1e-7
                )
                # d s_last / d s_t: perturb the state at t, run the remaining steps
                prod = fd_jacobian(lambda s, k=k: run_from(k + 1, s), lc.states[t, 0])
                np.testing.assert_allclose(
                    trace.jacobian_product_norm[layer, d, t], np.linalg.norm(prod, 2), rtol=1e-6
                )
            assert trace.jacobian_product_norm[layer, d, order[-1]] == pytest.approx(1.0)


def relative_errors(fast, exact):
    """Max relative error of fast norms against exact ones (exact zeros must be exact)."""
    nonzero = exact != 0
    assert np.array_equal(fast[~nonzero], exact[~nonzero])
    return float(np.max(np.abs(fast[nonzero] - exact[nonzero]) / exact[nonzero], initial=0.0))


def svd_norms(cache, every):
    """One-step and product norms by an SVD of the explicit matrices, at every `every`-th
    position and the last few of the direction's order (SVDs of 128 x 128 are slow)."""
    J = layer_jacobians(cache)[:, 0]
    order = list(cache.order)
    products = np.empty_like(J)
    P = np.eye(J.shape[-1])
    products[order[-1]] = P
    for k in range(len(order) - 1, 0, -1):
        P = P @ J[order[k]]
        products[order[k - 1]] = P
    picked = np.union1d(np.arange(0, len(order), every), order[-4:])
    return picked, spectral_norms(J[picked]), spectral_norms(products[picked])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("H", "T", "scale", "every"), [(64, 200, 1.0, 3), (16, 60, 3.0, 1), (5, 9, 0.3, 1)]
)
def test_fast_norms_equal_the_svd_of_explicit_matrices(cell, H, T, scale, every):
    """Lanczos through the cell's structure and the running product against an SVD of
    the explicit (S, S) matrices, both directions."""
    config = ModelConfig(cell=cell, input_size=2, hidden_size=H, bidirectional=True)
    params = init_params(config, seed=2, scale=scale)
    x = np.random.default_rng(5).standard_normal((1, T, 2))
    _, cache = network_forward(config, params, x)
    for lc in cache.layers[0]:
        one_step, product = jacobian_norms(lc)
        picked, exact_one, exact_product = svd_norms(lc, every)
        assert relative_errors(one_step[picked], exact_one) < 1e-6
        assert relative_errors(product[picked], exact_product) < 1e-6


def test_unconverged_positions_fall_back_to_the_svd(monkeypatch):
    """When Lanczos and the tracked subspace certify nothing, every position takes the
    exact fallback (the top eigenvalue of its one Gram matrix)."""
    config = ModelConfig(cell="lstm", input_size=2, hidden_size=20)  # S = 40: Lanczos
    params = init_params(config, seed=1)
    x = np.random.default_rng(2).standard_normal((1, 40, 2))
    _, cache = network_forward(config, params, x)
    lc = cache.layers[0][0]
    monkeypatch.setattr(jacobian, "MAX_STEPS", 2)
    monkeypatch.setattr(jacobian, "TOLERANCE", -1.0)  # nothing is ever certified
    one_step, product = jacobian_norms(lc)
    exact_one, exact_product = explicit_jacobian_norms(lc)
    assert relative_errors(one_step, exact_one) < 1e-12
    assert relative_errors(product, exact_product) < 1e-12


@pytest.mark.parametrize("cell", CELLS)
def test_cell_jacobian_matrix_matches_finite_differences(cell):
    """The analytic per-step Jacobian of the fast cell against the reference step, B = 2."""
    ops = CELL_OPS[cell]
    H, B, I = 3, 2, 2
    rng = np.random.default_rng(7)
    G = ops.gate_multiple
    Wih, Whh = rng.standard_normal((G * H, I)), rng.standard_normal((G * H, H))
    bih, bhh = rng.standard_normal(G * H), rng.standard_normal(G * H)
    x = rng.standard_normal((B, I))
    s_prev = rng.standard_normal((B, state_size(cell, H)))
    record = ops.forward((x @ Wih.T + bih)[None], Whh, bhh, [0], s0=s_prev.copy())
    J = ops.jacobians(record, Whh)[0]
    for b in range(B):
        new_state = reference_step(cell, x[b], s_prev[b], Wih, Whh, bih, bhh)[0]
        np.testing.assert_allclose(record.states[0, b], new_state, rtol=1e-13, atol=1e-15)
        numeric = fd_jacobian(
            lambda s, b=b: reference_step(cell, x[b], s, Wih, Whh, bih, bhh)[0], s_prev[b]
        )
        assert rel_error(J[b], numeric) < 1e-8
