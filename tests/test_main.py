"""The app shell: health check, page and offline Plotly."""

from __future__ import annotations

import pytest
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
    import json
    import re

    page = TestClient(create_app()).get("/")
    html = page.text
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>(.*?)</script>", html, re.S)
    # only the import map, which is data (JSON), allowed by its hash and not 'unsafe-inline'
    assert [attrs for attrs, _ in inline] == [' type="importmap"'], "inline <script> found"
    assert set(json.loads(inline[0][1])) == {"imports"}
    script_src = page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert "unsafe-inline" not in script_src and "sha256-" in script_src
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler found"
    assert "cdn" not in html.lower()


# ---------------------------------------------------------------- origins and hosts
TRACE = {"config": {"cell": "rnn_tanh", "hidden_size": 1}, "inputs": [[0.5]]}
SESSION = "/api/v1/session"


def app_with(tmp_path, **settings):
    from app.settings import Settings

    return create_app(Settings(data_dir=tmp_path, **settings))


def assert_refused(response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field and body["detail"].startswith(f"{field}: "), body


def test_a_page_elsewhere_cannot_post_but_the_servers_own_page_can(tmp_path):
    client = TestClient(app_with(tmp_path))  # Host: testserver
    evil = {"Origin": "http://evil.example"}
    r = client.post("/api/v1/trace", json=TRACE, headers=evil)
    assert_refused(r, 403, "origin")
    assert "evil.example" in r.json()["detail"]
    assert "content-security-policy" in r.headers  # still inside the security headers
    for path in ("/api/v1/models", "/api/v1/train/stream", "/api/v1/models/" + "a" * 64 + "/pin"):
        assert_refused(client.post(path, headers=evil), 403, "origin")
    # same origin, no Origin at all (curl, scripts), and reads from anywhere all pass
    assert client.post(
        "/api/v1/trace", json=TRACE, headers={"Origin": "http://testserver"}
    ).is_success
    assert client.post("/api/v1/trace", json=TRACE).is_success
    assert client.get("/api/v1/cells", headers=evil).is_success
    # another port or scheme-default port mismatch is another origin
    for origin in ("http://testserver:8080", "null", "file://", "http://testserver.evil.example"):
        r = client.post("/api/v1/trace", json=TRACE, headers={"Origin": origin})
        assert_refused(r, 403, "origin")


def test_allowed_origins_widen_the_check(tmp_path):
    client = TestClient(app_with(tmp_path, allowed_origins="https://teach.example, http://x:9"))
    for origin in ("https://teach.example", "http://x:9", "https://TEACH.example/"):
        r = client.post("/api/v1/trace", json=TRACE, headers={"Origin": origin})
        assert r.status_code == 200, (origin, r.text)
    r = client.post("/api/v1/trace", json=TRACE, headers={"Origin": "http://teach.example"})
    assert_refused(r, 403, "origin")
    anywhere = TestClient(app_with(tmp_path, allowed_origins="*"))
    assert anywhere.post("/api/v1/trace", json=TRACE, headers={"Origin": "http://a.b"}).is_success


def test_a_cross_origin_websocket_is_refused_before_it_opens(tmp_path):
    from starlette.websockets import WebSocketDisconnect

    client = TestClient(app_with(tmp_path))
    evil = {"Origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(SESSION, headers=evil),
    ):
        pass
    assert refused.value.code == 1008 and "evil.example" in refused.value.reason
    with client.websocket_connect(SESSION, headers={"Origin": "http://testserver"}) as ws:
        ws.send_json({"type": "configure", **TRACE})
        assert ws.receive_json()["type"] != "error"


def test_a_loopback_server_answers_loopback_names_only(tmp_path):
    # a client whose connection arrives on 127.0.0.1, as on a server bound there
    client = TestClient(app_with(tmp_path), base_url="http://127.0.0.1:8000")
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost", "127.0.0.2"):
        assert client.get("/api/v1/cells", headers={"Host": host}).is_success, host
    # DNS rebinding: evil.example resolved to 127.0.0.1 after the page loaded
    r = client.get("/api/v1/cells", headers={"Host": "evil.example:8000"})
    assert_refused(r, 400, "host")
    assert "UNROLL_ALLOWED_HOSTS" in r.json()["detail"]
    assert client.get("/healthz", headers={"Host": "evil.example"}).is_success  # probes pass
    # bound to every interface (Docker, hosting): any name, unless configured
    anywhere = TestClient(app_with(tmp_path, host="0.0.0.0"), base_url="http://127.0.0.1:8000")
    assert anywhere.get("/api/v1/cells", headers={"Host": "unroll.example"}).is_success


def test_allowed_hosts_names_the_hosts_served(tmp_path):
    client = TestClient(
        app_with(tmp_path, host="0.0.0.0", allowed_hosts="unroll.example, *.school.example")
    )
    for host in ("unroll.example", "unroll.example:443", "a.school.example", "b.a.school.example"):
        assert client.get("/api/v1/cells", headers={"Host": host}).is_success, host
    for host in ("evil.example", "school.example.evil", "testserver"):
        assert_refused(client.get("/", headers={"Host": host}), 400, "host")
    any_host = TestClient(app_with(tmp_path, allowed_hosts="*"), base_url="http://127.0.0.1:80")
    assert any_host.get("/api/v1/cells", headers={"Host": "evil.example"}).is_success


# ---------------------------------------------------------------- session caps
def test_sessions_are_capped_per_client_and_in_all(tmp_path):
    from starlette.websockets import WebSocketDisconnect

    app = app_with(tmp_path, max_sessions=2, max_sessions_per_client=1)
    first = TestClient(app, client=("10.0.0.1", 1000))
    second = TestClient(app, client=("10.0.0.2", 1000))
    third = TestClient(app, client=("10.0.0.3", 1000))

    def refused(client: TestClient) -> WebSocketDisconnect:
        with client.websocket_connect(SESSION) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        return closed.value

    with first.websocket_connect(SESSION) as ws:
        ws.send_json({"type": "configure", **TRACE})
        assert ws.receive_json()["type"] != "error"
        again = refused(first)  # the same client's second session
        assert again.code == 1013 and "this client has 1 open" in again.reason
        with second.websocket_connect(SESSION) as other:
            other.send_json({"type": "configure", **TRACE})
            assert other.receive_json()["type"] != "error"
            full = refused(third)
            assert full.code == 1013 and "2 open on this server" in full.reason
    # closed sessions are counted out: everyone may open one again
    for client in (first, second, third):
        with client.websocket_connect(SESSION) as ws:
            ws.send_json({"type": "configure", **TRACE})
            assert ws.receive_json()["type"] != "error"


def test_an_unreachable_store_is_503_not_500(tmp_path):
    url = "postgresql://unroll:s3cret@127.0.0.1:1/unroll"  # nothing listens on port 1
    client = TestClient(app_with(tmp_path, database_url=url))
    r = client.get(f"/api/v1/models/{'a' * 64}")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    body = r.json()
    assert body["field"] is None and body["detail"].startswith("model store: unavailable")
    assert "s3cret" not in body["detail"] and "unroll:***@127.0.0.1:1" in body["detail"]


def test_favicon_is_an_empty_answer_not_a_404(client):
    # Chromium asks for it on every page without an icon link; a 404 lands in the console
    answer = client.get("/favicon.ico")
    assert answer.status_code == 204
    assert answer.content == b""
