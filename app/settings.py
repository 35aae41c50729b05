"""Server settings, read once from the environment (UNROLL_*)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Every limit a user's request can reach, and where data lives."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")  # model store and other state

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read UNROLL_<FIELD> variables, e.g. UNROLL_PORT=9000."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"UNROLL_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, f.name)
            try:
                values[f.name] = type(default)(raw)
            except ValueError:
                raise ValueError(f"UNROLL_{f.name.upper()}: cannot read {raw!r}") from None
        return cls(**values)  # type: ignore[arg-type]
