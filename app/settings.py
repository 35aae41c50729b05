"""Server settings, read once from the environment (UNROLL_*): every cap a request can reach."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}

# A public demo: smaller caps, per-client rate limits, small uploads.
DEMO_OVERRIDES: dict[str, object] = {
    "max_hidden_size": 64,
    "max_num_layers": 3,
    "max_sequence_length": 200,
    "max_train_steps": 1000,
    "max_batch_size": 64,
    "max_upload_bytes": 1024 * 1024,
    "max_body_bytes": 2 * 1024 * 1024,
    "max_store_bytes": 64 * 1024 * 1024,
    "max_pinned_bytes": 16 * 1024 * 1024,
    "max_pins_per_client": 10,
    "rate_limit_per_minute": 120,
}


@dataclass(frozen=True)
class Settings:
    """Limits and locations. Each field reads from UNROLL_<FIELD NAME IN CAPITALS>."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")  # model store and other state
    # empty: SQLite file models.sqlite3 in data_dir; may hold a password, so never printed
    database_url: str = field(default="", repr=False)

    max_hidden_size: int = 128  # units per layer and direction
    max_num_layers: int = 4
    max_sequence_length: int = 1000  # positions in one sequence
    max_input_size: int = 64
    max_output_size: int = 64
    max_truncate: int = 1000
    max_upload_bytes: int = 8 * 1024 * 1024  # one weights file
    max_series_bytes: int = 2 * 1024 * 1024  # one CSV of your own numbers (POST /series)
    max_body_bytes: int = 16 * 1024 * 1024  # any request body
    max_concurrent: int = 2  # computations running at once; others wait their turn
    max_store_bytes: int = 256 * 1024 * 1024  # model store; least recently used evicted past it
    max_train_steps: int = 5000
    max_batch_size: int = 256
    max_ws_message_bytes: int = 1024 * 1024  # one WebSocket command
    # the budget (app/cost.py estimates every request before it runs; over it: 422)
    max_request_seconds: float = 30.0  # work of one trace, stream or session command
    max_train_seconds: float = 900.0  # work of one training run, probes and evaluation included
    max_request_bytes: int = 3 * 1024**3  # peak memory of one computation
    max_response_bytes: int = 512 * 1024 * 1024  # one answer (a stream's frames together)
    max_queue: int = 32  # computations waiting for a slot; past it 503 with Retry-After
    heavy_request_seconds: float = 1.0  # from this much work: one per client, never the last slot
    max_session_idle_seconds: float = 600.0  # a session with no message this long is closed
    max_session_messages_per_second: int = 200  # per session, in bursts of up to 10 s worth
    rate_limit_per_minute: int = 0  # API requests per client and minute; 0 is no limit
    cors_origins: str = ""  # comma-separated origins allowed cross-site; empty: CORS off
    # who may reach the server: see docs/hosting.md ("Origins and hosts")
    allowed_origins: str = ""  # comma-separated origins beside the server's own; * for any
    allowed_hosts: str = ""  # comma-separated Host names; empty: loopback names if bound there
    max_sessions: int = 64  # WebSocket sessions open at once, per process
    max_sessions_per_client: int = 8  # of those, from one client address (a class may share one)
    max_pinned_bytes: int = 64 * 1024 * 1024  # models behind shared links, apart from the LRU
    max_pins_per_client: int = 50  # models one client address may pin
    database_connections: int = 4  # PostgreSQL connections per process at most
    uploads: bool = True  # accept weight uploads
    demo: bool = False  # public-demo caps (DEMO_OVERRIDES) over the defaults

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read UNROLL_<FIELD> variables, e.g. UNROLL_MAX_HIDDEN_SIZE=256."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f"UNROLL_{f.name.upper()}"
            raw = env.get(key)
            if raw is None:
                continue
            kind = type(getattr(cls, f.name))
            if kind is bool:
                if raw.strip().lower() not in TRUE | FALSE:
                    raise ValueError(f"{key}: expected true or false, got {raw!r}")
                values[f.name] = raw.strip().lower() in TRUE
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{key}: cannot read {raw!r} as {kind.__name__}") from None
            if isinstance(value, int) and value < 1 and f.name.startswith("max_"):
                raise ValueError(f"{key}: must be at least 1, got {value}")
            values[f.name] = value
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.demo:
            # demo caps apply where the environment did not set a value itself
            demo = {k: v for k, v in DEMO_OVERRIDES.items() if k not in values}
            settings = replace(settings, **demo)  # type: ignore[arg-type]
        return settings

    def limits(self) -> dict[str, int | float]:
        """The caps and the budget, by name, as the API documents and enforces them."""
        names = [f.name for f in fields(self) if f.name.startswith("max_")]
        return {name: getattr(self, name) for name in [*names, "heavy_request_seconds"]}
