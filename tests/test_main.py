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


def test_security_headers_and_offline_docs():
    client = TestClient(create_app())
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/v1/cells").headers["x-content-type-options"] == "nosniff"
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "<script>" not in docs.text
    assert client.get("/vendor/swagger/swagger-ui-bundle.js").status_code == 200


def test_page_has_no_inline_scripts_or_handlers():
    import re

    html = TestClient(create_app()).get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> found"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler found"
    assert "cdn" not in html.lower()
