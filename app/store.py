"""The model store: uploaded weights keyed by their content hash, in one SQLite file (the
default) or a PostgreSQL database that several servers share.

Safe across threads and processes: every change is one short transaction that holds the
store's write lock, while reads take no lock at all; bounded by a byte cap with
least-recently-used eviction, from which pinned models (behind shared links) are kept apart.
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
from collections import deque
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
TOUCH_TIMEOUT = 0.02  # seconds a read waits to mark its model used; past it, later
MAX_PENDING_USES = 1000  # uses not yet written (a writer held the lock), kept per store
_TOUCH = (
    "UPDATE models SET use_seq = (SELECT MAX(use_seq) + 1 FROM models), last_used_at = ? "
    "WHERE model_id = ?"
)
CONNECT_TIMEOUT = 10  # seconds to reach the PostgreSQL server
MAX_CONNECTIONS = 4  # PostgreSQL connections open at once per store; more wait their turn
SCHEMA_LOCK = 0x756E726F6C6C  # advisory lock key ("unroll"): one process creates the table

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    data BLOB NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    last_used_at REAL NOT NULL,
    use_seq INTEGER NOT NULL,
    pinned_by TEXT
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
        use_seq BIGINT NOT NULL,
        pinned_by TEXT
    )""",
    "CREATE INDEX models_use_seq ON models (use_seq)",
)
# tables made before pinning existed gain the column (NULL: not pinned) on first use
_ADD_PINNED_BY = "ALTER TABLE models ADD COLUMN pinned_by TEXT"
_HAS_PINNED_BY = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'models' AND column_name = 'pinned_by'"
)
_LRU = "pinned_by IS NULL"  # the models the byte cap's eviction may drop


class ModelTooLarge(ValueError):
    """A single model larger than the whole store may hold."""


class StoreUnavailable(RuntimeError):
    """The database server cannot be reached or refused the connection."""


class PinRefused(ValueError):
    """A pin over the pinned models' byte cap, or over the client's own quota."""

    def __init__(self, message: str, per_client: bool):
        super().__init__(message)
        self.per_client = per_client  # True: this client's quota; False: the store is full


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
    """Where the models table lives: connections (reads take no lock), and write
    transactions that hold the store's lock from their first statement, so writers
    queue rather than deadlock."""

    location: str  # a file path, or the URL without its password

    def connect(self) -> AbstractContextManager[_Connection]: ...

    def transaction(self) -> AbstractContextManager[_Connection]: ...

    def try_write(self, conn: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> bool:
        """Run (sql, params) statements in one transaction on a connection of `connect`,
        or nothing if a lock keeps them waiting past TOUCH_TIMEOUT."""
        ...

    def close(self) -> None: ...


class ModelStore:
    """Weights and config per model, as the safetensors bytes `weights_to_bytes` writes.

    The id is the sha256 of those bytes, which are deterministic for equal config and
    params, so the same weights always get the same id (and `sha256sum` of a downloaded
    .safetensors file gives it back). Every read (`get`, `get_bytes`, `info`) takes no
    lock and marks the model as used: at once if the store's lock is free within
    TOUCH_TIMEOUT, else with this store's next read or `put`. `put` writes pending uses,
    then evicts the least recently used others once the stored weights total over
    `max_bytes`.

    A pinned model (`pin`: the model behind a shared link) is never evicted by `put`: it
    counts against `max_pinned_bytes` instead, and each client may pin at most
    `max_pins_per_client` models, so anonymous uploads cannot break shared links.

    database: a SQLite file path (created with its directory on first use), or a
    postgresql:// URL (the table is created on first use). Nothing is touched until then.
    max_connections: PostgreSQL connections this store opens at most at once.
    """

    def __init__(
        self,
        database: Path | str,
        max_bytes: int,
        *,
        max_pinned_bytes: int | None = None,
        max_pins_per_client: int = 50,
        max_connections: int = MAX_CONNECTIONS,
    ):
        if max_bytes < 1:
            raise ValueError(f"max_bytes: must be at least 1, got {max_bytes}")
        self._db = _open_database(database, max_connections)
        self.location = self._db.location
        self.max_bytes = max_bytes
        self.max_pinned_bytes = max_bytes if max_pinned_bytes is None else max_pinned_bytes
        self.max_pins_per_client = max_pins_per_client
        # model id -> time of a use not yet written, in order of use
        self._pending_uses: dict[str, float] = {}
        self._pending_lock = threading.Lock()
        self._marking = threading.Lock()  # held by the one thread writing pending uses

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
            self._write_uses(conn)  # the eviction below sees every read's use
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

    def pin(self, model_id: str, client: str) -> bool | None:
        """Keep a stored model out of the LRU eviction, on behalf of `client` (an address).

        True if newly pinned, False if it already was; None for an unknown model. Raises
        PinRefused when the pinned models would pass `max_pinned_bytes` or the client
        already pinned `max_pins_per_client`: pinned models are never evicted to make room.
        """
        if not is_model_id(model_id):
            return None
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT size_bytes, pinned_by FROM models WHERE model_id = ?", (model_id,)
            ).fetchone()
            if row is None:
                return None
            size_bytes, pinned_by = row
            if pinned_by is not None:
                return False
            count = conn.execute(
                "SELECT COUNT(*) FROM models WHERE pinned_by = ?", (client,)
            ).fetchone()[0]
            if count >= self.max_pins_per_client:
                raise PinRefused(
                    f"model_id: this client has pinned {count} models, the limit of "
                    f"{self.max_pins_per_client}",
                    per_client=True,
                )
            pinned = _total_bytes(conn, "pinned_by IS NOT NULL")
            if pinned + size_bytes > self.max_pinned_bytes:
                raise PinRefused(
                    f"model_id: pinned models take {pinned} of {self.max_pinned_bytes} bytes; "
                    f"this one ({size_bytes} bytes) does not fit",
                    per_client=False,
                )
            conn.execute("UPDATE models SET pinned_by = ? WHERE model_id = ?", (client, model_id))
        return True

    def unpin(self, model_id: str) -> bool:
        """Return a pinned model to the LRU (evicted with the others from the next `put`);
        False if it was not pinned or is unknown."""
        if not is_model_id(model_id):
            return False
        with self._db.transaction() as conn:
            done = conn.execute(
                "UPDATE models SET pinned_by = NULL WHERE model_id = ? AND pinned_by IS NOT NULL",
                (model_id,),
            )
            return bool(done.rowcount)

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
        created_at and last_used_at (Unix seconds), pinned; None for an unknown or
        malformed id."""
        row = self._read(model_id, "config, size_bytes, created_at, last_used_at, pinned_by")
        if row is None:
            return None
        config_json, size_bytes, created_at, last_used_at, pinned_by = row
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
            "pinned": pinned_by is not None,
        }

    def total_bytes(self) -> int:
        """Bytes of stored weights, pinned or not (the database takes somewhat more)."""
        with self._db.connect() as conn:
            return _total_bytes(conn)

    def pinned_bytes(self) -> int:
        """Bytes of pinned weights, kept apart from the LRU."""
        with self._db.connect() as conn:
            return _total_bytes(conn, "pinned_by IS NOT NULL")

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
        """Read `columns` of a model's row (one value or a tuple) without taking a lock,
        then mark it used unless it already is the most recently used model (a link a
        whole class opens at once writes nothing)."""
        if not is_model_id(model_id):
            return None
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {columns}, use_seq >= (SELECT MAX(use_seq) FROM models) "
                "FROM models WHERE model_id = ?",
                (model_id,),
            ).fetchone()
            if row is None:
                return None
            *values, newest = row
            if not newest or self._pending_uses:
                self._mark_used(conn, model_id)
        return values[0] if len(values) == 1 else tuple(values)

    def _mark_used(self, conn: _Connection, model_id: str) -> None:
        """Write this use and any earlier ones still pending, unless a writer holds the
        lock: then they wait for the next read or the next `put`, which writes them first.
        One thread at a time writes them; the others leave theirs to it."""
        with self._pending_lock:
            self._pending_uses.pop(model_id, None)  # re-inserted last: the newest use
            self._pending_uses[model_id] = time.time()
            while len(self._pending_uses) > MAX_PENDING_USES:
                del self._pending_uses[next(iter(self._pending_uses))]
        # threads writing the same rows at once would only wait on each other's row locks
        if not self._marking.acquire(blocking=False):
            return
        try:
            with self._pending_lock:
                pending = list(self._pending_uses.items())
            # marks from other processes may share a tick: ties only blur the order
            if self._db.try_write(conn, [(_TOUCH, (used, mid)) for mid, used in pending]):
                self._forget_uses(pending)
        finally:
            self._marking.release()

    def _write_uses(self, conn: _Connection) -> None:
        """Write the pending uses inside a write transaction, which holds the lock."""
        with self._pending_lock:
            pending = list(self._pending_uses.items())
        for model_id, used in pending:
            conn.execute(_TOUCH, (used, model_id))
        self._forget_uses(pending)

    def _forget_uses(self, written: list[tuple[str, float]]) -> None:
        with self._pending_lock:
            for model_id, used in written:
                if self._pending_uses.get(model_id) == used:  # not used again since
                    del self._pending_uses[model_id]

    def _evict(self, conn: _Connection, keep: str) -> None:
        """Delete least recently used unpinned models, never `keep`, until they fit."""
        total = _total_bytes(conn, _LRU)
        if total <= self.max_bytes:
            return
        victims: list[str] = []
        rows = conn.execute(
            f"SELECT model_id, size_bytes FROM models WHERE model_id != ? AND {_LRU} "
            "ORDER BY use_seq",
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


def _total_bytes(conn: _Connection, where: str = "TRUE") -> int:
    # PostgreSQL sums BIGINT to NUMERIC, which psycopg reads as a Decimal
    sql = f"SELECT COALESCE(SUM(size_bytes), 0) FROM models WHERE {where}"
    return int(conn.execute(sql).fetchone()[0])


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

    def try_write(
        self, conn: sqlite3.Connection, statements: Sequence[tuple[str, Sequence[Any]]]
    ) -> bool:
        """One transaction, waiting at most TOUCH_TIMEOUT for the write lock."""
        conn.execute(f"PRAGMA busy_timeout = {int(TOUCH_TIMEOUT * 1000)}")  # milliseconds
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _sqlite_busy(exc):
                raise
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        try:
            for sql, params in statements:
                conn.execute(sql, params)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return True

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
                    if not _sqlite_busy(exc) or time.monotonic() > deadline:
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
            columns = [row[1] for row in conn.execute("PRAGMA table_info(models)")]
            if "pinned_by" not in columns:
                try:
                    conn.execute(_ADD_PINNED_BY)
                except sqlite3.OperationalError as exc:  # another process was first
                    if "duplicate column" not in str(exc):
                        raise
        finally:
            conn.close()


def _sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


class _PostgresConnection:
    """A psycopg connection that takes the store's `?` placeholders."""

    def __init__(self, conn: Any):
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("?", "%s"), params)


class _Postgres:
    """A PostgreSQL database, shared by every process and replica that names it. A write
    transaction starts by locking the table against other writers (plain reads go on);
    at most `max_connections` are open at once, kept for reuse, since each new one costs
    a password handshake."""

    def __init__(self, url: str, max_connections: int = MAX_CONNECTIONS):
        if max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {max_connections}")
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
        self.max_connections = max_connections
        self._slots = _FairSlots(max_connections)  # connections open and in use
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self._ready = False
        self._ready_lock = threading.Lock()
        # closed connections give no ResourceWarning when the store is dropped or at exit
        self._finalizer = weakref.finalize(self, _close_all, self._idle, self._idle_lock)

    @contextmanager
    def connect(self) -> Iterator[_PostgresConnection]:
        """A connection in autocommit mode, kept for reuse unless the operation failed;
        waits for one of the `max_connections` slots (StoreUnavailable past BUSY_TIMEOUT)."""
        if not self._slots.acquire(timeout=BUSY_TIMEOUT):
            raise StoreUnavailable(
                f"model store {self.location}: all {self.max_connections} connections "
                f"stayed busy for {BUSY_TIMEOUT:g} s"
            )
        try:
            conn = self._checkout()
            try:
                self._ensure_schema(conn)
                yield _PostgresConnection(conn)
            except BaseException:
                conn.close()  # its state is unknown: never hand it out again
                raise
            self._checkin(conn)
        finally:
            self._slots.release()

    @contextmanager
    def transaction(self) -> Iterator[_PostgresConnection]:
        """A write transaction holding the table's EXCLUSIVE lock: one writer at a time,
        as with SQLite, so the use clock and the eviction total stay consistent."""
        with self.connect() as conn, conn.raw.transaction():
            conn.execute("LOCK TABLE models IN EXCLUSIVE MODE")
            yield conn

    def try_write(
        self, conn: _PostgresConnection, statements: Sequence[tuple[str, Sequence[Any]]]
    ) -> bool:
        """One transaction, waiting at most TOUCH_TIMEOUT for each lock it needs."""
        psycopg = self._psycopg
        try:
            with conn.raw.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {int(TOUCH_TIMEOUT * 1000)}")
                for sql, params in statements:
                    conn.execute(sql, params)
        except psycopg.errors.LockNotAvailable:
            return False
        return True

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
            if len(self._idle) < self.max_connections and not conn.closed:
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

    def _ensure_schema(self, conn: Any) -> None:
        """Create the table (or add what an older one lacks) once per store, on `conn`."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with conn.transaction():
                # CREATE TABLE IF NOT EXISTS can still collide between processes
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if conn.execute("SELECT to_regclass('models')").fetchone()[0] is None:
                    for statement in _POSTGRES_SCHEMA:
                        conn.execute(statement)
                elif not conn.execute(_HAS_PINNED_BY).fetchone():
                    conn.execute(_ADD_PINNED_BY)
            self._ready = True


class _FairSlots:
    """A semaphore that hands free slots out in order of asking: with threads reading in
    a loop, a plain one lets them win every release and starves a lone writer."""

    def __init__(self, count: int):
        self._free = count
        self._waiters: deque[threading.Lock] = deque()
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return False
        return True  # a slot was handed over just as the wait ran out

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()  # the slot passes straight to the next
            else:
                self._free += 1


def _close_all(connections: list[Any], lock: threading.Lock) -> None:
    with lock:
        idle = connections[:]
        connections.clear()
    for conn in idle:
        conn.close()


def _open_database(database: Path | str, max_connections: int = MAX_CONNECTIONS) -> _Database:
    """The backend for a SQLite path, a sqlite:/// URL or a postgresql:// URL."""
    if isinstance(database, Path):
        return _SQLite(database)
    if database.startswith(POSTGRES_PREFIXES):
        return _Postgres(database, max_connections)
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
    return ModelStore(
        database,
        settings.max_store_bytes,
        max_pinned_bytes=settings.max_pinned_bytes,
        max_pins_per_client=settings.max_pins_per_client,
        max_connections=settings.database_connections,
    )
