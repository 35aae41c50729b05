"""Per-client rate limits for the API: a token bucket per client address, answered with 429."""

from __future__ import annotations

import math
import time

from starlette.types import ASGIApp, Receive, Scope, Send

IDLE_FORGET_S = 600  # buckets untouched this long are dropped, so memory stays bounded


class RateLimit:
    """ASGI middleware: at most `per_minute` API requests (and WebSocket connects) per
    client address, refilled continuously; /healthz, the page and static files are free."""

    def __init__(self, app: ASGIApp, per_minute: int):
        self.app = app
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self._take(client, time.monotonic())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = str(max(1, math.ceil(wait)))
        if scope["type"] == "websocket":
            await send(
                {
                    "type": "websocket.close",
                    "code": 1013,
                    "reason": f"rate limited; retry in {retry} s",
                }
            )
            return
        body = (
            b'{"detail":"rate limit: too many requests from this client; retry in '
            + retry.encode()
            + b' s","field":null}'
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", retry.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _take(self, client: str, now: float) -> float:
        """Spend a token; 0 if there was one, else the seconds until there is."""
        if len(self.buckets) > 10_000:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < IDLE_FORGET_S}
        tokens, last = self.buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate
