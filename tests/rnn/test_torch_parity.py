"""Parity with PyTorch where it is installed; skipped cleanly where it is not."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from app.rnn import CELLS, ModelConfig, init_params, run_sequence

torch = nn = None  # set by _torch below: importing torch at collection cost every worker 1.5 s


@pytest.fixture(autouse=True, scope="module")
def _torch():
    global torch, nn
    torch = pytest.importorskip("torch")
    nn = torch.nn


@functools.cache
def torch_module_class():
    """The module our parameter names describe: attributes `rnn` and `head`."""

    class TorchModel(nn.Module):
        def __init__(self, config: ModelConfig):
            super().__init__()
            kwargs = dict(num_layers=config.num_layers, bidirectional=config.bidirectional)
            if config.cell.startswith("rnn_"):
                kwargs["nonlinearity"] = config.cell.removeprefix("rnn_")
            rnn = getattr(nn, config.torch_mode)
            self.rnn = rnn(config.input_size, config.hidden_size, **kwargs)
            self.head = nn.Linear(config.num_directions * config.hidden_size, config.output_size)
            self.config = config

        def forward(self, x):
            out, h_n = self.rnn(x)  # (T, D*H), unbatched; h_n (L*D, H), or (h_n, c_n) for LSTM
            mode = self.config.output_mode
            if mode == "sequence":
                return self.head(out)
            if mode == "last":
                return self.head(out[-1])
            h_n = h_n[0] if isinstance(h_n, tuple) else h_n
            # the top layer's last-computed states: forward after T-1, reverse after 0
            top = torch.cat([h_n[-2], h_n[-1]]) if self.config.bidirectional else h_n[-1]
            return self.head(top)

    return TorchModel


def torch_model(config, params):
    model = torch_module_class()(config).double()
    state = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
    model.load_state_dict(state, strict=True)  # our names load unchanged
    return model


@pytest.mark.parametrize(
    ("cell", "bidirectional", "head", "output_mode"),
    list(
        itertools.product(
            CELLS,
            (False, True),
            ("regression", "classification"),
            ("sequence", "last", "final"),
        )
    ),
)
def test_matches_torch(cell, bidirectional, head, output_mode):
    O = 3 if head == "classification" else 2
    config = ModelConfig(
        cell=cell,
        input_size=3,
        hidden_size=5,
        num_layers=2,
        bidirectional=bidirectional,
        output_size=O,
        head=head,
        output_mode=output_mode,
    )
    params = init_params(config, seed=1)
    rng = np.random.default_rng(2)
    T = 7
    x = rng.standard_normal((T, 3))
    seq = output_mode == "sequence"
    if head == "classification":
        y = rng.integers(0, O, size=(T,) if seq else ())
    else:
        y = rng.standard_normal((T, O) if seq else (O,))
    trace = run_sequence(config, params, x, y)

    model = torch_model(config, params)
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    if head == "classification":
        loss = nn.functional.cross_entropy(out, torch.tensor(y).long())
    else:
        loss = nn.functional.mse_loss(out, torch.tensor(y))
    loss.backward()

    np.testing.assert_allclose(trace.outputs, out.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert trace.loss == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(trace.grad_inputs, xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    named = dict(model.named_parameters())
    for name, grad in trace.grads.items():
        np.testing.assert_allclose(
            grad, named[name].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=name
        )
    top = trace.hidden[-1].transpose(1, 0, 2).reshape(T, -1)  # (T, D*H) like torch's output
    np.testing.assert_allclose(
        top, model.rnn(torch.tensor(x))[0].detach().numpy(), rtol=1e-12, atol=1e-13
    )


@pytest.mark.parametrize("cell", CELLS)
def test_grad_hidden_matches_retain_grad(cell):
    """A cell loop where one tensor h_t feeds both the next step and the head: h_t.grad is
    the total dL/dh_t that grad_hidden reports."""
    config = ModelConfig(cell=cell, input_size=2, hidden_size=4, output_size=1)
    params = init_params(config, seed=3, scale=1.5)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 1))
    trace = run_sequence(config, params, x, y)

    cls = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}.get(cell, nn.RNNCell)
    kwargs = {"nonlinearity": cell.removeprefix("rnn_")} if cls is nn.RNNCell else {}
    step = cls(2, 4, **kwargs).double()
    with torch.no_grad():
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, n).copy_(torch.from_numpy(params[f"rnn.{n}_l0"]))
    W, b = torch.from_numpy(params["head.weight"]), torch.from_numpy(params["head.bias"])
    h = torch.zeros(1, 4, dtype=torch.float64)
    c = torch.zeros(1, 4, dtype=torch.float64)
    hs, cs, outs = [], [], []
    for t in range(6):
        xt = torch.from_numpy(x[t : t + 1])
        if cell == "lstm":
            h, c = step(xt, (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = step(xt, h)
        h.retain_grad()
        hs.append(h)
        outs.append(h @ W.T + b)
    loss = nn.functional.mse_loss(torch.cat(outs), torch.from_numpy(y))
    loss.backward()
    np.testing.assert_allclose(
        trace.grad_hidden[0, 0], torch.cat([h.grad for h in hs]).numpy(), rtol=1e-10, atol=1e-14
    )
    if cell == "lstm":
        np.testing.assert_allclose(
            trace.grad_cell[0, 0], torch.cat([c.grad for c in cs]).numpy(), rtol=1e-10, atol=1e-14
        )
