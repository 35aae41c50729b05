"""Shared fixtures: an app on a temporary data directory, and its client."""

from __future__ import annotations

import os
import sys

# One BLAS thread per process, as `unroll serve` runs: the suite already runs one pytest
# worker per core (-n auto), and BLAS threads on top only fight them (an SVD stack took
# 10x longer). Set before numpy loads OpenBLAS; the determinism test varies it itself.
NUMPY_LOADED_FIRST = "numpy" in sys.modules  # then the setting below came too late
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
