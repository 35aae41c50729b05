"""The recurrent cells: each one's forward loop over a sequence, and its backward step beside it.

Every cell works on a flat recurrent state of shape (B, S): S = H for the RNN and GRU
cells, S = 2H for the LSTM, whose state is [h, c]. Arrays are time-major, (T, B, ...).

The forward loop records states and gate activations. Everything the backward step needs
that does not depend on the incoming gradient (activation derivatives, products with
partner values) is then computed for all positions at once (`backward_factors`), so the
sequential backward step is a handful of array operations.

`backward_step(ds, t)` accepts gradients with leading axes, (..., B, S), so a stack of
gradients of different ages (truncated BPTT) goes through in one call. It returns
`(ds_prev, da_x, da_h)`: the gradient reaching the previous state, and the gradients of
the input-side and hidden-side pre-activations (G*H each), from which the caller forms
every weight gradient. The two differ only in the GRU's new gate.

Sigmoids are computed as 0.5 + 0.5 * tanh(a / 2), the same function, which never
overflows and lets one tanh call serve all of a cell's gates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app.rnn.cancel import CancelCheck, polled
from app.rnn.types import Array, Positions

BackwardStep = Callable[[Array, int], tuple[Array, Array, Array]]
JacobianProduct = Callable[[Array, Positions], Array]
"""(v (N, S), positions (N,)) -> (N, S): J_t v (or J_t^T v) at each row's position."""


@dataclass
class SequenceRecord:
    """What a cell's forward loop leaves for its backward pass, Jacobians and gates."""

    states: Array  # (T, B, S) state after each position
    states_prev: Array  # (T, B, S) state each position started from
    acts: Array | None  # (T, B, G*H) gate activations (None for the plain RNN)
    extra: dict[str, Array] = field(default_factory=dict)  # cell-specific per-position values

    def sequence(self, b: int) -> SequenceRecord:
        """Sequence b alone, as a batch of one: (T, 1, ...) views."""
        pick = slice(b, b + 1)
        return SequenceRecord(
            self.states[:, pick],
            self.states_prev[:, pick],
            None if self.acts is None else self.acts[:, pick],
            {k: v[:, pick] for k, v in self.extra.items()},
        )

    def at(self, positions: Positions | slice) -> SequenceRecord:
        """The record restricted to some positions (every Jacobian is position-wise)."""
        return SequenceRecord(
            self.states[positions],
            self.states_prev[positions],
            None if self.acts is None else self.acts[positions],
            {k: v[positions] for k, v in self.extra.items()},
        )


class Cell:
    """Interface of a recurrent cell; see the module docstring."""

    gate_multiple = 1
    state_multiple = 1
    gate_names: tuple[str, ...] = ()
    shared_preactivation = True  # da_x is da_h: one array serves both (not for the GRU)

    def forward(
        self,
        xw: Array,
        Whh: Array,
        bhh: Array,
        order: Sequence[int],
        s0: Array | None = None,
        cancel: CancelCheck = None,
    ) -> SequenceRecord:
        """xw (T, B, G*H) = x @ W_ih.T + b_ih for every position; run positions in `order`
        from state s0 (B, S), zero by default. `cancel` is polled every few positions."""
        raise NotImplementedError

    def backward_step(self, rec: SequenceRecord, Whh: Array, bhh: Array) -> BackwardStep:
        """The backward step for this record: (ds (..., B, S), t) -> (ds_prev, da_x, da_h)."""
        raise NotImplementedError

    def jacobians(self, rec: SequenceRecord, Whh: Array) -> Array:
        """(T, B, S, S): d state_t / d state_prev at every position."""
        raise NotImplementedError

    def jacobian_products(
        self, rec: SequenceRecord, Whh: Array
    ) -> tuple[JacobianProduct, JacobianProduct]:
        """(J v, J^T v) for sequence 0 of the record, without forming any J: each costs
        one (N, H) x (H, G*H) product plus elementwise scalings."""
        raise NotImplementedError

    def chain_factors(self, rec: SequenceRecord, Whh: Array) -> tuple[Array, ...]:
        """What `times_jacobian` needs of each position's J (sequence 0): by default the
        explicit (T, S, S) Jacobians of the (few) positions in the record."""
        return (self.jacobians(rec, Whh)[:, 0],)

    def times_jacobian(self, P: Array, factors: tuple[Array, ...], k: int) -> Array:
        """P (M, S) @ J_k (S, S), J_k the k-th position of `chain_factors`."""
        return P @ factors[0][k]

    def jacobian_times(self, factors: tuple[Array, ...], k: int, X: Array) -> Array:
        """J_k (S, S) @ X (S, M), J_k the k-th position of `chain_factors`."""
        return factors[0][k] @ X

    def gates(self, rec: SequenceRecord) -> tuple[Array, ...]:
        """Gate activations, each (T, B, H), in PyTorch's order."""
        if rec.acts is None:
            return ()
        H = rec.acts.shape[-1] // self.gate_multiple
        return tuple(rec.acts[..., k * H : (k + 1) * H] for k in range(self.gate_multiple))


def _previous(states: Array, order: Sequence[int], s0: Array | None) -> Array:
    """(T, B, S): the state each position started from, given the states it produced."""
    order = list(order)
    prev = np.empty_like(states)
    prev[order[0]] = 0.0 if s0 is None else s0
    prev[order[1:]] = states[order[:-1]]
    return prev


def _diag_scale(rows: Array, W: Array) -> Array:
    """diag(rows) @ W for a batch: rows (..., H), W (H, K) -> (..., H, K)."""
    return rows[..., :, None] * W


# ----------------------------------------------------------------------------- Elman RNN


class RNNCell(Cell):
    """h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or ReLU."""

    def __init__(self, relu: bool):
        self.relu = relu

    def forward(
        self,
        xw: Array,
        Whh: Array,
        bhh: Array,
        order: Sequence[int],
        s0: Array | None = None,
        cancel: CancelCheck = None,
    ) -> SequenceRecord:
        T, B, H = xw.shape
        a_all = xw + bhh  # (T, B, H) both biases folded in once
        WT = np.ascontiguousarray(Whh.T)
        states = np.empty((T, B, H))
        h = np.zeros((B, H)) if s0 is None else s0
        for t in polled(order, cancel):
            a = h @ WT
            a += a_all[t]
            h = np.maximum(a, 0.0, out=states[t]) if self.relu else np.tanh(a, out=states[t])
        return SequenceRecord(states, _previous(states, order, s0), None)

    def _act_grad(self, rec: SequenceRecord) -> Array:
        h = rec.states
        return (h > 0.0).astype(np.float64) if self.relu else 1.0 - h * h

    def _jacobian_act_grad(self, rec: SequenceRecord) -> Array:
        """act'(a_t), but NaN where h_t overflowed: `h > 0` would read 0 there and report
        an exploded network as vanishing."""
        grad = self._act_grad(rec)
        return np.where(np.isfinite(rec.states), grad, np.nan) if self.relu else grad

    def backward_step(self, rec: SequenceRecord, Whh: Array, bhh: Array) -> BackwardStep:
        act_grad = self._act_grad(rec)  # (T, B, H)

        def step(ds: Array, t: int) -> tuple[Array, Array, Array]:
            da = ds * act_grad[t]
            return da @ Whh, da, da

        return step

    def jacobians(self, rec: SequenceRecord, Whh: Array) -> Array:
        return _diag_scale(self._jacobian_act_grad(rec), Whh)

    def chain_factors(self, rec: SequenceRecord, Whh: Array) -> tuple[Array, ...]:
        # J = diag(act') W: the scalings and W, no explicit J
        return self._jacobian_act_grad(rec)[:, 0], Whh

    def times_jacobian(self, P: Array, factors: tuple[Array, ...], k: int) -> Array:
        act_grad, Whh = factors
        return (P * act_grad[k]) @ Whh

    def jacobian_times(self, factors: tuple[Array, ...], k: int, X: Array) -> Array:
        act_grad, Whh = factors
        return act_grad[k][:, None] * (Whh @ X)

    def jacobian_products(
        self, rec: SequenceRecord, Whh: Array
    ) -> tuple[JacobianProduct, JacobianProduct]:
        act_grad = self._jacobian_act_grad(rec)[:, 0]  # (T, H)
        WT = np.ascontiguousarray(Whh.T)

        def jvp(v: Array, pos: Positions) -> Array:
            return act_grad[pos] * (v @ WT)

        def vjp(u: Array, pos: Positions) -> Array:
            return (u * act_grad[pos]) @ Whh

        return jvp, vjp


# ----------------------------------------------------------------------------- LSTM


class LSTMCell(Cell):
    """PyTorch's LSTM, gates i, f, g, o: c = f * c_prev + i * g, h = o * tanh(c)."""

    gate_multiple = 4
    state_multiple = 2
    gate_names = ("input", "forget", "cell", "output")

    def forward(
        self,
        xw: Array,
        Whh: Array,
        bhh: Array,
        order: Sequence[int],
        s0: Array | None = None,
        cancel: CancelCheck = None,
    ) -> SequenceRecord:
        T, B, GH = xw.shape
        H = GH // 4
        # tanh(a * scale) * scale + shift is sigmoid(a) on i, f, o and tanh(a) on g
        scale = np.full(GH, 0.5)
        scale[2 * H : 3 * H] = 1.0
        shift = 0.5 - 0.5 * (scale == 1.0)
        a_all = (xw + bhh) * scale  # (T, B, 4H)
        WsT = np.ascontiguousarray((Whh * scale[:, None]).T)  # (H, 4H)
        states = np.empty((T, B, 2 * H))
        acts = np.empty((T, B, GH))
        tanh_c = np.empty((T, B, H))
        s = np.zeros((B, 2 * H)) if s0 is None else s0
        ig = np.empty((B, H))
        for t in polled(order, cancel):
            act = acts[t]
            np.matmul(s[:, :H], WsT, out=act)
            act += a_all[t]
            np.tanh(act, out=act)
            act *= scale
            act += shift
            c_prev = s[:, H:]
            s = states[t]
            c = s[:, H:]
            np.multiply(act[:, H : 2 * H], c_prev, out=c)
            np.multiply(act[:, :H], act[:, 2 * H : 3 * H], out=ig)
            c += ig
            tc = np.tanh(c, out=tanh_c[t])
            np.multiply(act[:, 3 * H :], tc, out=s[:, :H])
        return SequenceRecord(states, _previous(states, order, s0), acts, {"tanh_c": tanh_c})

    def backward_step(self, rec: SequenceRecord, Whh: Array, bhh: Array) -> BackwardStep:
        acts, tc = rec.acts, rec.extra["tanh_c"]
        assert acts is not None
        H = tc.shape[-1]
        i, f, g, o = (acts[..., k * H : (k + 1) * H] for k in range(4))
        c_prev = rec.states_prev[..., H:]
        dh_dc = o * (1.0 - tc * tc)  # (T, B, H) path from c_t into h_t
        # da = [dc, dc, dc, dh] * partner: activation derivative times the value it meets
        partner = np.concatenate(
            [i * (1 - i) * g, f * (1 - f) * c_prev, (1 - g * g) * i, o * (1 - o) * tc], axis=-1
        )  # (T, B, 4H)

        def step(ds: Array, t: int) -> tuple[Array, Array, Array]:
            dh = ds[..., :H]
            dc = ds[..., H:] + dh * dh_dc[t]
            da = np.concatenate([dc, dc, dc, dh], axis=-1)
            da *= partner[t]
            ds_prev = np.empty(ds.shape)
            np.matmul(da, Whh, out=ds_prev[..., :H])
            np.multiply(dc, f[t], out=ds_prev[..., H:])
            return ds_prev, da, da

        return step

    def jacobians(self, rec: SequenceRecord, Whh: Array) -> Array:
        acts, tc = rec.acts, rec.extra["tanh_c"]
        assert acts is not None
        T, B, H = tc.shape
        i, f, g, o = (acts[..., k * H : (k + 1) * H] for k in range(4))
        c_prev = rec.states_prev[..., H:]
        Wi, Wf, Wg, Wo = (Whh[k * H : (k + 1) * H] for k in range(4))
        dc_dh = (
            _diag_scale(c_prev * f * (1 - f), Wf)
            + _diag_scale(g * i * (1 - i), Wi)
            + _diag_scale(i * (1 - g * g), Wg)
        )  # (T, B, H, H)
        dh_dc = o * (1 - tc * tc)
        J = np.zeros((T, B, 2 * H, 2 * H))
        J[..., :H, :H] = _diag_scale(tc * o * (1 - o), Wo) + dh_dc[..., :, None] * dc_dh
        J[..., H:, :H] = dc_dh
        idx = np.arange(H)
        J[..., idx, H + idx] = dh_dc * f
        J[..., H + idx, H + idx] = f
        return J

    def jacobian_products(
        self, rec: SequenceRecord, Whh: Array
    ) -> tuple[JacobianProduct, JacobianProduct]:
        acts, tc = rec.acts, rec.extra["tanh_c"]
        assert acts is not None
        H = tc.shape[-1]
        i, f, g, o = (acts[:, 0, k * H : (k + 1) * H] for k in range(4))
        tc = tc[:, 0]
        dh_dc = o * (1 - tc * tc)  # (T, H)
        # d c_t / d h_prev = sum over i, f, g of diag(partner) W_gate, as in the backward step
        partner = np.concatenate(
            [i * (1 - i) * g, f * (1 - f) * rec.states_prev[:, 0, H:], (1 - g * g) * i],
            axis=-1,
        )  # (T, 3H)
        out_scale = o * (1 - o) * tc
        WT = np.ascontiguousarray(Whh.T)  # (H, 4H)

        def jvp(v: Array, pos: Positions) -> Array:
            a = v[:, :H] @ WT  # (N, 4H)
            p = partner[pos]
            dc = p[:, :H] * a[:, :H] + p[:, H : 2 * H] * a[:, H : 2 * H]
            dc += p[:, 2 * H :] * a[:, 2 * H : 3 * H]
            dc += f[pos] * v[:, H:]
            return np.concatenate([out_scale[pos] * a[:, 3 * H :] + dh_dc[pos] * dc, dc], axis=1)

        def vjp(u: Array, pos: Positions) -> Array:
            dc = u[:, H:] + dh_dc[pos] * u[:, :H]
            da = np.concatenate([dc, dc, dc, u[:, :H]], axis=1)
            da[:, : 3 * H] *= partner[pos]
            da[:, 3 * H :] *= out_scale[pos]
            return np.concatenate([da @ Whh, f[pos] * dc], axis=1)

        return jvp, vjp

    def chain_factors(self, rec: SequenceRecord, Whh: Array) -> tuple[Array, ...]:
        # J = [[A, diag(dh_dc f)], [C, diag(f)]]: only the left block [A; C] is dense
        acts, tc = rec.acts, rec.extra["tanh_c"]
        assert acts is not None
        H = tc.shape[-1]
        i, f, g, o = (acts[:, 0, k * H : (k + 1) * H] for k in range(4))
        tc = tc[:, 0]
        Wi, Wf, Wg, Wo = (Whh[k * H : (k + 1) * H] for k in range(4))
        dh_dc = o * (1 - tc * tc)  # (T, H)
        left = np.empty((len(tc), 2 * H, H))  # (T, 2H, H) = [A; C]
        C = left[:, H:]
        np.multiply((f * (1 - f) * rec.states_prev[:, 0, H:])[:, :, None], Wf, out=C)
        C += (g * i * (1 - i))[:, :, None] * Wi
        C += (i * (1 - g * g))[:, :, None] * Wg
        A = left[:, :H]
        np.multiply(dh_dc[:, :, None], C, out=A)
        A += (tc * o * (1 - o))[:, :, None] * Wo
        return left, dh_dc, f

    def times_jacobian(self, P: Array, factors: tuple[Array, ...], k: int) -> Array:
        # the right half of J is two diagonals (d s_t / d c_prev): S*S*H, not S^3
        left, dh_dc, f = factors
        H = dh_dc.shape[-1]
        out = np.empty_like(P)
        np.matmul(P, left[k], out=out[:, :H])
        right = out[:, H:]  # P_h diag(dh_dc f) + P_c diag(f) = (P_h dh_dc + P_c) f
        np.multiply(P[:, :H], dh_dc[k], out=right)
        right += P[:, H:]
        right *= f[k]
        return out

    def jacobian_times(self, factors: tuple[Array, ...], k: int, X: Array) -> Array:
        left, dh_dc, f = factors
        H = dh_dc.shape[-1]
        out = left[k] @ X[:H]  # (2H, M): [A; C] X_h
        fc = f[k][:, None] * X[H:]  # diag(f) X_c
        out[:H] += dh_dc[k][:, None] * fc
        out[H:] += fc
        return out


# ----------------------------------------------------------------------------- GRU


class GRUCell(Cell):
    """PyTorch's GRU, gates r, z, n: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h = (1 - z) * n + z * h_prev."""

    gate_multiple = 3
    gate_names = ("reset", "update", "new")
    shared_preactivation = False

    def forward(
        self,
        xw: Array,
        Whh: Array,
        bhh: Array,
        order: Sequence[int],
        s0: Array | None = None,
        cancel: CancelCheck = None,
    ) -> SequenceRecord:
        T, B, GH = xw.shape
        H = GH // 3
        x_rz = (xw[..., : 2 * H] + bhh[: 2 * H]) * 0.5  # (T, B, 2H) pre-halved for the sigmoid
        x_n = xw[..., 2 * H :]
        W_rz = np.ascontiguousarray((Whh[: 2 * H] * 0.5).T)  # (H, 2H)
        W_n = np.ascontiguousarray(Whh[2 * H :].T)  # (H, H)
        b_n = bhh[2 * H :]
        states = np.empty((T, B, H))
        acts = np.empty((T, B, GH))
        hn_all = np.empty((T, B, H))
        h = np.zeros((B, H)) if s0 is None else s0
        for t in polled(order, cancel):
            act = acts[t]
            rz = act[:, : 2 * H]
            np.matmul(h, W_rz, out=rz)
            rz += x_rz[t]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            hn = np.matmul(h, W_n, out=hn_all[t])
            hn += b_n
            n = act[:, 2 * H :]
            np.multiply(act[:, :H], hn, out=n)
            n += x_n[t]
            np.tanh(n, out=n)
            h_new = states[t]
            np.subtract(h, n, out=h_new)
            h_new *= act[:, H : 2 * H]
            h_new += n
            h = h_new
        return SequenceRecord(states, _previous(states, order, s0), acts, {"hn": hn_all})

    def backward_step(self, rec: SequenceRecord, Whh: Array, bhh: Array) -> BackwardStep:
        acts, hn = rec.acts, rec.extra["hn"]
        assert acts is not None
        H = hn.shape[-1]
        r, z, n = (acts[..., k * H : (k + 1) * H] for k in range(3))
        h_prev = rec.states_prev
        dn_pre = (1 - z) * (1 - n * n)  # d h / d (n's pre-activation)
        partner_x = np.concatenate(
            [dn_pre * hn * r * (1 - r), (h_prev - n) * z * (1 - z), dn_pre], axis=-1
        )  # (T, B, 3H)
        partner_h = partner_x.copy()
        partner_h[..., 2 * H :] *= r  # W_hn h sits inside r * (...)

        def step(ds: Array, t: int) -> tuple[Array, Array, Array]:
            ds3 = np.concatenate([ds, ds, ds], axis=-1)
            da_x = ds3 * partner_x[t]
            da_h = ds3 * partner_h[t]
            ds_prev = da_h @ Whh
            ds_prev += ds * z[t]
            return ds_prev, da_x, da_h

        return step

    def jacobians(self, rec: SequenceRecord, Whh: Array) -> Array:
        acts, hn = rec.acts, rec.extra["hn"]
        assert acts is not None
        H = hn.shape[-1]
        r, z, n = (acts[..., k * H : (k + 1) * H] for k in range(3))
        h_prev = rec.states_prev
        Wr, Wz, Wn = (Whh[k * H : (k + 1) * H] for k in range(3))
        dr = _diag_scale(r * (1 - r), Wr)
        dz = _diag_scale(z * (1 - z), Wz)
        dan = _diag_scale(r, Wn) + hn[..., :, None] * dr
        J = _diag_scale((1 - z) * (1 - n * n), dan) + (h_prev - n)[..., :, None] * dz
        idx = np.arange(H)
        J[..., idx, idx] += z
        return J

    def _jacobian_partner(self, rec: SequenceRecord) -> tuple[Array, Array]:
        """(partner (T, 3H), z (T, H)) of sequence 0: J_t = sum over gates of
        diag(partner_gate) W_gate, plus diag(z), as in the backward step."""
        acts, hn = rec.acts, rec.extra["hn"]
        assert acts is not None
        H = hn.shape[-1]
        r, z, n = (acts[:, 0, k * H : (k + 1) * H] for k in range(3))
        dn_pre = (1 - z) * (1 - n * n)
        partner = np.concatenate(
            [
                dn_pre * hn[:, 0] * r * (1 - r),
                (rec.states_prev[:, 0] - n) * z * (1 - z),
                dn_pre * r,
            ],
            axis=-1,
        )
        return partner, z

    def chain_factors(self, rec: SequenceRecord, Whh: Array) -> tuple[Array, ...]:
        partner, z = self._jacobian_partner(rec)
        H = z.shape[-1]
        J = np.empty((len(z), H, H))  # (T, H, H), built in place: no temporaries
        np.multiply(partner[:, :H, None], Whh[:H], out=J)
        J += partner[:, H : 2 * H, None] * Whh[H : 2 * H]
        J += partner[:, 2 * H :, None] * Whh[2 * H :]
        idx = np.arange(H)
        J[:, idx, idx] += z
        return (J,)

    def jacobian_products(
        self, rec: SequenceRecord, Whh: Array
    ) -> tuple[JacobianProduct, JacobianProduct]:
        partner, z = self._jacobian_partner(rec)
        H = z.shape[-1]
        WT = np.ascontiguousarray(Whh.T)  # (H, 3H)

        def jvp(v: Array, pos: Positions) -> Array:
            a = (v @ WT) * partner[pos]  # (N, 3H)
            return a[:, :H] + a[:, H : 2 * H] + a[:, 2 * H :] + z[pos] * v

        def vjp(u: Array, pos: Positions) -> Array:
            return (np.concatenate([u, u, u], axis=1) * partner[pos]) @ Whh + z[pos] * u

        return jvp, vjp


CELL_OPS: dict[str, Cell] = {
    "rnn_tanh": RNNCell(relu=False),
    "rnn_relu": RNNCell(relu=True),
    "lstm": LSTMCell(),
    "gru": GRUCell(),
}
