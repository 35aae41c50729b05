"""One recurrent layer in one direction, run over a whole sequence, and its BPTT.

Arrays here are time-major: (T, B, ...). `reverse=True` runs positions T-1 ... 0, as a
bidirectional layer's reverse direction does; results stay indexed by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.rnn.cancel import CancelCheck, polled
from app.rnn.cells import CELL_OPS, Cell, SequenceRecord
from app.rnn.types import Array


@dataclass
class LayerCache:
    """What the backward pass and the recorders need from a layer's forward pass."""

    cell: Cell
    xs: Array  # (T, B, I) layer input
    record: SequenceRecord  # states, previous states, gate activations
    Wih: Array  # (G*H, I)
    Whh: Array  # (G*H, H)
    bhh: Array  # (G*H,)
    reverse: bool
    hidden_size: int

    @property
    def states(self) -> Array:
        """(T, B, S) state after each position."""
        return self.record.states

    @property
    def states_prev(self) -> Array:
        """(T, B, S) state each position started from (zeros for the first computed)."""
        return self.record.states_prev

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
    cancel: CancelCheck = None,
) -> tuple[Array, LayerCache]:
    """Run one direction of one layer from a zero state.

    xs (T, B, I), Wih (G*H, I), Whh (G*H, H), biases (G*H,) -> states (T, B, S).
    """
    ops = CELL_OPS[cell]
    T = xs.shape[0]
    xw = xs @ Wih.T + bih  # (T, B, G*H), all positions in one product
    order = range(T - 1, -1, -1) if reverse else range(T)
    record = ops.forward(xw, Whh, bhh, order, cancel=cancel)
    cache = LayerCache(ops, xs, record, Wih, Whh, bhh, reverse, Whh.shape[1])
    return record.states, cache


def layer_backward(dh_ext: Array, cache: LayerCache, cancel: CancelCheck = None) -> LayerGrads:
    """Full BPTT through one layer-direction.

    dh_ext (T, B, H): gradient reaching each h_t from outside the recurrence (the head or
    the layer above). Truncated BPTT lives in `truncation.py`: its budget spans layers.
    """
    H, Whh = cache.hidden_size, cache.Whh
    T, B, S = cache.states.shape
    GH = Whh.shape[0]
    step = cache.cell.backward_step(cache.record, Whh, cache.bhh)
    ds_total = np.empty((T, B, S))
    da_x = np.empty((T, B, GH))
    shared = cache.cell.shared_preactivation
    da_h = da_x if shared else np.empty((T, B, GH))
    carry = np.zeros((B, S))  # gradient reaching the state from the step after it
    for t in polled(reversed(cache.order), cancel):
        ds = ds_total[t]
        np.add(carry[:, :H], dh_ext[t], out=ds[:, :H])
        ds[:, H:] = carry[:, H:]
        carry, dax, dah = step(ds, t)
        da_x[t] = dax
        if not shared:
            da_h[t] = dah
    return layer_grads(cache, da_x, da_h, ds_total)


def layer_grads(cache: LayerCache, da_x: Array, da_h: Array, ds_total: Array) -> LayerGrads:
    """Weight and input gradients from the pre-activation gradients of every position.

    da_x, da_h (T, B, G*H) (the same array for all cells but the GRU); ds_total (T, B, S).
    """
    T, B, _ = ds_total.shape
    H, GH = cache.hidden_size, cache.Whh.shape[0]
    h_prev = cache.states_prev[:, :, :H]
    flat_ax = da_x.reshape(T * B, GH)
    dbih = flat_ax.sum(axis=0)
    shared = da_h is da_x
    return LayerGrads(
        dxs=da_x @ cache.Wih,
        dWih=flat_ax.T @ cache.xs.reshape(T * B, -1),
        dWhh=da_h.reshape(T * B, GH).T @ h_prev.reshape(T * B, H),
        dbih=dbih,
        dbhh=dbih.copy() if shared else da_h.sum(axis=(0, 1)),
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
    return cache.cell.gates(cache.record)


def layer_jacobians(cache: LayerCache) -> Array:
    """(T, B, S, S): d state_t / d state_prev at each position, in the layer's own order."""
    return cache.cell.jacobians(cache.record, cache.Whh)
