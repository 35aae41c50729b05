"""The model configuration: which cell, how big, how many layers, and what the head predicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
HEADS = ("regression", "classification")
OUTPUT_MODES = ("sequence", "last", "final")

# Rows of weight_ih per hidden unit: the gate multiple PyTorch stacks along dim 0.
GATE_MULTIPLE = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}

# Gate names in PyTorch's stacking order, as they appear in `Trace.gates`.
GATE_NAMES: dict[str, tuple[str, ...]] = {
    "rnn_tanh": (),
    "rnn_relu": (),
    "lstm": ("input", "forget", "cell", "output"),
    "gru": ("reset", "update", "new"),
}


@dataclass(frozen=True)
class ModelConfig:
    """A stacked (optionally bidirectional) recurrent network with a linear head.

    Mirrors a PyTorch module with attributes `rnn` (nn.RNN/nn.LSTM/nn.GRU) and
    `head` (nn.Linear(D * hidden_size, output_size)).
    """

    cell: str = "lstm"  # rnn_tanh | rnn_relu | lstm | gru
    input_size: int = 1  # features per position, I
    hidden_size: int = 8  # units per layer and direction, H
    num_layers: int = 1  # stacked layers, L
    bidirectional: bool = False  # D = 2 when True
    output_size: int = 1  # head outputs (classes for classification), O
    head: str = "regression"  # regression (MSE) | classification (cross-entropy)
    # sequence: head at every position | last: at position T-1 (output[-1]) |
    # final: on each direction's last-computed state (h_n[-D:]: forward T-1, reverse 0)
    output_mode: str = "sequence"

    def __post_init__(self) -> None:
        _check_choice("cell", self.cell, CELLS)
        _check_choice("head", self.head, HEADS)
        _check_choice("output_mode", self.output_mode, OUTPUT_MODES)
        for name in ("input_size", "hidden_size", "num_layers", "output_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name}: must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"{name}: must be at least 1, got {value}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional: must be true or false, got {self.bidirectional!r}")
        if self.head == "classification" and self.output_size < 2:
            raise ValueError("output_size: classification needs at least 2 classes")

    @property
    def num_directions(self) -> int:
        """D: 2 for a bidirectional network, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def gate_multiple(self) -> int:
        """G: how many H-row blocks weight_ih and weight_hh stack (1, 3 or 4)."""
        return GATE_MULTIPLE[self.cell]

    @property
    def gate_names(self) -> tuple[str, ...]:
        """Gate names in PyTorch's order; empty for the plain RNN cells."""
        return GATE_NAMES[self.cell]

    @property
    def torch_mode(self) -> str:
        """The PyTorch class this cell corresponds to: RNN, LSTM or GRU."""
        return {"rnn_tanh": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}[self.cell]

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as stored beside saved weights and sent over the API."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a plain dict; unknown keys are an error naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"config: must be a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            raise ValueError(f"config: unknown field(s) {', '.join(extra)}")
        return cls(**data)


def _check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{field}: must be one of {', '.join(choices)}, got {value!r}")
