"""Caps on open WebSocket sessions: so many per process, and fewer per client address."""

from __future__ import annotations

from collections import Counter

from starlette.types import ASGIApp, Receive, Scope, Send

TRY_AGAIN_LATER = 1013  # WebSocket close code: the server is overloaded, retry later


class SessionLimit:
    """ASGI middleware: at most `max_sessions` WebSockets open at once, and at most
    `per_client` from one client address; one more is accepted and closed at once with
    code 1013 and a reason the page can show (a refused handshake would hide both)."""

    def __init__(self, app: ASGIApp, max_sessions: int, per_client: int):
        self.app = app
        self.max_sessions = max_sessions
        self.per_client = per_client
        self.open: Counter[str] = Counter()  # client address -> sessions open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        reason = self._refusal(client)
        if reason is not None:
            await _refuse(receive, send, reason)
            return
        # counted from here to the end of the session: no await between check and count
        self.open[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]

    def _refusal(self, client: str) -> str | None:
        total = sum(self.open.values())
        if total >= self.max_sessions:
            return f"sessions: {total} open on this server, the limit; retry later"
        if self.open[client] >= self.per_client:
            return (
                f"sessions: this client has {self.open[client]} open, the limit of "
                f"{self.per_client}; close one (another tab?) and retry"
            )
        return None


async def _refuse(receive: Receive, send: Send, reason: str) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": reason})
