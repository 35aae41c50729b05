"""Property-based fuzzing of the JSON API from its own OpenAPI schema (schemathesis).

Every generated request, valid or not, must get an answer that is no 5xx and that the
schema documents: its status code, content type, headers and body shape. The app runs
in-process with small caps, so even the requests it accepts stay cheap.
"""

from __future__ import annotations

import atexit
import hashlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.main import create_app
from app.rnn import ModelConfig, init_params, weights_to_bytes
from app.rnn.tasks import describe_tasks
from app.settings import Settings

# Counted in examples, not seconds, so that every operation is fuzzed on every run however
# busy the machine is; besides these, schemathesis sends its own examples and boundary cases.
MAX_EXAMPLES = 20

_DATA_DIR = tempfile.TemporaryDirectory(prefix="unroll-fuzz-")
# removed when the worker exits, not at the module's end: with --dist worksteal a worker can
# come back to this module's tests after others, and the app built below keeps this folder
atexit.register(_DATA_DIR.cleanup)
SETTINGS = Settings(
    data_dir=Path(_DATA_DIR.name),
    max_hidden_size=16,
    max_num_layers=2,
    max_sequence_length=50,
    max_input_size=8,
    max_output_size=8,
    max_truncate=50,
    max_train_steps=20,
    max_batch_size=8,
    max_upload_bytes=64 * 1024,
    max_body_bytes=256 * 1024,
    max_store_bytes=1024 * 1024,
)
# Built at import, as schemathesis' parametrize needs the operations at collection (its
# fixture-based lazy loader fails under pytest 9); the app itself costs ~2 ms, the schema ~0.4 s.
APP = create_app(SETTINGS)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)

# Every built-in check runs except positive_data_acceptance, which wants each
# schema-valid request accepted: the caps above (UNROLL_MAX_*) and the cross-field rules
# (inputs must have config.input_size features, a task fixes the output size) are
# deliberately not in the schema, so a schema-valid request may rightly get a 422.
# The stateful checks (use_after_free, ensure_resource_availability) and the auth ones
# (ignored_auth, object_level_authorization) find nothing to act on in this API: no
# DELETE, no links between operations, no authentication.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]
REQUEST_TIMEOUT_S = 20  # one request; far above what a capped request takes


# Both stream endpoints are fuzzed too: schemathesis reads Server-Sent Events up to a cap.
# The WebSocket session is not in the OpenAPI schema; test_hostile.py floods it instead.
@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=10),  # generous: a loaded 2-core machine is slow, not wrong
    database=None,  # no saved examples to replay or write: every run draws afresh
    # these judge the generator's inputs (slow, large, filtered), not the API's answers
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
def test_api_answers_every_generated_request_as_documented(case):
    response = case.call_and_validate(excluded_checks=EXCLUDED, timeout=REQUEST_TIMEOUT_S)
    assert response.status_code < 500


# ---------------------------------------------------------------- the success paths
# Random bodies rarely pass every cap and cross-field rule, so the 2xx answers are also
# checked against the schema from hand-written requests.

CONFIG = ModelConfig(cell="gru", input_size=1, hidden_size=4)
WEIGHTS = weights_to_bytes(CONFIG, init_params(CONFIG, seed=3), "safetensors")
MODEL_ID = hashlib.sha256(WEIGHTS).hexdigest()
TRACE = {
    "config": {"cell": "lstm", "input_size": 2, "hidden_size": 3, "bidirectional": True},
    "init": {"scheme": "orthogonal", "scale": 1.5, "seed": 1},
    "inputs": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]],
    "targets": [[0.0], [1.0], [0.5]],
    "truncate": 2,
}
TRAIN = {
    "config": {"cell": "gru", "hidden_size": 4},
    "task": {"name": "adding", "length": 10},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "batch_size": 4,
    "steps": 5,
    "probe_every": 5,
    "clip_norm": 1.0,
}
NDJSON = {"Accept": "application/x-ndjson"}


def _sample_params(name: str) -> dict:
    if name == "custom":
        return {"series": [0.1 * i for i in range(40)], "length": 5}
    return {}


SUCCESS = [
    ("POST", "/api/v1/trace", {"body": TRACE}, 200),
    ("POST", "/api/v1/trace", {"body": TRACE, "query": {"format": "npz"}}, 200),
    ("POST", "/api/v1/trace", {"body": {**TRACE, "targets": None, "jacobians": False}}, 200),
    ("POST", "/api/v1/trace/stream", {"body": TRACE}, 200),
    ("POST", "/api/v1/trace/stream", {"body": TRACE, "headers": NDJSON}, 200),
    ("POST", "/api/v1/train/stream", {"body": TRAIN}, 200),
    ("POST", "/api/v1/train/stream", {"body": TRAIN, "headers": NDJSON}, 200),
    *(
        (
            "POST",
            "/api/v1/tasks/{name}/sample",
            {
                "path_parameters": {"name": task["name"]},
                "body": {"params": _sample_params(task["name"]), "seed": 4, "count": 2},
            },
            200,
        )
        for task in describe_tasks()
    ),
    ("GET", "/api/v1/cells", {}, 200),
    ("GET", "/api/v1/tasks", {}, 200),
    ("GET", "/api/v1/limits", {}, 200),
    ("GET", "/healthz", {}, 200),
]
MODEL_CASES = [
    ("POST", "/api/v1/models", {"body": {"file": WEIGHTS}}, 201),
    ("POST", "/api/v1/models", {"body": {"file": WEIGHTS}}, 200),  # already stored
    ("GET", "/api/v1/models/{model_id}", {"path_parameters": {"model_id": MODEL_ID}}, 200),
    (
        "GET",
        "/api/v1/models/{model_id}/weights",
        {"path_parameters": {"model_id": MODEL_ID}, "query": {"format": "npz"}},
        200,
    ),
    (
        "POST",
        "/api/v1/trace",
        {
            "body": {
                "config": {"cell": "gru", "hidden_size": 4},
                "model_id": MODEL_ID,
                "inputs": [[1.0], [0.0]],
            }
        },
        200,
    ),
]


def _call(method: str, path: str, parts: dict, status: int) -> None:
    operation = SCHEMA[path][method]
    if "file" in parts.get("body", {}):
        parts = {**parts, "media_type": "multipart/form-data"}
    response = operation.Case(**parts).call_and_validate(
        excluded_checks=EXCLUDED, timeout=REQUEST_TIMEOUT_S
    )
    assert response.status_code == status, response.text[:500]


@pytest.mark.parametrize(
    ("method", "path", "parts", "status"),
    SUCCESS,
    ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(SUCCESS)],
)
def test_successful_answers_match_the_schema(method, path, parts, status):
    _call(method, path, parts, status)


def test_stored_model_answers_match_the_schema():
    # in order: upload, upload again, describe, download, trace with the stored weights
    for method, path, parts, status in MODEL_CASES:
        _call(method, path, parts, status)
