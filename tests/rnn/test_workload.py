"""The cost estimate: pure, monotone in the sizes, and near a measured peak."""

from __future__ import annotations

import tracemalloc

import numpy as np

from app.rnn import ModelConfig, init_params, run_sequence
from app.rnn.workload import estimate_trace_cost

CONFIG = ModelConfig(cell="lstm", input_size=1, hidden_size=32, num_layers=2, bidirectional=True)


def test_estimates_grow_with_the_work():
    base = estimate_trace_cost(CONFIG, 100)
    assert estimate_trace_cost(CONFIG, 200).multiply_adds > base.multiply_adds
    assert estimate_trace_cost(CONFIG, 100, jacobians=True).multiply_adds > base.multiply_adds
    assert estimate_trace_cost(CONFIG, 100, truncate=50).multiply_adds > base.multiply_adds
    assert estimate_trace_cost(CONFIG, 100, batch_size=8).peak_bytes > base.peak_bytes
    forward = estimate_trace_cost(CONFIG, 100, backward=False)
    assert forward.multiply_adds < base.multiply_adds


def test_truncation_is_clamped_as_the_engine_clamps_it():
    assert estimate_trace_cost(CONFIG, 100, truncate=5).truncate == 5
    assert estimate_trace_cost(CONFIG, 100, truncate=2 * 99).truncate is None
    flat = ModelConfig(cell="gru", num_layers=3)
    assert estimate_trace_cost(flat, 100, truncate=99).truncate is None
    assert estimate_trace_cost(flat, 100, truncate=98).truncate == 98


def test_peak_memory_is_within_a_factor_two_of_a_measurement():
    T = 200
    params = init_params(CONFIG, seed=0)
    x = np.random.default_rng(0).standard_normal((T, 1))
    tracemalloc.start()
    try:
        run_sequence(CONFIG, params, x, np.zeros((T, 1)), jacobians=True)
        measured = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = estimate_trace_cost(CONFIG, T, jacobians=True).peak_bytes
    assert measured / 2 < estimate < measured * 2
