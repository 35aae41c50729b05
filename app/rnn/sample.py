"""Text from a character model: its top next-character guesses along a text, and text
sampled one character at a time at a temperature, bit-identical for the same seed."""

from __future__ import annotations

import numpy as np

from app.rnn.config import ModelConfig
from app.rnn.network import network_forward
from app.rnn.types import Array, Params

MAX_TEMPERATURE = 5.0


def encode(vocabulary: str, text: str, field: str = "text") -> Array:
    """Character codes (T,) of `text`; ValueError naming the first unknown character's
    1-based position."""
    if not text:
        raise ValueError(f"{field}: give at least one character")
    index = {ch: i for i, ch in enumerate(vocabulary)}
    for position, ch in enumerate(text, start=1):
        if ch not in index:
            raise ValueError(
                f"{field}: position {position}: {ch!r} is not in the model's vocabulary"
            )
    return np.array([index[ch] for ch in text], dtype=np.intp)


def check_text_model(config: ModelConfig, vocabulary: str) -> None:
    """ValueError unless `config` reads and predicts one character of `vocabulary` a step."""
    V = len(vocabulary)
    if (
        config.input_size != V
        or config.output_size != V
        or config.head != "classification"
        or config.output_mode != "sequence"
    ):
        raise ValueError(
            f"config: a character model needs input_size = output_size = {V} (the "
            "vocabulary), a classification head and sequence output"
        )


def next_char_guesses(
    config: ModelConfig, params: Params, vocabulary: str, text: str, top: int = 5
) -> tuple[Array, list[list[str]]]:
    """After each character of `text`, the `top` likeliest next characters.

    Returns probabilities (T, top), descending, and the characters [T][top].
    """
    check_text_model(config, vocabulary)
    codes = encode(vocabulary, text)
    probs = _softmax(_logits(config, params, codes[None, :], len(vocabulary))[0])  # (T, V)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]  # ties: vocabulary order
    chars = [[vocabulary[i] for i in row] for row in order.tolist()]
    return np.take_along_axis(probs, order, axis=1), chars


def sample_text(
    config: ModelConfig,
    params: Params,
    vocabulary: str,
    prompt: str,
    length: int,
    temperature: float,
    seed: int,
    context: int,
) -> str:
    """`length` characters drawn one at a time after `prompt`, each from the model's
    distribution given the last `context` characters (as trained: from a zero state),
    sharpened (temperature < 1) or flattened (> 1); temperature 0 takes the likeliest."""
    check_text_model(config, vocabulary)
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature: must be in [0, {MAX_TEMPERATURE:g}], got {temperature!r}")
    if context < 1:
        raise ValueError(f"context: must be at least 1, got {context}")
    codes = list(encode(vocabulary, prompt, "prompt"))
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(length):
        window = np.array(codes[-context:])[None, :]  # (1, t)
        logits = _logits(config, params, window, len(vocabulary))[0, -1]  # (V,)
        if temperature == 0:
            code = int(np.argmax(logits))
        else:
            probs = _softmax(logits / temperature)
            code = int(rng.choice(len(vocabulary), p=probs))
        codes.append(code)
        drawn.append(vocabulary[code])
    return "".join(drawn)


def _logits(config: ModelConfig, params: Params, codes: Array, V: int) -> Array:
    """codes (B, T) -> logits (B, T, V)."""
    with np.errstate(all="ignore"):
        logits, _ = network_forward(config, params, np.eye(V)[codes])
    return logits


def _softmax(logits: Array) -> Array:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
