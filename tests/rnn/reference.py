"""A plain, textbook implementation of one step of each cell: the tests' independent reference.

Written for clarity, not speed: one sequence, vectors only, PyTorch's equations as printed
in its documentation.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_step(cell, x, s, Wih, Whh, bih, bhh):
    """One step: x (I,), s (S,) -> (s_new (S,), gates dict)."""
    H = Whh.shape[1]
    if cell in ("rnn_tanh", "rnn_relu"):
        a = Wih @ x + bih + Whh @ s + bhh
        return (np.tanh(a) if cell == "rnn_tanh" else np.maximum(a, 0.0)), {}
    if cell == "lstm":
        h, c = s[:H], s[H:]
        gx, gh = Wih @ x + bih, Whh @ h + bhh
        i = sigmoid(gx[:H] + gh[:H])
        f = sigmoid(gx[H : 2 * H] + gh[H : 2 * H])
        g = np.tanh(gx[2 * H : 3 * H] + gh[2 * H : 3 * H])
        o = sigmoid(gx[3 * H :] + gh[3 * H :])
        c_new = f * c + i * g
        return np.concatenate([o * np.tanh(c_new), c_new]), {"i": i, "f": f, "g": g, "o": o}
    if cell == "gru":
        gx, gh = Wih @ x + bih, Whh @ s + bhh
        r = sigmoid(gx[:H] + gh[:H])
        z = sigmoid(gx[H : 2 * H] + gh[H : 2 * H])
        n = np.tanh(gx[2 * H :] + r * gh[2 * H :])
        return (1 - z) * n + z * s, {"r": r, "z": z, "n": n}
    raise ValueError(cell)


def state_size(cell, H):
    return 2 * H if cell == "lstm" else H
