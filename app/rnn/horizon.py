"""The gradient horizon (after RNNbow): the gradient reaching each state of one
layer-direction, split by the loss position it came from.

The gradient of the mean loss is linear in d loss / d outputs, so it splits exactly into
one part per loss position: part tau is what full BPTT carries back from the head's
output at tau alone. All parts run through one backward pass at once: the sources are a
leading batch axis of N gradients that every cell's backward step accepts, (N, 1, S).
The parts at a position sum to `Trace.grad_hidden` there (up to rounding).

Cost: N = T sources in sequence mode (one in last and final modes), so the work is N times one
full BPTT down to the chosen layer, about N * T * L' * D * G*H * (H + I) multiply-adds
(L' layers from the top down to the chosen one), and the largest array held is
(T, N, max(S, D*H, G*H)) float64. `horizon_cost` gives both before anything runs;
`gradient_horizon` refuses a request over `MAX_HORIZON_ELEMENTS`, `MAX_HORIZON_MACS` or
`MAX_HORIZON_PAIRS` (T * N norms in the answer) before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.rnn.cancel import CancelCheck, check, polled
from app.rnn.config import ModelConfig
from app.rnn.layer import LayerCache
from app.rnn.network import head_input_backward
from app.rnn.trace import check_inputs, forward_trace
from app.rnn.types import Array, Params, Positions

# caps on one request: ~128 MB per array and ~2 s of numpy on a small machine
MAX_HORIZON_ELEMENTS = 16_000_000
MAX_HORIZON_MACS = 4e9
MAX_HORIZON_PAIRS = 250_000  # (position, source) norms answered: a few MB of JSON


@dataclass
class HorizonCost:
    """What a gradient horizon costs, from sizes alone."""

    sources: int  # N: loss positions the gradient is split by
    elements: int  # floats in the largest array held, (T, N, max(S, D*H, G*H))
    macs: float  # multiply-adds of the batched backward pass


@dataclass
class GradientHorizon:
    """The split for one layer-direction. N sources (loss positions), T positions, H units."""

    layer: int
    direction: int
    position: int  # the position whose split is given in full
    sources: Positions  # (N,) the loss position of each part
    norms: Array  # (T, N) ||part tau of dL/dh_t||, every position t of the layer-direction
    hidden: Array  # (N, H) the parts of dL/dh at `position`, one row per source
    cell: Array | None  # (N, H) the parts of the gradient reaching c at `position` (LSTM)
    total: Array  # (H,) dL/dh at `position`: the sum of the parts
    loss_per_source: Array  # (N,) each source's share of the loss


def horizon_cost(config: ModelConfig, length: int, layer: int) -> HorizonCost:
    """The work and the largest array of `gradient_horizon` for a sequence of `length`."""
    T, H, D, G = length, config.hidden_size, config.num_directions, config.gate_multiple
    N = T if config.output_mode == "sequence" else 1
    S = 2 * H if config.cell == "lstm" else H
    elements = T * N * max(S, D * H, G * H, config.output_size)
    # layers layer..L-1, each N*T*D*G*H*(H + its input size): in closed form, not a loop
    # over layers, since this runs before the caps on a request's own num_layers
    layers = max(0, config.num_layers - layer)
    inputs = layers * D * H + (config.input_size - D * H if layer == 0 and layers else 0)
    macs = float(N * T * D * G * H) * (layers * H + inputs)
    return HorizonCost(N, elements, macs)


def check_horizon(
    config: ModelConfig, length: int, layer: int, direction: int, position: int
) -> None:
    """ValueError naming the field when the request is out of range or over a cap."""
    if not 0 <= layer < config.num_layers:
        raise ValueError(f"layer: must be in 0..{config.num_layers - 1}, got {layer}")
    if not 0 <= direction < config.num_directions:
        raise ValueError(f"direction: must be in 0..{config.num_directions - 1}, got {direction}")
    if not 0 <= position < length:
        raise ValueError(f"position: must be in 0..{length - 1}, got {position}")
    cost = horizon_cost(config, length, layer)
    pairs = length * cost.sources
    if (
        cost.elements > MAX_HORIZON_ELEMENTS
        or cost.macs > MAX_HORIZON_MACS
        or pairs > MAX_HORIZON_PAIRS
    ):
        raise ValueError(
            f"inputs: splitting the gradient by its {cost.sources} loss positions needs "
            f"{cost.elements:.3g} floats in one array, {cost.macs:.3g} multiply-adds and "
            f"{pairs} norms, over the caps of {MAX_HORIZON_ELEMENTS:.3g}, "
            f"{MAX_HORIZON_MACS:.3g} and {MAX_HORIZON_PAIRS}; use a shorter sequence or a "
            "smaller hidden size"
        )


def gradient_horizon(
    config: ModelConfig,
    params: Params,
    inputs: Any,
    targets: Any,
    layer: int,
    direction: int,
    position: int,
    *,
    cancel: CancelCheck = None,
) -> GradientHorizon:
    """The gradient reaching every state of layer-direction (layer, direction), split by
    the loss position it came from; full BPTT.

    inputs (T, I), targets as `run_sequence` takes them (required). Raises ValueError
    naming the field on bad arguments or over the caps (`check_horizon`).
    """
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config: must be a ModelConfig, got {type(config).__name__}")
    T = len(check_inputs(config, inputs))
    check_horizon(config, T, layer, direction, position)  # before any work
    if targets is None:
        raise ValueError("targets: the gradient horizon needs targets (a loss to split)")
    trace = forward_trace(config, params, inputs, targets, cancel=cancel)
    record = trace.engine
    assert record is not None and record.d_outputs is not None
    cache = record.cache
    H, D = config.hidden_size, config.num_directions
    W = params["head.weight"]  # (O, D*H), validated by forward_trace
    d_out = record.d_outputs  # (1, T, O) sequence mode, (1, O) last and final modes
    with np.errstate(all="ignore"):
        if config.output_mode == "sequence":
            sources = np.arange(T)
            per_source = np.zeros((T, T, d_out.shape[-1]))  # (T positions, N sources, O)
            per_source[sources, sources] = d_out[0]
            d_above = per_source @ W  # (T, N, D*H)
            assert trace.loss_per_step is not None
            losses = trace.loss_per_step / T  # loss == sum of these
        else:
            sources = np.array([T - 1])  # the one output, known once the top layer has run
            d_above = head_input_backward(config, d_out @ W, T)  # (T, 1, D*H)
            losses = np.array([float(trace.loss or 0.0)])
        d_above = d_above[:, :, None, :]  # (T, N, 1, D*H): the cells' batch axis of one
        found: Array | None = None
        for lyr in reversed(range(layer, config.num_layers)):
            d_below: Array | None = None
            for d in range(D):
                check(cancel)
                lc = cache.layers[lyr][d]
                ds_total, dxs = _backward_many(
                    d_above[..., d * H : (d + 1) * H], lc, need_inputs=lyr > layer, cancel=cancel
                )
                if lyr == layer and d == direction:
                    found = ds_total[:, :, 0]  # (T, N, S)
                if dxs is not None:
                    d_below = dxs if d_below is None else d_below + dxs
            if lyr > layer:
                assert d_below is not None
                d_above = d_below
        assert found is not None
        hidden = found[position, :, :H]  # (N, H)
        cell = None
        if config.cell == "lstm":
            # as Trace.grad_cell: c_t also reaches the loss through h_t = o * tanh(c_t)
            o = trace.gates["output"][layer, direction, position]
            assert trace.cell is not None
            tanh_c = np.tanh(trace.cell[layer, direction, position])
            cell = found[position, :, H:] + hidden * (o * (1 - tanh_c * tanh_c))
        norms = np.linalg.norm(found[:, :, :H], axis=2)  # (T, N)
    return GradientHorizon(
        layer=layer,
        direction=direction,
        position=position,
        sources=sources,
        norms=norms,
        hidden=hidden,
        cell=cell,
        total=hidden.sum(axis=0),
        loss_per_source=losses,
    )


def _backward_many(
    dh_ext: Array, cache: LayerCache, need_inputs: bool, cancel: CancelCheck = None
) -> tuple[Array, Array | None]:
    """Full BPTT through one layer-direction for N independent gradients at once.

    dh_ext (T, N, 1, H): gradient reaching each h_t from outside the recurrence, per
    source. Returns ds_total (T, N, 1, S) and, when asked, the gradient into the layer's
    input (T, N, 1, I). The same loop as `layer.layer_backward`, with a leading axis.
    """
    H = cache.hidden_size
    T, N = dh_ext.shape[:2]
    S = cache.states.shape[-1]
    step = cache.cell.backward_step(cache.record, cache.Whh, cache.bhh)
    ds_total = np.empty((T, N, 1, S))
    dxs = np.empty((T, N, 1, cache.Wih.shape[1])) if need_inputs else None
    carry = np.zeros((N, 1, S))  # gradient reaching the state from the step after it
    for t in polled(reversed(cache.order), cancel):
        ds = ds_total[t]
        np.add(carry[..., :H], dh_ext[t], out=ds[..., :H])
        ds[..., H:] = carry[..., H:]
        carry, da_x, _ = step(ds, t)
        if dxs is not None:
            dxs[t] = da_x @ cache.Wih
    return ds_total, dxs
