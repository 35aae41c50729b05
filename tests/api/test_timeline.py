"""The one timeline (app/api/timeline.py): by position, layers and directions together,
2T+1 steps; index <-> step <-> (layer, direction, position), against the formula that
docs/session-protocol.md gives clients."""

from __future__ import annotations

import pytest

from app.api.timeline import Step, Timeline


def documented_step(phase, d, t, T):
    """docs/session-protocol.md: the step showing (any layer, direction d, position t)."""
    if phase == "forward":
        return t if d == 0 else T - 1 - t
    return T + (T - 1 - t if d == 0 else t)


@pytest.mark.parametrize(
    ("layers", "bidirectional", "targets"),
    [(1, False, True), (3, True, True), (2, True, False), (1, True, True)],
)
def test_index_and_its_inverse(layers, bidirectional, targets):
    T = 5
    D = 2 if bidirectional else 1
    timeline = Timeline(layers, D, T, targets)
    assert len(timeline) == (2 * T + 1 if targets else T + 1)
    shown = []
    for index in range(len(timeline)):
        step = timeline.at(index)
        assert timeline.index(step) == index
        entries = timeline.entries(index)
        if step.phase != "summary":  # every layer-direction once, layers in the phase's order
            assert len(entries) == layers * D
            order = [layer for layer, _, _ in entries]
            assert order == sorted(order, reverse=step.phase == "backward")
        for layer, d, t in entries:
            assert timeline.index_of(step.phase, layer, d, t) == index
            assert documented_step(step.phase, d, t, T) == index
            shown.append((step.phase, layer, d, t))
    assert timeline.at(len(timeline) - 1) == Step("summary", 0)
    every = {(layer, d, t) for layer in range(layers) for d in range(D) for t in range(T)}
    phases = ["forward", "backward"] if targets else ["forward"]
    for phase in phases:
        assert sorted(e[1:] for e in shown if e[0] == phase) == sorted(every)
    with pytest.raises(IndexError):
        timeline.at(len(timeline))
    with pytest.raises(IndexError):
        timeline.at(-1)


def test_the_published_description_gives_the_same_positions():
    """What the page evaluates: position = reversed[d] ? T-1-k : k, k = index - start."""
    T, timeline = 6, Timeline(2, 2, 6, True)
    described = timeline.describe()
    assert described["length"] == len(timeline) == 13
    assert [p["phase"] for p in described["phases"]] == ["forward", "backward", "summary"]
    for phase in described["phases"][:2]:
        assert phase["layers"] == ([1, 0] if phase["phase"] == "backward" else [0, 1])
        for k in range(phase["steps"]):
            index = phase["start"] + k
            page = [T - 1 - k if r else k for r in phase["reversed"]]
            ours = [t for layer, _, t in timeline.entries(index) if layer == 0]
            assert page == ours


def test_an_output_is_shown_once_both_directions_have_shown_its_position():
    one, two = Timeline(1, 1, 5, True), Timeline(1, 2, 5, True)
    assert [one.output_step(t) for t in range(5)] == [0, 1, 2, 3, 4]
    assert [two.output_step(t) for t in range(5)] == [4, 3, 2, 3, 4]
