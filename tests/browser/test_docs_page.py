"""The API documents in Chromium: Swagger UI and the Markdown pages, offline."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_session_protocol_renders_readably_offline(page):
    page.goto(page.base_url + "/docs/session-protocol")
    page.wait_for_selector("#doc h1")
    assert "session protocol" in page.inner_text("#doc h1").lower()
    assert page.locator("#doc h2").count() >= 3
    assert page.locator("#doc pre code").count() >= 1
    assert page.locator("#doc li").count() >= 5
    text = page.inner_text("#doc")
    assert "```" not in text and "**" not in text  # fences and emphasis became markup
    link = page.locator('#doc a[href="/docs/transport"]').first
    link.click()
    page.wait_for_selector("#doc table")
    assert page.locator("#doc table th").count() >= 2
    assert page.errors.messages == [] and page.outside == []


def test_swagger_page_runs_offline_with_the_links(page):
    page.goto(page.base_url + "/docs")
    page.wait_for_selector(".swagger-ui .info")
    page.locator(".opblock").first.wait_for(timeout=20_000)
    assert page.locator(".opblock").count() >= 8  # the operations, drawn by the bundled Swagger UI
    assert page.locator('.swagger-ui .info a[href="/docs/session-protocol"]').count() == 1
    assert page.locator('nav a[href="/docs/frame-schema.json"]').count() == 1
    assert page.errors.messages == [] and page.outside == []
