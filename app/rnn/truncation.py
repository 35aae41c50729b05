"""Truncated BPTT through stacked, bidirectional layers: the gradient follows only short paths.

BPTT(k): along any path from the loss at a position, each recurrent step (a state to the
state one step earlier in its direction's order) costs 1 and each step down to the layer
below at the same position costs 0; the gradient flows only along paths of total cost at
most k. In a network without reverse directions every path from the loss at tau to a
state at t costs exactly tau - t; in a bidirectional stack a path can run back in one
direction and forward in the other, so the longest path costs L*(T-1).

The gradient is computed level by level: level c is the part that crossed exactly c
recurrent steps. Within a level, down steps run top layer first; a recurrent step moves
it to level c+1, and level k's recurrent steps are dropped. Each level is a handful of
array operations over all positions at once (restricted to the band of positions its
mass can occupy), so:

- memory is O(L*D*T*B*S), independent of k (no per-age copies of the sequence);
- time is O(k*L*D*T) cell steps for k below `longest_path`, and truncations at or above
  it are full BPTT, O(L*D*T). In a one-directional network the band shrinks by one
  position per level, so the work is about (T - k/2)*k steps.

With vectors alone exact O(T) is out of reach: the truncated gradient at t sums the
losses of a window [t, t+k] pushed through non-invertible Jacobians, so sliding the
window needs each window's S x S Jacobian products. `_window_backward` does exactly that
for a one-layer network and a single sequence (each direction is then one chain): at
most two S x S products per position, O(T*S^2*H) whatever k, used when it is the
cheaper of the two. In a stack the chains feed each other through every layer, the
matrices would be (L*D*S)^2, and the levels stay cheaper.
"""

from __future__ import annotations

import numpy as np

from app.rnn.cancel import CancelCheck, check, polled
from app.rnn.layer import LayerCache, LayerGrads, layer_grads
from app.rnn.types import Array

Band = tuple[int, Array]
"""(lo, values (n, B, S)): gradient at positions lo .. lo+n-1, zero elsewhere."""


def longest_path(num_layers: int, bidirectional: bool, length: int) -> int:
    """The cost of the costliest gradient path: T-1 per layer for a bidirectional stack
    (a path can turn round in every layer), else T-1."""
    return max(length - 1, 0) * (num_layers if bidirectional else 1)


def effective_truncate(
    truncate: int | None, num_layers: int, bidirectional: bool, length: int
) -> int | None:
    """`truncate` clamped to what it can cut: None (full BPTT) at or beyond `longest_path`."""
    if truncate is None or truncate >= longest_path(num_layers, bidirectional, length):
        return None
    return truncate


def truncated_backward(
    d_top: Array, layers: list[list[LayerCache]], truncate: int, cancel: CancelCheck = None
) -> tuple[list[list[LayerGrads]], Array]:
    """BPTT(truncate) through every layer-direction (see the module docstring).

    d_top (T, B, D*H): gradient reaching the top layer's outputs from the head.
    Returns layer gradients [l][d] and the gradient of the network input (T, B, I).
    """
    L, D = len(layers), len(layers[0])
    first = layers[0][0]
    T, B, _ = first.states.shape
    H = first.hidden_size
    if L == 1 and B == 1 and _window_is_cheaper(d_top, first, truncate):
        chains = [
            _window_backward(d_top[:, :, d * H : (d + 1) * H], lc, truncate, cancel)
            for d, lc in enumerate(layers[0])
        ]
        return [chains], np.sum([lg.dxs for lg in chains], axis=0)
    steps = [[lc.cell.backward_step(lc.record, lc.Whh, lc.bhh) for lc in layer] for layer in layers]
    ds_total = [[np.zeros(lc.states.shape) for lc in layer] for layer in layers]
    da_x = [[np.zeros((T, B, lc.Whh.shape[0])) for lc in layer] for layer in layers]
    da_h = [
        [
            da if lc.cell.shared_preactivation else np.zeros_like(da)
            for lc, da in zip(layer, das, strict=True)
        ]
        for layer, das in zip(layers, da_x, strict=True)
    ]
    d_inputs = np.zeros((T, B, first.xs.shape[2]))

    recurrent: list[list[Band | None]] = [[None] * D for _ in range(L)]
    for level in range(truncate + 1):
        # the head feeds the top layer at cost 0 only
        from_above = [
            _head_band(d_top[:, :, d * H : (d + 1) * H]) if level == 0 else None for d in range(D)
        ]
        arrived: list[list[Band | None]] = [[None] * D for _ in range(L)]
        for layer in reversed(range(L)):
            below: list[Band | None] = [None] * D
            for d, lc in enumerate(layers[layer]):
                check(cancel)
                band = _merge(recurrent[layer][d], from_above[d], lc.states.shape[2])
                if band is None:
                    continue
                lo, ds = band
                hi = lo + len(ds)
                ds_total[layer][d][lo:hi] += ds
                ds_prev, dax, dah = steps[layer][d](ds, slice(lo, hi))  # type: ignore[arg-type]
                da_x[layer][d][lo:hi] += dax
                if da_h[layer][d] is not da_x[layer][d]:
                    da_h[layer][d][lo:hi] += dah
                if level < truncate:
                    arrived[layer][d] = _step_back(lo, ds_prev, lc.reverse, T)
                dx = dax @ lc.Wih  # (n, B, I): down to the layer below, same position
                if layer == 0:
                    d_inputs[lo:hi] += dx
                else:
                    for d_below in range(D):
                        part = (lo, dx[:, :, d_below * H : (d_below + 1) * H])
                        below[d_below] = _merge(below[d_below], part, H)
            from_above = below
        recurrent = arrived
        if all(band is None for row in recurrent for band in row):
            break
    grads = [
        [
            layer_grads(lc, da_x[layer][d], da_h[layer][d], ds_total[layer][d])
            for d, lc in enumerate(layers[layer])
        ]
        for layer in range(L)
    ]
    return grads, d_inputs


def _window_is_cheaper(d_top: Array, cache: LayerCache, truncate: int) -> bool:
    """Whether `_window_backward` costs less than the level-by-level loop: multiply-adds
    of its two S x S products per position against the levels' cell steps."""
    T, _, S = cache.states.shape
    GH, H = cache.Whh.shape
    I = cache.xs.shape[2]
    band = _head_band(d_top)
    if band is None:
        return False
    n = len(band[1])  # positions the head reaches: T in sequence mode, 1 in last mode
    level_positions = sum(max(min(n + c, T) - c, 1) for c in range(truncate + 1))
    W = truncate + 1
    products = sum(min(W, T - 1 - (start + W - 1)) + W - 1 for start in range(0, T - W, W))
    product = S * S * (H if S == 2 * H else S)  # the LSTM's J has two diagonal blocks
    # both run at about the same multiply-add rate (measured, H = 32 to 128)
    return products * product < level_positions * GH * (H + I)


def _window_backward(
    d_head: Array, cache: LayerCache, truncate: int, cancel: CancelCheck = None
) -> LayerGrads:
    """BPTT(truncate) through one chain (a layer-direction with nothing below: a one-layer
    network), batch of one, in O(T) S x S products whatever the truncation.

    d_head (T, 1, H). The gradient at the i-th state in the chain's order is
    g_i = sum over j in [i, i+k] of Phi(i, j)^T e_j, Phi(i, j) = d s_j / d s_i, e_j the
    head's gradient. Cut the chain into blocks of W = k+1 states: i's window is the rest
    of its block (a backward recurrence restarted at every block end) plus the head of
    the next block, whose prefix sums R(m) are carried back to the block end `end` by
    Phi(end, m) (built forward, one product per position) and then to i by Phi(i, end)
    (built backward, one product per position).
    """
    cell, Whh = cache.cell, cache.Whh
    H = cache.hidden_size
    order = list(cache.order)
    T, _, S = cache.states.shape
    W = truncate + 1
    step = cell.backward_step(cache.record, Whh, cache.bhh)
    factors = _ChunkedFactors(cache)
    e = np.zeros((T, S))  # (T, S) in the chain's order
    e[:, :H] = d_head[order, 0]
    g = e.copy()
    for i in polled(range(T - 2, -1, -1), cancel):
        if (i + 1) % W:  # i+1 in i's block: the rest of the block
            g[i] += step(g[i + 1][None], order[i + 1])[0][0]
    for start in range(0, T - W, W):
        check(cancel)
        end, last = start + W - 1, min(start + 2 * W - 1, T - 1)
        R = np.empty((last - end, S))  # R[m - end - 1] = sum_{j=end+1}^{m} Phi(end, j)^T e_j
        phi = np.eye(S)
        total = np.zeros(S)
        for m in range(end + 1, last + 1):
            phi = factors.jacobian_times(order[m], phi)  # Phi(end, m) = A_m Phi(end, m-1)
            total += phi.T @ e[m]
            R[m - end - 1] = total
        phi = np.eye(S)  # Phi(i, end), from i = end down
        for i in range(end, start, -1):
            if i < end:
                phi = factors.times_jacobian(order[i + 1], phi)  # Phi(i+1, end) A_{i+1}
            g[i] += phi.T @ R[min(i + truncate, T - 1) - end - 1]
    ds_total = np.empty((T, 1, S))
    ds_total[order, 0] = g
    _, da_x, da_h = step(ds_total, slice(None))  # type: ignore[arg-type]
    return layer_grads(cache, da_x, da_h, ds_total)


class _ChunkedFactors:
    """`Cell.chain_factors` of one chain, built a chunk of positions at a time."""

    def __init__(self, cache: LayerCache, chunk: int = 64):
        self.cell, self.Whh, self.rec = cache.cell, cache.Whh, cache.record.sequence(0)
        self.chunk, self.first = chunk, -1
        self.factors: tuple[Array, ...] = ()

    def _load(self, position: int) -> tuple[tuple[Array, ...], int]:
        first = position - position % self.chunk
        if first != self.first:
            stop = min(first + self.chunk, self.rec.states.shape[0])
            self.first = first
            self.factors = self.cell.chain_factors(self.rec.at(slice(first, stop)), self.Whh)
        return self.factors, position - first

    def jacobian_times(self, position: int, X: Array) -> Array:
        """J @ X at a position (its record index)."""
        factors, k = self._load(position)
        return self.cell.jacobian_times(factors, k, X)

    def times_jacobian(self, position: int, P: Array) -> Array:
        """P @ J at a position (its record index)."""
        factors, k = self._load(position)
        return self.cell.times_jacobian(P, factors, k)


def _head_band(d_head: Array) -> Band | None:
    """The positions (T, B, H) the head's gradient reaches, as a band (one in `last` mode)."""
    rows = np.flatnonzero(np.any(d_head != 0, axis=(1, 2)))
    if len(rows) == 0:
        return None
    return int(rows[0]), d_head[rows[0] : rows[-1] + 1]


def _step_back(lo: int, ds_prev: Array, reverse: bool, T: int) -> Band | None:
    """Move a band one recurrent step back: to t-1 (t+1 in a reverse direction); what
    leaves the sequence reached the zero initial state and is dropped."""
    if reverse:
        kept = ds_prev[:-1] if lo + len(ds_prev) == T else ds_prev
        return (lo + 1, kept) if len(kept) else None
    kept = ds_prev[1:] if lo == 0 else ds_prev
    return (max(lo - 1, 0), kept) if len(kept) else None


def _merge(a: Band | None, b: Band | None, width: int) -> Band | None:
    """Sum of two bands over the hull of their positions; b fills the first b-width
    state components (the h part when it comes from above), a is full width `width`."""
    if b is None:
        return a
    lo_b, vb = b
    if a is None:
        if vb.shape[2] == width:
            return b
        out = np.zeros((len(vb), vb.shape[1], width))
        out[:, :, : vb.shape[2]] = vb
        return lo_b, out
    lo_a, va = a
    lo = min(lo_a, lo_b)
    hi = max(lo_a + len(va), lo_b + len(vb))
    out = np.zeros((hi - lo, va.shape[1], width))
    out[lo_a - lo : lo_a - lo + len(va), :, : va.shape[2]] += va
    out[lo_b - lo : lo_b - lo + len(vb), :, : vb.shape[2]] += vb
    return lo, out
