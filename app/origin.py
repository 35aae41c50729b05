"""Who may drive the server: the Host a request names, and the Origin of the page that sent
a state-changing request or opened a WebSocket (cross-site requests and DNS rebinding)."""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # change nothing: no Origin check
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
UNCHECKED_PATHS = frozenset({"/healthz"})  # load balancers probe it under any name


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1), with or without [ ]."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """(name, port) of a Host header or an authority: "[::1]:8000" -> ("::1", 8000)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return name.rstrip("."), int(port) if port.isdigit() else None


def _origin_key(origin: str) -> tuple[str, int | None] | None:
    """(host, port) of an Origin header with default ports dropped; None if malformed."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname.lower(), None if port == DEFAULT_PORTS[parts.scheme] else port


def _host_key(host: str) -> tuple[str, int | None]:
    name, port = split_host(host)
    return name, None if port in (80, 443) else port


def _names(setting: str) -> list[str]:
    return [item.strip().lower() for item in setting.split(",") if item.strip()]


class OriginGuard:
    """ASGI middleware: refuse a Host the server does not serve (400, field "host"), and a
    cross-origin WebSocket or POST/PUT/PATCH/DELETE (403, field "origin").

    Hosts: `allowed_hosts` (comma-separated names, "*.example.org" for subdomains, "*" for
    any); empty means loopback names only on a loopback connection of a server bound to a
    loopback address (Settings.host), else any. Origins: a request without an Origin header
    passes (not a browser); with one, its host and port must equal the Host header's, or
    the origin be listed in `allowed_origins` or `cors_origins` ("*" allows any).
    """

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.hosts = _names(settings.allowed_hosts)
        self.loopback_only = not self.hosts and is_loopback(settings.host)
        self.origins = {o.rstrip("/") for o in _names(settings.allowed_origins)}
        self.origins |= {o.rstrip("/") for o in _names(settings.cors_origins)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in UNCHECKED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        problem = self._host_problem(host, scope)
        field = "host"
        if problem is None and (
            scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        ):
            problem = self._origin_problem(headers.get("origin"), host)
            field = "origin"
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # closing before accepting: the handshake fails with 403, nothing is read
            await send({"type": "websocket.close", "code": 1008, "reason": problem[:120]})
        else:
            await _send_error(send, 400 if field == "host" else 403, f"{field}: {problem}", field)

    def _host_problem(self, host: str, scope: Scope) -> str | None:
        name, _ = split_host(host)
        if not name:
            return "missing Host header"
        if "*" in self.hosts:
            return None
        if self.hosts:
            if any(name == h or (h.startswith("*.") and name.endswith(h[1:])) for h in self.hosts):
                return None
            allowed = ", ".join(self.hosts)
            return f"{name} is not served here; allowed: {allowed} (UNROLL_ALLOWED_HOSTS)"
        server = (scope.get("server") or ("", None))[0] or ""
        # only a real loopback socket: an in-process test client has no address to defend
        if not self.loopback_only or not _is_ip(server) or not is_loopback(server):
            return None
        if is_loopback(name):
            return None
        return (
            f"{name} is not a loopback name; a server bound to a loopback address answers "
            "only localhost, 127.0.0.1 and [::1] unless UNROLL_ALLOWED_HOSTS names more"
        )

    def _origin_problem(self, origin: str | None, host: str) -> str | None:
        if origin is None:
            return None  # not sent by a browser page: nothing cross-site to defend against
        if "*" in self.origins or origin.strip().rstrip("/").lower() in self.origins:
            return None
        key = _origin_key(origin)
        if key is not None and key == _host_key(host):
            return None
        return (
            f"{origin[:100]} is not this server's origin; a page elsewhere cannot drive it "
            "unless UNROLL_ALLOWED_ORIGINS lists it"
        )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


async def _send_error(send: Send, status: int, detail: str, field: str) -> None:
    body = json.dumps({"detail": detail, "field": field}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
