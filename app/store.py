"""The model store: uploaded weights in one SQLite file, keyed by their content hash.

Safe across threads and processes (one connection per operation, WAL journal); bounded
by a byte cap with least-recently-used eviction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from app.rnn import ModelConfig, param_shapes, weights_from_bytes, weights_to_bytes
from app.rnn.types import Params
from app.settings import Settings

MODEL_ID = re.compile(r"[0-9a-f]{64}")  # sha256 hex, matched whole
SQLITE_PREFIX = "sqlite:///"
BUSY_TIMEOUT = 30.0  # seconds a connection waits for another writer's lock

_SCHEMA = """
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


class ModelTooLarge(ValueError):
    """A single model larger than the whole store may hold."""


def model_id_for(data: bytes) -> str:
    """The id of a model: sha256 hex of its canonical safetensors bytes."""
    return hashlib.sha256(data).hexdigest()


def is_model_id(model_id: object) -> bool:
    """True for 64 lowercase hex characters, the only ids the store ever hands out."""
    return isinstance(model_id, str) and MODEL_ID.fullmatch(model_id) is not None


class ModelStore:
    """Weights and config per model, as the safetensors bytes `weights_to_bytes` writes.

    The id is the sha256 of those bytes, which are deterministic for equal config and
    params, so the same weights always get the same id (and `sha256sum` of a downloaded
    .safetensors file gives it back). Every read (`get`, `get_bytes`, `info`) marks the
    model as used; `put` evicts the least recently used others once the stored weights
    total over `max_bytes`. The file and its directory are created on first use.
    """

    def __init__(self, path: Path | str, max_bytes: int):
        if max_bytes < 1:
            raise ValueError(f"max_bytes: must be at least 1, got {max_bytes}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._ready = False
        self._ready_lock = threading.Lock()

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
        with self._transaction() as conn:
            seq = _next_seq(conn)
            touched = conn.execute(
                "UPDATE models SET use_seq = ?, last_used_at = ? WHERE model_id = ?",
                (seq, now, model_id),
            )
            if touched.rowcount:
                return model_id, False
            conn.execute(
                "INSERT INTO models (model_id, config, data, size_bytes, created_at, "
                "last_used_at, use_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (model_id, json.dumps(config.to_dict()), data, len(data), now, now, seq),
            )
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
        """Bytes of stored weights (the SQLite file itself is somewhat larger)."""
        with self._connect() as conn:
            return int(
                conn.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM models").fetchone()[0]
            )

    def __contains__(self, model_id: object) -> bool:
        """Whether the model is stored; does not count as a use."""
        if not is_model_id(model_id):
            return False
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM models WHERE model_id = ?", (model_id,)).fetchone()
        return row is not None

    def _read(self, model_id: str, columns: str) -> Any:
        """Mark a model used and read `columns` of its row (one value or a tuple)."""
        if not is_model_id(model_id):
            return None
        with self._transaction() as conn:
            touched = conn.execute(
                "UPDATE models SET use_seq = ?, last_used_at = ? WHERE model_id = ?",
                (_next_seq(conn), time.time(), model_id),
            )
            if not touched.rowcount:
                return None
            row = conn.execute(
                f"SELECT {columns} FROM models WHERE model_id = ?", (model_id,)
            ).fetchone()
        return row[0] if len(row) == 1 else row

    def _evict(self, conn: sqlite3.Connection, keep: str) -> None:
        """Delete least recently used models, never `keep`, until the total fits."""
        total = conn.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM models").fetchone()[0]
        if total <= self.max_bytes:
            return
        victims: list[tuple[str]] = []
        rows = conn.execute(
            "SELECT model_id, size_bytes FROM models WHERE model_id != ? ORDER BY use_seq",
            (keep,),
        )
        with closing(rows):
            for model_id, size_bytes in rows:
                if total <= self.max_bytes:
                    break
                victims.append((model_id,))
                total -= size_bytes
        conn.executemany("DELETE FROM models WHERE model_id = ?", victims)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection in autocommit mode, closed afterwards."""
        self._ensure_schema()
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: no corruption
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: the lock is taken up front so it never has to upgrade."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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
            conn.executescript(_SCHEMA)
        finally:
            conn.close()


def _next_seq(conn: sqlite3.Connection) -> int:
    """The next tick of the store's use clock (inside a write transaction, so unique)."""
    return int(conn.execute("SELECT COALESCE(MAX(use_seq), 0) + 1 FROM models").fetchone()[0])


def database_path(settings: Settings) -> Path:
    """The SQLite file: `database_url` as sqlite:///path, else data_dir/models.sqlite3."""
    url = settings.database_url
    if not url:
        return Path(settings.data_dir) / "models.sqlite3"
    if not url.startswith(SQLITE_PREFIX):
        raise ValueError("UNROLL_DATABASE_URL: only sqlite:/// is supported for now")
    path = url[len(SQLITE_PREFIX) :]
    if not path or path == ":memory:":
        raise ValueError("UNROLL_DATABASE_URL: give a file path, as sqlite:///path/to/file")
    return Path(path)


def open_store(settings: Settings) -> ModelStore:
    """The store the settings describe; touches no file until first used."""
    return ModelStore(database_path(settings), settings.max_store_bytes)
