"""One time step of each recurrent cell: forward, its backward beside it, and its Jacobian.

Every cell works on a flat recurrent state `s` of shape (B, S): S = H for the RNN and GRU
cells, S = 2H for the LSTM, whose state is [h, c]. The input's contribution
`xw = x @ W_ih.T + b_ih` (B, G*H) is computed for all positions at once by the caller.

Backward functions accept gradients with any number of leading axes, (..., B, S), so a
stack of gradients of different ages (truncated BPTT) goes through in one call. They
return `(ds_prev, da_x, da_h)`: the gradient reaching the previous state, and the
gradients of the input-side and hidden-side pre-activations (G*H each), from which the
caller forms every weight gradient. The two differ only in the GRU's new gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.rnn.types import Array

Cache = tuple[Any, ...]


def _sigmoid(a: Array) -> Array:
    # split by sign so exp never overflows for large |a|
    out = np.empty_like(a)
    pos = a >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-a[pos]))
    ea = np.exp(a[~pos])
    out[~pos] = ea / (1.0 + ea)
    return out


# ----------------------------------------------------------------------------- Elman RNN


def rnn_step_forward(
    xw: Array, s_prev: Array, Whh: Array, bhh: Array, relu: bool
) -> tuple[Array, Cache]:
    """h = act(xw + h_prev @ Whh.T + bhh). xw (B, H), s_prev (B, H), Whh (H, H) -> (B, H)."""
    a = xw + s_prev @ Whh.T + bhh
    h = np.maximum(a, 0.0) if relu else np.tanh(a)
    return h, (s_prev, h, relu)


def rnn_step_backward(ds: Array, cache: Cache, Whh: Array) -> tuple[Array, Array, Array]:
    """ds (..., B, H) -> ds_prev (..., B, H), da_x = da_h (..., B, H)."""
    _, h, relu = cache
    da = ds * (h > 0.0) if relu else ds * (1.0 - h * h)
    return da @ Whh, da, da


def rnn_step_jacobian(cache: Cache, Whh: Array) -> Array:
    """dh/dh_prev, (B, H, H)."""
    _, h, relu = cache
    act_grad = (h > 0.0).astype(h.dtype) if relu else 1.0 - h * h
    return act_grad[:, :, None] * Whh[None, :, :]


def rnn_step_gates(cache: Cache) -> tuple[Array, ...]:
    """The plain RNN has no gates."""
    return ()


# ----------------------------------------------------------------------------- LSTM


def lstm_step_forward(
    xw: Array, s_prev: Array, Whh: Array, bhh: Array, relu: bool = False
) -> tuple[Array, Cache]:
    """PyTorch's LSTM step, gates i, f, g, o. xw (B, 4H), s_prev = [h, c] (B, 2H) -> (B, 2H)."""
    H = Whh.shape[1]
    h_prev, c_prev = s_prev[:, :H], s_prev[:, H:]
    a = xw + h_prev @ Whh.T + bhh  # (B, 4H)
    ifo = _sigmoid(a[:, np.r_[0 : 2 * H, 3 * H : 4 * H]])  # (B, 3H)
    i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
    g = np.tanh(a[:, 2 * H : 3 * H])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    return np.concatenate([h, c], axis=1), (h_prev, c_prev, i, f, g, o, tc)


def lstm_step_backward(ds: Array, cache: Cache, Whh: Array) -> tuple[Array, Array, Array]:
    """ds = [dh, dc] (..., B, 2H) -> ds_prev (..., B, 2H), da_x = da_h (..., B, 4H)."""
    h_prev, c_prev, i, f, g, o, tc = cache
    H = i.shape[-1]
    dh, dc = ds[..., :H], ds[..., H:]
    dc = dc + dh * o * (1.0 - tc * tc)
    da = np.empty(ds.shape[:-1] + (4 * H,))
    da[..., :H] = dc * g * i * (1.0 - i)
    da[..., H : 2 * H] = dc * c_prev * f * (1.0 - f)
    da[..., 2 * H : 3 * H] = dc * i * (1.0 - g * g)
    da[..., 3 * H :] = dh * tc * o * (1.0 - o)
    ds_prev = np.empty(ds.shape)
    ds_prev[..., :H] = da @ Whh
    ds_prev[..., H:] = dc * f
    return ds_prev, da, da


def lstm_step_jacobian(cache: Cache, Whh: Array) -> Array:
    """d[h, c]/d[h_prev, c_prev], (B, 2H, 2H)."""
    h_prev, c_prev, i, f, g, o, tc = cache
    B, H = i.shape
    Wi, Wf, Wg, Wo = (Whh[k * H : (k + 1) * H] for k in range(4))
    # dc/dh_prev = diag(c_prev f') Wf + diag(g i') Wi + diag(i g') Wg
    dc_dh = (
        (c_prev * f * (1 - f))[:, :, None] * Wf
        + (g * i * (1 - i))[:, :, None] * Wi
        + (i * (1 - g * g))[:, :, None] * Wg
    )
    dtc = o * (1 - tc * tc)  # dh/dc, elementwise
    J = np.zeros((B, 2 * H, 2 * H))
    J[:, :H, :H] = (tc * o * (1 - o))[:, :, None] * Wo + dtc[:, :, None] * dc_dh
    J[:, H:, :H] = dc_dh
    idx = np.arange(H)
    J[:, idx, H + idx] = dtc * f
    J[:, H + idx, H + idx] = f
    return J


def lstm_step_gates(cache: Cache) -> tuple[Array, ...]:
    """(input, forget, cell, output) gate activations, each (B, H)."""
    _, _, i, f, g, o, _ = cache
    return i, f, g, o


# ----------------------------------------------------------------------------- GRU


def gru_step_forward(
    xw: Array, s_prev: Array, Whh: Array, bhh: Array, relu: bool = False
) -> tuple[Array, Cache]:
    """PyTorch's GRU step, gates r, z, n. xw (B, 3H), s_prev (B, H) -> (B, H).

    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1 - z) * n + z * h_prev.
    """
    H = Whh.shape[1]
    hw = s_prev @ Whh.T + bhh  # (B, 3H)
    rz = _sigmoid(xw[:, : 2 * H] + hw[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    hn = hw[:, 2 * H :]
    n = np.tanh(xw[:, 2 * H :] + r * hn)
    h = n + z * (s_prev - n)
    return h, (s_prev, r, z, n, hn)


def gru_step_backward(ds: Array, cache: Cache, Whh: Array) -> tuple[Array, Array, Array]:
    """ds (..., B, H) -> ds_prev (..., B, H), da_x (..., B, 3H), da_h (..., B, 3H)."""
    h_prev, r, z, n, hn = cache
    H = r.shape[-1]
    da_n = ds * (1.0 - z) * (1.0 - n * n)
    da_x = np.empty(ds.shape[:-1] + (3 * H,))
    da_x[..., :H] = da_n * hn * r * (1.0 - r)
    da_x[..., H : 2 * H] = ds * (h_prev - n) * z * (1.0 - z)
    da_x[..., 2 * H :] = da_n
    da_h = da_x.copy()
    da_h[..., 2 * H :] = da_n * r
    return ds * z + da_h @ Whh, da_x, da_h


def gru_step_jacobian(cache: Cache, Whh: Array) -> Array:
    """dh/dh_prev, (B, H, H)."""
    h_prev, r, z, n, hn = cache
    B, H = r.shape
    Wr, Wz, Wn = (Whh[k * H : (k + 1) * H] for k in range(3))
    dr = (r * (1 - r))[:, :, None] * Wr
    dz = (z * (1 - z))[:, :, None] * Wz
    dan = r[:, :, None] * Wn + hn[:, :, None] * dr
    J = ((1 - z) * (1 - n * n))[:, :, None] * dan + (h_prev - n)[:, :, None] * dz
    idx = np.arange(H)
    J[:, idx, idx] += z
    return J


def gru_step_gates(cache: Cache) -> tuple[Array, ...]:
    """(reset, update, new) gate activations, each (B, H)."""
    _, r, z, n, _ = cache
    return r, z, n


# ----------------------------------------------------------------------------- registry


class _Forward(Protocol):
    def __call__(
        self, xw: Array, s_prev: Array, Whh: Array, bhh: Array, relu: bool
    ) -> tuple[Array, Cache]: ...


@dataclass(frozen=True)
class CellOps:
    """The four functions that define a cell, and its state width multiple."""

    forward: _Forward
    backward: Any
    jacobian: Any
    gates: Any
    state_multiple: int  # S = state_multiple * H


CELL_OPS = {
    "rnn_tanh": CellOps(rnn_step_forward, rnn_step_backward, rnn_step_jacobian, rnn_step_gates, 1),
    "rnn_relu": CellOps(rnn_step_forward, rnn_step_backward, rnn_step_jacobian, rnn_step_gates, 1),
    "lstm": CellOps(lstm_step_forward, lstm_step_backward, lstm_step_jacobian, lstm_step_gates, 2),
    "gru": CellOps(gru_step_forward, gru_step_backward, gru_step_jacobian, gru_step_gates, 1),
}
