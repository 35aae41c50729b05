"""Parameter layout and initialization schemes."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import ModelConfig, check_params, init_params, param_shapes, recurrent_spectrum


def test_pytorch_names_and_shapes():
    config = ModelConfig(
        cell="lstm", input_size=3, hidden_size=5, num_layers=2, bidirectional=True, output_size=2
    )
    shapes = param_shapes(config)
    assert list(shapes)[:4] == [
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
    ]
    assert shapes["rnn.weight_ih_l0_reverse"] == (20, 3)
    assert shapes["rnn.weight_ih_l1"] == (20, 10)
    assert shapes["rnn.weight_hh_l1_reverse"] == (20, 5)
    assert shapes["head.weight"] == (2, 10)
    assert len(shapes) == 2 * 2 * 4 + 2


@pytest.mark.parametrize("scheme", ["pytorch", "xavier", "orthogonal", "identity"])
def test_init_is_deterministic_and_float64(scheme):
    config = ModelConfig(cell="gru", input_size=2, hidden_size=4, num_layers=2)
    a, b = init_params(config, seed=7, scheme=scheme), init_params(config, seed=7, scheme=scheme)
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.float64 for k in a)
    c = init_params(config, seed=8, scheme=scheme)
    assert not np.array_equal(a["rnn.weight_ih_l0"], c["rnn.weight_ih_l0"])


def test_pytorch_scheme_bounds():
    config = ModelConfig(cell="lstm", input_size=2, hidden_size=16)
    p = init_params(config, seed=0)
    bound = 1 / np.sqrt(16)
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"):
        assert np.abs(p[name]).max() <= bound
        assert np.abs(p[name]).max() > 0.9 * bound


def test_scale_moves_the_spectral_radius():
    config = ModelConfig(cell="rnn_tanh", input_size=1, hidden_size=6)
    ortho = recurrent_spectrum(config, init_params(config, scheme="orthogonal", scale=1.3))[0]
    np.testing.assert_allclose(np.abs(ortho.eigenvalues), 1.3)
    ident = init_params(config, scheme="identity", scale=0.9)
    np.testing.assert_array_equal(ident["rnn.weight_hh_l0"], 0.9 * np.eye(6))
    assert not ident["rnn.bias_hh_l0"].any()


def test_gate_blocks_are_independent():
    """Each gate gets its own draw: identical blocks would make the gates move in lockstep."""
    config = ModelConfig(cell="lstm", input_size=3, hidden_size=4)
    for scheme in ("pytorch", "xavier", "orthogonal"):
        W = init_params(config, seed=0, scheme=scheme)["rnn.weight_hh_l0"]
        blocks = [W[k * 4 : (k + 1) * 4] for k in range(4)]
        assert not any(np.array_equal(blocks[i], blocks[j]) for i in range(4) for j in range(i))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scheme": "he"}, "scheme"),
        ({"scale": -1}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"seed": -3}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_init_arguments(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        init_params(ModelConfig(), **kwargs)


def test_check_params_names_the_tensor():
    config = ModelConfig(cell="gru", input_size=2, hidden_size=3)
    p = init_params(config)
    with pytest.raises(ValueError, match="missing.*rnn.bias_hh_l0"):
        check_params(config, {k: v for k, v in p.items() if k != "rnn.bias_hh_l0"})
    with pytest.raises(ValueError, match="unexpected.*rnn.weight_ih_l1"):
        check_params(config, p | {"rnn.weight_ih_l1": np.zeros((9, 3))})
    with pytest.raises(ValueError, match=r"params.head.weight: expected shape \(1, 3\)"):
        check_params(config, p | {"head.weight": np.zeros((2, 3))})
    bad = p["rnn.weight_hh_l0"].copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="params.rnn.weight_hh_l0: contains NaN"):
        check_params(config, p | {"rnn.weight_hh_l0": bad})


def test_spectrum_blocks_per_gate():
    config = ModelConfig(cell="gru", input_size=1, hidden_size=3, num_layers=2, bidirectional=True)
    params = init_params(config, seed=2)
    blocks = recurrent_spectrum(config, params)
    assert len(blocks) == 2 * 2 * 3
    assert [b.gate for b in blocks[:3]] == ["reset", "update", "new"]
    b = blocks[-1]
    assert (b.layer, b.direction, b.gate, b.param) == (1, 1, "new", "rnn.weight_hh_l1_reverse")
    block = params[b.param][6:9]
    assert b.spectral_radius == pytest.approx(max(abs(np.linalg.eigvals(block))))
    assert b.spectral_radius <= b.spectral_norm + 1e-12
