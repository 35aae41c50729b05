"""PostgreSQL beyond the store tests both backends share (test_store.py): replicas on one
database, where what one app stores another serves, and connections the server drops.

Runs where UNROLL_TEST_DATABASE_URL names a server (CI starts one)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.rnn import ModelConfig, init_params, run_sequence, weights_from_bytes, weights_to_bytes
from app.settings import Settings
from app.store import ModelStore
from tests.test_store import postgres_schema

CONFIG = ModelConfig(cell="gru", input_size=2, hidden_size=3, output_size=1)


def weights(seed: int) -> bytes:
    return weights_to_bytes(CONFIG, init_params(CONFIG, seed=seed), "safetensors")


def upload(client: TestClient, data: bytes):
    return client.post("/api/v1/models", files={"file": ("model.safetensors", data)})


@pytest.fixture
def replicas(tmp_path) -> Iterator[Callable[..., list[TestClient]]]:
    """replicas(n, **settings): clients of n separate apps on one PostgreSQL database,
    each with a data directory of its own, as servers on separate machines would have."""
    numbers = itertools.count()
    with postgres_schema() as url, ExitStack() as stack:

        def make(n: int, **settings) -> list[TestClient]:
            clients = []
            for _ in range(n):
                data_dir = tmp_path / f"replica{next(numbers)}"
                app = create_app(Settings(data_dir=data_dir, database_url=url, **settings))
                stack.callback(app.state.store.close)
                clients.append(stack.enter_context(TestClient(app)))
            return clients

        yield make


def test_replicas_see_each_others_models(replicas, tmp_path):
    first, second = replicas(2)
    a, b = weights(0), weights(1)
    r = upload(first, a)
    assert r.status_code == 201, r.text
    model_id = r.json()["model_id"]
    assert model_id == hashlib.sha256(a).hexdigest()
    info = second.get(f"/api/v1/models/{model_id}")
    assert info.status_code == 200 and info.json()["config"] == CONFIG.to_dict()
    assert second.get(f"/api/v1/models/{model_id}/weights").content == a
    again = upload(second, a)
    assert again.status_code == 200 and again.json()["model_id"] == model_id
    assert again.json()["created"] is False
    other = upload(second, b).json()["model_id"]
    assert first.get(f"/api/v1/models/{other}").status_code == 200
    assert first.app.state.store.total_bytes() == len(a) + len(b)
    assert not list(tmp_path.rglob("*.sqlite3"))  # no replica fell back to a file of its own


def test_upload_download_and_trace_by_id(replicas):
    (client,) = replicas(1)
    data = weights(2)
    model_id = upload(client, data).json()["model_id"]
    st = client.get(f"/api/v1/models/{model_id}/weights")
    assert st.status_code == 200 and st.content == data
    npz = client.get(f"/api/v1/models/{model_id}/weights", params={"format": "npz"})
    config, params = weights_from_bytes(npz.content, "npz")
    assert config == CONFIG
    inputs = [[0.1, -0.2], [0.3, 0.4]]
    body = {"config": CONFIG.to_dict(), "model_id": model_id, "inputs": inputs}
    trace = client.post("/api/v1/trace", json=body)
    assert trace.status_code == 200, trace.text
    expected = run_sequence(CONFIG, params, inputs)
    np.testing.assert_allclose(trace.json()["hidden"], expected.hidden, rtol=1e-12)
    assert client.get(f"/api/v1/models/{'f' * 64}").status_code == 404


def test_the_byte_cap_is_one_for_all_replicas(replicas):
    size = len(weights(0))
    first, second = replicas(2, max_store_bytes=int(2.5 * size))
    a = upload(first, weights(0)).json()["model_id"]
    b = upload(second, weights(1)).json()["model_id"]
    assert first.get(f"/api/v1/models/{a}").status_code == 200  # a used after b
    c = upload(second, weights(2)).json()["model_id"]
    assert {first.get(f"/api/v1/models/{x}").status_code for x in (a, c)} == {200}
    assert second.get(f"/api/v1/models/{b}").status_code == 404


def test_a_connection_the_server_dropped_is_replaced():
    import psycopg

    with postgres_schema() as url:
        store = ModelStore(url, 10**6)
        model_id = store.put(CONFIG, init_params(CONFIG, seed=3))
        kept = [conn.info.backend_pid for conn in store._db._idle]
        assert kept  # the connection stays open for the next operation
        with psycopg.connect(url, autocommit=True) as admin:  # as after a server restart
            for pid in kept:
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))  # waits
        assert store.info(model_id)["model_id"] == model_id
        assert not set(kept) & {conn.info.backend_pid for conn in store._db._idle}
        store.close()
        assert store._db._idle == [] and model_id in store  # and reconnects when used
        store.close()
