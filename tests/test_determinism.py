"""Same config and seed, same bits, across processes: what makes a shared link open the same
network for everyone. Two runs in one process can agree while two processes differ (BLAS
thread scheduling, hash seeds, import-order state), so the runs here are separate processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A trace and a short training run, big enough that BLAS would split its products across
# threads if it were allowed to; prints one digest of every array they produce.
PROGRAM = """
import hashlib
import numpy as np
from app.rnn import ModelConfig, init_params, run_sequence
from app.rnn.optim import OptimizerConfig
from app.rnn.tasks import make_task
from app.rnn.train import Finished, Probe, Progress, TrainConfig, train

digest = hashlib.sha256()
def add(value):
    if value is None:
        return
    if isinstance(value, dict):
        for key in sorted(value):
            digest.update(key.encode())
            add(value[key])
        return
    digest.update(np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes())

config = ModelConfig(cell="lstm", input_size=3, hidden_size=48, num_layers=2,
                     bidirectional=True, output_size=2)
params = init_params(config, seed=7, scheme="orthogonal", scale=1.2)
rng = np.random.default_rng(7)
trace = run_sequence(config, params, rng.standard_normal((30, 3)),
                     rng.standard_normal((30, 2)), jacobians=True)
for name in ("outputs", "hidden", "cell", "grad_hidden", "grad_cell", "grad_inputs",
             "grad_step_norms", "jacobian_norm", "jacobian_product_norm", "gates", "grads"):
    add(getattr(trace, name))
add(trace.loss)

task = make_task("adding", length=20)
model = task.config(cell="gru", hidden_size=32)
for record in train(model, task, OptimizerConfig(name="adam", learning_rate=0.01),
                    TrainConfig(batch_size=64, steps=4, probe_every=2, seed=3)):
    if isinstance(record, Progress):
        add(record.loss); add(record.grad_norm); add(record.grad_profile)
    elif isinstance(record, Probe):
        add(record.eval_loss); add(record.trace.grad_hidden)
    elif isinstance(record, Finished):
        add(record.params)
print(digest.hexdigest())
"""


def _digest(threads: str | None) -> str:
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
        if threads is not None:
            env[name] = threads
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.mark.parametrize("threads", [None, "1"], ids=["default-threads", "one-thread"])
def test_two_processes_give_bit_identical_traces_and_training(threads):
    first, second = _digest(threads), _digest(threads)
    assert len(first) == 64
    assert first == second


def test_the_suite_pins_blas_to_one_thread_before_numpy_loads():
    # two pytest workers on two cores, each with BLAS threads on top, run 10x slower
    from tests import conftest

    assert conftest.NUMPY_LOADED_FIRST is False
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
