"""Request limits of the public gateway: a body-size cap enforced while the body streams in, and
per-client rate limits (the `limits` library: moving windows, in memory or shared in Redis)."""
from __future__ import annotations

import json
import time
from typing import Dict, FrozenSet

from fastapi import HTTPException, Request
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from voice_gateway import metrics


class BodySizeLimit:
    """ASGI middleware: 413 as soon as a request body is known to be larger than `max_bytes`,
    from its Content-Length or while it streams (chunked), before the app spools it to disk."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._refuse(send, "invalid Content-Length" if not declared.isdigit() else None)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # FastAPI answers it as the 413 it is
                    metrics.ERRORS.labels("http", "too_large").inc()
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send, reason=None) -> None:
        metrics.ERRORS.labels("http", "too_large").inc()
        body = json.dumps({"detail": reason or f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413 if reason is None else 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing lets it through (it turns any other error
    while reading the body into a 400)."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class RateLimits:
    """Named per-client limits, e.g. {"chat": "30/minute;300/hour"}."""

    def __init__(self, storage_uri: str, specs: Dict[str, str]) -> None:
        self.storage = storage_from_string(storage_uri)  # the limiter holds it only weakly
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.items = {name: parse_many(spec) for name, spec in specs.items()}

    def check(self, request: Request, name: str) -> None:
        """429 with Retry-After when this client is over the named limit."""
        client = request.client.host if request.client else "unknown"
        for item in self.items.get(name, []):
            if not self.limiter.hit(item, name, client):
                metrics.ERRORS.labels("http", "rate_limited").inc()
                reset_at, _ = self.limiter.get_window_stats(item, name, client)
                raise HTTPException(429, f"too many requests: at most {item}",
                                    headers={"Retry-After": str(max(1, int(reset_at - time.time())))})


def parse_origins(spec: str) -> FrozenSet[str]:
    """ALLOWED_ORIGINS: comma-separated `scheme://host[:port]`, as browsers send them."""
    return frozenset(o.strip().rstrip("/").lower() for o in spec.split(",") if o.strip())


class OriginGuard:
    """ASGI middleware for the widget's API (/v1/…), HTTP and WebSocket: a request that carries an
    `Origin` (every browser request from a page does) must come from the gateway's own pages or an
    ALLOWED_ORIGINS site; others get 403 (a WebSocket handshake is refused). Clients that are not
    browsers send no Origin and are governed by the other limits. CORS headers for the allowed
    sites are Starlette's CORSMiddleware, outside this one."""

    def __init__(self, app, allowed: FrozenSet[str], prefix: str = "/v1/") -> None:
        self.app, self.allowed, self.prefix = app, allowed, prefix

    def allows(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
        if not origin:
            return True
        if origin in self.allowed:
            return True
        own_host = headers.get(b"host", b"").decode("latin-1").lower()
        return origin.split("://", 1)[-1] == own_host  # the gateway's own page (any scheme: behind TLS)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(self.prefix) \
                or self.allows(scope):
            return await self.app(scope, receive, send)
        metrics.ERRORS.labels(scope["type"], "origin_refused").inc()
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        body = json.dumps({"detail": "this site is not allowed to use the assistant (ALLOWED_ORIGINS)"}).encode()
        origin = dict(scope.get("headers") or []).get(b"origin", b"")
        # The refusal itself may be read by the page, so that the widget can say why it is silent.
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"access-control-allow-origin", origin), (b"vary", b"Origin")]})
        await send({"type": "http.response.body", "body": body})
