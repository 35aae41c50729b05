"""Inside one step: every term of one cell's equations at one (layer, direction, position),
forward and backward, taken from the engine's own forward record and full BPTT.

Forward: W_ih x_t, W_hh h_prev and both biases split by gate, each gate's pre-activation
and activation, c_t and h_t. Backward: the gradient reaching h_t split into what comes
from outside the recurrence (the head or the layer above) and from the next step, the
gradient reaching c_t, the pre-activation gradients, what the step sends back to h_prev
(and c_prev), the step's own share of dL/dW_hh, and the one-step Jacobian's norm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.rnn.cancel import CancelCheck
from app.rnn.cells import SequenceRecord
from app.rnn.config import ModelConfig
from app.rnn.layer import LayerCache, LayerGrads
from app.rnn.network import NetworkCache, head_input_backward, network_backward
from app.rnn.params import direction_suffix
from app.rnn.trace import check_inputs, forward_trace
from app.rnn.types import Array, Params


@dataclass
class StepBackward:
    """The backward half of one step (full BPTT). H units, G gates."""

    dh: Array  # (H,) total dL/dh_t, as Trace.grad_hidden
    dh_from_outside: Array  # (H,) from the head or the layer above, at this position
    dh_from_next: Array  # (H,) from the next step in compute order, through W_hh (and gates)
    dc: Array | None  # (H,) total dL/dc_t, as Trace.grad_cell (LSTM)
    dc_from_next: Array | None  # (H,) reaching c_t from c_next through the forget gate (LSTM)
    d_pre_input: Array  # (G*H,) dL/d(W_ih x_t + b_ih), by gate
    d_pre_hidden: Array  # (G*H,) dL/d(W_hh h_prev + b_hh), by gate (differs for the GRU's n)
    dh_prev: Array  # (H,) what this step sends back to h_prev
    dc_prev: Array | None  # (H,) what this step sends back to c_prev (LSTM)
    dx: Array  # (I,) what this step sends down to its input x_t
    dWhh_step: Array  # (G*H, H) this step's share of dL/dW_hh: d_pre_hidden outer h_prev
    dWhh_step_norm: float  # its Frobenius norm, as Trace.grad_step_norms


@dataclass
class StepPieces:
    """The forward half of one step, and the backward half when the run had targets."""

    cell: str
    layer: int
    direction: int
    position: int
    gate_names: tuple[str, ...]  # PyTorch's order; () for the Elman cells
    x: Array  # (I,) the layer's input at this position
    h_prev: Array  # (H,) the hidden state this step started from
    c_prev: Array | None  # (H,) LSTM
    w_input: Array  # (G*H,) W_ih x_t
    w_hidden: Array  # (G*H,) W_hh h_prev
    b_input: Array  # (G*H,) b_ih
    b_hidden: Array  # (G*H,) b_hh
    pre: dict[str, Array]  # gate (or "h" for Elman) -> (H,) the activation's argument
    gates: dict[str, Array]  # gate -> (H,) activation
    c: Array | None  # (H,) LSTM
    h: Array  # (H,)
    jacobian_norm: float  # ||d s_t / d s_prev||_2, s = h (or [h, c] for the LSTM)
    backward: StepBackward | None = field(default=None)


def inspect_step(
    config: ModelConfig,
    params: Params,
    inputs: Any,
    targets: Any,
    layer: int,
    direction: int,
    position: int,
    *,
    cancel: CancelCheck = None,
) -> StepPieces:
    """Every term of the cell's equations at (layer, direction, position).

    inputs (T, I); targets as `run_sequence` takes them, or None for the forward half only.
    Costs one forward pass and (with targets) one full BPTT. ValueError names a bad field.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: must be a ModelConfig, got {type(config).__name__}")
    T = len(check_inputs(config, inputs))
    _check_where(config, T, layer, direction, position)
    trace = forward_trace(config, params, inputs, targets, cancel=cancel)
    record = trace.engine
    assert record is not None
    cache = record.cache
    lc = cache.layers[layer][direction]
    t, H = position, config.hidden_size
    with np.errstate(all="ignore"):
        b_input = cache.params[f"rnn.bias_ih_l{layer}{direction_suffix(direction)}"]
        pieces = _forward_pieces(config, lc, b_input, layer, direction, t)
        if record.d_outputs is not None:
            back = network_backward(record.d_outputs, cache, cancel=cancel)
            ds_total = back.layers[layer][direction].ds_total[:, 0]  # (T, S)
            outside = _from_outside(config, cache, back.layers, record.d_outputs, layer)
            pieces.backward = _backward_pieces(
                config, lc, ds_total, outside[:, direction * H : (direction + 1) * H], t
            )
    return pieces


def _check_where(
    config: ModelConfig, length: int, layer: int, direction: int, position: int
) -> None:
    """ValueError naming the first of layer, direction, position that is out of range."""
    for name, value, top in (
        ("layer", layer, config.num_layers),
        ("direction", direction, config.num_directions),
        ("position", position, length),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name}: must be an integer, got {value!r}")
        if not 0 <= value < top:
            raise ValueError(f"{name}: must be in 0..{top - 1}, got {value}")


def _forward_pieces(
    config: ModelConfig, lc: LayerCache, b_input: Array, layer: int, direction: int, t: int
) -> StepPieces:
    """b_input (G*H,): b_ih, which the layer cache keeps folded into x @ W_ih.T + b_ih."""
    H, names = config.hidden_size, config.gate_names
    rec = lc.record
    x = lc.xs[t, 0]  # (I,)
    s_prev, s = rec.states_prev[t, 0], rec.states[t, 0]  # (S,)
    h_prev = s_prev[:H]
    w_input = lc.Wih @ x  # (G*H,)
    w_hidden = lc.Whh @ h_prev  # (G*H,)
    b_hidden = lc.bhh
    # each gate's block of rows in PyTorch's stacking; the Elman cells have one, "h"
    split = {name: slice(k * H, (k + 1) * H) for k, name in enumerate(names or ("h",))}
    pre = {
        name: w_input[rows] + b_input[rows] + w_hidden[rows] + b_hidden[rows]
        for name, rows in split.items()
    }
    gates: dict[str, Array] = {}
    if rec.acts is not None:
        acts = rec.acts[t, 0]
        gates = {name: acts[rows] for name, rows in split.items()}
    if config.cell == "gru":
        # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): the reset gate scales the hidden side
        rows = split["new"]
        pre["new"] = (
            w_input[rows] + b_input[rows] + gates["reset"] * (w_hidden[rows] + b_hidden[rows])
        )
    lstm = config.cell == "lstm"
    return StepPieces(
        cell=config.cell,
        layer=layer,
        direction=direction,
        position=t,
        gate_names=names,
        x=x.copy(),
        h_prev=h_prev.copy(),
        c_prev=s_prev[H:].copy() if lstm else None,
        w_input=w_input,
        w_hidden=w_hidden,
        b_input=b_input.copy(),
        b_hidden=b_hidden.copy(),
        pre=pre,
        gates={k: v.copy() for k, v in gates.items()},
        c=s[H:].copy() if lstm else None,
        h=s[:H].copy(),
        jacobian_norm=_one_step_norm(lc, t),
    )


def _one_step_norm(lc: LayerCache, t: int) -> float:
    """||J_t||_2 from the explicit (S, S) Jacobian of this one position."""
    rec = lc.record
    one = SequenceRecord(
        rec.states[t : t + 1],
        rec.states_prev[t : t + 1],
        None if rec.acts is None else rec.acts[t : t + 1],
        {k: v[t : t + 1] for k, v in rec.extra.items()},
    )
    J = lc.cell.jacobians(one, lc.Whh)[0, 0]  # (S, S)
    if not np.all(np.isfinite(J)):
        return float("nan")
    return float(np.linalg.norm(J, 2))


def _from_outside(
    config: ModelConfig,
    cache: NetworkCache,
    layer_grads: list[list[LayerGrads]],
    d_outputs: Array,
    layer: int,
) -> Array:
    """(T, D*H): the gradient reaching layer `layer`'s outputs from the head or the layer
    above, summed as `network_backward` sums it."""
    W = cache.params["head.weight"]  # (O, D*H)
    T = cache.top.shape[0]
    if layer == config.num_layers - 1:
        if config.output_mode == "sequence":
            return d_outputs[0] @ W  # (T, D*H)
        return head_input_backward(config, d_outputs @ W, T)[:, 0]  # (T, D*H)
    total = None
    for lg in layer_grads[layer + 1]:
        total = lg.dxs[:, 0] if total is None else total + lg.dxs[:, 0]
    assert total is not None
    return total


def _backward_pieces(
    config: ModelConfig, lc: LayerCache, ds_total: Array, outside: Array, t: int
) -> StepBackward:
    """ds_total (T, S) the gradient reaching each state; outside (T, H) from above."""
    H = config.hidden_size
    rec = lc.record
    step = lc.cell.backward_step(rec, lc.Whh, lc.bhh)
    order = list(lc.order)
    k = order.index(t)
    S = ds_total.shape[1]
    if k + 1 < len(order):
        carry = step(ds_total[order[k + 1]][None], order[k + 1])[0][0]  # (S,)
    else:
        carry = np.zeros(S)
    ds_prev, da_x, da_h = step(ds_total[t][None], t)
    ds_prev, da_x, da_h = ds_prev[0], da_x[0], da_h[0]
    h_prev = rec.states_prev[t, 0, :H]
    share = np.outer(da_h, h_prev)  # (G*H, H)
    lstm = config.cell == "lstm"
    dc = None
    if lstm:
        assert rec.acts is not None
        o = rec.acts[t, 0, 3 * H :]
        tanh_c = np.tanh(rec.states[t, 0, H:])
        dc = ds_total[t, H:] + ds_total[t, :H] * (o * (1 - tanh_c * tanh_c))
    return StepBackward(
        dh=ds_total[t, :H].copy(),
        dh_from_outside=outside[t].copy(),
        dh_from_next=carry[:H].copy(),
        dc=dc,
        dc_from_next=ds_total[t, H:].copy() if lstm else None,
        d_pre_input=da_x,
        d_pre_hidden=da_h,
        dh_prev=ds_prev[:H].copy(),
        dc_prev=ds_prev[H:].copy() if lstm else None,
        dx=da_x @ lc.Wih,
        dWhh_step=share,
        dWhh_step_norm=float(np.linalg.norm(share)),
    )
