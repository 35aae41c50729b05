"""The whole network on a batch: stacked, optionally bidirectional layers and a linear head.

Batch-first at the edges, like PyTorch's `batch_first=True`: inputs (B, T, I), outputs
(B, T, O) in `sequence` mode or (B, O) in `last` and `final` modes. Layers run time-major
inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.rnn.cancel import CancelCheck, check
from app.rnn.config import ModelConfig
from app.rnn.layer import LayerCache, LayerGrads, layer_backward, layer_forward
from app.rnn.params import direction_suffix
from app.rnn.truncation import effective_truncate, truncated_backward
from app.rnn.types import Array, Params


@dataclass
class NetworkCache:
    """Forward-pass record: layers[l][d] is layer l, direction d."""

    config: ModelConfig
    params: Params
    layers: list[list[LayerCache]]
    top: Array  # (T, B, D*H) what the head reads


@dataclass
class NetworkGrads:
    """Backward-pass record."""

    grads: Params  # same names and shapes as the params
    d_inputs: Array  # (B, T, I)
    layers: list[list[LayerGrads]]  # layers[l][d]


def network_forward(
    config: ModelConfig, params: Params, inputs: Array, cancel: CancelCheck = None
) -> tuple[Array, NetworkCache]:
    """inputs (B, T, I) -> outputs (B, T, O) or (B, O), and the cache for the backward pass.

    `cancel` is polled between layer-directions and every few positions (raises Cancelled).
    """
    H = config.hidden_size
    xs = np.ascontiguousarray(inputs.transpose(1, 0, 2))  # (T, B, I)
    layers: list[list[LayerCache]] = []
    for layer in range(config.num_layers):
        caches, outs = [], []
        for direction in range(config.num_directions):
            check(cancel)
            sfx = f"l{layer}{direction_suffix(direction)}"
            states, cache = layer_forward(
                config.cell,
                xs,
                params[f"rnn.weight_ih_{sfx}"],
                params[f"rnn.weight_hh_{sfx}"],
                params[f"rnn.bias_ih_{sfx}"],
                params[f"rnn.bias_hh_{sfx}"],
                reverse=direction == 1,
                cancel=cancel,
            )
            caches.append(cache)
            outs.append(states[:, :, :H])
        layers.append(caches)
        xs = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)  # (T, B, D*H)
    W, b = params["head.weight"], params["head.bias"]
    if config.output_mode == "sequence":
        outputs = (xs @ W.T + b).transpose(1, 0, 2)  # (B, T, O)
    else:
        outputs = head_input(config, xs) @ W.T + b  # (B, O)
    return outputs, NetworkCache(config, params, layers, xs)


def head_input(config: ModelConfig, top: Array) -> Array:
    """top (T, B, D*H) -> what the head reads: top itself in `sequence` mode, else (B, D*H).

    `last` reads position T-1 (PyTorch's output[-1]); `final` reads each direction's
    last-computed state (PyTorch's h_n[-D:] concatenated): forward at T-1, reverse at 0.
    """
    if config.output_mode == "sequence":
        return top
    if config.output_mode == "last" or config.num_directions == 1:
        return top[-1]
    H = config.hidden_size
    return np.concatenate([top[-1, :, :H], top[0, :, H:]], axis=1)  # (B, 2H)


def head_input_backward(config: ModelConfig, d_read: Array, length: int) -> Array:
    """d_read like `head_input`'s result -> d_top (T, B, D*H), zero where the head reads nothing."""
    if config.output_mode == "sequence":
        return d_read
    d_top = np.zeros((length, *d_read.shape), dtype=d_read.dtype)
    if config.output_mode == "last" or config.num_directions == 1:
        d_top[-1] = d_read
    else:
        H = config.hidden_size
        d_top[-1, :, :H] = d_read[:, :H]
        d_top[0, :, H:] = d_read[:, H:]
    return d_top


def network_backward(
    d_outputs: Array,
    cache: NetworkCache,
    truncate: int | None = None,
    cancel: CancelCheck = None,
) -> NetworkGrads:
    """d_outputs like the outputs -> gradients of every parameter, the inputs and every state.

    `truncate=k` is BPTT(k) as `truncation.py` defines it across layers and directions;
    None, or any k at or beyond the longest path, is full BPTT.
    """
    config, params = cache.config, cache.params
    H, D = config.hidden_size, config.num_directions
    top = cache.top  # (T, B, D*H)
    T, B, _ = top.shape
    W = params["head.weight"]
    grads: Params = {}
    if config.output_mode == "sequence":
        d_out = d_outputs.transpose(1, 0, 2)  # (T, B, O)
        grads["head.weight"] = d_out.reshape(T * B, -1).T @ top.reshape(T * B, -1)
        grads["head.bias"] = d_out.sum(axis=(0, 1))
        d_top = d_out @ W  # (T, B, D*H)
    else:
        grads["head.weight"] = d_outputs.T @ head_input(config, top)
        grads["head.bias"] = d_outputs.sum(axis=0)
        d_top = head_input_backward(config, d_outputs @ W, T)

    k = effective_truncate(truncate, config.num_layers, config.bidirectional, T)
    if k is None:
        layer_grads: list[list[LayerGrads]] = [[] for _ in range(config.num_layers)]
        d_above = d_top
        for layer in reversed(range(config.num_layers)):
            d_below = None
            for direction in range(D):
                check(cancel)
                lg = layer_backward(
                    d_above[:, :, direction * H : (direction + 1) * H],
                    cache.layers[layer][direction],
                    cancel,
                )
                layer_grads[layer].append(lg)
                d_below = lg.dxs if d_below is None else d_below + lg.dxs
            assert d_below is not None
            d_above = d_below
        d_inputs = d_above
    else:
        layer_grads, d_inputs = truncated_backward(d_top, cache.layers, k, cancel)
    for layer, per_direction in enumerate(layer_grads):
        for direction, lg in enumerate(per_direction):
            sfx = f"l{layer}{direction_suffix(direction)}"
            grads[f"rnn.weight_ih_{sfx}"] = lg.dWih
            grads[f"rnn.weight_hh_{sfx}"] = lg.dWhh
            grads[f"rnn.bias_ih_{sfx}"] = lg.dbih
            grads[f"rnn.bias_hh_{sfx}"] = lg.dbhh
    ordered = {name: grads[name] for name in params}
    return NetworkGrads(ordered, d_inputs.transpose(1, 0, 2), layer_grads)
