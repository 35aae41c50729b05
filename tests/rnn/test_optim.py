"""Optimizer steps against hand computations, and clipping."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn.optim import Optimizer, OptimizerConfig, clip_by_norm, clip_by_value, global_norm


def one_param(value):
    return {"w": np.array(value, dtype=np.float64)}


def test_sgd():
    p = one_param([1.0, -2.0])
    Optimizer(OptimizerConfig("sgd", 0.1), p).step(p, one_param([0.5, 1.0]))
    np.testing.assert_allclose(p["w"], [0.95, -2.1])


def test_momentum_matches_torch_rule():
    p = one_param([1.0])
    opt = Optimizer(OptimizerConfig("momentum", 0.1, momentum=0.9), p)
    opt.step(p, one_param([1.0]))  # buf = 1
    opt.step(p, one_param([2.0]))  # buf = 0.9 * 1 + 2 = 2.9
    np.testing.assert_allclose(p["w"], [1.0 - 0.1 - 0.29])


def test_adam_by_hand():
    p = one_param([0.5])
    opt = Optimizer(OptimizerConfig("adam", 0.01), p)
    g1, g2 = 0.3, -0.2
    opt.step(p, one_param([g1]))
    # step 1: m_hat = g, v_hat = g^2, update = lr * g / (|g| + eps)
    expected = 0.5 - 0.01 * g1 / (abs(g1) + 1e-8)
    np.testing.assert_allclose(p["w"], [expected], rtol=1e-12)
    opt.step(p, one_param([g2]))
    m = 0.9 * 0.1 * g1 + 0.1 * g2
    v = 0.999 * 0.001 * g1**2 + 0.001 * g2**2
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    expected -= 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(p["w"], [expected], rtol=1e-12)


def test_adam_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(5)]
    p = {"w": start.copy()}
    opt = Optimizer(OptimizerConfig("adam", 0.05, weight_decay=0.01), p)
    tp = torch.tensor(start.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.05, weight_decay=0.01)
    for g in grads:
        opt.step(p, {"w": g})
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p["w"], tp.detach().numpy(), rtol=1e-10)


def test_clip_by_norm():
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    before = clip_by_norm(grads, 1.0)
    assert before == 5.0
    assert global_norm(grads) == pytest.approx(1.0, rel=1e-5)
    small = {"a": np.array([0.3])}
    clip_by_norm(small, 1.0)
    assert small["a"][0] == 0.3  # under the limit: untouched


def test_clip_by_value():
    grads = {"a": np.array([-5.0, 0.5, 7.0])}
    clip_by_value(grads, 1.0)
    np.testing.assert_array_equal(grads["a"], [-1.0, 0.5, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "rmsprop"}, "optimizer.name"),
        ({"learning_rate": 0}, "optimizer.learning_rate"),
        ({"momentum": 1.0}, "optimizer.momentum"),
    ],
)
def test_bad_optimizer(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        OptimizerConfig(**kwargs)
