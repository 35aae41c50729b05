"""The app shell: health check, page and offline Plotly."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app


def test_healthz_and_page():
    client = TestClient(create_app())
    assert client.get("/healthz").json()["status"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and "Unroll" in page.text
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower()
