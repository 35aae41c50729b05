"""Frames in timeline order (`timeline.py`), built from traces: what the stream and the
session send.

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
from app.api.timeline import Phase, Timeline
from app.rnn import SpectrumBlock, Trace, param_shapes


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def config_frame(trace: Trace, spectrum: list[SpectrumBlock], has_targets: bool) -> dict[str, Any]:
    """The ConfigFrame body (without id), with the timeline the frames will follow."""
    shapes = param_shapes(trace.config)
    config = trace.config
    timeline = Timeline(
        config.num_layers, config.num_directions, trace.sequence_length, has_targets
    )
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
        "timeline": timeline.describe(),
    }


def _output_ready(trace: Trace, layer: int, d: int, t: int, step: int) -> bool:
    """True in the one frame of forward step `step` that shows the head's output at t:
    the last top-layer direction showing t, at the step where all of them have."""
    config = trace.config
    if layer != config.num_layers - 1:
        return False
    # last and final: one output, known once the top layer has run (forward step T-1)
    if config.output_mode != "sequence" and t != trace.sequence_length - 1:
        return False
    timeline = Timeline.of(trace)
    later = range(d + 1, config.num_directions)
    return timeline.output_step(t) == step and all(
        timeline.position("forward", e, step) != t for e in later
    )


def forward_frame(trace: Trace, layer: int, d: int, t: int, step: int) -> dict[str, Any]:
    """The ForwardFrame body of one (layer, direction, position), shown at forward step `step`."""
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
    if _output_ready(trace, layer, d, t, step):
        frame["output"] = trace.outputs[t] if seq else trace.outputs
        if trace.targets is not None:
            frame["target"] = trace.targets[t] if seq else plain(trace.targets)
        if trace.loss is not None:
            per_step = trace.loss_per_step
            frame["loss"] = _num(per_step[t] if per_step is not None else trace.loss)
    return frame


def backward_frame(trace: Trace, layer: int, d: int, t: int, step: int) -> dict[str, Any]:
    """The BackwardFrame body of one (layer, direction, position), shown at backward step
    `step`; `trace` must have gradients."""
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


def step_frames(trace: Trace, timeline: Timeline, index: int) -> list[dict[str, Any]]:
    """The frame bodies shown at timeline step `index`: one per layer-direction (forward or
    backward), or the summary."""
    step = timeline.at(index)
    if step.phase == "summary":
        return [summary_frame(trace)]
    build = forward_frame if step.phase == "forward" else backward_frame
    return [build(trace, layer, d, t, step.k) for layer, d, t in timeline.entries(index)]


def phase_frames(trace: Trace, phase: Phase) -> Iterator[dict[str, Any]]:
    """Every frame body of one phase ("forward" or "backward"), in timeline order."""
    timeline = Timeline.of(trace)
    start = 0 if phase == "forward" else timeline.forward_steps
    count = timeline.forward_steps if phase == "forward" else timeline.backward_steps
    for index in range(start, start + count):
        yield from step_frames(trace, timeline, index)


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
