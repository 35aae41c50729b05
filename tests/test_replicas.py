"""Two `unroll serve` processes on one PostgreSQL store behind a real nginx, as in
docs/hosting.md: what one replica stores the other serves, and a WebSocket session and an
SSE stream pass through the proxy.

Needs nginx (Debian's package) and UNROLL_TEST_DATABASE_URL; CI installs and starts both
(.ci/run) and sets UNROLL_REQUIRE_POSTGRES=1, under which a missing one fails the test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from app.rnn import ModelConfig, init_params, weights_to_bytes
from tests.test_store import postgres_schema

CONFIG = ModelConfig(cell="gru", input_size=1, hidden_size=3, output_size=1)
BODY = {"config": CONFIG.to_dict(), "inputs": [[0.5], [-0.25], [1.0]], "targets": [[0.0]] * 3}
WS_LIMIT = 64 * 1024  # the replicas' UNROLL_MAX_WS_MESSAGE_BYTES
START_TIMEOUT_S = 60.0
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size 20m;
    upstream unroll {{
        server 127.0.0.1:{first};
        server 127.0.0.1:{second};
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        '' close;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://unroll;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


@dataclass
class Deployment:
    replicas: list[str]  # base URLs of the two servers
    proxy: str  # base URL of nginx in front of them


def _required(what: str) -> None:
    """Fail under UNROLL_REQUIRE_POSTGRES=1 (CI must run this test), else skip."""
    if os.environ.get("UNROLL_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"UNROLL_REQUIRE_POSTGRES=1 but {what}", pytrace=False)
    pytest.skip(f"replicas behind a proxy: {what}")


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        _required("nginx is not installed (apt-get install nginx)")
    return str(found)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            break
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
    pytest.fail(f"{url} did not come up\n{tails}", pytrace=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    nginx = _nginx()
    tmp = tmp_path_factory.mktemp("replicas")
    with postgres_schema() as url:
        ports = [_free_port() for _ in range(3)]
        procs: list[subprocess.Popen[bytes]] = []
        logs: list[Path] = []
        try:
            for index, port in enumerate(ports[:2]):
                env = {
                    **os.environ,
                    "UNROLL_DATABASE_URL": url,
                    "UNROLL_DATA_DIR": str(tmp / f"replica{index}"),
                    "UNROLL_MAX_WS_MESSAGE_BYTES": str(WS_LIMIT),
                }
                logs.append(tmp / f"replica{index}.log")
                with logs[-1].open("wb") as log:
                    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
                    procs.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
            conf = tmp / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(tmp=tmp, first=ports[0], second=ports[1], port=ports[2])
            )
            logs.append(tmp / "error.log")
            with (tmp / "nginx.out").open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
                        stdout=log,
                        stderr=log,
                    )
                )
            replicas = [f"http://127.0.0.1:{port}" for port in ports[:2]]
            proxy = f"http://127.0.0.1:{ports[2]}"
            for base in [*replicas, proxy]:
                _wait_until_up(base, procs, [*logs, tmp / "nginx.out"])
            yield Deployment(replicas, proxy)
        finally:
            for proc in reversed(procs):
                _stop(proc)


def _upload(base: str, seed: int) -> tuple[bytes, dict]:
    data = weights_to_bytes(CONFIG, init_params(CONFIG, seed=seed), "safetensors")
    r = httpx.post(f"{base}/api/v1/models", files={"file": ("m.safetensors", data)}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return data, r.json()


def test_a_model_stored_through_one_replica_opens_through_the_other(deployment):
    first, second = deployment.replicas
    data, stored = _upload(first, seed=1)
    model_id = stored["model_id"]
    r = httpx.get(f"{second}/api/v1/models/{model_id}/weights", timeout=30)
    assert r.status_code == 200 and r.content == data
    trace = httpx.post(f"{second}/api/v1/trace", json={**BODY, "model_id": model_id}, timeout=30)
    assert trace.status_code == 200, trace.text
    # and through the proxy, whichever replica answers, pinned for a shared link
    data, stored = _upload(deployment.proxy, seed=2)
    pinned = httpx.post(f"{deployment.proxy}/api/v1/models/{stored['model_id']}/pin", timeout=30)
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True, pinned.text
    for base in (first, second):
        info = httpx.get(f"{base}/api/v1/models/{stored['model_id']}", timeout=30).json()
        assert info["pinned"] is True and info["config"] == CONFIG.to_dict()


def test_a_websocket_session_passes_through_the_proxy(deployment):
    ws_url = deployment.proxy.replace("http://", "ws://") + "/api/v1/session"
    origin = deployment.proxy  # the page's own origin, as a browser sends it
    with connect(ws_url, origin=origin, open_timeout=30) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "configure", **BODY}))
        frames = []
        while not frames or frames[-1]["type"] not in ("session", "error"):
            frames.append(json.loads(ws.recv(timeout=30)))
        assert frames[-1]["type"] == "session", frames[-1]
        assert [f["type"] for f in frames[:2]] == ["config", "trace"]
        ws.send(json.dumps({"type": "run"}))
        ran = []
        while not ran or ran[-1]["type"] != "session":
            ran.append(json.loads(ws.recv(timeout=30)))
        assert ran[-1]["phase"] == "done" and ran[-2]["type"] == "summary"


def test_a_page_elsewhere_cannot_open_a_session_through_the_proxy(deployment):
    ws_url = deployment.proxy.replace("http://", "ws://") + "/api/v1/session"
    evil = "http://evil.example"
    with pytest.raises(InvalidStatus) as refused, connect(ws_url, origin=evil, open_timeout=30):  # type: ignore[arg-type]
        pass
    assert refused.value.response.status_code == 403


def test_an_sse_stream_passes_through_the_proxy(deployment):
    url = f"{deployment.proxy}/api/v1/trace/stream"
    events = []
    with httpx.stream("POST", url, json=BODY, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[len("data:") :]))
    types = [event["type"] for event in events]
    assert types[0] == "config" and types[-1] == "done", types
    assert "forward" in types and "backward" in types


def test_a_websocket_message_far_over_the_cap_is_refused_by_the_server(deployment):
    ws_url = deployment.replicas[0].replace("http://", "ws://") + "/api/v1/session"
    with connect(ws_url, open_timeout=30, max_size=None) as ws:
        # just over the cap: uvicorn reads it, the app answers with an error frame
        ws.send(json.dumps({"type": "configure", "pad": " " * WS_LIMIT}))
        frame = json.loads(ws.recv(timeout=30))
        assert frame["type"] == "error", frame
        # 16 times the cap: uvicorn closes the connection before buffering it (1009)
        with pytest.raises(ConnectionClosed) as closed:
            ws.send("x" * (16 * WS_LIMIT))
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
