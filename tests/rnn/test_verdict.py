"""The gradient verdict on constructed cases: each label, and the reason it gives."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import ModelConfig, init_params, recurrent_spectrum, run_sequence
from app.rnn.verdict import gradient_verdict


def _verdict(
    cell: str,
    scheme: str = "pytorch",
    scale: float = 1.0,
    length: int = 20,
    amplitude: float = 1.0,
    forget_bias: float | None = None,
    truncate: int | None = None,
    output_mode: str = "sequence",
    bidirectional: bool = False,
    jacobians: bool = True,
) -> dict:
    config = ModelConfig(
        cell=cell, hidden_size=8, output_mode=output_mode, bidirectional=bidirectional
    )
    params = init_params(config, seed=0, scheme=scheme, scale=scale)
    if forget_bias is not None:
        bias = params["rnn.bias_hh_l0"].copy()
        bias[8:16] = forget_bias  # the forget gate's rows (PyTorch order i, f, g, o)
        params["rnn.bias_hh_l0"] = bias
    inputs = amplitude * np.sin(np.arange(length) / 3.0)[:, None]
    targets = np.zeros((length, 1)) if output_mode == "sequence" else np.zeros(1)
    trace = run_sequence(config, params, inputs, targets, jacobians=jacobians, truncate=truncate)
    return gradient_verdict(trace, recurrent_spectrum(config, params))


def test_identity_relu_at_scale_100_overflows_and_says_so():
    verdict = _verdict("rnn_relu", "identity", 100.0, length=200)
    assert verdict["verdict"] == "overflowed"
    assert "ReLU overflow" in verdict["reason"]
    assert "spectral radius 100" in verdict["reason"]
    assert verdict["rate"] is None and verdict["surviving"] is None


def test_identity_relu_at_scale_100_before_overflow_explodes():
    verdict = _verdict("rnn_relu", "identity", 100.0, length=12)
    assert verdict["verdict"] == "exploding"
    assert verdict["rate"] == pytest.approx(100.0, rel=1e-6)


def test_tanh_at_scale_4_vanishes_by_saturation():
    verdict = _verdict("rnn_tanh", scale=4.0)
    assert verdict["verdict"] == "vanishing"
    assert "saturation" in verdict["reason"]
    assert "above 1" in verdict["reason"]  # the radius explains nothing by itself
    assert verdict["rate"] < 0.9


def test_orthogonal_tanh_on_a_short_sequence_is_stable():
    verdict = _verdict("rnn_tanh", "orthogonal", 1.0, length=8, amplitude=0.1)
    assert verdict["verdict"] == "stable"
    assert 0.9 <= verdict["rate"] <= 1 / 0.9
    assert verdict["steps"] == 7
    assert verdict["surviving_to_start"] == verdict["surviving"]


def test_a_quarter_percent_surviving_twenty_steps_is_not_stable():
    verdict = _verdict("lstm")  # PyTorch init: about 0.0026 is left after 19 steps
    assert verdict["surviving"] < 0.01
    assert verdict["verdict"] == "vanishing"
    assert "forget gate" in verdict["reason"]


def test_lstm_with_a_large_forget_bias_decays_slowly_and_names_the_forget_gate():
    verdict = _verdict("lstm", forget_bias=5.0)
    assert verdict["verdict"] == "stable"
    assert "forget gate" in verdict["reason"]
    assert "0.99" in verdict["reason"]  # its mean forget gate value


def test_rate_is_the_geometric_mean_of_the_product_norm_ratios():
    config = ModelConfig(cell="gru", hidden_size=4)
    params = init_params(config, seed=3)
    inputs = np.linspace(-1, 1, 9)[:, None]
    trace = run_sequence(config, params, inputs, np.zeros((9, 1)), jacobians=True)
    products = trace.jacobian_product_norm[0, 0]
    ratios = products[:-1] / products[1:]  # one step further back each
    verdict = gradient_verdict(trace)
    assert verdict["rate"] == pytest.approx(np.exp(np.mean(np.log(ratios))), rel=1e-12)
    assert verdict["surviving"] == pytest.approx(products[0], rel=1e-12)
    assert "not given" in verdict["reason"]  # no spectrum passed


def test_truncation_counts_only_the_steps_it_reaches_and_says_it_stops_the_gradient():
    verdict = _verdict("rnn_tanh", "orthogonal", 1.0, amplitude=0.1, truncate=5)
    assert verdict["truncated"] and verdict["truncate"] == 5
    assert verdict["steps"] == 5
    assert verdict["verdict"] == "stable"
    assert verdict["surviving_to_start"] == 0.0  # nothing from position 19 reaches 0
    assert "truncation, not decay" in verdict["reason"]
    full = _verdict("rnn_tanh", "orthogonal", 1.0, amplitude=0.1)
    assert full["steps"] == 19 and not full["truncated"]


def test_without_jacobians_last_mode_measures_the_gradient_itself():
    with_products = _verdict("rnn_tanh", "orthogonal", 1.0, output_mode="last")
    from_gradient = _verdict("rnn_tanh", "orthogonal", 1.0, output_mode="last", jacobians=False)
    assert from_gradient["source"] == "grad_hidden"
    assert with_products["source"] == "jacobian_product"
    assert from_gradient["verdict"] in ("stable", "vanishing")
    truncated = _verdict(
        "rnn_tanh", "orthogonal", 1.0, output_mode="last", jacobians=False, truncate=4
    )
    assert truncated["steps"] == 4 and truncated["surviving"] > 0


def test_nothing_to_measure_is_none_not_stable():
    verdict = _verdict("rnn_tanh", jacobians=False)  # sequence mode, no Jacobian norms
    assert verdict["verdict"] == "none"
    assert "jacobians" in verdict["reason"]
    assert _verdict("rnn_tanh", length=1)["verdict"] == "none"


def test_bidirectional_last_mode_flags_the_reverse_direction():
    verdict = _verdict("rnn_tanh", "orthogonal", 1.0, output_mode="last", bidirectional=True)
    reverse = [item for item in verdict["layers"] if item["direction"] == 1]
    assert len(reverse) == 1 and reverse[0]["linked"] is False
    assert "no link to the loss" in reverse[0]["reason"]
    assert any("output[-1]" in note for note in verdict["notes"])
    assert verdict["direction"] == 0  # the decisive one is linked to the loss
    plain = _verdict("rnn_tanh", "orthogonal", 1.0, bidirectional=True)
    assert plain["notes"] == [] and all(item["linked"] for item in plain["layers"])


def test_bidirectional_final_mode_links_both_directions_and_measures_their_gradients():
    verdict = _verdict(
        "rnn_tanh", "orthogonal", 1.0, output_mode="final", bidirectional=True, jacobians=False
    )
    assert verdict["notes"] == []
    assert [item["linked"] for item in verdict["layers"]] == [True, True]
    # each direction's only source is where it ends: forward at T-1, reverse at 0
    assert [item["source"] for item in verdict["layers"]] == ["grad_hidden", "grad_hidden"]
    assert all(item["verdict"] in ("stable", "vanishing") for item in verdict["layers"])


def test_no_gradient_at_the_last_position_is_none_not_vanishing():
    config = ModelConfig(cell="rnn_tanh", hidden_size=3, output_mode="last")
    params = init_params(config, seed=0)
    params["head.weight"] = np.zeros_like(params["head.weight"])  # outputs ignore the states
    trace = run_sequence(config, params, np.ones((5, 1)), np.zeros(1))
    verdict = gradient_verdict(trace)
    assert verdict["source"] == "grad_hidden"
    assert verdict["verdict"] == "none" and "no gradient" in verdict["reason"]
