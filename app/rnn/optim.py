"""Optimizers and gradient clipping, with PyTorch's update rules."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.rnn.types import Params

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class OptimizerConfig:
    """Which optimizer and its hyperparameters (PyTorch's defaults)."""

    name: str = "adam"  # sgd | momentum | adam
    learning_rate: float = 0.01
    momentum: float = 0.9  # for momentum
    beta1: float = 0.9  # for adam
    beta2: float = 0.999  # for adam
    eps: float = 1e-8  # for adam
    weight_decay: float = 0.0  # L2 added to the gradient, as torch.optim does

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(
                f"optimizer.name: must be one of {', '.join(OPTIMIZERS)}, got {self.name!r}"
            )
        checks = {
            "learning_rate": 0 < self.learning_rate <= 10,
            "momentum": 0 <= self.momentum < 1,
            "beta1": 0 <= self.beta1 < 1,
            "beta2": 0 <= self.beta2 < 1,
            "eps": 0 < self.eps <= 1,
            "weight_decay": 0 <= self.weight_decay <= 1,
        }
        for field, ok in checks.items():
            value = getattr(self, field)
            if not (isinstance(value, int | float) and np.isfinite(value) and ok):
                raise ValueError(f"optimizer.{field}: {value!r} is out of range")


class Optimizer:
    """Updates params in place from grads: torch.optim.SGD (with momentum) or Adam."""

    def __init__(self, config: OptimizerConfig, params: Params):
        self.config = config
        self.step_count = 0
        self._m = {k: np.zeros_like(v) for k, v in params.items()}
        self._v = {k: np.zeros_like(v) for k, v in params.items()} if config.name == "adam" else {}

    def step(self, params: Params, grads: Params) -> None:
        """One update of every parameter."""
        c = self.config
        self.step_count += 1
        for name, p in params.items():
            g = grads[name]
            if c.weight_decay:
                g = g + c.weight_decay * p
            if c.name == "sgd":
                p -= c.learning_rate * g
            elif c.name == "momentum":
                # torch: the first step stores the gradient itself as the buffer
                buf = self._m[name]
                if self.step_count == 1:
                    buf[...] = g
                else:
                    buf *= c.momentum
                    buf += g
                p -= c.learning_rate * buf
            else:
                m, v = self._m[name], self._v[name]
                m *= c.beta1
                m += (1 - c.beta1) * g
                v *= c.beta2
                v += (1 - c.beta2) * g * g
                bias1 = 1 - c.beta1**self.step_count
                bias2 = 1 - c.beta2**self.step_count
                denom = np.sqrt(v) / np.sqrt(bias2) + c.eps
                p -= (c.learning_rate / bias1) * (m / denom)


def global_norm(grads: Params) -> float:
    """sqrt of the sum of every gradient entry squared: what clip_grad_norm_ measures."""
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))


def clip_by_norm(grads: Params, max_norm: float) -> float:
    """Scale all gradients in place so their global norm is at most max_norm (as
    torch.nn.utils.clip_grad_norm_, with its 1e-6). Returns the norm before clipping."""
    norm = global_norm(grads)
    scale = max_norm / (norm + 1e-6)
    if scale < 1.0:
        for g in grads.values():
            g *= scale
    return norm


def clip_by_value(grads: Params, clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value] in place."""
    for g in grads.values():
        np.clip(g, -clip_value, clip_value, out=g)
