"""The timeline: the one order in which the stream, the session and the page show a trace.

Steps go by position, with every layer and direction advancing together:

- forward step k (0 <= k < T) shows each layer-direction's k-th computed position:
  position k in a forward direction, T-1-k in a reverse one, layers bottom to top;
- backward step k (0 <= k < T, with targets only) shows each layer-direction's k-th
  position in BPTT order: T-1-k in a forward direction, k in a reverse one, top layer
  first;
- the last step is the summary.

So a timeline has 2T+1 steps (T+1 without targets). The engine itself finishes a layer
(and in a bidirectional stack, both directions) before the next: the timeline is the
order of showing, not of computing. `describe()` is what the config frame publishes so
the page evaluates the same formulas instead of re-deriving them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.rnn import Trace

Phase = Literal["forward", "backward", "summary"]


def _reversed(phase: Phase, direction: int) -> bool:
    """True where step k shows position T-1-k."""
    # a reverse direction computes from the end; BPTT walks each direction backwards
    return (direction == 1) != (phase == "backward")


@dataclass(frozen=True)
class Step:
    """One timeline step: its phase and k, the index within that phase (0 for the summary)."""

    phase: Phase
    k: int


@dataclass(frozen=True)
class Timeline:
    """The timeline of a trace with `num_layers` layers, `num_directions` directions and
    `sequence_length` positions; backward steps only `with_backward` (a trace with targets)."""

    num_layers: int
    num_directions: int
    sequence_length: int
    with_backward: bool

    @classmethod
    def of(cls, trace: Trace) -> Timeline:
        """The timeline a trace is shown in: backward steps if it has targets (so BPTT
        runs, or has run: a progressive answer publishes them before its gradients)."""
        config = trace.config
        with_backward = trace.targets is not None
        return cls(config.num_layers, config.num_directions, trace.sequence_length, with_backward)

    @property
    def forward_steps(self) -> int:
        return self.sequence_length

    @property
    def backward_steps(self) -> int:
        return self.sequence_length if self.with_backward else 0

    def __len__(self) -> int:
        return self.forward_steps + self.backward_steps + 1

    def at(self, index: int) -> Step:
        """The step at `index` (0 .. len - 1); IndexError outside."""
        if not 0 <= index < len(self):
            raise IndexError(f"timeline index {index} is outside 0..{len(self) - 1}")
        if index < self.forward_steps:
            return Step("forward", index)
        if index < self.forward_steps + self.backward_steps:
            return Step("backward", index - self.forward_steps)
        return Step("summary", 0)

    def index(self, step: Step) -> int:
        """The inverse of `at`."""
        if step.phase == "forward":
            return step.k
        if step.phase == "backward":
            return self.forward_steps + step.k
        return len(self) - 1

    def position(self, phase: Phase, direction: int, k: int) -> int:
        """The position a layer-direction shows at step k of `phase`."""
        T = self.sequence_length
        return T - 1 - k if _reversed(phase, direction) else k

    def layers(self, phase: Phase) -> range:
        """Layers in the order a step lists them: bottom up forward, top down in BPTT."""
        L = self.num_layers
        return range(L - 1, -1, -1) if phase == "backward" else range(L)

    def entries(self, index: int) -> list[tuple[int, int, int]]:
        """(layer, direction, position) shown at step `index`, in order; [] for the summary."""
        step = self.at(index)
        if step.phase == "summary":
            return []
        return [
            (layer, d, self.position(step.phase, d, step.k))
            for layer in self.layers(step.phase)
            for d in range(self.num_directions)
        ]

    def index_of(self, phase: Phase, layer: int, direction: int, position: int) -> int:
        """The step at which (layer, direction, position) is shown in `phase`: the inverse
        of `entries` (every layer-direction shares the step of its position)."""
        del layer  # layers advance together
        T = self.sequence_length
        k = self.position(phase, direction, position)  # the map is its own inverse
        assert 0 <= k < T
        return self.index(Step(phase, k))

    def output_step(self, position: int) -> int:
        """The forward step at which the head's output at `position` is shown: once every
        top-layer direction has shown that position."""
        return max(self.position("forward", d, position) for d in range(self.num_directions))

    def describe(self) -> dict[str, Any]:
        """The JSON the config frame and every trace carry: the page evaluates
        position = (reversed[d] ? T-1-k : k) at step k = index - start of a phase."""
        D = self.num_directions
        phases: list[dict[str, Any]] = [
            {
                "phase": "forward",
                "start": 0,
                "steps": self.forward_steps,
                "layers": list(self.layers("forward")),
                "reversed": [_reversed("forward", d) for d in range(D)],
            }
        ]
        if self.with_backward:
            phases.append(
                {
                    "phase": "backward",
                    "start": self.forward_steps,
                    "steps": self.backward_steps,
                    "layers": list(self.layers("backward")),
                    "reversed": [_reversed("backward", d) for d in range(D)],
                }
            )
        phases.append({"phase": "summary", "start": len(self) - 1, "steps": 1})
        return {"length": len(self), "sequence_length": self.sequence_length, "phases": phases}
