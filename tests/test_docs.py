"""/docs: the OpenAPI page links the session protocol, frame schema and transport, served
from this server (no CDN, no inline script) and rendered readably."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_docs_page_links_every_document_without_inline_scripts():
    client = TestClient(create_app())
    html = client.get("/docs").text
    for href in ("/docs/session-protocol", "/docs/frame-schema.json", "/docs/transport"):
        assert f'href="{href}"' in html, href
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> found"
    assert "cdn" not in html.lower()
    description = client.get("/openapi.json").json()["info"]["description"]
    assert "(/docs/session-protocol)" in description and "(/docs/frame-schema.json)" in description


def test_documents_are_served_as_the_repository_has_them():
    client = TestClient(create_app())
    schema = client.get("/docs/frame-schema.json")
    assert schema.status_code == 200 and schema.headers["content-type"] == "application/json"
    assert schema.json() == json.loads((ROOT / "docs" / "frame-schema.json").read_text())
    for name in ("session-protocol", "transport"):
        markdown = client.get(f"/docs/{name}.md")
        assert markdown.status_code == 200
        assert markdown.headers["content-type"].startswith("text/markdown")
        assert markdown.text == (ROOT / "docs" / f"{name}.md").read_text()
        page = client.get(f"/docs/{name}")
        assert page.status_code == 200 and f'data-src="/docs/{name}.md"' in page.text
        assert "content-security-policy" in page.headers
        assert "swagger-ui-bundle" not in page.text  # a document page loads no Swagger


def test_unknown_documents_are_404_in_the_error_shape():
    client = TestClient(create_app())
    for path in ("/docs/architecture", "/docs/../README.md", "/docs/benchmarks.md"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["field"] == "path"


def test_the_docker_image_carries_the_documents():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY docs \./docs$", dockerfile, re.M)
