"""Inside one step: every piece agrees with the engine's trace and with a textbook step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.rnn import CELLS, run_sequence
from app.rnn.inspect import inspect_step
from app.rnn.params import direction_suffix
from tests.rnn.reference import reference_step
from tests.rnn.test_gradcheck import make_problem

SHAPES = [(1, False), (2, True)]
REF_NAME = {
    "input": "i",
    "forget": "f",
    "cell": "g",
    "output": "o",
    "reset": "r",
    "update": "z",
    "new": "n",
}
ACT = {"rnn_tanh": np.tanh, "rnn_relu": lambda a: np.maximum(a, 0.0)}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def close(a, b):
    return np.allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("cell", "layers", "bi"), [(c, *s) for c in CELLS for s in SHAPES])
def test_pieces_rebuild_the_step_and_agree_with_the_trace(cell, layers, bi):
    config, params, x, y = make_problem(cell, layers, bi, "regression", "sequence", T=5)
    trace = run_sequence(config, params, x, y, jacobians=True)
    H, D = config.hidden_size, config.num_directions
    for layer, d, t in itertools.product(range(layers), range(D), range(5)):
        p = inspect_step(config, params, x, y, layer, d, t)
        sfx = f"l{layer}{direction_suffix(d)}"
        w = [params[f"rnn.{k}_{sfx}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        # the forward pieces are the textbook step's own terms
        s_prev = p.h_prev if p.c_prev is None else np.concatenate([p.h_prev, p.c_prev])
        s_new, ref_gates = reference_step(cell, p.x, s_prev, *w)
        assert close(p.h, s_new[:H]) and close(p.h, trace.hidden[layer, d, t])
        assert close(p.w_input, w[0] @ p.x) and close(p.w_hidden, w[1] @ p.h_prev)
        if cell in ACT:
            assert close(ACT[cell](p.pre["h"]), p.h)
        else:
            for name in config.gate_names:
                assert close(p.gates[name], trace.gates[name][layer, d, t])
                assert close(p.gates[name], ref_gates[REF_NAME[name]])
                squash = np.tanh if name in ("cell", "new") else sigmoid
                assert close(squash(p.pre[name]), p.gates[name])
        if cell == "lstm":
            assert close(p.c, trace.cell[layer, d, t])
            g = p.gates
            assert close(p.c, g["forget"] * p.c_prev + g["input"] * g["cell"])
        # the step's one-step Jacobian is the diagnosed one (Lanczos there, explicit here)
        assert np.isclose(p.jacobian_norm, trace.jacobian_norm[layer, d, t], rtol=1e-7)
        b = p.backward
        assert close(b.dh, trace.grad_hidden[layer, d, t])
        assert close(b.dh_from_outside + b.dh_from_next, b.dh)
        assert np.isclose(b.dWhh_step_norm, trace.grad_step_norms[layer, d, t], rtol=1e-10)
        if cell == "lstm":
            assert close(b.dc, trace.grad_cell[layer, d, t])
        # what the step sends back is what reaches the previous state from it
        order = list(range(5)) if d == 0 else list(range(4, -1, -1))
        k = order.index(t)
        if k > 0:
            prev = inspect_step(config, params, x, y, layer, d, order[k - 1]).backward
            assert close(prev.dh_from_next, b.dh_prev)
            if cell == "lstm":
                assert close(prev.dc_from_next, b.dc_prev)


@pytest.mark.parametrize(("cell", "output_mode"), [(c, "last") for c in CELLS] + [("gru", "final")])
def test_step_shares_sum_to_the_weight_gradient(cell, output_mode):
    config, params, x, y = make_problem(cell, 2, True, "regression", output_mode, T=4)
    trace = run_sequence(config, params, x, y)
    for layer, d in itertools.product(range(2), range(2)):
        shares = [inspect_step(config, params, x, y, layer, d, t).backward for t in range(4)]
        total = sum(s.dWhh_step for s in shares)
        name = f"rnn.weight_hh_l{layer}{direction_suffix(d)}"
        assert np.allclose(total, trace.grads[name], rtol=1e-10, atol=1e-14)
        below = sum(s.dx for s in shares)
        assert below.shape == (2 if layer == 0 else 2 * config.hidden_size,)


def test_forward_only_and_bad_fields():
    config, params, x, _ = make_problem("gru", 1, False, "regression", "sequence", T=3)
    p = inspect_step(config, params, x, None, 0, 0, 2)
    assert p.backward is None and p.gate_names == ("reset", "update", "new")
    for kwargs, field in [
        ({"layer": 1}, "layer"),
        ({"direction": 1}, "direction"),
        ({"position": 3}, "position"),
        ({"position": True}, "position"),
    ]:
        where = {"layer": 0, "direction": 0, "position": 0, **kwargs}
        with pytest.raises(ValueError, match=f"^{field}: "):
            inspect_step(config, params, x, None, **where)
