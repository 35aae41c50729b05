"""The gradient verdict: how fast the gradient from the last position shrinks or grows per
step in each layer-direction, a label for it, and the reason in plain words.

The measure is the per-step rate r: the geometric mean of the successive ratios of the
Jacobian product norms ||d s_last / d s_t|| over the steps the gradient reaches (they
telescope: r = P^(1/n), P the norm n steps back, 1 at s_last). Without Jacobian norms a
one-layer network in `last` or `final` mode uses the gradient itself, ||dL/ds_t||, whose only source
is the last position. With BPTT(k) only the k steps the truncated gradient reaches count.

Labels, honest over the steps measured: `vanishing` when r < STABLE_RATE or less than
STABLE_SURVIVING of the gradient is left at the far end of them, `exploding` in the
mirror case, `stable` otherwise; `overflowed` when a state, gradient or product is
inf/NaN; `none` when nothing can be measured (one position, no Jacobian norms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from app.rnn.trace import Trace
from app.rnn.types import Array, Positions

STABLE_RATE = 0.9  # per step: r in [0.9, 1/0.9] keeps a tenth after 22 steps
STABLE_SURVIVING = 0.1  # over the steps measured: [0.1, 10] of the gradient at the far end
SATURATED = 0.9  # |tanh| above this: tanh' = 1 - h^2 below 0.19
NEAR_ONE = 0.01  # a spectral radius within this of 1 is "about 1"
SMALL_DERIVATIVE = 0.5  # mean tanh' below this squeezes the gradient at every step
_ORDER = {"overflowed": 4, "exploding": 3, "vanishing": 2, "stable": 1, "none": 0}


def gradient_verdict(trace: Trace, spectrum: Iterable[Any] | None = None) -> dict[str, Any]:
    """The verdict of a trace: {"verdict", "reason", "rate", "surviving", "steps",
    "surviving_to_start", "truncate", "truncated", "source", "layer", "direction",
    "layers": [one dict per (layer, direction), same keys and more], "notes": [str]}.

    `spectrum` (SpectrumBlocks of the same weights, optional) adds W_hh's spectral radius
    to the reasons. The top-level numbers are those of the decisive layer-direction: the
    worst label among those linked to the loss (overflowed > exploding > vanishing >
    stable), the most extreme rate among equals. Non-finite numbers are None.
    """
    config = trace.config
    radius = _radii(spectrum)
    notes: list[str] = []
    per_direction = []
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            item = _layer_direction(trace, layer, direction, radius.get((layer, direction)))
            per_direction.append(item)
    if config.bidirectional and config.output_mode == "last":
        top = config.num_layers - 1
        note = (
            "last mode reads position T-1 (PyTorch's output[-1]): the top layer's reverse "
            "direction has seen only the last input there, and its gradient is zero at every "
            "other position, so its Jacobian product is measured along a path with no link "
            "to the loss"
        )
        notes.append(note)
        for item in per_direction:
            if item["layer"] == top and item["direction"] == 1:
                item["linked"] = False
                item["reason"] = f"{note}. {item['reason']}"
    linked = [item for item in per_direction if item["linked"]] or per_direction
    decisive = max(linked, key=_severity)
    keys = (
        "verdict",
        "reason",
        "rate",
        "surviving",
        "steps",
        "surviving_to_start",
        "truncated",
        "source",
        "layer",
        "direction",
    )
    return {
        **{key: decisive[key] for key in keys},
        "truncate": trace.truncate,
        "layers": per_direction,
        "notes": notes,
    }


def _severity(item: dict[str, Any]) -> tuple[int, float]:
    rate = item["rate"]
    extreme = 0.0 if rate is None or rate <= 0 else abs(math.log(rate))
    return _ORDER[item["verdict"]], extreme


def _radii(spectrum: Iterable[Any] | None) -> dict[tuple[int, int], tuple[float, str]]:
    """(layer, direction) -> (largest spectral radius among its W_hh blocks, that gate)."""
    out: dict[tuple[int, int], tuple[float, str]] = {}
    for block in spectrum or ():
        key = (int(block.layer), int(block.direction))
        if key not in out or block.spectral_radius > out[key][0]:
            out[key] = (float(block.spectral_radius), str(block.gate))
    return out


def _layer_direction(
    trace: Trace, layer: int, direction: int, radius: tuple[float, str] | None
) -> dict[str, Any]:
    """The verdict of one layer-direction (see `gradient_verdict`)."""
    config = trace.config
    T = trace.sequence_length
    order = np.arange(T) if direction == 0 else np.arange(T)[::-1]  # compute order
    full = T - 1
    steps = full if trace.truncate is None else min(trace.truncate, full)
    truncated = steps < full
    item: dict[str, Any] = {
        "layer": layer,
        "direction": direction,
        "verdict": "none",
        "reason": "",
        "rate": None,
        "surviving": None,
        "steps": steps,
        "surviving_to_start": None,
        "truncated": truncated,
        "source": None,
        "from_position": int(order[-1]),
        "to_position": int(order[-1 - steps]) if T else 0,
        "spectral_radius": None if radius is None else _finite(radius[0]),
        "linked": True,
    }
    states = _states(trace, layer, direction)  # (T, S) in input order
    bad_state = _first_bad(states[order])
    if bad_state is not None:
        item["verdict"] = "overflowed"
        item["reason"] = _overflow_reason(config.cell, int(order[bad_state]), bad_state, radius)
        return item
    profile, source = _profile(trace, layer, direction, order, steps)
    item["source"] = source
    if profile is not None and not np.all(np.isfinite(profile)):
        item["verdict"] = "overflowed"
        item["reason"] = (
            "the gradient overflowed (inf/NaN) on its way back although the states are "
            f"finite: {_radius_words(radius, growing=True)}"
        )
        return item
    if T < 2:
        item["reason"] = "one position: no recurrent step for the gradient to cross"
        return item
    if profile is None:
        item["reason"] = (
            "nothing to measure it on: ask for the Jacobian norms (jacobians: true), or give "
            "targets in last mode"
        )
        return item
    if profile[0] == 0:  # e.g. a perfect prediction: no gradient leaves the last position
        item["reason"] = "no gradient at the last position to follow back"
        return item
    surviving = float(profile[steps] / profile[0])
    rate = surviving ** (1.0 / steps) if surviving > 0 else 0.0
    item["surviving"] = _finite(surviving)
    item["rate"] = _finite(rate)
    item["surviving_to_start"] = 0.0 if truncated else item["surviving"]
    label = _label(rate, surviving)
    item["verdict"] = label
    window = order[-1 - steps :]  # the positions the gradient reaches, in input order sorted
    words = [_rate_words(rate, surviving, steps, label)]
    words.append(_cause_words(trace, layer, direction, np.sort(window), label, radius))
    if truncated:
        start = int(order[-1 - steps])
        words.append(
            f"BPTT({trace.truncate}) stops the gradient from the last position at position "
            f"{start}: truncation, not decay, is why none of it reaches position "
            f"{int(order[0])}"
        )
    item["reason"] = "; ".join(w for w in words if w)
    return item


def _states(trace: Trace, layer: int, direction: int) -> Array:
    """(T, S): h, or [h, c] for the LSTM, of one layer-direction."""
    h = trace.hidden[layer, direction]
    if trace.cell is None:
        return h
    return np.concatenate([h, trace.cell[layer, direction]], axis=1)


def _first_bad(rows: Array) -> int | None:
    """Index of the first row (T, S) holding inf/NaN, or None."""
    bad = ~np.all(np.isfinite(rows), axis=1)
    return int(np.argmax(bad)) if np.any(bad) else None


def _profile(
    trace: Trace, layer: int, direction: int, order: Positions, steps: int
) -> tuple[Array | None, str | None]:
    """(steps + 1,) gradient sizes walking back from the last position in compute order
    (entry 0 at the last position), and what they were measured on."""
    back = order[::-1][: steps + 1]
    products = trace.jacobian_product_norm
    if products is not None and layer in trace.jacobian_layers:
        return np.asarray(products[layer, direction][back], dtype=np.float64), "jacobian_product"
    config = trace.config
    # final mode reads each direction where it ends, so both carry one source, as last's forward
    one_source = config.output_mode == "final" or (config.output_mode == "last" and direction == 0)
    only_last = one_source and config.num_layers == 1
    if only_last and trace.grad_hidden is not None:
        grad = trace.grad_hidden[layer, direction]
        if trace.grad_cell is not None:
            grad = np.concatenate([grad, trace.grad_cell[layer, direction]], axis=1)
        with np.errstate(all="ignore"):
            norms = np.sqrt(np.sum(grad * grad, axis=1))
        return norms[back], "grad_hidden"
    return None, None


def _label(rate: float, surviving: float) -> str:
    if rate < STABLE_RATE or surviving < STABLE_SURVIVING:
        return "vanishing"
    if rate > 1.0 / STABLE_RATE or surviving > 1.0 / STABLE_SURVIVING:
        return "exploding"
    return "stable"


def _rate_words(rate: float, surviving: float, steps: int, label: str) -> str:
    plural = "s" if steps != 1 else ""
    if rate > 1:
        return (
            f"{label}: the gradient grows {rate:.3g} times each step, to {surviving:.3g} "
            f"times its size after {steps} step{plural}"
        )
    text = (
        f"{label}: {rate:.3g} of the gradient survives each step, {surviving:.3g} of it "
        f"after {steps} step{plural}"
    )
    if 0 < rate < 1:
        text += f" (a tenth is left after {math.log(0.1) / math.log(rate):.0f} steps)"
    return text


def _cause_words(
    trace: Trace,
    layer: int,
    direction: int,
    window: Positions,
    label: str,
    radius: tuple[float, str] | None,
) -> str:
    """Why, in words: saturation, the forget or update gate, ReLU units, the spectral radius."""
    cell = trace.config.cell
    growing = label == "exploding"
    if cell == "rnn_tanh":
        h = trace.hidden[layer, direction][window]
        derivative = float(np.mean(1.0 - h * h))
        saturated = float(np.mean(np.abs(h) > SATURATED))
        squeezed = label != "exploding" and derivative < SMALL_DERIVATIVE
        if squeezed and radius is not None and radius[0] > 1.0:
            outcome = "the gradient vanishes" if label == "vanishing" else "it holds steady"
            return (
                f"saturation: {saturated:.0%} of the tanh units sit near +-1 (mean tanh' = "
                f"{derivative:.2f}), which scales each step's Jacobian diag(1 - h^2) W_hh down "
                f"although W_hh's spectral radius, {radius[0]:.3g}, is above 1: {outcome}"
            )
        return f"mean tanh' = {derivative:.2f} ({saturated:.0%} of units near +-1); " + (
            _radius_words(radius, growing)
        )
    if cell == "rnn_relu":
        h = trace.hidden[layer, direction][window]
        active = float(np.mean(h > 0))
        return f"{active:.0%} of the ReLU units are active (their derivative is 1, else 0); " + (
            _radius_words(radius, growing)
        )
    if cell == "lstm":
        forget = float(np.mean(trace.gates["forget"][layer, direction][window]))
        keeps = "keeps" if forget >= 0.5 else "keeps only"
        return (
            f"forget gate: its mean is {forget:.3f}, so the cell state {keeps} about "
            f"{forget:.0%} of itself (and of its gradient) each step; "
            + _radius_words(radius, growing)
        )
    update = float(np.mean(trace.gates["update"][layer, direction][window]))
    return (
        f"update gate: its mean is {update:.3f}, the share of the state (and its gradient) "
        "passed on unchanged each step; " + _radius_words(radius, growing)
    )


def _radius_words(radius: tuple[float, str] | None, growing: bool) -> str:
    if radius is None:
        return "W_hh's spectral radius was not given"
    value, gate = radius
    block = "W_hh" if gate == "hidden" else f"W_hh's {gate} block"
    if abs(value - 1.0) < NEAR_ONE:
        side = "about 1: by itself it neither shrinks nor stretches the gradient much"
    elif value > 1.0:
        side = "above 1: by itself it stretches the gradient" + (" each step" if growing else "")
    else:
        side = "below 1: it shrinks the gradient each step"
    return f"{block} has spectral radius {value:.3g}, {side}"


def _overflow_reason(cell: str, position: int, step: int, radius: tuple[float, str] | None) -> str:
    where = f"the states overflow (inf/NaN) at position {position}, step {step} of this direction"
    if cell == "rnn_relu":
        return (
            f"overflowed: ReLU overflow: {where}. Nothing bounds a ReLU state: "
            f"{_radius_words(radius, growing=True)}, so the state grows until it overflows, "
            "and the gradient through those steps is undefined, not zero"
        )
    return f"overflowed: {where}; {_radius_words(radius, growing=True)}"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
