"""Character models: next-character guesses and sampled text."""

from __future__ import annotations

import numpy as np
import pytest

from app.rnn import init_params
from app.rnn.network import network_forward
from app.rnn.sample import encode, next_char_guesses, sample_text
from app.rnn.tasks import make_task

TASK = make_task("text", length=12)
VOCABULARY = "".join(TASK.vocabulary)
CONFIG = TASK.config(cell="gru", hidden_size=6)
PARAMS = init_params(CONFIG, seed=0)


def test_guesses_are_the_softmax_top_five_in_order():
    text = "Shall I"
    probs, chars = next_char_guesses(CONFIG, PARAMS, VOCABULARY, text)
    assert probs.shape == (7, 5) and len(chars) == 7 and all(len(c) == 5 for c in chars)
    logits, _ = network_forward(
        CONFIG, PARAMS, np.eye(len(VOCABULARY))[encode(VOCABULARY, text)][None]
    )
    full = np.exp(logits[0] - logits[0].max(axis=1, keepdims=True))
    full /= full.sum(axis=1, keepdims=True)
    best = np.argsort(-full, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(probs, np.take_along_axis(full, best, axis=1))
    assert chars[3] == [VOCABULARY[i] for i in best[3]]
    assert np.all(np.diff(probs, axis=1) <= 0)


def test_unknown_characters_are_named_by_position():
    with pytest.raises(ValueError, match=r"^text: position 3: '\$' is not in the model's"):
        encode(VOCABULARY, "Sh$ll")


def test_sampling_is_reproducible_and_follows_the_temperature():
    a = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 60, 1.0, seed=4, context=12)
    b = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 60, 1.0, seed=4, context=12)
    c = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 60, 1.0, seed=5, context=12)
    assert a == b and a != c and len(a) == 60 and set(a) <= set(VOCABULARY)
    greedy = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 20, 0.0, seed=1, context=12)
    assert greedy == sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 20, 0.0, seed=2, context=12)
    # an untrained model is near uniform: a cold temperature repeats far fewer characters
    cold = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 200, 0.05, seed=4, context=12)
    hot = sample_text(CONFIG, PARAMS, VOCABULARY, "Shall", 200, 2.0, seed=4, context=12)
    assert len(set(cold)) < len(set(hot))
    with pytest.raises(ValueError, match="^temperature"):
        sample_text(CONFIG, PARAMS, VOCABULARY, "S", 5, -1.0, seed=0, context=12)


def test_a_model_of_another_shape_is_refused():
    other = make_task("sine").config(cell="gru", hidden_size=2)
    with pytest.raises(ValueError, match="^config: a character model"):
        next_char_guesses(other, init_params(other, seed=0), VOCABULARY, "S")
