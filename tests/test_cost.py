"""The cost model against measured runs: CPU seconds, peak traced memory and answer bytes,
each within a stated factor on small configs.

The runs are measured in one child process with one BLAS thread, as `unroll serve` runs
them (a second BLAS thread only spins on these sizes, and makes CPU time meaningless);
CPU time of the thread, the best of two runs, so a busy machine changes it little. The
factor is wide because the constants were fitted on larger configs, where the budget
matters, and the Jacobian norms' Lanczos iterations vary with the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.api.encoding import dumps, trace_to_dict
from app.api.inputs import resolve_trace_request
from app.api.schemas import TraceRequest
from app.api.trace import _answer
from app.cost import (
    Budget,
    Estimate,
    TraceShape,
    TrainShape,
    stream_cost,
    trace_cost,
    train_cost,
    upload_cost,
)
from app.rnn import ModelConfig
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import TrainConfig, held_out_loss, train
from app.settings import Settings

FACTOR = 4  # estimates within 4x of the measurement, either way
ROOT = Path(__file__).resolve().parents[1]

# cell, hidden size, layers, bidirectional, length, truncate
CONFIGS = [
    ("rnn_tanh", 16, 1, False, 200, None),
    ("lstm", 8, 2, True, 100, None),
    ("gru", 32, 1, False, 150, None),
    ("lstm", 32, 2, False, 120, None),
    ("gru", 48, 2, True, 150, 10),
]
TRAIN = ("gru", 16, 30, 16, 30, 10)  # cell, hidden, length, batch, steps, probe_every


def _cpu_seconds(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return best


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _trace_job(cell, hidden, layers, bidirectional, length, truncate, jacobians):
    rng = np.random.default_rng(0)
    body = TraceRequest(
        config={
            "cell": cell,
            "input_size": 2,
            "hidden_size": hidden,
            "num_layers": layers,
            "bidirectional": bidirectional,
        },
        inputs=rng.standard_normal((length, 2)).tolist(),
        targets=rng.standard_normal((length, 1)).tolist(),
        jacobians=jacobians,
        truncate=truncate,
    )
    return resolve_trace_request(body, Settings(), None)


def _training(cell, hidden, length, batch, steps, every):
    task = make_task("sine", length=length)
    config = task.config(cell=cell, hidden_size=hidden)
    settings = TrainConfig(batch_size=batch, steps=steps, probe_every=every, seed=0)

    def work() -> None:  # what the training stream's thread and encoder do
        for record in train(config, task, OptimizerConfig(), settings):
            if hasattr(record, "trace"):
                dumps(trace_to_dict(record.trace, record.spectrum))
            elif hasattr(record, "params"):
                held_out_loss(config, record.params, task, 0, 1000)

    return TrainShape(config, length, batch, steps, every), work


def _measure_all() -> dict:
    """Run in the child: every case's seconds, peak bytes and answer bytes."""
    out: dict = {"traces": {}, "train": None}
    for case in CONFIGS:
        for jacobians in (False, True):
            job = _trace_job(*case, jacobians)
            answers: list[bytes] = []

            def work(job=job, answers=answers) -> None:
                answers.append(_answer(job, False, lambda: False))

            key = json.dumps([*case, jacobians])
            out["traces"][key] = [_cpu_seconds(work), _peak_bytes(work), len(answers[0])]
    _, work = _training(*TRAIN)
    out["train"] = [_cpu_seconds(work, repeats=1), _peak_bytes(work)]
    return out


@pytest.fixture(scope="module")
def measured() -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_cost"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


def within(estimate: float, measured: float, factor: float = FACTOR) -> bool:
    return measured / factor <= estimate <= measured * factor


@pytest.mark.parametrize("case", CONFIGS)
@pytest.mark.parametrize("jacobians", [False, True])
def test_trace_estimate_is_within_a_factor_of_the_measured_run(measured, case, jacobians):
    estimate = _trace_job(*case, jacobians).estimate
    seconds, memory, answer = measured["traces"][json.dumps([*case, jacobians])]
    assert within(estimate.seconds, seconds), (estimate.seconds, seconds)
    assert within(estimate.memory_bytes, memory), (estimate.memory_bytes, memory)
    assert within(estimate.response_bytes, answer, 2), (estimate.response_bytes, answer)


def test_training_estimate_is_within_a_factor_of_the_measured_run(measured):
    shape, _ = _training(*TRAIN)
    estimate = train_cost(shape)
    seconds, memory = measured["train"]
    assert within(estimate.seconds, seconds), (estimate.seconds, seconds)
    assert within(estimate.memory_bytes, memory), (estimate.memory_bytes, memory)


def test_costs_grow_with_every_size():
    config = ModelConfig(cell="lstm", hidden_size=16)
    base = trace_cost(TraceShape(config, 100, True, True))
    for bigger in (
        TraceShape(config, 200, True, True),
        TraceShape(ModelConfig(cell="lstm", hidden_size=32), 100, True, True),
        TraceShape(ModelConfig(cell="lstm", hidden_size=16, num_layers=2), 100, True, True),
        TraceShape(ModelConfig(cell="lstm", hidden_size=16, bidirectional=True), 100, True, True),
    ):
        cost = trace_cost(bigger)
        assert cost.seconds > base.seconds and cost.memory_bytes > base.memory_bytes
        assert cost.response_bytes > base.response_bytes
    assert trace_cost(TraceShape(config, 100, False, True)).seconds < base.seconds
    assert trace_cost(TraceShape(config, 100, True, False)).seconds < base.seconds
    assert stream_cost(TraceShape(config, 100, True, True)).seconds > 0
    few = train_cost(TrainShape(config, 50, 32, 100, 50))
    many = train_cost(TrainShape(config, 50, 32, 100, 1))
    assert many.seconds > 2 * few.seconds and many.reduce[0].startswith("probe_every")
    assert upload_cost(config, 1000).memory_bytes > 1000


def test_the_page_defaults_fit_and_the_heaviest_requests_fit_in_memory():
    """Everything the page offers at its defaults runs; whatever runs stays within the
    memory of a 24 GB machine with `max_concurrent` at once."""
    settings = Settings()
    budget = Budget.from_settings(settings)
    page = ModelConfig(cell="lstm", hidden_size=8)
    assert budget.refusal(trace_cost(TraceShape(page, 20, True, True))) is None
    train = TrainShape(
        make_task("sine", length=20).config(cell="lstm", hidden_size=8), 20, 32, 300, 10
    )
    assert budget.refusal(train_cost(train), training=True) is None
    assert settings.max_concurrent * settings.max_request_bytes < 12 * 2**30


def test_refusal_names_the_cost_and_the_fields():
    budget = Budget(seconds=1.0, memory_bytes=10**9, response_bytes=10**9, train_seconds=5.0)
    estimate = Estimate(40.0, 9 * 10**9, 10, ("batch_size", "task.length"))
    refusal = budget.refusal(estimate, training=True)
    assert refusal is not None
    assert refusal.startswith("about 40 s, 9.0 GB of memory")
    assert "5.0 s of work, 1.0 GB of memory" in refusal
    assert refusal.endswith("reduce batch_size or task.length")
    assert budget.refusal(Estimate(0.5, 10, 10)) is None


if __name__ == "__main__":  # the measuring child of the `measured` fixture
    print(json.dumps(_measure_all()))
