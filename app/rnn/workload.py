"""What a trace or a training step will cost, from its sizes alone: a rough, pure estimate.

Counts follow the engine's own loops (see `network.py`, `truncation.py`, `jacobian.py`);
they are meant to be within a small factor of a measurement, for admission control,
and allocate nothing. Time is about multiply_adds / rate + steps * overhead: on the
2-core benchmark machine with one BLAS thread, rate ~5e9 multiply-adds/s for H >= 64
and overhead ~30-100 us per step (numpy call overhead dominates small networks).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.rnn.config import ModelConfig
from app.rnn.truncation import effective_truncate

FLOAT = 8  # bytes per float64
LANCZOS_STEPS = 44  # typical Lanczos steps of a one-step Jacobian norm (residual 1e-8)
LANCZOS_BLOCK = 128  # positions per Lanczos block (jacobian.ONE_STEP_CHUNK)
LANCZOS_MAX = 64  # jacobian.MAX_STEPS
PRODUCT_CHUNK = 16  # jacobian.PRODUCT_CHUNK
SUBSPACE = 8  # jacobian.SUBSPACE


@dataclass(frozen=True)
class TraceCost:
    """Estimated work and memory of one call."""

    multiply_adds: float  # floating-point multiply-adds, all stages
    peak_bytes: float  # the largest live float64 data at any time
    steps: int  # sequential Python-level steps (cell steps, BPTT levels, chunks)
    truncate: int | None  # the truncation that would run (None: full BPTT)


def estimate_trace_cost(
    config: ModelConfig,
    length: int,
    truncate: int | None = None,
    jacobians: bool = False,
    batch_size: int = 1,
    backward: bool = True,
) -> TraceCost:
    """Rough cost of `run_sequence` (batch_size 1) or of one training step's forward and
    backward pass (`network_forward` + `network_backward` on batch_size sequences).

    length is T; truncate as `run_sequence` takes it (clamped the same way); jacobians as
    `run_sequence`'s (for every layer). Pure: reads sizes only.
    """
    T, B = length, batch_size
    L, D, H = config.num_layers, config.num_directions, config.hidden_size
    G = config.gate_multiple
    S = H * (2 if config.cell == "lstm" else 1)
    GH = G * H
    k = effective_truncate(truncate, L, config.bidirectional, T) if backward else None

    inputs = [config.input_size] + [D * H] * (L - 1)
    forward = sum(T * B * (I + H) * GH for I in inputs) * D + T * B * D * H * config.output_size
    work = float(forward)
    steps = L * D * T
    # forward record per layer-direction: xw, states, states_prev, activations, extras
    record = T * B * (2 * GH + 3 * S) * FLOAT
    peak = float(L * D * record)
    if backward:
        # recurrent vjp and input gradient per cell step, then one product per weight
        per_layer = [T * B * (H + I) * GH for I in inputs]
        if k is None:
            work += 2.0 * sum(per_layer) * D
            steps += L * D * T
        else:
            positions = (k + 1) * T - (0 if config.bidirectional else k * (k + 1) // 2)
            levels = sum(positions * B * (H + I) * GH for I in inputs) * D
            # one layer, one sequence: at most two S x S products a position if cheaper
            window = 2 * T * S * S * (H if config.cell == "lstm" else S) * D
            if L == 1 and B == 1 and window < levels:
                work += window + sum(per_layer) * D
                steps += 3 * D * T
            else:
                work += levels + sum(per_layer) * D
                steps += L * D * (k + 1)
        # factors, pre-activation gradients and state gradients kept per layer-direction
        peak += L * D * T * B * (3 * GH + 2 * S) * FLOAT
    if jacobians:
        chain = S * S * (H if config.cell == "lstm" else S)  # P @ J, block structure for LSTM
        one_step = LANCZOS_STEPS * (2 * H * GH + LANCZOS_STEPS * S)
        certify = (2 * SUBSPACE + 1) * S * S + 4 * SUBSPACE * S * S // PRODUCT_CHUNK
        work += L * D * T * float(chain + one_step + certify + G * H * H)
        # one chain step per position, Lanczos steps per block, checks per chunk
        blocks = -(-T // LANCZOS_BLOCK)
        steps += L * D * (T + blocks * LANCZOS_STEPS + 4 * (T // PRODUCT_CHUNK + 1))
        lanczos = LANCZOS_BLOCK * (LANCZOS_MAX + 2) * S * FLOAT
        products = 3 * PRODUCT_CHUNK * S * S * FLOAT
        peak += max(lanczos, products) + L * D * T * 2 * FLOAT
    # temporaries of the widest step come on top of what stays live
    return TraceCost(multiply_adds=work, peak_bytes=1.4 * peak, steps=steps, truncate=k)
