"""A full record of one sequence through the network: every state, gate, loss and BPTT gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.rnn.cancel import CancelCheck
from app.rnn.config import ModelConfig
from app.rnn.jacobian import jacobian_norms
from app.rnn.layer import layer_gates, step_weight_grad_norms
from app.rnn.loss import loss_and_grad
from app.rnn.network import network_backward, network_forward
from app.rnn.params import check_params
from app.rnn.types import Array, Params


@dataclass
class Trace:
    """Everything `run_sequence` records. L layers, D directions, T positions, H units.

    Positions are in input order for both directions. Gradient fields are None when the
    run had no targets; Jacobian fields are None unless asked for.
    """

    config: ModelConfig
    inputs: Array  # (T, I)
    targets: Array | None  # (T, O) / (O,) regression; (T,) / () class indices
    outputs: Array  # (T, O) sequence mode, (O,) last mode; logits for classification
    hidden: Array  # (L, D, T, H)
    cell: Array | None  # (L, D, T, H), LSTM only
    gates: dict[str, Array]  # gate name -> (L, D, T, H); empty for plain RNN cells
    loss: float | None = None
    loss_per_step: Array | None = None  # (T,) sequence mode; loss == loss_per_step.mean()
    grad_hidden: Array | None = None  # (L, D, T, H) total dL/dh_t
    grad_cell: Array | None = None  # (L, D, T, H) total dL/dc_t (via h_t too), LSTM only
    grad_inputs: Array | None = None  # (T, I)
    grads: Params | None = None  # same names and shapes as the params
    grad_step_norms: Array | None = None  # (L, D, T) ||step t's share of dL/dW_hh||_F
    jacobian_norm: Array | None = None  # (L, D, T) ||ds_t / ds_{t-1}||_2
    jacobian_product_norm: Array | None = None  # (L, D, T) ||ds_last / ds_t||_2
    truncate: int | None = None
    finite: bool = True

    @property
    def sequence_length(self) -> int:
        """T."""
        return int(self.inputs.shape[0])


def check_inputs(config: ModelConfig, inputs: Any) -> Array:
    """Validate one sequence: (T, input_size), finite. Returns a float64 copy."""
    try:
        x = np.array(inputs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"inputs: not a numeric array ({exc})") from None
    if x.ndim != 2 or x.shape[1] != config.input_size:
        raise ValueError(f"inputs: expected shape (T, {config.input_size}), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError("inputs: the sequence needs at least one position")
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs: contains NaN or infinity")
    return x


def check_targets(config: ModelConfig, targets: Any, length: int) -> Array:
    """Validate targets for one sequence of `length` positions. Returns a float64 copy.

    Regression: (T, O) in sequence mode, (O,) in last mode. Classification: class
    indices in [0, O), (T,) in sequence mode, a scalar in last mode.
    """
    try:
        y = np.array(targets, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"targets: not a numeric array ({exc})") from None
    seq = config.output_mode == "sequence"
    O = config.output_size
    if config.head == "regression":
        expected: tuple[int, ...] = (length, O) if seq else (O,)
    else:
        expected = (length,) if seq else ()
    if y.shape != expected:
        raise ValueError(
            f"targets: expected shape {expected} for a {config.head} head in "
            f"{config.output_mode} mode, got {y.shape}"
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("targets: contains NaN or infinity")
    if config.head == "classification" and (
        np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= O)
    ):
        raise ValueError(f"targets: class indices must be integers in [0, {O})")
    return y


def check_truncate(truncate: Any) -> int | None:
    """None (full BPTT) or a positive integer."""
    if truncate is None:
        return None
    if isinstance(truncate, bool) or not isinstance(truncate, int | np.integer) or truncate < 1:
        raise ValueError(f"truncate: must be a positive integer or None, got {truncate!r}")
    return int(truncate)


def run_sequence(
    config: ModelConfig,
    params: Params,
    inputs: Any,
    targets: Any = None,
    *,
    jacobians: bool = False,
    truncate: int | None = None,
    cancel: CancelCheck = None,
) -> Trace:
    """Run forward and (with targets) full BPTT over one sequence, recording everything.

    inputs (T, input_size); targets as `check_targets` describes, or None for forward only.
    Overflow never raises: it shows up as inf/NaN in the trace and `finite=False`.
    `cancel` is polled between positions and layer-directions; True raises `Cancelled`.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: must be a ModelConfig, got {type(config).__name__}")
    params = check_params(config, params)
    x = check_inputs(config, inputs)
    T = x.shape[0]
    y = None if targets is None else check_targets(config, targets, T)
    truncate = check_truncate(truncate)
    L, D, H = config.num_layers, config.num_directions, config.hidden_size
    seq = config.output_mode == "sequence"

    with np.errstate(all="ignore"):
        outputs, cache = network_forward(config, params, x[None], cancel)
        layers = [cache.layers[layer][d] for layer in range(L) for d in range(D)]
        states = np.stack([lc.states[:, 0] for lc in layers]).reshape(L, D, T, -1)
        trace = Trace(
            config=config,
            inputs=x,
            targets=y,
            outputs=outputs[0],
            hidden=states[..., :H],
            cell=states[..., H:] if config.cell == "lstm" else None,
            gates=_gates(config, layers),
            truncate=truncate,
        )
        if y is not None:
            loss, per_step, d_outputs = loss_and_grad(config.head, outputs, y[None])
            back = network_backward(d_outputs, cache, truncate, cancel)
            layer_grads = [back.layers[layer][d] for layer in range(L) for d in range(D)]
            ds_total = np.stack([lg.ds_total[:, 0] for lg in layer_grads]).reshape(L, D, T, -1)
            trace.loss = loss
            trace.loss_per_step = per_step[0] if seq else None
            trace.grads = back.grads
            trace.grad_inputs = back.d_inputs[0]
            trace.grad_hidden = ds_total[..., :H]
            if config.cell == "lstm":
                # c_t also feeds h_t = o * tanh(c_t): add that path, as c_t.grad holds it
                tanh_c = np.tanh(states[..., H:])
                dh_dc = trace.gates["output"] * (1 - tanh_c * tanh_c)
                trace.grad_cell = ds_total[..., H:] + ds_total[..., :H] * dh_dc
            trace.grad_step_norms = np.stack(
                [step_weight_grad_norms(lc, lg) for lc, lg in zip(layers, layer_grads, strict=True)]
            ).reshape(L, D, T)
        if jacobians:
            norms = [jacobian_norms(lc, cancel=cancel) for lc in layers]
            trace.jacobian_norm = np.stack([n[0] for n in norms]).reshape(L, D, T)
            trace.jacobian_product_norm = np.stack([n[1] for n in norms]).reshape(L, D, T)
        trace.finite = _all_finite(trace)
    return trace


def _gates(config: ModelConfig, layers: list[Any]) -> dict[str, Array]:
    """Gate activations by name, each (L, D, T, H)."""
    if not config.gate_names:
        return {}
    L, D = config.num_layers, config.num_directions
    per_layer = [layer_gates(lc) for lc in layers]  # [L*D][gate] (T, 1, H)
    return {
        name: np.stack([g[k][:, 0] for g in per_layer]).reshape(L, D, *per_layer[0][k][:, 0].shape)
        for k, name in enumerate(config.gate_names)
    }


def _all_finite(trace: Trace) -> bool:
    arrays: list[Any] = [
        trace.outputs,
        trace.hidden,
        trace.cell,
        trace.loss,
        trace.loss_per_step,
        trace.grad_hidden,
        trace.grad_cell,
        trace.grad_inputs,
        trace.grad_step_norms,
        trace.jacobian_norm,
        trace.jacobian_product_norm,
        *trace.gates.values(),
        *(trace.grads or {}).values(),
    ]
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)
