"""Parameter names, shapes and initialization, laid out exactly as PyTorch's state_dict."""

from __future__ import annotations

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.types import Params

INIT_SCHEMES = ("pytorch", "xavier", "orthogonal", "identity")


def direction_suffix(direction: int) -> str:
    """'' for the forward direction, '_reverse' for the backward one (PyTorch's naming)."""
    return "_reverse" if direction == 1 else ""


def layer_input_size(config: ModelConfig, layer: int) -> int:
    """Features entering layer `layer`: the input size, or D*H from the layer below."""
    return config.input_size if layer == 0 else config.num_directions * config.hidden_size


def param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name and shape, in PyTorch's state_dict order.

    weight_ih_l{k}: (G*H, I_k), weight_hh_l{k}: (G*H, H), biases (G*H,);
    head.weight: (O, D*H), head.bias: (O,).
    """
    H, G = config.hidden_size, config.gate_multiple
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            sfx = f"l{layer}{direction_suffix(direction)}"
            shapes[f"rnn.weight_ih_{sfx}"] = (G * H, layer_input_size(config, layer))
            shapes[f"rnn.weight_hh_{sfx}"] = (G * H, H)
            shapes[f"rnn.bias_ih_{sfx}"] = (G * H,)
            shapes[f"rnn.bias_hh_{sfx}"] = (G * H,)
    shapes["head.weight"] = (config.output_size, config.num_directions * H)
    shapes["head.bias"] = (config.output_size,)
    return shapes


def check_params(config: ModelConfig, params: Params) -> Params:
    """Validate names, shapes and finiteness; return float64 copies in canonical order.

    Raises ValueError naming the offending tensor.
    """
    if not isinstance(params, dict):
        raise ValueError(f"params: must be a mapping of name to array, got {type(params).__name__}")
    shapes = param_shapes(config)
    missing = [name for name in shapes if name not in params]
    if missing:
        raise ValueError(f"params: missing tensor(s) {', '.join(missing)}")
    extra = sorted(set(params) - set(shapes))
    if extra:
        raise ValueError(f"params: unexpected tensor(s) {', '.join(extra)} for this config")
    checked: Params = {}
    for name, shape in shapes.items():
        try:
            value = np.asarray(params[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"params.{name}: not a numeric array ({exc})") from None
        if value.shape != shape:
            raise ValueError(f"params.{name}: expected shape {shape}, got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params.{name}: contains NaN or infinity")
        checked[name] = value.copy()
    return checked


def init_params(
    config: ModelConfig, seed: int = 0, scheme: str = "pytorch", scale: float = 1.0
) -> Params:
    """Fresh float64 parameters, deterministic in `seed`.

    Schemes (the head is always nn.Linear's default, U(+-1/sqrt(D*H))):
    - pytorch: every recurrent tensor U(+-1/sqrt(H)), as nn.RNN/LSTM/GRU.
    - xavier: Glorot-uniform weight blocks per gate, zero biases.
    - orthogonal: Glorot-uniform input weights, orthogonal recurrent blocks, zero biases.
    - identity: Glorot-uniform input weights, identity recurrent blocks (IRNN), zero biases.
    `scale` multiplies every recurrent weight block (weight_hh), the knob that moves the
    spectral radius and so tips gradients towards vanishing (< 1) or exploding (> 1).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme: must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    scale = float(scale)
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale: must be a finite number >= 0, got {scale!r}")

    rng = np.random.default_rng(int(seed))
    H, G = config.hidden_size, config.gate_multiple
    params: Params = {}
    for name, shape in param_shapes(config).items():
        if name.startswith("head."):
            bound = 1.0 / np.sqrt(shape[-1] if name == "head.weight" else config.num_directions * H)
            params[name] = rng.uniform(-bound, bound, size=shape)
        elif scheme == "pytorch":
            params[name] = rng.uniform(-1.0 / np.sqrt(H), 1.0 / np.sqrt(H), size=shape)
        elif ".bias_" in name:
            params[name] = np.zeros(shape)
        elif ".weight_hh_" in name and scheme in ("orthogonal", "identity"):
            blocks = [
                _orthogonal(rng, H) if scheme == "orthogonal" else np.eye(H) for _ in range(G)
            ]
            params[name] = np.concatenate(blocks, axis=0)
        else:
            params[name] = np.concatenate([_glorot(rng, H, shape[1]) for _ in range(G)], axis=0)
        if ".weight_hh_" in name:
            params[name] = params[name] * scale
    return params


def _glorot(rng: np.random.Generator, fan_out: int, fan_in: int) -> np.ndarray:
    """(fan_out, fan_in) Glorot-uniform block."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_out, fan_in))


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, n) Haar-random orthogonal matrix (QR with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))
