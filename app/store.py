"""The model store: uploaded weights keyed by their content hash, in one SQLite file (the
default) or a PostgreSQL database that several servers share.

Safe across threads and processes: every change is one short transaction that holds the
store's write lock; bounded by a byte cap with least-recently-used eviction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any, Protocol

from app.rnn import ModelConfig, param_shapes, weights_from_bytes, weights_to_bytes
from app.rnn.types import Params
from app.settings import Settings

MODEL_ID = re.compile(r"[0-9a-f]{64}")  # sha256 hex, matched whole
SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
BUSY_TIMEOUT = 30.0  # seconds an operation waits for another writer's lock
CONNECT_TIMEOUT = 10  # seconds to reach the PostgreSQL server
MAX_IDLE_CONNECTIONS = 4  # PostgreSQL connections kept open per store for reuse
SCHEMA_LOCK = 0x756E726F6C6C  # advisory lock key ("unroll"): one process creates the table

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    data BLOB NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL,
    use_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS models_use_seq ON models (use_seq);
"""

_POSTGRES_SCHEMA = (
    """CREATE TABLE models (
        model_id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        data BYTEA NOT NULL,
        size_bytes BIGINT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION NOT NULL,
        use_seq BIGINT NOT NULL
    )""",
    "CREATE INDEX models_use_seq ON models (use_seq)",
)


class ModelTooLarge(ValueError):
    """A single model larger than the whole store may hold."""


class StoreUnavailable(RuntimeError):
    """The database server cannot be reached or refused the connection."""


def model_id_for(data: bytes) -> str:
    """The id of a model: sha256 hex of its canonical safetensors bytes."""
    return hashlib.sha256(data).hexdigest()


def is_model_id(model_id: object) -> bool:
    """True for 64 lowercase hex characters, the only ids the store ever hands out."""
    return isinstance(model_id, str) and MODEL_ID.fullmatch(model_id) is not None


def mask_url(url: str) -> str:
    """The URL with its password (in the user part or a password= parameter) as ***."""
    scheme, sep, rest = url.partition("://")
    if sep:
        # the last @ ends the user part: an unescaped @ in a password stays masked
        userinfo, at, host_and_path = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if at:
            url = f"{scheme}://{user}{':***' if colon else ''}@{host_and_path}"
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


class _Connection(Protocol):
    """What the store needs of a connection: execute with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


class _Database(Protocol):
    """Where the models table lives: connections, and write transactions that hold the
    store's lock from their first statement, so writers queue rather than deadlock."""

    location: str  # a file path, or the URL without its password

    def connect(self) -> AbstractContextManager[_Connection]: ...

    def transaction(self) -> AbstractContextManager[_Connection]: ...

    def close(self) -> None: ...


class ModelStore:
    """Weights and config per model, as the safetensors bytes `weights_to_bytes` writes.

    The id is the sha256 of those bytes, which are deterministic for equal config and
    params, so the same weights always get the same id (and `sha256sum` of a downloaded
    .safetensors file gives it back). Every read (`get`, `get_bytes`, `info`) marks the
    model as used; `put` evicts the least recently used others once the stored weights
    total over `max_bytes`.

    database: a SQLite file path (created with its directory on first use), or a
    postgresql:// URL (the table is created on first use). Nothing is touched until then.
    """

    def __init__(self, database: Path | str, max_bytes: int):
        if max_bytes < 1:
            raise ValueError(f"max_bytes: must be at least 1, got {max_bytes}")
        self._db = _open_database(database)
        self.location = self._db.location
        self.max_bytes = max_bytes

    def put(self, config: ModelConfig, params: Params) -> str:
        """Store a model and return its id; storing the same weights again is a no-op.

        params: names and shapes as `param_shapes(config)`. Raises ValueError for invalid
        params, and ModelTooLarge (a ValueError) when the model alone is over `max_bytes`.
        """
        return self.add(config, params)[0]

    def add(self, config: ModelConfig, params: Params) -> tuple[str, bool]:
        """As `put`, and also whether the model is new (False: it was already stored)."""
        data = weights_to_bytes(config, params, "safetensors")
        if len(data) > self.max_bytes:
            raise ModelTooLarge(
                f"model: {len(data)} bytes is over the store's limit of {self.max_bytes} bytes"
            )
        model_id = model_id_for(data)
        now = time.time()
        with self._db.transaction() as conn:
            seq = _next_seq(conn)
            touched = conn.execute(
                "UPDATE models SET use_seq = ?, last_used_at = ? WHERE model_id = ?",
                (seq, now, model_id),
            )
            if touched.rowcount:
                return model_id, False
            # the lock rules out a concurrent insert; the clause makes sure of it
            inserted = conn.execute(
                "INSERT INTO models (model_id, config, data, size_bytes, created_at, "
                "last_used_at, use_seq) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (model_id, json.dumps(config.to_dict()), data, len(data), now, now, seq),
            )
            if not inserted.rowcount:
                return model_id, False
            self._evict(conn, keep=model_id)
        return model_id, True

    def get(self, model_id: str) -> tuple[ModelConfig, Params] | None:
        """(config, params) of a stored model, params in `param_shapes(config)` order;
        None for an unknown or malformed id."""
        data = self._read(model_id, "data")
        return None if data is None else weights_from_bytes(data, "safetensors")

    def get_bytes(self, model_id: str, fmt: str) -> bytes | None:
        """The model as a file: fmt "safetensors" (the stored bytes as-is) or "npz"."""
        if fmt not in ("safetensors", "npz"):
            raise ValueError(f"fmt: must be one of safetensors, npz, got {fmt!r}")
        data = self._read(model_id, "data")
        if data is None or fmt == "safetensors":
            return data
        config, params = weights_from_bytes(data, "safetensors")
        return weights_to_bytes(config, params, "npz")

    def info(self, model_id: str) -> dict[str, Any] | None:
        """model_id, config (a dict), shapes {name: [dims]}, num_params, size_bytes,
        created_at and last_used_at (Unix seconds); None for an unknown or malformed id."""
        row = self._read(model_id, "config, size_bytes, created_at, last_used_at")
        if row is None:
            return None
        config_json, size_bytes, created_at, last_used_at = row
        config = ModelConfig.from_dict(json.loads(config_json))
        shapes = {name: list(shape) for name, shape in param_shapes(config).items()}
        return {
            "model_id": model_id,
            "config": config.to_dict(),
            "shapes": shapes,
            "num_params": sum(math.prod(shape) for shape in shapes.values()),
            "size_bytes": size_bytes,
            "created_at": created_at,
            "last_used_at": last_used_at,
        }

    def total_bytes(self) -> int:
        """Bytes of stored weights (the database itself takes somewhat more)."""
        with self._db.connect() as conn:
            return _total_bytes(conn)

    def __contains__(self, model_id: object) -> bool:
        """Whether the model is stored; does not count as a use."""
        if not is_model_id(model_id):
            return False
        with self._db.connect() as conn:
            row = conn.execute("SELECT 1 FROM models WHERE model_id = ?", (model_id,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Close kept connections; the store stays usable and reconnects when used."""
        self._db.close()

    def _read(self, model_id: str, columns: str) -> Any:
        """Mark a model used and read `columns` of its row (one value or a tuple)."""
        if not is_model_id(model_id):
            return None
        with self._db.transaction() as conn:
            touched = conn.execute(
                "UPDATE models SET use_seq = ?, last_used_at = ? WHERE model_id = ?",
                (_next_seq(conn), time.time(), model_id),
            )
            if not touched.rowcount:
                return None
            row = conn.execute(
                f"SELECT {columns} FROM models WHERE model_id = ?", (model_id,)
            ).fetchone()
        return row[0] if len(row) == 1 else tuple(row)

    def _evict(self, conn: _Connection, keep: str) -> None:
        """Delete least recently used models, never `keep`, until the total fits."""
        total = _total_bytes(conn)
        if total <= self.max_bytes:
            return
        victims: list[str] = []
        rows = conn.execute(
            "SELECT model_id, size_bytes FROM models WHERE model_id != ? ORDER BY use_seq",
            (keep,),
        )
        with closing(rows):
            for model_id, size_bytes in rows:
                if total <= self.max_bytes:
                    break
                victims.append(model_id)
                total -= size_bytes
        for model_id in victims:
            conn.execute("DELETE FROM models WHERE model_id = ?", (model_id,))


def _next_seq(conn: _Connection) -> int:
    """The next tick of the store's use clock (inside a write transaction, so unique)."""
    return int(conn.execute("SELECT COALESCE(MAX(use_seq), 0) + 1 FROM models").fetchone()[0])


def _total_bytes(conn: _Connection) -> int:
    # PostgreSQL sums BIGINT to NUMERIC, which psycopg reads as a Decimal
    return int(conn.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM models").fetchone()[0])


class _SQLite:
    """One SQLite file in WAL mode; a write transaction takes the file's lock up front."""

    def __init__(self, path: Path):
        self.path = path
        self.location = str(path)
        self._ready = False
        self._ready_lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode, closed afterwards."""
        self._ensure_schema()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: no corruption
            yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: the lock is taken up front so it never has to upgrade."""
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Nothing to do: every connection is closed after its operation."""

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + BUSY_TIMEOUT
            while True:
                try:
                    self._create_schema()
                    break
                except sqlite3.OperationalError as exc:
                    # switching to WAL fails at once, without waiting, while another
                    # process holds the file; retry like the busy timeout would
                    busy = getattr(exc, "sqlite_errorname", "").startswith(
                        ("SQLITE_BUSY", "SQLITE_LOCKED")
                    )
                    if not busy or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self._ready = True

    def _create_schema(self) -> None:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            # persistent in the file: readers no longer block the writer
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SQLITE_SCHEMA)
        finally:
            conn.close()


class _PostgresConnection:
    """A psycopg connection that takes the store's `?` placeholders."""

    def __init__(self, conn: Any):
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), params)


class _Postgres:
    """A PostgreSQL database, shared by every process and replica that names it. A write
    transaction starts by locking the table against other writers (plain reads go on);
    connections are kept for reuse, since each new one costs a password handshake."""

    def __init__(self, url: str):
        self.location = mask_url(url)
        try:
            import psycopg
        except ImportError:
            raise ModuleNotFoundError(
                "UNROLL_DATABASE_URL: a PostgreSQL store needs psycopg: "
                "pip install 'psycopg[binary]'"
            ) from None
        self._psycopg = psycopg
        try:
            # libpq's own parser: the password as it will be sent, to keep out of messages
            self._password = str(psycopg.conninfo.conninfo_to_dict(url).get("password") or "")
        except psycopg.Error:
            # libpq's message quotes the offending part, which may be the password
            raise ValueError(
                f"UNROLL_DATABASE_URL: not a valid PostgreSQL URL: {self.location}"
            ) from None
        self._url = url
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self._ready = False
        self._ready_lock = threading.Lock()
        # closed connections give no ResourceWarning when the store is dropped or at exit
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._idle_lock)

    @contextmanager
    def connect(self) -> Iterator[_PostgresConnection]:
        """A connection in autocommit mode, kept for reuse unless the operation failed."""
        self._ensure_schema()
        conn = self._checkout()
        try:
            yield _PostgresConnection(conn)
        except BaseException:
            conn.close()  # its state is unknown: never hand it out again
            raise
        self._checkin(conn)

    @contextmanager
    def transaction(self) -> Iterator[_PostgresConnection]:
        """A write transaction holding the table's EXCLUSIVE lock: one writer at a time,
        as with SQLite, so the use clock and the eviction total stay consistent."""
        with self.connect() as conn, conn.raw.transaction():
            conn.execute("LOCK TABLE models IN EXCLUSIVE MODE")
            yield conn

    def close(self) -> None:
        _close_all(self._idle, self._idle_lock)

    def _checkout(self) -> Any:
        while True:
            with self._idle_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._open()
            try:
                conn.execute("")  # a connection the server dropped fails here, not mid-way
                return conn
            except self._psycopg.Error:
                conn.close()

    def _checkin(self, conn: Any) -> None:
        with self._idle_lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS and not conn.closed:
                self._idle.append(conn)
                return
        conn.close()

    def _open(self) -> Any:
        psycopg = self._psycopg
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            reason = str(exc).replace(self._password, "***") if self._password else str(exc)
            raise StoreUnavailable(f"model store {self.location}: {reason}") from None
        try:
            conn.execute(f"SET lock_timeout = {int(BUSY_TIMEOUT * 1000)}")  # milliseconds
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            conn = self._checkout()
            try:
                with conn.transaction():
                    # CREATE TABLE IF NOT EXISTS can still collide between processes
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    if conn.execute("SELECT to_regclass('models')").fetchone()[0] is None:
                        for statement in _POSTGRES_SCHEMA:
                            conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._checkin(conn)
            self._ready = True


def _close_all(connections: list[Any], lock: threading.Lock) -> None:
    with lock:
        idle = connections[:]
        connections.clear()
    for conn in idle:
        conn.close()


def _open_database(database: Path | str) -> _Database:
    """The backend for a SQLite path, a sqlite:/// URL or a postgresql:// URL."""
    if isinstance(database, Path):
        return _SQLite(database)
    if database.startswith(POSTGRES_PREFIXES):
        return _Postgres(database)
    if database.startswith(SQLITE_PREFIX):
        path = database[len(SQLITE_PREFIX) :]
        if not path or path == ":memory:":
            raise ValueError("UNROLL_DATABASE_URL: give a file path, as sqlite:///path/to/file")
        return _SQLite(Path(path))
    if "://" in database:
        raise ValueError(
            "UNROLL_DATABASE_URL: expected sqlite:///path or postgresql://user:password@host/db, "
            f"got {mask_url(database)}"
        )
    return _SQLite(Path(database))


def open_store(settings: Settings) -> ModelStore:
    """The store the settings describe: `database_url` (sqlite:///path or postgresql://...),
    else the SQLite file data_dir/models.sqlite3. Touches no file or server until used."""
    database = settings.database_url or Path(settings.data_dir) / "models.sqlite3"
    return ModelStore(database, settings.max_store_bytes)
