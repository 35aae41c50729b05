"""Settings from the environment, demo mode, rate limits and CORS."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import DEMO_OVERRIDES, Settings


def test_from_env_reads_types_and_rejects_nonsense():
    s = Settings.from_env(
        {"UNROLL_MAX_HIDDEN_SIZE": "32", "UNROLL_UPLOADS": "false", "UNROLL_PORT": "9000"}
    )
    assert s.max_hidden_size == 32 and s.uploads is False and s.port == 9000
    with pytest.raises(ValueError, match="UNROLL_MAX_HIDDEN_SIZE"):
        Settings.from_env({"UNROLL_MAX_HIDDEN_SIZE": "lots"})
    with pytest.raises(ValueError, match="UNROLL_MAX_NUM_LAYERS: must be at least 1"):
        Settings.from_env({"UNROLL_MAX_NUM_LAYERS": "0"})
    with pytest.raises(ValueError, match="UNROLL_DEMO: expected true or false"):
        Settings.from_env({"UNROLL_DEMO": "maybe"})


def test_demo_tightens_caps_unless_set_explicitly():
    s = Settings.from_env({"UNROLL_DEMO": "1", "UNROLL_MAX_TRAIN_STEPS": "50"})
    assert s.max_hidden_size == DEMO_OVERRIDES["max_hidden_size"]
    assert s.rate_limit_per_minute > 0
    assert s.max_train_steps == 50


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, rate_limit_per_minute=3))
    with TestClient(app) as client:
        codes = [client.get("/api/v1/cells").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = client.get("/api/v1/cells")
        assert int(r.headers["retry-after"]) >= 1 and "rate limit" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200  # never limited


def test_uploads_can_be_turned_off(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, uploads=False))) as client:
        r = client.post("/api/v1/models", files={"file": ("m.npz", b"PK\x03\x04")})
        assert r.status_code == 403 and r.json()["field"] == "file"


def test_cors_is_off_by_default_and_configurable(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        r = client.get("/api/v1/cells", headers={"Origin": "https://example.org"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(
        create_app(Settings(data_dir=tmp_path, cors_origins="https://example.org"))
    ) as client:
        r = client.get("/api/v1/cells", headers={"Origin": "https://example.org"})
        assert r.headers["access-control-allow-origin"] == "https://example.org"
