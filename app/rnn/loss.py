"""Losses on the head's outputs, as PyTorch computes them by default, with their backward.

Outputs come batch-first: (B, T, O) in `sequence` mode, (B, O) in `last` mode. The loss is
the mean over every position (and, for MSE, every output); `per_step` (B, T) is each
position's own loss, so that `loss == per_step.mean()`.
"""

from __future__ import annotations

import numpy as np

from app.rnn.types import Array


def mse_forward(outputs: Array, targets: Array) -> tuple[float, Array, Array]:
    """mse_loss(reduction='mean'). outputs, targets (B, T, O) or (B, O).

    Returns (loss, per_step (B, T) or (B,), cache).
    """
    diff = outputs - targets
    per_step = np.mean(diff * diff, axis=-1)
    return float(np.mean(per_step)), per_step, diff


def mse_backward(diff: Array) -> Array:
    """d loss / d outputs, same shape as the outputs."""
    return 2.0 * diff / diff.size


def cross_entropy_forward(logits: Array, targets: Array) -> tuple[float, Array, Array]:
    """cross_entropy(reduction='mean'). logits (B, T, C) or (B, C); integer targets (B, T) or (B,).

    Returns (loss, per_step, cache) where the cache is softmax minus the one-hot targets.
    """
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    log_z = np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    log_probs = shifted - log_z
    idx = targets.astype(np.intp)[..., None]
    per_step = -np.take_along_axis(log_probs, idx, axis=-1)[..., 0]
    residual = np.exp(log_probs)
    np.put_along_axis(residual, idx, np.take_along_axis(residual, idx, axis=-1) - 1.0, axis=-1)
    return float(np.mean(per_step)), per_step, residual


def cross_entropy_backward(residual: Array) -> Array:
    """d loss / d logits, same shape as the logits."""
    return residual / (residual.size // residual.shape[-1])


def loss_and_grad(head: str, outputs: Array, targets: Array) -> tuple[float, Array, Array]:
    """The configured head's loss, per-position losses and d loss / d outputs."""
    if head == "classification":
        loss, per_step, residual = cross_entropy_forward(outputs, targets)
        return loss, per_step, cross_entropy_backward(residual)
    loss, per_step, diff = mse_forward(outputs, targets)
    return loss, per_step, mse_backward(diff)
