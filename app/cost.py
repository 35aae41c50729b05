"""The cost model: a request's work (seconds on the reference machine), peak memory and
answer size, estimated from its config alone, before anything is allocated.

Pure arithmetic on sizes: no FastAPI, no numpy arrays. The constants were fitted to the
engine on the 2-core reference machine (`python benchmarks/worst_case_web.py --calibrate`
prints estimate against measurement); `tests/test_cost.py` holds the estimates to within
a stated factor of measured runs. Every route checks its estimate against the budget
(`Budget`, from the settings); `POST /api/v1/estimate/...` answers it before a run, for a
page to warn before a slow one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.rnn import ModelConfig, param_shapes
from app.rnn.truncation import effective_truncate
from app.rnn.workload import estimate_trace_cost
from app.settings import Settings

F64 = 8  # bytes per number: the engine computes in float64
JSON_NUMBER = 21  # bytes of one float64 in JSON, with its separator (e.g. -0.12345678901234567,)
FINAL_EVAL_SIZE = 1000  # sequences in a training run's final held-out evaluation
EVAL_CHUNK = 250  # held_out_loss evaluates this many sequences at a time
PROBE_EVAL_SIZE = 200  # the fixed held-out batch every probe evaluates

# Seconds per (layer, direction, position), fitted on the reference machine (one BLAS
# thread): a fixed part per cell (Python and call overhead), then per gate unit (G*H,
# element-wise work) and per multiply-add of the recurrent product (G*H*H), all times B.
_STEP_FORWARD = {"rnn_tanh": 2.5e-6, "rnn_relu": 2.5e-6, "lstm": 8.4e-6, "gru": 9.0e-6}
_STEP_BACKWARD = {"rnn_tanh": 4.0e-6, "rnn_relu": 4.0e-6, "lstm": 8.0e-6, "gru": 7.5e-6}
_UNIT_FORWARD, _UNIT_BACKWARD = 1.2e-8, 3.2e-8
_MAC_FORWARD, _MAC_BACKWARD = 1.5e-10, 2.5e-10
_PROJECTION_MAC = 2.0e-10  # input-side products, batched over all positions (fwd + bwd 3x)
# The Jacobian diagnostics (blocked Lanczos through the cell's structure), per (layer,
# direction, position): a fixed part, then work growing with the state size S (H, or 2H
# for the LSTM) squared and cubed.
_JACOBIAN = {  # cell: (per position, per S^2, per S^3)
    "rnn_tanh": (2.6e-5, 3.5e-8, 0.0),
    "rnn_relu": (2.6e-5, 3.5e-8, 0.0),
    "lstm": (6.6e-5, 1.6e-8, 4.3e-11),
    "gru": (3.0e-5, 4.4e-8, 4.4e-10),
}
# Truncated BPTT runs level by level over all positions: per multiply-add it adds to full
# BPTT, as the core counts them (`app.rnn.workload`).
_TRUNCATE_MAC = 1.0e-10

# Peak bytes per (layer, direction, position) and sequence, in float64 numbers per gate
# unit and per state number: the forward record, then what BPTT adds.
_MEM_FORWARD_UNIT, _MEM_FORWARD_STATE = 6.5, 2.2
_MEM_BACKWARD_UNIT, _MEM_BACKWARD_POSITION = 2.5, 24.0  # the latter per position, not per B
# the diagnostics of one layer-direction at a time: vectors per position, S x S blocks
_MEM_JACOBIAN_BASE, _MEM_JACOBIAN_STATE, _MEM_JACOBIAN_S2 = 512 << 10, 40.0, 200.0
_MEM_BASE = 16 << 10

# Seconds to encode one number of an answer (orjson from numpy), and per frame.
_ENCODE_NUMBER = 2.0e-8
_ENCODE_FRAME = 1.5e-5
_FRAME_OVERHEAD_BYTES = 320  # keys, ids and numbers of a stream frame beside its arrays


@dataclass(frozen=True)
class Estimate:
    """What one request costs: work, peak memory and the bytes it sends."""

    seconds: float
    memory_bytes: int
    response_bytes: int
    # the fields to change to make it cheaper, most effective first
    reduce: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 3),
            "memory_bytes": self.memory_bytes,
            "response_bytes": self.response_bytes,
            "reduce": list(self.reduce),
        }


@dataclass(frozen=True)
class Budget:
    """What one request may cost (the settings `max_request_*`, `max_train_seconds`)."""

    seconds: float
    memory_bytes: int
    response_bytes: int
    train_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(
            seconds=settings.max_request_seconds,
            memory_bytes=settings.max_request_bytes,
            response_bytes=settings.max_response_bytes,
            train_seconds=settings.max_train_seconds,
        )

    def refusal(self, estimate: Estimate, training: bool = False) -> str | None:
        """None when the estimate is within the budget, else why not, in words:
        "about 40 s and 9.0 GB (limits 30 s, 3.0 GB): reduce batch_size or task.length"."""
        seconds = self.train_seconds if training else self.seconds
        over = []
        if estimate.seconds > seconds:
            over.append(f"{_duration(seconds)} of work")
        if estimate.memory_bytes > self.memory_bytes:
            over.append(f"{_size(self.memory_bytes)} of memory")
        if estimate.response_bytes > self.response_bytes:
            over.append(f"a {_size(self.response_bytes)} answer")
        if not over:
            return None
        cost = (
            f"about {_duration(estimate.seconds)}, {_size(estimate.memory_bytes)} of memory "
            f"and a {_size(estimate.response_bytes)} answer"
        )
        fields = list(estimate.reduce[:3]) or ["the request's sizes"]
        advice = fields[0] if len(fields) == 1 else f"{', '.join(fields[:-1])} or {fields[-1]}"
        return f"{cost}, over this server's budget of {', '.join(over)}: reduce {advice}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _gates(config: ModelConfig) -> int:
    return len(config.gate_names) or 1


def _state_size(config: ModelConfig) -> int:
    return config.hidden_size * (2 if config.cell == "lstm" else 1)


def _input_macs(config: ModelConfig) -> int:
    """Multiply-adds of the input-side products per position and sequence, all layers."""
    H, D, G = config.hidden_size, config.num_directions, _gates(config)
    inputs = config.input_size + (config.num_layers - 1) * D * H
    return D * G * H * inputs


def _forward_seconds(config: ModelConfig, length: int, batch: int) -> float:
    G, H = _gates(config), config.hidden_size
    steps = config.num_layers * config.num_directions * length
    per_step = _STEP_FORWARD[config.cell] + batch * G * H * (_UNIT_FORWARD + H * _MAC_FORWARD)
    return steps * per_step + length * batch * _input_macs(config) * _PROJECTION_MAC


def _backward_seconds(config: ModelConfig, length: int, batch: int, truncate: int | None) -> float:
    G, H = _gates(config), config.hidden_size
    steps = config.num_layers * config.num_directions * length
    per_step = _STEP_BACKWARD[config.cell] + batch * G * H * (_UNIT_BACKWARD + H * _MAC_BACKWARD)
    seconds = steps * per_step + 3 * length * batch * _input_macs(config) * _PROJECTION_MAC
    if effective_truncate(truncate, config.num_layers, config.bidirectional, length) is not None:
        full = estimate_trace_cost(config, length, None, False, batch)
        cut = estimate_trace_cost(config, length, truncate, False, batch)
        seconds += max(0.0, cut.multiply_adds - full.multiply_adds) * _TRUNCATE_MAC
    return seconds


def _jacobian_seconds(config: ModelConfig, length: int, layers: int) -> float:
    S = _state_size(config)
    steps = layers * config.num_directions * length
    per_step, per_s2, per_s3 = _JACOBIAN[config.cell]
    return steps * (per_step + S * S * per_s2 + S**3 * per_s3)


def _memory(config: ModelConfig, length: int, batch: int, backward: bool, jacobians: bool) -> int:
    G, H, S = _gates(config), config.hidden_size, _state_size(config)
    per_step = batch * (_MEM_FORWARD_UNIT * G * H + _MEM_FORWARD_STATE * S)
    if backward:
        per_step += batch * _MEM_BACKWARD_UNIT * G * H + _MEM_BACKWARD_POSITION
    steps = config.num_layers * config.num_directions * length
    total = F64 * steps * per_step + _MEM_BASE
    if jacobians:
        total += _MEM_JACOBIAN_BASE + F64 * (
            _MEM_JACOBIAN_STATE * length * S + _MEM_JACOBIAN_S2 * S * S
        )
    return int(total)


def num_params(config: ModelConfig) -> int:
    return sum(math.prod(shape) for shape in param_shapes(config).values())


def _trace_numbers(config: ModelConfig, length: int, targets: bool, jacobians: bool) -> int:
    """Numbers in one whole trace answer (TraceOut)."""
    L, D, H, T = config.num_layers, config.num_directions, config.hidden_size, length
    states = L * D * T * H
    per_state = 1 + (config.cell == "lstm") + len(config.gate_names)
    numbers = T * (config.input_size + 2 * config.output_size + 1) + states * per_state
    numbers += 2 * L * D * _gates(config) * H  # spectrum: eigenvalues, real and imaginary
    if targets:
        numbers += states * (1 + (config.cell == "lstm")) + T * config.input_size
        numbers += num_params(config) + L * D * T
    if jacobians:
        numbers += 2 * L * D * T
    return numbers


def _frame_numbers(config: ModelConfig, length: int, targets: bool) -> tuple[int, int]:
    """(numbers, frames) in a stream's or a session's timeline of frames."""
    L, D, H, T = config.num_layers, config.num_directions, config.hidden_size, length
    frames = L * D * T * (2 if targets else 1) + 3
    per_forward = H * (1 + (config.cell == "lstm") + len(config.gate_names)) + D * H
    per_backward = H * (1 + (config.cell == "lstm")) + 4
    numbers = L * D * T * (per_forward + (per_backward if targets else 0))
    numbers += T * (config.input_size + 2 * config.output_size + 1)
    return numbers, frames


@dataclass(frozen=True)
class TraceShape:
    """What a trace request asks for, in sizes."""

    config: ModelConfig
    length: int  # T
    targets: bool  # with BPTT
    jacobians: bool
    truncate: int | None = None
    jacobian_layers: int | None = None  # how many layers get Jacobians; None: all


def _compute(shape: TraceShape, batch: int = 1) -> tuple[float, float, float, int]:
    """(forward, backward, jacobian) seconds and peak engine bytes of one trace."""
    config, T = shape.config, shape.length
    layers = config.num_layers if shape.jacobian_layers is None else shape.jacobian_layers
    forward = _forward_seconds(config, T, batch)
    backward = _backward_seconds(config, T, batch, shape.truncate) if shape.targets else 0.0
    jacobian = _jacobian_seconds(config, T, layers) if shape.jacobians and layers else 0.0
    memory = _memory(config, T, batch, shape.targets, shape.jacobians and layers > 0)
    return forward, backward, jacobian, memory


def _trace_advice(shape: TraceShape, jacobian_share: float) -> tuple[str, ...]:
    advice = ["jacobians (turn off)"] if jacobian_share > 0.5 else []
    advice += ["inputs (the sequence length)", "config.hidden_size", "config.num_layers"]
    if shape.jacobians and jacobian_share <= 0.5:
        advice.append("jacobians (turn off)")
    return tuple(advice)


def trace_cost(shape: TraceShape, npz: bool = False) -> Estimate:
    """POST /trace: compute, then one answer (JSON, or npz with `npz`)."""
    forward, backward, jacobian, memory = _compute(shape)
    numbers = _trace_numbers(shape.config, shape.length, shape.targets, shape.jacobians)
    answer = numbers * (F64 if npz else JSON_NUMBER)
    seconds = forward + backward + jacobian + numbers * _ENCODE_NUMBER
    # the arrays stay alive while their answer is built
    return Estimate(
        seconds, memory + answer, answer, _trace_advice(shape, jacobian / max(seconds, 1e-12))
    )


def stream_cost(shape: TraceShape) -> Estimate:
    """POST /trace/stream: the same stages once each, the frames encoded in batches."""
    forward, backward, jacobian, memory = _compute(shape)
    numbers, frames = _frame_numbers(shape.config, shape.length, shape.targets)
    answer = numbers * JSON_NUMBER + frames * _FRAME_OVERHEAD_BYTES
    seconds = forward + backward + jacobian + numbers * _ENCODE_NUMBER + frames * _ENCODE_FRAME
    share = jacobian / max(seconds, 1e-12)
    return Estimate(seconds, memory, answer, _trace_advice(shape, share))


def session_cost(shape: TraceShape) -> Estimate:
    """A session's configure or edit: the whole trace, its `trace` frame, and its timeline
    (whose frames `run` sends later, in batches)."""
    forward, backward, jacobian, memory = _compute(shape)
    numbers = _trace_numbers(shape.config, shape.length, shape.targets, shape.jacobians)
    frame_numbers, frames = _frame_numbers(shape.config, shape.length, shape.targets)
    trace_bytes = numbers * JSON_NUMBER
    answer = trace_bytes + frame_numbers * JSON_NUMBER + frames * _FRAME_OVERHEAD_BYTES
    seconds = forward + backward + jacobian + numbers * _ENCODE_NUMBER
    # the trace frame is held as bytes and as text while it is sent
    share = jacobian / max(seconds, 1e-12)
    return Estimate(seconds, memory + 2 * trace_bytes, answer, _trace_advice(shape, share))


@dataclass(frozen=True)
class TrainShape:
    """What a training request asks for, in sizes."""

    config: ModelConfig
    length: int  # the task's sequence length
    batch_size: int
    steps: int
    probe_every: int
    truncate: int | None = None
    final_eval: int = FINAL_EVAL_SIZE


def train_cost(shape: TrainShape) -> Estimate:
    """POST /train/stream: every step, the probes (a traced sequence with Jacobians and a
    held-out batch) every `probe_every` steps and at both ends, and the final evaluation."""
    config, T, B = shape.config, shape.length, shape.batch_size
    step = _forward_seconds(config, T, B) + _backward_seconds(config, T, B, shape.truncate)
    probes = shape.steps // shape.probe_every + 2
    probe_shape = TraceShape(config, T, True, True, shape.truncate)
    forward, backward, jacobian, probe_memory = _compute(probe_shape)
    probe_numbers = _trace_numbers(config, T, True, True)
    probe = (
        forward
        + backward
        + jacobian
        + _forward_seconds(config, T, PROBE_EVAL_SIZE)
        + probe_numbers * _ENCODE_NUMBER
    )
    final = _forward_seconds(config, T, shape.final_eval)
    memory = max(
        _memory(config, T, B, True, False),
        probe_memory + probe_numbers * JSON_NUMBER,
        _memory(config, T, PROBE_EVAL_SIZE, False, False),
        _memory(config, T, min(EVAL_CHUNK, shape.final_eval), False, False),
    )
    progress_frames = min(shape.steps, 20 * max(1, int(shape.steps * step)))
    profile = config.num_layers * config.num_directions * T
    answer = (
        probes * probe_numbers * JSON_NUMBER
        + progress_frames * profile * JSON_NUMBER
        + shape.steps * JSON_NUMBER  # every step's loss, once, in the progress frames' `losses`
    )
    steps_total, probes_total = shape.steps * step, probes * probe
    seconds = steps_total + probes_total + final
    if probes_total > steps_total and probes_total > final:
        reduce: tuple[str, ...] = ("probe_every (raise it)", "task.length", "steps")
    elif final > steps_total:
        reduce = ("task.length", "config.hidden_size", "config.num_layers")
    else:
        reduce = ("steps", "batch_size", "task.length", "config.hidden_size")
    return Estimate(seconds, memory, answer, reduce)


def upload_cost(config: ModelConfig, stored_bytes: int) -> Estimate:
    """An upload's declared shapes: its weights in float64, and the file being read."""
    numbers = num_params(config)
    return Estimate(
        numbers * _ENCODE_NUMBER,
        F64 * numbers * 2 + stored_bytes + _MEM_BASE,
        0,
        ("config.hidden_size", "config.num_layers"),
    )
