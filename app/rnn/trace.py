"""A full record of one sequence through the network: every state, gate, loss and BPTT gradient."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.rnn.cancel import CancelCheck
from app.rnn.config import ModelConfig
from app.rnn.jacobian import jacobian_norms
from app.rnn.layer import LayerCache, layer_gates, step_weight_grad_norms
from app.rnn.loss import loss_and_grad
from app.rnn.network import NetworkCache, network_backward, network_forward
from app.rnn.params import check_params
from app.rnn.truncation import effective_truncate
from app.rnn.types import Array, Params


@dataclass
class ForwardRecord:
    """What the later stages need from the forward pass: kept on the trace between stages."""

    cache: NetworkCache
    d_outputs: Array | None  # like the batch-of-one outputs; None without targets


@dataclass
class Trace:
    """Everything `run_sequence` records. L layers, D directions, T positions, H units.

    Positions are in input order for both directions. Gradient fields are None when the
    run had no targets (or before `backward_trace`); Jacobian fields are None unless asked
    for. `engine` holds the forward record between the stages; `release()` frees it.
    """

    config: ModelConfig
    inputs: Array  # (T, I)
    targets: Array | None  # (T, O) / (O,) regression; (T,) / () class indices
    outputs: Array  # (T, O) sequence mode, (O,) last and final modes; logits for classification
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
    truncate: int | None = None  # the truncation that ran; None is full BPTT
    finite: bool = True
    jacobian_layers: tuple[int, ...] = ()  # layers whose Jacobian norms are filled in
    engine: ForwardRecord | None = field(default=None, repr=False, compare=False)

    @property
    def sequence_length(self) -> int:
        """T."""
        return int(self.inputs.shape[0])

    def release(self) -> None:
        """Drop the forward record: no more stages can run, and its memory is freed."""
        self.engine = None


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

    Regression: (T, O) in sequence mode, (O,) in last and final modes. Classification:
    class indices in [0, O), (T,) in sequence mode, a scalar in last and final modes.
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


def forward_trace(
    config: ModelConfig,
    params: Params,
    inputs: Any,
    targets: Any = None,
    *,
    cancel: CancelCheck = None,
) -> Trace:
    """Stage 1: validate, run the forward pass and (with targets) the loss.

    inputs (T, input_size); targets as `check_targets` describes, or None. Fills states,
    gates, outputs, loss and loss_per_step, and keeps the forward record in
    `trace.engine` for `backward_trace` and `diagnose_trace`, which never rerun it.
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: must be a ModelConfig, got {type(config).__name__}")
    params = check_params(config, params)
    x = check_inputs(config, inputs)
    T = x.shape[0]
    y = None if targets is None else check_targets(config, targets, T)
    L, D, H = config.num_layers, config.num_directions, config.hidden_size

    with np.errstate(all="ignore"):
        outputs, cache = network_forward(config, params, x[None], cancel)
        layers = _layer_caches(cache)
        states = np.stack([lc.states[:, 0] for lc in layers]).reshape(L, D, T, -1)
        trace = Trace(
            config=config,
            inputs=x,
            targets=y,
            outputs=outputs[0],
            hidden=states[..., :H],
            cell=states[..., H:] if config.cell == "lstm" else None,
            gates=_gates(config, layers),
        )
        d_outputs = None
        if y is not None:
            loss, per_step, d_outputs = loss_and_grad(config.head, outputs, y[None])
            trace.loss = loss
            trace.loss_per_step = per_step[0] if config.output_mode == "sequence" else None
        trace.engine = ForwardRecord(cache, d_outputs)
        trace.finite = _all_finite(trace)
    return trace


def backward_trace(
    trace: Trace, truncate: int | None = None, *, cancel: CancelCheck = None
) -> Trace:
    """Stage 2: BPTT (full, or truncated to `truncate` steps) on a `forward_trace` record.

    Fills every gradient field in place and returns the same trace. Needs targets.
    `trace.truncate` is the truncation that ran: None when `truncate` is at or beyond the
    longest path (`truncation.longest_path`), where it equals full BPTT.
    """
    record = _engine(trace, "backward_trace")
    if record.d_outputs is None:
        raise ValueError("targets: backward_trace needs a trace run with targets")
    truncate = check_truncate(truncate)
    config = trace.config
    L, D, H, T = config.num_layers, config.num_directions, config.hidden_size, trace.sequence_length
    with np.errstate(all="ignore"):
        back = network_backward(record.d_outputs, record.cache, truncate, cancel)
        layers = _layer_caches(record.cache)
        layer_grads = [back.layers[layer][d] for layer in range(L) for d in range(D)]
        ds_total = np.stack([lg.ds_total[:, 0] for lg in layer_grads]).reshape(L, D, T, -1)
        trace.truncate = effective_truncate(truncate, L, config.bidirectional, T)
        trace.grads = back.grads
        trace.grad_inputs = back.d_inputs[0]
        trace.grad_hidden = ds_total[..., :H]
        if config.cell == "lstm":
            assert trace.cell is not None
            # c_t also feeds h_t = o * tanh(c_t): add that path, as c_t.grad holds it
            tanh_c = np.tanh(trace.cell)
            dh_dc = trace.gates["output"] * (1 - tanh_c * tanh_c)
            trace.grad_cell = ds_total[..., H:] + ds_total[..., :H] * dh_dc
        trace.grad_step_norms = np.stack(
            [step_weight_grad_norms(lc, lg) for lc, lg in zip(layers, layer_grads, strict=True)]
        ).reshape(L, D, T)
        trace.finite = _all_finite(trace)
    return trace


def diagnose_trace(
    trace: Trace, layers: Iterable[int] | None = None, *, cancel: CancelCheck = None
) -> Trace:
    """Stage 3: the Jacobian norms of a `forward_trace` record, for every layer or only
    the layer indices in `layers` (both directions of each).

    Fills `jacobian_norm` and `jacobian_product_norm` (L, D, T) in place; positions of
    layers not (yet) diagnosed hold NaN and are not in `trace.jacobian_layers`, so
    calling it again for more layers completes the same arrays. Returns the same trace.
    """
    record = _engine(trace, "diagnose_trace")
    config = trace.config
    L, D, T = config.num_layers, config.num_directions, trace.sequence_length
    asked = list(range(L)) if layers is None else list(layers)
    for layer in asked:
        if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
            raise ValueError(f"layers: layer indices must be integers, got {layer!r}")
        if not 0 <= layer < L:
            raise ValueError(f"layers: index {layer} is outside 0..{L - 1}")
    chosen = sorted({int(layer) for layer in asked})
    if trace.jacobian_norm is None or trace.jacobian_product_norm is None:
        trace.jacobian_norm = np.full((L, D, T), np.nan)
        trace.jacobian_product_norm = np.full((L, D, T), np.nan)
    with np.errstate(all="ignore"):
        for layer in chosen:
            for d in range(D):
                one_step, product = jacobian_norms(record.cache.layers[layer][d], cancel=cancel)
                trace.jacobian_norm[layer, d] = one_step
                trace.jacobian_product_norm[layer, d] = product
            trace.jacobian_layers = tuple(sorted({*trace.jacobian_layers, layer}))
        trace.finite = _all_finite(trace)
    return trace


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
    """Run forward and (with targets) BPTT over one sequence, recording everything: the
    three stages `forward_trace`, `backward_trace`, `diagnose_trace` in one call.

    inputs (T, input_size); targets as `check_targets` describes, or None for forward only.
    Overflow never raises: it shows up as inf/NaN in the trace and `finite=False`.
    `cancel` is polled between positions and layer-directions; True raises `Cancelled`.
    """
    truncate = check_truncate(truncate)
    trace = forward_trace(config, params, inputs, targets, cancel=cancel)
    if trace.targets is not None:
        backward_trace(trace, truncate, cancel=cancel)
    else:
        L, bidirectional = trace.config.num_layers, trace.config.bidirectional
        trace.truncate = effective_truncate(truncate, L, bidirectional, trace.sequence_length)
    if jacobians:
        diagnose_trace(trace, cancel=cancel)
    trace.release()  # the forward record is only for the stages
    return trace


def _engine(trace: Trace, stage: str) -> ForwardRecord:
    if not isinstance(trace, Trace) or trace.engine is None:
        raise ValueError(f"trace: {stage} needs a trace from forward_trace (not yet released)")
    return trace.engine


def _layer_caches(cache: NetworkCache) -> list[LayerCache]:
    """Layer-directions in (layer, direction) order, L*D of them."""
    return [lc for layer in cache.layers for lc in layer]


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
    """Every recorded number is finite (layers not diagnosed yet are left out)."""
    diagnosed = list(trace.jacobian_layers)
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
        None if trace.jacobian_norm is None else trace.jacobian_norm[diagnosed],
        None if trace.jacobian_product_norm is None else trace.jacobian_product_norm[diagnosed],
        *trace.gates.values(),
        *(trace.grads or {}).values(),
    ]
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)
