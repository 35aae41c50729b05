"""One recurrent layer in one direction, run over a whole sequence, and its BPTT.

Arrays here are time-major: (T, B, ...). `reverse=True` runs positions T-1 ... 0, as a
bidirectional layer's reverse direction does; results stay indexed by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.rnn.cells import CELL_OPS, Cache, CellOps
from app.rnn.types import Array


@dataclass
class LayerCache:
    """What the backward pass and the recorders need from a layer's forward pass."""

    ops: CellOps
    xs: Array  # (T, B, I) layer input
    states: Array  # (T, B, S) state after each position
    states_prev: Array  # (T, B, S) state each position started from
    caches: list[Cache]  # per position, indexed by position
    Wih: Array  # (G*H, I)
    Whh: Array  # (G*H, H)
    reverse: bool
    hidden_size: int

    @property
    def order(self) -> range:
        """Positions in the order the layer computes them."""
        T = self.xs.shape[0]
        return range(T - 1, -1, -1) if self.reverse else range(T)


@dataclass
class LayerGrads:
    """Everything the backward pass of one layer-direction produces."""

    dxs: Array  # (T, B, I) gradient into the layer's input
    dWih: Array  # (G*H, I)
    dWhh: Array  # (G*H, H)
    dbih: Array  # (G*H,)
    dbhh: Array  # (G*H,)
    ds_total: Array  # (T, B, S) total gradient reaching each state
    da_h: Array  # (T, B, G*H) hidden-side pre-activation gradient per position


def layer_forward(
    cell: str,
    xs: Array,
    Wih: Array,
    Whh: Array,
    bih: Array,
    bhh: Array,
    reverse: bool = False,
) -> tuple[Array, LayerCache]:
    """Run one direction of one layer from a zero state.

    xs (T, B, I), Wih (G*H, I), Whh (G*H, H), biases (G*H,) -> states (T, B, S).
    """
    ops = CELL_OPS[cell]
    relu = cell == "rnn_relu"
    T, B, _ = xs.shape
    H = Whh.shape[1]
    S = ops.state_multiple * H
    xw = xs @ Wih.T + bih  # (T, B, G*H), all positions in one product
    states = np.empty((T, B, S))
    states_prev = np.empty((T, B, S))
    caches: list[Cache] = [()] * T
    s = np.zeros((B, S))
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        states_prev[t] = s
        s, caches[t] = ops.forward(xw[t], s, Whh, bhh, relu)
        states[t] = s
    cache = LayerCache(ops, xs, states, states_prev, caches, Wih, Whh, reverse, H)
    return states, cache


def layer_backward(dh_ext: Array, cache: LayerCache, truncate: int | None = None) -> LayerGrads:
    """BPTT through one layer-direction.

    dh_ext (T, B, H): gradient reaching each h_t from outside the recurrence (the head or
    the layer above). With `truncate=k`, a gradient injected at position t flows back
    through at most k recurrent steps (BPTT(k) of Williams and Peng); None is full BPTT.
    """
    ops, Whh, H = cache.ops, cache.Whh, cache.hidden_size
    T, B, S = cache.states.shape
    GH = Whh.shape[0]
    ds_total = np.empty((T, B, S))
    da_x = np.empty((T, B, GH))
    da_h = np.empty((T, B, GH))
    # carry: gradient arriving at the current state from the step computed after it,
    # by age (recurrent steps crossed so far); full BPTT needs one slot.
    ages = 1 if truncate is None else truncate + 1
    carry = np.zeros((ages, B, S))
    for t in reversed(cache.order):
        if truncate is None:
            ds = carry
            ds[0, :, :H] += dh_ext[t]
        else:
            ds = np.empty((ages, B, S))
            ds[1:] = carry[:-1]  # one more step crossed; the oldest drops out
            ds[0] = 0.0
            ds[0, :, :H] = dh_ext[t]
        ds_total[t] = ds.sum(axis=0) if ages > 1 else ds[0]
        carry, dax, dah = ops.backward(ds, cache.caches[t], Whh)
        if ages > 1:
            da_x[t], da_h[t] = dax.sum(axis=0), dah.sum(axis=0)
        else:
            da_x[t], da_h[t] = dax[0], dah[0]
    h_prev = cache.states_prev[:, :, :H]
    flat_ax = da_x.reshape(T * B, GH)
    return LayerGrads(
        dxs=da_x @ cache.Wih,
        dWih=flat_ax.T @ cache.xs.reshape(T * B, -1),
        dWhh=da_h.reshape(T * B, GH).T @ h_prev.reshape(T * B, H),
        dbih=flat_ax.sum(axis=0),
        dbhh=da_h.sum(axis=(0, 1)),
        ds_total=ds_total,
        da_h=da_h,
    )


def step_weight_grad_norms(cache: LayerCache, grads: LayerGrads) -> Array:
    """(T,) Frobenius norm of each position's contribution da_h_t.T @ h_prev_t to dWhh."""
    h_prev = cache.states_prev[:, :, : cache.hidden_size]  # (T, B, H)
    B = h_prev.shape[1]
    if B == 1:
        # a rank-one outer product: its Frobenius norm factorizes
        return np.linalg.norm(grads.da_h[:, 0], axis=1) * np.linalg.norm(h_prev[:, 0], axis=1)
    per_step = np.einsum("tbg,tbh->tgh", grads.da_h, h_prev)
    return np.sqrt(np.einsum("tgh,tgh->t", per_step, per_step))


def layer_gates(cache: LayerCache) -> tuple[Array, ...]:
    """Gate activations per gate, each (T, B, H); empty for the plain RNN cells."""
    per_position = [cache.ops.gates(c) for c in cache.caches]
    if not per_position[0]:
        return ()
    return tuple(np.stack(g) for g in zip(*per_position, strict=True))


def layer_jacobians(cache: LayerCache) -> Array:
    """(T, B, S, S): d state_t / d state_{t-1} in the layer's own order."""
    return np.stack([cache.ops.jacobian(c, cache.Whh) for c in cache.caches])
