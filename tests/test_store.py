"""The model store: content-hash ids, round trips, LRU eviction, threads and processes,
on each backend: SQLite always; PostgreSQL where UNROLL_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import multiprocessing
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pytest

from app.rnn import ModelConfig, init_params, param_shapes, weights_from_bytes, weights_to_bytes
from app.settings import Settings
from app.store import (
    ModelStore,
    ModelTooLarge,
    PinRefused,
    StoreUnavailable,
    mask_url,
    open_store,
)

CONFIG = ModelConfig(cell="lstm", input_size=2, hidden_size=3, output_size=1)
BAD_IDS = [
    "abc",
    "../../etc/passwd",
    "A" * 64,
    "0" * 63,
    "0" * 65,
    "0" * 64 + "\n",
    "g" * 64,
    "",
    None,
    123,
]


@functools.cache
def _postgres_problem(url: str) -> str | None:
    """Why the test server cannot be used, or None; asked once per run."""
    try:
        ModelStore(url, 1)._db._open().close()
    except (ValueError, StoreUnavailable) as exc:  # the message masks the password
        return str(exc)
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL of the test database whose tables go to a fresh schema, dropped afterwards.

    Skips without UNROLL_TEST_DATABASE_URL or a reachable server; fails instead under
    UNROLL_REQUIRE_POSTGRES=1 (CI), so the PostgreSQL tests cannot silently vanish."""
    url = os.environ.get("UNROLL_TEST_DATABASE_URL", "")
    problem = _postgres_problem(url) if url else "UNROLL_TEST_DATABASE_URL is not set"
    if problem:
        if os.environ.get("UNROLL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"UNROLL_REQUIRE_POSTGRES=1 but {problem}", pytrace=False)
        pytest.skip(f"PostgreSQL store tests: {problem}")
    import psycopg

    schema = f"unroll_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in url else "?"
            yield f"{url}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path) -> Iterator[Path | str]:
    """Where a store keeps its models: a SQLite file, or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield tmp_path / "models.sqlite3"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def make_store(database):
    """ModelStore(database, max_bytes), each closed after the test."""
    stores: list[ModelStore] = []

    def make(max_bytes: int) -> ModelStore:
        stores.append(ModelStore(database, max_bytes))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def count_models(store: ModelStore) -> int:
    with store._db.connect() as conn:
        return conn.execute("SELECT COUNT(*) FROM models").fetchone()[0]


def model(seed: int, config: ModelConfig = CONFIG):
    return config, init_params(config, seed=seed)


def size_of(config: ModelConfig, params) -> int:
    return len(weights_to_bytes(config, params, "safetensors"))


def assert_same_params(got, want):
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].dtype == np.float64
        assert got[name].tobytes() == np.asarray(value, dtype=np.float64).tobytes(), name


def test_put_get_round_trip_and_id_is_the_sha256_of_the_safetensors_file(make_store):
    store = make_store(10**6)
    config, params = model(1)
    model_id = store.put(config, params)
    data = weights_to_bytes(config, params, "safetensors")
    assert model_id == hashlib.sha256(data).hexdigest()
    got_config, got_params = store.get(model_id)
    assert got_config == config
    assert_same_params(got_params, params)
    assert store.get_bytes(model_id, "safetensors") == data
    assert store.total_bytes() == len(data)
    assert model_id in store and "0" * 64 not in store


def test_same_weights_same_id_no_duplicate_row(make_store):
    store = make_store(10**6)
    config, params = model(2)
    first = store.add(config, params)
    # a different dict order and dtype of the same values is the same model
    reordered = {name: params[name].astype(np.float64) for name in reversed(list(params))}
    second = store.add(config, reordered)
    assert first == (first[0], True) and second == (first[0], False)
    assert store.total_bytes() == size_of(config, params)
    assert count_models(store) == 1
    assert store.put(ModelConfig(**CONFIG.to_dict()), params) == first[0]
    # the config is part of the content: same tensors, other output mode, other model
    assert store.put(dataclasses.replace(CONFIG, output_mode="last"), params) != first[0]


def test_id_is_pinned_so_a_library_upgrade_cannot_silently_change_ids():
    # Shared links carry ids: if this fails, safetensors' byte layout changed and
    # re-uploads would no longer find the models stored before.
    config = ModelConfig(cell="gru", input_size=2, hidden_size=3, output_size=1)
    params = {
        name: np.linspace(-1, 1, int(np.prod(shape))).reshape(shape)
        for name, shape in param_shapes(config).items()
    }
    data = weights_to_bytes(config, params, "safetensors")
    assert hashlib.sha256(data).hexdigest() == (
        "7bb694d204ceddbb4248461a99e2346f4b61a5fde47fb60b572fa2a86f97d9d6"
    )


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_malformed_ids_are_unknown(make_store, bad_id):
    store = make_store(10**6)
    store.put(*model(0))
    assert store.get(bad_id) is None
    assert store.info(bad_id) is None
    assert store.get_bytes(bad_id, "npz") is None
    assert bad_id not in store
    assert store.get("f" * 64) is None


def test_malformed_ids_never_reach_the_database():
    store = ModelStore("postgresql://unroll:s3cret@127.0.0.1:1/unroll", 10**6)  # no server
    for bad_id in BAD_IDS:
        assert store.get(bad_id) is None and store.info(bad_id) is None
        assert store.get_bytes(bad_id, "safetensors") is None and bad_id not in store


def test_info_and_npz_bytes(make_store):
    store = make_store(10**6)
    config = ModelConfig(cell="gru", input_size=2, hidden_size=3, num_layers=2, bidirectional=True)
    params = init_params(config, seed=3)
    model_id = store.put(config, params)
    info = store.info(model_id)
    assert info["model_id"] == model_id
    assert info["config"] == config.to_dict()
    assert info["shapes"] == {name: list(shape) for name, shape in param_shapes(config).items()}
    assert info["num_params"] == sum(value.size for value in params.values())
    assert info["size_bytes"] == size_of(config, params)
    assert info["created_at"] <= info["last_used_at"]
    npz = store.get_bytes(model_id, "npz")
    assert npz.startswith(b"PK")
    got_config, got_params = weights_from_bytes(npz, "npz")
    assert got_config == config
    assert_same_params(got_params, params)
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        assert set(params) <= set(archive.files)
    with pytest.raises(ValueError, match="fmt"):
        store.get_bytes(model_id, "pickle")


def test_lru_eviction_keeps_the_recently_used(make_store):
    models = [model(seed) for seed in range(4)]
    size = size_of(*models[0])
    store = make_store(int(2.5 * size))
    a, b = store.put(*models[0]), store.put(*models[1])
    assert store.get(a) is not None  # a is now more recent than b
    c = store.put(*models[2])
    assert store.get(b) is None
    assert a in store and c in store
    assert store.total_bytes() <= store.max_bytes
    store.info(c)  # info counts as a use too
    store.get_bytes(a, "safetensors")  # and so does a download: c is now the oldest
    d = store.put(*models[3])
    assert c not in store and a in store and d in store
    # re-putting a stored model is a use as well
    store.put(*models[3])
    store.put(*models[2])
    assert a not in store and d in store


def test_a_model_larger_than_the_store_is_refused(make_store):
    config, params = model(0)
    store = make_store(size_of(config, params) - 1)
    with pytest.raises(ModelTooLarge, match="over the store's limit"):
        store.put(config, params)
    assert store.total_bytes() == 0
    assert isinstance(ModelTooLarge("x"), ValueError)


def test_the_one_just_put_is_never_evicted(make_store):
    small = model(0)
    big_config = ModelConfig(cell="lstm", input_size=2, hidden_size=6)
    big = model(1, big_config)
    store = make_store(size_of(*big))
    small_id = store.put(*small)
    big_id = store.put(*big)
    assert big_id in store and small_id not in store


def test_persistence_across_store_objects(make_store):
    model_id = make_store(10**6).put(*model(5))
    got_config, got_params = make_store(10**6).get(model_id)
    assert got_config == CONFIG
    assert_same_params(got_params, model(5)[1])


def test_sqlite_lazy_creation_and_wal(tmp_path):
    path = tmp_path / "deep" / "er" / "models.sqlite3"
    store = ModelStore(path, 10**6)
    assert not path.parent.exists()  # nothing touched until first use
    model_id = store.put(*model(5))
    assert model_id in ModelStore(str(path), 10**6)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_store_from_settings(tmp_path):
    def location(**settings) -> str:
        return open_store(Settings(**settings)).location

    assert location(data_dir=tmp_path) == str(tmp_path / "models.sqlite3")
    assert location() == str(Path("data") / "models.sqlite3")
    assert location(database_url=f"sqlite:///{tmp_path}/x/y.db") == f"{tmp_path}/x/y.db"
    assert location(database_url="sqlite:///rel.db") == "rel.db"
    for scheme in ("postgresql", "postgres"):  # nothing connects before the first use
        url = f"{scheme}://unroll:s3cret@127.0.0.1:1/unroll"
        assert location(database_url=url) == f"{scheme}://unroll:***@127.0.0.1:1/unroll"
    with pytest.raises(ValueError, match="^UNROLL_DATABASE_URL: expected sqlite") as error:
        location(database_url="mysql://root:s3cret@localhost/unroll")
    assert "s3cret" not in str(error.value) and "root:***@localhost" in str(error.value)
    for bad in ("sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(ValueError, match="UNROLL_DATABASE_URL"):
            location(database_url=bad)
    store = open_store(Settings(data_dir=tmp_path, max_store_bytes=1234))
    assert store.max_bytes == 1234
    with pytest.raises(ValueError, match="max_bytes"):
        ModelStore(tmp_path / "m.sqlite3", 0)


def test_a_password_never_shows_in_errors():
    assert mask_url("postgresql://u:p@ss@h:5/db?password=x&a=b") == (
        "postgresql://u:***@h:5/db?password=***&a=b"
    )
    assert mask_url("postgresql://h/db") == "postgresql://h/db"
    # libpq quotes a bad %-escape, here inside the password, in its own message
    with pytest.raises(ValueError, match="not a valid PostgreSQL URL") as error:
        ModelStore("postgresql://unroll:s3cr%zzet@127.0.0.1/unroll", 10**6)
    assert "s3cr" not in str(error.value)
    # nothing listens on port 1: the first use fails, naming the store without its password
    store = ModelStore("postgresql://unroll:s3cret@127.0.0.1:1/unroll", 10**6)
    with pytest.raises(StoreUnavailable, match=r"unroll:\*\*\*@127.0.0.1:1/unroll") as error:
        store.info("0" * 64)
    assert "s3cret" not in str(error.value) and error.value.__suppress_context__


def test_threads_put_and_get_at_once(make_store):
    store = make_store(10**7)
    models = [model(seed) for seed in range(4)]
    expected = [
        hashlib.sha256(weights_to_bytes(c, p, "safetensors")).hexdigest() for c, p in models
    ]
    start = threading.Barrier(8)
    results: list[list[str]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(3):
                for index in range(len(models)):
                    config, params = models[(index + worker + round_) % len(models)]
                    model_id = store.put(config, params)
                    results[worker].append(model_id)
                    got = store.get(model_id)
                    assert got is not None and got[0] == config
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(set(ids) == set(expected) for ids in results)
    assert count_models(store) == len(models)


def _process_worker(database: Path | str, seed: int, start, queue) -> None:
    """In a spawned process: the shared models, one of its own, then read them all."""
    try:
        store = ModelStore(database, 10**7)
        start.wait(timeout=60)
        ids = [store.put(*model(shared)) for shared in range(3)]
        ids.append(store.put(*model(100 + seed)))
        assert all(store.get(model_id) is not None for model_id in ids)
        queue.put(ids)
    except BaseException as exc:  # the parent asserts on what arrives
        queue.put(repr(exc))


def test_two_processes_on_one_database(database, make_store):
    ctx = multiprocessing.get_context("spawn")  # neither finds the file or table made
    start, queue = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=_process_worker, args=(database, seed, start, queue), daemon=True)
        for seed in (1, 2)
    ]
    for worker in workers:
        worker.start()
    try:
        results = [queue.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    assert all(isinstance(ids, list) for ids in results), results
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert results[0][:3] == results[1][:3]
    assert results[0][3] != results[1][3]
    store = make_store(10**7)
    for model_id in {*results[0], *results[1]}:
        assert store.get(model_id) is not None
    assert store.total_bytes() == 5 * size_of(*model(0))
    queue.close()
    queue.join_thread()


@contextmanager
def writer_holding_the_lock(store: ModelStore) -> Iterator[None]:
    """Another writer in the middle of its transaction, holding the store's write lock."""
    with store._db.transaction() as conn:
        conn.execute("SELECT 1 FROM models")  # SQLite's BEGIN IMMEDIATE already holds it
        yield


def in_thread(call, seconds: float = 10.0):
    """call() in a thread, failing (not hanging) if it has not returned after `seconds`."""
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.setdefault("value", call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"blocked for over {seconds} s"
    return box["value"]


def test_reads_go_on_while_a_writer_holds_the_lock(make_store):
    store = make_store(10**6)
    config, params = model(0)
    model_id = store.put(config, params)
    other = make_store(10**6)  # its own connections, as another process would have
    with writer_holding_the_lock(other):
        # the writer would hold a read for BUSY_TIMEOUT (30 s) if reads took the lock
        assert in_thread(lambda: store.info(model_id))["model_id"] == model_id
        got = in_thread(lambda: store.get(model_id))
        assert_same_params(got[1], params)
        assert in_thread(lambda: store.get_bytes(model_id, "safetensors")) is not None


def test_a_use_made_while_a_writer_held_the_lock_still_counts(make_store):
    models = [model(seed) for seed in range(3)]
    store = make_store(int(2.5 * size_of(*models[0])))
    a, b = store.put(*models[0]), store.put(*models[1])  # b is the more recent
    with writer_holding_the_lock(make_store(10**6)):
        assert in_thread(lambda: store.info(a)) is not None  # its use cannot be written yet
    store.put(*models[2])  # writes a's use first: b is now the least recently used
    assert a in store and b not in store


def test_a_pinned_model_is_never_evicted_by_uploads(make_store):
    models = [model(seed) for seed in range(6)]
    size = size_of(*models[0])
    store = make_store(int(2.5 * size))
    store.max_pinned_bytes = 2 * size
    shared = store.put(*models[0])
    assert store.pin(shared, "teacher") is True
    assert store.pin(shared, "someone else") is False  # already pinned: a no-op
    assert store.info(shared)["pinned"] is True
    for config, params in models[1:]:  # enough anonymous uploads to flush the LRU twice
        store.put(config, params)
    assert shared in store
    assert count_models(store) == 3  # the pinned one and two in the LRU's 2.5 models
    assert store.pinned_bytes() == size and store.total_bytes() == 3 * size
    assert store.unpin(shared) is True and store.unpin(shared) is False
    store.put(*model(10))  # back in the LRU, where it is the least recently used
    assert shared not in store


def test_pins_have_their_own_byte_cap_and_a_quota_per_client(make_store):
    models = [model(seed) for seed in range(4)]
    size = size_of(*models[0])
    store = make_store(10 * size)
    store.max_pinned_bytes, store.max_pins_per_client = int(2.5 * size), 1
    ids = [store.put(*m) for m in models]
    assert store.pin(ids[0], "a") is True
    with pytest.raises(PinRefused, match="this client has pinned 1 models") as quota:
        store.pin(ids[1], "a")
    assert quota.value.per_client
    assert store.pin(ids[1], "b") is True
    with pytest.raises(PinRefused, match="does not fit") as full:
        store.pin(ids[2], "c")  # refused: pinned models never make room for each other
    assert not full.value.per_client
    assert [store.info(i)["pinned"] for i in ids] == [True, True, False, False]
    assert store.pin("f" * 64, "a") is None and store.pin("../x", "a") is None
    assert store.unpin("../x") is False


def test_a_table_made_before_pinning_gains_the_column(database, make_store):
    """Stores from before pinning (no pinned_by column) keep their models and can pin."""
    old = "CREATE TABLE models (model_id TEXT PRIMARY KEY, config TEXT NOT NULL, "
    if isinstance(database, Path):
        with closing(sqlite3.connect(database)) as conn, conn:
            conn.execute(
                old + "data BLOB NOT NULL, size_bytes INTEGER NOT NULL, created_at REAL NOT NULL,"
                " last_used_at REAL NOT NULL, use_seq INTEGER NOT NULL)"
            )
    else:
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                old + "data BYTEA NOT NULL, size_bytes BIGINT NOT NULL, created_at DOUBLE "
                "PRECISION NOT NULL, last_used_at DOUBLE PRECISION NOT NULL, "
                "use_seq BIGINT NOT NULL)"
            )
    store = make_store(10**6)
    model_id = store.put(*model(1))
    assert store.pin(model_id, "a") is True and store.info(model_id)["pinned"] is True
    assert make_store(10**6).info(model_id)["pinned"] is True  # a second opening is fine


def test_postgres_connections_are_capped_per_store():
    with postgres_schema() as url:
        store = ModelStore(url, 10**7, max_connections=2)
        model_id = store.put(*model(0))
        opened: list[int] = []
        real_open = store._db._open

        def counting_open():
            opened.append(1)
            return real_open()

        store._db._open = counting_open
        store.close()  # from here on, every connection is a new one
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def read() -> None:
            try:
                start.wait()
                for _ in range(5):
                    assert store.get(model_id) is not None
            except BaseException as exc:  # reported below, on the main thread
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert 1 <= len(opened) <= 2  # eight threads, never more than two connections
        store.close()
