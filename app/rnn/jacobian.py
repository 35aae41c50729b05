"""Jacobians of the recurrent state: one-step factors, and the products that vanish or explode."""

from __future__ import annotations

import numpy as np

from app.rnn.cancel import CancelCheck, check, polled
from app.rnn.layer import LayerCache, layer_jacobians
from app.rnn.types import Array


def spectral_norms(matrices: Array) -> Array:
    """Largest singular value of each matrix: (..., M, N) -> (...).

    NaN where a matrix holds NaN, inf where it holds inf: an overflowed Jacobian is
    reported, never a LinAlgError.
    """
    out = np.full(matrices.shape[:-2], np.nan)
    finite = np.all(np.isfinite(matrices), axis=(-2, -1))
    if np.any(finite):
        out[finite] = np.linalg.svd(matrices[finite], compute_uv=False)[..., 0]
    has_inf = ~finite & ~np.any(np.isnan(matrices), axis=(-2, -1))
    out[has_inf] = np.inf
    return out


def jacobian_norms(
    cache: LayerCache, batch_index: int = 0, cancel: CancelCheck = None
) -> tuple[Array, Array]:
    """Per position t (T,), for one sequence of the batch:

    - one-step: ||d s_t / d s_prev|| where s_prev is the state one step earlier in this
      direction's order (the zero initial state for the first step);
    - product: ||d s_last / d s_t||, s_last the state this direction computes last
      (position T-1 forward, 0 reverse); 1 at s_last itself.
    s is h, or [h, c] for the LSTM.
    """
    check(cancel)
    J = layer_jacobians(cache)[:, batch_index]  # (T, S, S), indexed by position
    one_step = spectral_norms(J)
    order = list(cache.order)
    S = J.shape[-1]
    products = np.empty((len(order), S, S))
    P = np.eye(S)
    products[order[-1]] = P
    # walk back from the last-computed state: P_t = P_{t+1} J_{t+1} in processing order
    for k in polled(range(len(order) - 1, 0, -1), cancel):
        P = P @ J[order[k]]
        products[order[k - 1]] = P
    return one_step, spectral_norms(products)
