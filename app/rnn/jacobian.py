"""Jacobians of the recurrent state: one-step factors, and the products that vanish or explode.

Both norms are exact largest singular values (relative error far below 1e-6), found without
stacking T Jacobians or calling an SVD per position:

- one-step ||J_t||_2: Lanczos on J_t^T J_t for a block of positions at once, J_t applied
  through the cell's structure (`Cell.jacobian_products`: a few scalings and one matrix
  product with W_hh for the whole block), each block from the top singular vectors of the
  block before (mixed with each position's own random start);
- product ||P_t||_2, P_t = d s_last / d s_t: one running S x S matrix P updated by
  `Cell.times_jacobian` (S*S*H for the LSTM, whose J has two diagonal blocks), and
  Rayleigh-Ritz of each P_t on a tracked subspace of its top left singular vectors
  (they settle as the product grows), Lanczos where that is not certified.

A value is accepted only when its Ritz residual bounds its distance to an eigenvalue by
TOLERANCE (relative): a bound from the gap to the next Ritz value was tried and accepted
the second singular value when a start was nearly orthogonal to the first. What Lanczos
does not certify falls back to the top eigenvalue of the explicit Gram matrix
(`dense_norms`), as do small states. States that overflowed give NaN, never a number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.rnn.cancel import CancelCheck, check
from app.rnn.cells import Cell, SequenceRecord
from app.rnn.layer import LayerCache, layer_jacobians
from app.rnn.types import Array, Mask, Positions

ONE_STEP_CHUNK = 128  # positions per Lanczos block for the one-step norms
FIRST_CHUNK = 16  # the first block, from random starts: its vectors start the next ones
WARM_MIX = 0.3  # weight of each position's own random start in a warm start
PRODUCT_CHUNK = 16  # positions whose Jacobian factors are built at once
SUBSPACE = 8  # tracked left singular directions of the running product
POWER_STEPS = 3  # subspace iterations per chunk that keep them on the newest product
TOLERANCE = 1e-8  # accepted relative Ritz residual: singular values within 5e-9
MAX_STEPS = 64  # Lanczos steps before a position falls back to `dense_norms`
SAMPLE = 8  # rows whose convergence decides whether a whole block is checked
DENSE_STATE = 32  # up to this state size one LAPACK call per position is cheaper than Lanczos

Gram = Callable[[Array, Positions], Array]
"""(v (N, n), rows (N,)) -> (N, n): the symmetric operator M^T M applied row by row."""


def spectral_norms(matrices: Array) -> Array:
    """Largest singular value of each matrix by SVD: (..., M, N) -> (...).

    NaN where a matrix holds NaN, inf where it holds inf: an overflowed Jacobian is
    reported, never a LinAlgError. The exact reference the fast paths fall back to.
    """
    out = np.full(matrices.shape[:-2], np.nan)
    finite = np.all(np.isfinite(matrices), axis=(-2, -1))
    if np.any(finite):
        out[finite] = np.linalg.svd(matrices[finite], compute_uv=False)[..., 0]
    has_inf = ~finite & ~np.any(np.isnan(matrices), axis=(-2, -1))
    out[has_inf] = np.inf
    return out


def dense_norms(matrices: Array) -> Array:
    """Largest singular value of each (N, S, S) matrix, exactly, from the top eigenvalue
    of its Gram matrix (about three times cheaper than an SVD); the fall-back of the fast
    paths. Matrices are scaled to max entry 1 first, so the Gram matrix cannot overflow;
    non-finite ones are reported as `spectral_norms` reports them."""
    out = np.full(len(matrices), np.nan)
    scale = np.max(np.abs(matrices), axis=(1, 2))
    out[scale == 0] = 0.0
    rows = np.flatnonzero(np.isfinite(scale) & (scale > 0))
    if len(rows):
        M = matrices[rows] / scale[rows, None, None]
        top = np.linalg.eigvalsh(np.matmul(M.transpose(0, 2, 1), M))[:, -1]
        out[rows] = np.sqrt(np.maximum(top, 0.0)) * scale[rows]
    bad = np.flatnonzero(~np.isfinite(scale))
    if len(bad):
        out[bad] = spectral_norms(matrices[bad])
    return out


def jacobian_norms(
    cache: LayerCache, batch_index: int = 0, cancel: CancelCheck = None
) -> tuple[Array, Array]:
    """Per position t (T,), for one sequence of the batch:

    - one-step: ||d s_t / d s_prev|| where s_prev is the state one step earlier in this
      direction's order (the zero initial state for the first step);
    - product: ||d s_last / d s_t||, s_last the state this direction computes last
      (position T-1 forward, 0 reverse); 1 at s_last itself.
    s is h, or [h, c] for the LSTM. NaN wherever the chain passes an overflowed state.
    Memory: O(T*S + chunk*S*S); `cancel` is polled between blocks and chunks.
    """
    rec = cache.record.sequence(batch_index)
    # an overflowed state (or the one before it) makes that step's Jacobian meaningless
    overflowed = ~(
        np.all(np.isfinite(rec.states[:, 0]), axis=1)
        & np.all(np.isfinite(rec.states_prev[:, 0]), axis=1)
    )  # (T,)
    one_step = _one_step_norms(cache.cell, rec, cache.Whh, overflowed, cancel)
    product = _product_norms(cache.cell, rec, cache.Whh, list(cache.order), overflowed, cancel)
    return one_step, product


def explicit_jacobian_norms(cache: LayerCache, batch_index: int = 0) -> tuple[Array, Array]:
    """`jacobian_norms` the slow, obvious way: (T, S, S) stacks and an SVD each. For tests
    and benchmarks only."""
    J = layer_jacobians(cache)[:, batch_index]
    order = list(cache.order)
    products = np.empty_like(J)
    P = np.eye(J.shape[-1])
    products[order[-1]] = P
    for k in range(len(order) - 1, 0, -1):
        P = P @ J[order[k]]
        products[order[k - 1]] = P
    return spectral_norms(J), spectral_norms(products)


def _start_vector(n: int) -> Array:
    """A fixed generic start vector: the same on every run, so results are bit-identical."""
    v = np.random.default_rng(0).standard_normal(n)
    return v / np.linalg.norm(v)


def _one_step_norms(
    cell: Cell, rec: SequenceRecord, Whh: Array, overflowed: Mask, cancel: CancelCheck
) -> Array:
    """(T,) ||J_t||_2 by blocked Lanczos through the cell's structure, or by `dense_norms`
    where that is cheaper: small states, and sequences whose clustered top singular
    values (a GRU near init) keep Lanczos from certifying most of a block.

    A first small block starts from random vectors; every later one from the top singular
    vectors the block before found (positions of one sequence share most of theirs: their
    overlap is 0.9 to 0.998 at H=128), each mixed with its own random start.
    """
    T, S = rec.states.shape[0], rec.states.shape[-1]
    out = np.full(T, np.nan)
    jvp, vjp = cell.jacobian_products(rec, Whh)
    # an independent random part per position: one start nearly orthogonal to the top
    # singular vector (which makes Lanczos settle on the second) cannot spoil a run
    starts = np.random.default_rng(0).standard_normal((T, S))
    starts /= np.linalg.norm(starts, axis=1, keepdims=True)
    todo = np.flatnonzero(~overflowed)
    blocks = [todo[:FIRST_CHUNK]]
    blocks += [todo[i : i + ONE_STEP_CHUNK] for i in range(FIRST_CHUNK, len(todo), ONE_STEP_CHUNK)]
    dense = S <= DENSE_STATE
    warm = None  # (k, S) unit top singular vectors of the block before
    for pos in blocks:
        if len(pos) == 0:
            continue
        check(cancel)
        if dense:
            out[pos] = dense_norms(cell.jacobians(rec.at(pos), Whh)[:, 0])
            continue

        def gram(v: Array, rows: Positions, pos: Positions = pos) -> Array:
            return vjp(jvp(v, pos[rows]), pos[rows])

        start = starts[pos]
        if warm is not None:
            start = warm[np.arange(len(pos)) % len(warm)] + WARM_MIX * start
        theta, vectors, converged = _lanczos(gram, start, min_steps=16 if warm is None else 4)
        out[pos] = np.sqrt(theta)
        retry = pos[~converged]
        if len(retry):
            out[retry] = dense_norms(cell.jacobians(rec.at(retry), Whh)[:, 0])
        found = vectors[converged & np.all(np.isfinite(vectors), axis=1)]
        lengths = np.linalg.norm(found, axis=1)
        found = found[lengths > 0] / lengths[lengths > 0, None]  # unit vectors
        # positions of one sequence are alike: if Lanczos mostly failed from warm starts, or
        # left none to warm-start from, stop trying (from random starts, as in the first
        # block, a GRU near init often fails where warm starts then succeed)
        dense = len(retry) > len(pos) // 2 and (warm is not None or not len(found))
        if len(found):
            warm = found
    return out


def _product_norms(
    cell: Cell,
    rec: SequenceRecord,
    Whh: Array,
    order: list[int],
    overflowed: Mask,
    cancel: CancelCheck,
) -> Array:
    """(T,) ||d s_last / d s_t||_2 from one running product, walking back from s_last.

    The top left singular vectors of P_t settle as the product grows, so a tracked
    subspace U (S, k) usually holds P_t's top one: Rayleigh-Ritz on U^T P_t (a k x S
    matrix), while P_t is still in cache, gives the norm, certified by its residual;
    the few products it does not certify go to Lanczos after their chunk.
    """
    T, S = rec.states.shape[0], rec.states.shape[-1]
    out = np.full(T, np.nan)
    back = order[::-1]  # back[0] is s_last; back[m] needs the Jacobians of back[:m]
    if overflowed[back[0]]:
        return out  # d s_last / d s_t read through an overflowed s_last: nothing is known
    out[back[0]] = 1.0
    P = np.eye(S)
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((S, min(S, SUBSPACE))))[0]
    for first in range(1, T, PRODUCT_CHUNK):
        check(cancel)
        steps = range(first, min(first + PRODUCT_CHUNK, T))
        needed = np.array([back[m - 1] for m in steps])
        if np.any(overflowed[needed]):
            # past an overflowed state every product is NaN: nothing left to compute
            break
        factors = cell.chain_factors(rec.at(needed), Whh)
        if S <= DENSE_STATE:  # small products: one LAPACK call for the chunk beats Python
            products = np.empty((len(steps), S, S))
            for k in range(len(steps)):
                P = products[k] = cell.times_jacobian(P, factors, k)
            out[[back[m] for m in steps]] = dense_norms(products)
            continue
        kept, projections = [], []
        for k in range(len(steps)):
            P = cell.times_jacobian(P, factors, k)
            kept.append(P)
            projections.append(_project(P, U))  # while P is in cache
        where = np.array([back[m] for m in steps])
        sigma, start = _ritz_certified(projections, U)
        out[where] = sigma
        missed = np.flatnonzero(np.isnan(sigma))
        if len(missed):
            out[where[missed]] = _matrix_norms(np.stack([kept[i] for i in missed]), start)
        U = _follow(P, U)
    return out


def _follow(P: Array, U: Array) -> Array:
    """A few steps of subspace iteration on P P^T from U (S, k): the next chunk's U."""
    scale = np.max(np.abs(P))
    if not (np.isfinite(scale) and scale > 0):
        return U
    Ps = P / scale
    for _ in range(POWER_STEPS):
        U = np.linalg.qr(Ps @ (Ps.T @ U))[0]
    return U


def _project(P: Array, U: Array) -> tuple[Array, Array, float]:
    """What Rayleigh-Ritz of P P^T on span(U) needs, U (S, k) orthonormal: the Gram
    matrix G (k, k) of B = U^T P / s, P B^T (S, k), and the scale s = max |U^T P| that
    keeps squares of exploded products finite."""
    with np.errstate(all="ignore"):
        B = U.T @ P
        scale = float(np.max(np.abs(B)))
        Bs = B / scale if np.isfinite(scale) and scale > 0 else np.full_like(B, np.nan)
        return Bs @ Bs.T, P @ Bs.T, scale


def _ritz_certified(projections: list[tuple[Array, Array, float]], U: Array) -> tuple[Array, Array]:
    """(N,) ||P||_2 of each projected product, NaN where the Ritz residual does not
    certify it; and a Ritz left vector (S,) to start Lanczos on the misses from.

    For A = P P^T and the top Ritz pair (theta, u = U y) of U^T A U:
    A u = s P B^T y, theta = gamma s^2, so ||A u - theta u|| / theta is
    ||(P B^T) y - gamma s u|| / (gamma s).
    """
    G = np.stack([g for g, _, _ in projections])  # (N, k, k)
    AU = np.stack([a for _, a, _ in projections])  # (N, S, k)
    scale = np.array([s for _, _, s in projections])
    sigma = np.full(len(G), np.nan)
    finite = np.all(np.isfinite(G), axis=(1, 2)) & np.all(np.isfinite(AU), axis=(1, 2))
    if not np.any(finite):
        return sigma, U[:, 0]
    values, ritz = np.linalg.eigh(G[finite])  # ascending
    gamma, y = np.maximum(values[:, -1], 0.0), ritz[:, :, -1]  # (n,), (n, k)
    u = y @ U.T  # (n, S) Ritz left vectors
    with np.errstate(all="ignore"):
        s = scale[finite]
        residual = np.linalg.norm(
            np.einsum("nsk,nk->ns", AU[finite], y) - (gamma * s)[:, None] * u, axis=1
        ) / (gamma * s)
        ok = (gamma > 0) & (residual <= TOLERANCE)
        sigma[np.flatnonzero(finite)[ok]] = np.sqrt(gamma[ok]) * s[ok]
    misses = np.flatnonzero(~ok)
    start = u[misses[-1]] if len(misses) else u[-1]
    return sigma, start if np.all(np.isfinite(start)) else U[:, 0]


def _matrix_norms(matrices: Array, start: Array) -> Array:
    """(N,) largest singular values of explicit (N, S, S) matrices by Lanczos on M M^T
    from `start` (S,); SVD where Lanczos does not converge."""
    N, S = matrices.shape[0], matrices.shape[-1]
    out = np.full(N, np.nan)
    scale = np.max(np.abs(matrices), axis=(1, 2))  # (N,) NaN if any NaN
    finite = np.isfinite(scale)
    out[finite & (scale == 0)] = 0.0
    rows = np.flatnonzero(finite & (scale > 0))
    if len(rows) < N:
        bad = np.flatnonzero(~finite)
        out[bad] = spectral_norms(matrices[bad])
    if len(rows) == 0:
        return out
    # scaled to max entry 1, so vanished or exploded products neither under- nor overflow
    M = matrices[rows] / scale[rows, None, None]

    running = [np.arange(len(rows)), M]  # rows still in the Lanczos block, and their matrices

    def gram(u: Array, sub: Positions) -> Array:
        if len(sub) != len(running[0]):
            running[:] = [sub, M[sub]]  # the block shrank: copy its matrices once
        w = np.matmul(u[:, None, :], running[1])  # (n, 1, S): (M^T u)^T
        return np.matmul(running[1], w.transpose(0, 2, 1))[..., 0]

    nudge = 1e-2 * _start_vector(S)  # keeps the Krylov space from collapsing on `start`
    theta, _, converged = _lanczos(
        gram, np.broadcast_to(start + nudge, (len(rows), S)), min_steps=3, check_every=2
    )
    out[rows] = np.sqrt(theta) * scale[rows]
    retry = rows[~converged]
    if len(retry):
        out[retry] = dense_norms(matrices[retry])
    return out


def _lanczos(
    gram: Gram, start: Array, min_steps: int, check_every: int = 8
) -> tuple[Array, Array, Mask]:
    """Largest eigenvalue of N symmetric positive semi-definite operators at once.

    gram applies them row by row; start (N, n). Returns (theta (N,), top Ritz vectors
    (N, n), converged (N,)). Full reorthogonalisation; a row stops when its Ritz residual
    r, a bound on the distance from theta to an eigenvalue, is below TOLERANCE * theta,
    or when its Krylov space is exhausted.
    Rows leave the block at the checks, so the work is about the sum of their own steps.
    """
    N, n = start.shape
    steps = min(n, MAX_STEPS)
    theta = np.full(N, np.nan)
    vectors = np.zeros((N, n))
    converged = np.zeros(N, dtype=bool)
    rows = np.arange(N)  # original index of each row still running
    basis = np.empty((N, steps, n))  # (Na, k, n) for the rows still running
    basis[:, 0] = start / np.linalg.norm(start, axis=1, keepdims=True)
    alpha = np.zeros((N, steps))
    beta = np.zeros((N, steps))
    for j in range(steps):
        q = basis[:, j]
        w = gram(q, rows)
        alpha[:, j] = np.einsum("ni,ni->n", w, q)
        Q = basis[:, : j + 1]  # (Na, j+1, n)
        # one classical Gram-Schmidt pass against the whole basis keeps it orthogonal
        w -= np.matmul(np.matmul(Q, w[:, :, None]).transpose(0, 2, 1), Q)[:, 0]
        b = np.linalg.norm(w, axis=1)
        beta[:, j] = b
        k = j + 1
        last = k == steps
        exhausted = np.any(b <= 1e-12 * np.max(alpha[:, :k], axis=1))
        scheduled = k >= min_steps and (k - min_steps) % check_every == 0
        if scheduled and not (last or exhausted) and len(rows) > 2 * SAMPLE:
            # rows of a block converge together: a sample tells whether a full check pays
            sample = np.linspace(0, len(rows) - 1, SAMPLE).astype(np.intp)
            scheduled = bool(np.any(_done(alpha[sample, :k], beta[sample, : k - 1], b[sample])[0]))
        if last or exhausted or scheduled:
            done, top, ritz_top = _done(alpha[:, :k], beta[:, : k - 1], b)
            finished = done | last | ~np.isfinite(top)
            if np.any(finished):
                out = rows[finished]
                theta[out] = np.maximum(top[finished], 0.0)
                converged[out] = done[finished] & np.isfinite(top[finished])
                vectors[out] = np.matmul(ritz_top[finished][:, None, :], Q[finished])[:, 0]
                keep = ~finished
                rows, basis, alpha, beta = rows[keep], basis[keep], alpha[keep], beta[keep]
                w, b = w[keep], b[keep]
        if len(rows) == 0 or last:
            break
        with np.errstate(all="ignore"):
            basis[:, j + 1] = w / b[:, None]
    return theta, vectors, converged


def _done(alpha: Array, beta: Array, b: Array) -> tuple[Mask, Array, Array]:
    """Convergence of each row's top Ritz value: (done, theta, Ritz vector in the basis).

    alpha (N, k), beta (N, k-1) the tridiagonal; b (N,) the next beta (the residual scale).
    """
    top, ritz_last, ritz_top = _ritz(alpha, beta)
    with np.errstate(all="ignore"):
        # |lambda - theta| <= residual for some eigenvalue lambda (no gap estimate: the
        # Ritz gap ignores an eigenvalue the Krylov space has not resolved yet)
        residual = b * np.abs(ritz_last)
        done = (residual <= TOLERANCE * top) | (b <= 1e-12 * top)
    return done, top, ritz_top


def _ritz(alpha: Array, beta: Array) -> tuple[Array, Array, Array]:
    """Top Ritz value of each Lanczos tridiagonal (N, k): its value, and the last and all
    components of its eigenvector."""
    N, k = alpha.shape
    tri = np.zeros((N, k, k))
    idx = np.arange(k)
    tri[:, idx, idx] = alpha
    tri[:, idx[1:], idx[:-1]] = beta
    tri[:, idx[:-1], idx[1:]] = beta
    # an overflowed operator (weights near the float limit) gives NaN: its SVD decides
    finite = np.all(np.isfinite(tri), axis=(1, 2))
    values = np.full((N, k), np.nan)
    vectors = np.full((N, k, k), np.nan)
    if np.any(finite):
        values[finite], vectors[finite] = np.linalg.eigh(tri[finite])  # ascending
    return values[:, -1], vectors[:, -1, -1], vectors[:, :, -1]
