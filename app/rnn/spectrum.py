"""Eigenvalues and spectral radius of each recurrent weight block: where gradients will go."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.params import direction_suffix
from app.rnn.types import Params


@dataclass(frozen=True)
class SpectrumBlock:
    """One H x H block of a weight_hh: a gate's recurrent weights in one layer and direction."""

    layer: int
    direction: int  # 0 forward, 1 reverse
    gate: str  # gate name, or "hidden" for the plain RNN
    param: str  # the parameter it is a block of, e.g. rnn.weight_hh_l0
    rows: tuple[int, int]  # row range [start, stop) within that parameter
    eigenvalues: np.ndarray  # (H,) complex, sorted by decreasing modulus
    spectral_radius: float  # max |eigenvalue|
    spectral_norm: float  # largest singular value, an upper bound on the radius


def recurrent_spectrum(config: ModelConfig, params: Params) -> list[SpectrumBlock]:
    """Eigen-analysis of each recurrent block, by layer, direction and gate (PyTorch order)."""
    H = config.hidden_size
    gates = config.gate_names or ("hidden",)
    blocks: list[SpectrumBlock] = []
    for layer in range(config.num_layers):
        for direction in range(config.num_directions):
            name = f"rnn.weight_hh_l{layer}{direction_suffix(direction)}"
            Whh = np.asarray(params[name], dtype=np.float64)
            for k, gate in enumerate(gates):
                block = Whh[k * H : (k + 1) * H]
                eig = np.linalg.eigvals(block)
                eig = eig[np.argsort(-np.abs(eig), kind="stable")]
                blocks.append(
                    SpectrumBlock(
                        layer=layer,
                        direction=direction,
                        gate=gate,
                        param=name,
                        rows=(k * H, (k + 1) * H),
                        eigenvalues=eig,
                        spectral_radius=float(np.max(np.abs(eig))),
                        spectral_norm=float(np.linalg.norm(block, ord=2)),
                    )
                )
    return blocks
