"""run_sequence: shapes, determinism, overflow reporting and input validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence


@pytest.mark.parametrize("cell", CELLS)
def test_shapes(cell):
    config = ModelConfig(
        cell=cell, input_size=3, hidden_size=4, num_layers=2, bidirectional=True, output_size=2
    )
    params = init_params(config, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3))
    y = np.zeros((5, 2))
    tr = run_sequence(config, params, x, y, jacobians=True)
    assert tr.outputs.shape == (5, 2)
    assert tr.hidden.shape == tr.grad_hidden.shape == (2, 2, 5, 4)
    assert tr.grad_inputs.shape == (5, 3)
    assert (
        tr.grad_step_norms.shape
        == tr.jacobian_norm.shape
        == tr.jacobian_product_norm.shape
        == (2, 2, 5)
    )
    assert tr.loss_per_step.shape == (5,)
    assert tr.loss == pytest.approx(tr.loss_per_step.mean(), rel=1e-14)
    assert {k: v.shape for k, v in tr.grads.items()} == {k: v.shape for k, v in params.items()}
    if cell == "lstm":
        assert tr.cell.shape == tr.grad_cell.shape == (2, 2, 5, 4)
        assert list(tr.gates) == ["input", "forget", "cell", "output"]
    elif cell == "gru":
        assert tr.cell is None and list(tr.gates) == ["reset", "update", "new"]
    else:
        assert tr.cell is None and tr.gates == {}
    for g in tr.gates.values():
        assert g.shape == (2, 2, 5, 4)


def test_forward_only_has_no_gradients():
    config = ModelConfig(cell="gru", input_size=1, hidden_size=3)
    tr = run_sequence(config, init_params(config), np.ones((4, 1)))
    assert tr.loss is None and tr.grads is None and tr.grad_hidden is None
    assert tr.jacobian_norm is None and tr.finite


def test_identical_runs_are_bit_identical():
    config = ModelConfig(cell="lstm", input_size=2, hidden_size=6, num_layers=2, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((9, 2))
    y = np.random.default_rng(2).standard_normal((9, 1))
    a = run_sequence(config, init_params(config, seed=11), x, y, jacobians=True, truncate=3)
    b = run_sequence(config, init_params(config, seed=11), x, y, jacobians=True, truncate=3)
    for field in (
        "outputs",
        "hidden",
        "cell",
        "grad_hidden",
        "grad_inputs",
        "grad_step_norms",
        "jacobian_norm",
        "jacobian_product_norm",
        "loss_per_step",
    ):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.loss == b.loss
    for name in a.grads:
        assert np.array_equal(a.grads[name], b.grads[name])
    c = run_sequence(config, init_params(config, seed=12), x, y)
    assert not np.array_equal(a.hidden, c.hidden)


def test_last_mode_reads_output_minus_one():
    """Bidirectional 'last': forward state at T-1 and reverse state at position T-1."""
    config = ModelConfig(
        cell="rnn_tanh",
        input_size=1,
        hidden_size=3,
        bidirectional=True,
        output_mode="last",
        output_size=2,
    )
    params = init_params(config, seed=4)
    x = np.random.default_rng(3).standard_normal((6, 1))
    tr = run_sequence(config, params, x, np.zeros(2))
    top = np.concatenate([tr.hidden[0, 0, -1], tr.hidden[0, 1, -1]])
    np.testing.assert_allclose(tr.outputs, params["head.weight"] @ top + params["head.bias"])
    assert tr.loss_per_step is None
    # the reverse direction's last position is its first step: only one step of gradient
    assert np.count_nonzero(tr.grad_hidden[0, 1].any(axis=1)) == 1


def test_exploding_gradients_are_reported_not_raised():
    config = ModelConfig(cell="rnn_relu", input_size=1, hidden_size=8)
    params = init_params(config, seed=0, scheme="identity", scale=60.0)
    x = np.full((200, 1), 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy overflow warnings would fail here
        tr = run_sequence(config, params, x, np.zeros((200, 1)), jacobians=True)
    assert not tr.finite
    assert not np.all(np.isfinite(tr.hidden))


def test_an_exploded_relu_network_reads_overflowed_not_vanishing():
    """Identity init at scale 100: h grows 100x a step until it overflows. The Jacobian
    norms there are NaN (null on the page), never the 0 that `h > 0` gives for NaN."""
    config = ModelConfig(cell="rnn_relu", input_size=1, hidden_size=4)
    params = init_params(config, seed=0, scheme="identity", scale=100.0)
    T = 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = run_sequence(config, params, np.ones((T, 1)), np.zeros((T, 1)), jacobians=True)
    assert not tr.finite
    finite_states = np.all(np.isfinite(tr.hidden[0, 0]), axis=1)
    overflow = int(np.argmin(finite_states))
    assert 0 < overflow < T and not finite_states[overflow:].any()
    one_step, product = tr.jacobian_norm[0, 0], tr.jacobian_product_norm[0, 0]
    np.testing.assert_allclose(one_step[:overflow], 100.0, rtol=1e-12)
    assert np.all(np.isnan(one_step[overflow:]))
    assert np.all(np.isnan(product))  # every product to s_last crosses the overflow
    assert not np.any(one_step == 0) and not np.any(product == 0)


def test_vanishing_gradients_are_visible():
    config = ModelConfig(cell="rnn_tanh", input_size=1, hidden_size=8)
    params = init_params(config, seed=0, scheme="orthogonal", scale=0.5)
    x = np.random.default_rng(0).standard_normal((40, 1))
    tr = run_sequence(config, params, x, np.zeros((40, 1)), jacobians=True)
    assert tr.finite
    prod = tr.jacobian_product_norm[0, 0]
    assert prod[0] < 1e-8 < prod[-2] and prod[-1] == 1.0
    assert np.all(tr.jacobian_norm <= 0.5 + 1e-12)  # ||diag(tanh') W|| <= ||W|| = 0.5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"inputs": np.ones((4, 3))}, "inputs"),
        ({"inputs": np.ones((0, 2))}, "inputs"),
        ({"inputs": [[1.0, np.nan]] * 3}, "inputs"),
        ({"inputs": [["a", "b"]]}, "inputs"),
        ({"targets": np.ones((4, 2))}, "targets"),
        ({"targets": np.ones((3, 1))}, "targets"),
        ({"targets": [[np.inf]] * 4}, "targets"),
        ({"truncate": 0}, "truncate"),
        ({"truncate": 2.5}, "truncate"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    config = ModelConfig(cell="gru", input_size=2, hidden_size=3)
    args = {"inputs": np.ones((4, 2)), "targets": np.ones((4, 1))} | kwargs
    truncate = args.pop("truncate", None)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        run_sequence(
            config, init_params(config), args["inputs"], args["targets"], truncate=truncate
        )


@pytest.mark.parametrize("targets", [[0, 1, 3, 1], [0, 1, -1, 1], [0, 1.5, 1, 1]])
def test_bad_class_targets(targets):
    config = ModelConfig(
        cell="lstm", input_size=1, hidden_size=2, head="classification", output_size=3
    )
    with pytest.raises(ValueError, match="^targets: class indices"):
        run_sequence(config, init_params(config), np.ones((4, 1)), targets)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cell": "transformer"}, "cell"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_layers": 1.5}, "num_layers"),
        ({"input_size": True}, "input_size"),
        ({"head": "ranking"}, "head"),
        ({"output_mode": "first"}, "output_mode"),
        ({"bidirectional": "yes"}, "bidirectional"),
        ({"head": "classification", "output_size": 1}, "output_size"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        ModelConfig(**kwargs)


def test_config_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown field.*dropout"):
        ModelConfig.from_dict({"cell": "gru", "dropout": 0.1})
    assert ModelConfig.from_dict(ModelConfig(cell="gru").to_dict()) == ModelConfig(cell="gru")
