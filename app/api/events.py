"""Frames in execution order, built from traces: what the stream and the session send.

Frames are plain dicts shaped like the models in `frames.py` (built directly: validating
a pydantic model per position would cost more than computing it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from app.api.encoding import config_to_dict, plain, spectrum_to_dict
from app.api.frames import SCHEMA_VERSION
from app.rnn import ModelConfig, SpectrumBlock, Trace, param_shapes


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def compute_order(trace: Trace) -> list[tuple[int, int, int]]:
    """(layer, direction, position) in the order the engine computes them."""
    config, T = trace.config, trace.sequence_length
    order: list[tuple[int, int, int]] = []
    for layer in range(config.num_layers):
        for d in range(config.num_directions):
            positions = range(T - 1, -1, -1) if d == 1 else range(T)
            order.extend((layer, d, t) for t in positions)
    return order


def backward_order(trace: Trace) -> list[tuple[int, int, int]]:
    """(layer, direction, position) in the order BPTT visits them: top layer first, each
    direction from its last-computed position back to its first."""
    config, T = trace.config, trace.sequence_length
    order: list[tuple[int, int, int]] = []
    for layer in reversed(range(config.num_layers)):
        for d in range(config.num_directions):
            positions = range(T) if d == 1 else range(T - 1, -1, -1)
            order.extend((layer, d, t) for t in positions)
    return order


def config_frame(trace: Trace, spectrum: list[SpectrumBlock], has_targets: bool) -> dict[str, Any]:
    """The ConfigFrame body (without id)."""
    shapes = param_shapes(trace.config)
    return {
        "type": "config",
        "config": config_to_dict(trace.config),
        "sequence_length": trace.sequence_length,
        "num_params": int(sum(int(np.prod(s)) for s in shapes.values())),
        "param_shapes": {k: list(v) for k, v in shapes.items()},
        "gate_names": list(trace.config.gate_names),
        "spectrum": [spectrum_to_dict(b) for b in spectrum],
        "truncate": trace.truncate,
        "has_targets": has_targets,
    }


def _output_ready(trace: Trace, layer: int, d: int, t: int) -> bool:
    """True at the step where the head's output at position t first becomes computable."""
    config = trace.config
    if layer != config.num_layers - 1 or d != config.num_directions - 1:
        return False
    return config.output_mode == "sequence" or t == trace.sequence_length - 1


def forward_frame(trace: Trace, layer: int, d: int, t: int, step: int) -> dict[str, Any]:
    """The ForwardFrame body of one (layer, direction, position), its `step`-th computed."""
    seq = trace.config.output_mode == "sequence"
    # layer 0 reads x_t; a layer above reads [forward h_t, reverse h_t] from below
    layer_input = trace.inputs[t] if layer == 0 else trace.hidden[layer - 1, :, t].reshape(-1)
    frame: dict[str, Any] = {
        "type": "forward",
        "layer": layer,
        "direction": d,
        "position": t,
        "step": step,
        "input": layer_input,
        "hidden": trace.hidden[layer, d, t],
        "cell": None if trace.cell is None else trace.cell[layer, d, t],
        "gates": {k: v[layer, d, t] for k, v in trace.gates.items()} or None,
        "output": None,
        "target": None,
        "loss": None,
    }
    if _output_ready(trace, layer, d, t):
        frame["output"] = trace.outputs[t] if seq else trace.outputs
        if trace.targets is not None:
            frame["target"] = trace.targets[t] if seq else plain(trace.targets)
        if trace.loss is not None:
            per_step = trace.loss_per_step
            frame["loss"] = _num(per_step[t] if per_step is not None else trace.loss)
    return frame


def backward_frame(trace: Trace, layer: int, d: int, t: int, step: int) -> dict[str, Any]:
    """The BackwardFrame body of one (layer, direction, position), its `step`-th visited;
    `trace` must have gradients."""
    assert trace.grad_hidden is not None and trace.grad_step_norms is not None
    g = trace.grad_hidden[layer, d, t]
    return {
        "type": "backward",
        "layer": layer,
        "direction": d,
        "position": t,
        "step": step,
        "grad_hidden": g,
        "grad_hidden_norm": _num(np.linalg.norm(g)),
        "grad_cell": None if trace.grad_cell is None else trace.grad_cell[layer, d, t],
        "grad_step_norm": _num(trace.grad_step_norms[layer, d, t]),
        "jacobian_norm": None
        if trace.jacobian_norm is None
        else _num(trace.jacobian_norm[layer, d, t]),
        "jacobian_product_norm": None
        if trace.jacobian_product_norm is None
        else _num(trace.jacobian_product_norm[layer, d, t]),
    }


def forward_frames(trace: Trace) -> Iterator[dict[str, Any]]:
    """ForwardFrame bodies in compute order; output, target and loss where they are known."""
    T = trace.sequence_length
    for index, (layer, d, t) in enumerate(compute_order(trace)):
        yield forward_frame(trace, layer, d, t, index % T)


def backward_frames(trace: Trace) -> Iterator[dict[str, Any]]:
    """BackwardFrame bodies in BPTT order; `trace` must have gradients."""
    T = trace.sequence_length
    for index, (layer, d, t) in enumerate(backward_order(trace)):
        yield backward_frame(trace, layer, d, t, index % T)


def timeline_at(config: ModelConfig, T: int, index: int, backward: bool) -> tuple[int, int, int]:
    """(layer, direction, position) of the `index`-th forward frame (compute order), or of
    the `index`-th backward frame (BPTT order); the step is `index % T`. The inverse of the
    cursor formulas in docs/session-protocol.md."""
    D = config.num_directions
    block, k = divmod(index, T)
    if not backward:
        layer, d = divmod(block, D)
        return layer, d, k if d == 0 else T - 1 - k
    layer, d = config.num_layers - 1 - block // D, block % D
    return layer, d, T - 1 - k if d == 0 else k


def summary_frame(trace: Trace) -> dict[str, Any]:
    """The SummaryFrame body."""
    return {
        "type": "summary",
        "loss": None if trace.loss is None else _num(trace.loss),
        "loss_per_step": trace.loss_per_step,
        "outputs": trace.outputs,
        "grad_norms": {k: _num(np.linalg.norm(v)) for k, v in (trace.grads or {}).items()},
        "grad_inputs": trace.grad_inputs,
        "finite": trace.finite,
    }


class FrameStamper:
    """Gives frames their schema_version and increasing ids: one per stream or session."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    def __call__(self, frame: dict[str, Any]) -> dict[str, Any]:
        frame["schema_version"] = SCHEMA_VERSION
        frame["id"] = next(self._ids)
        return frame
