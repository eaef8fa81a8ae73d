"""ASGI middleware: rate limits per credential, request body limits and types, and metrics."""

from __future__ import annotations

import math
import re
import time
from email.message import Message as HeaderMessage

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_bridge.api.problems import error_response
from ledger_bridge.core.errors import (
    JsonTooDeepError,
    LedgerBridgeError,
    RateLimitExceededError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from ledger_bridge.core.metrics import BridgeMetrics
from ledger_bridge.core.security import split_token

# Request bodies of the API nest a few levels. The limit stops deeply nested input
# before json.loads, whose C parser can overflow the thread's stack when a library
# has raised the recursion limit (py_ecc 8.0 sets it to 100000 on import).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
# Load balancers and Prometheus poll these, and they carry no credential.
RATE_LIMIT_EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})


class RateLimitMiddleware:
    """Middleware that gives each credential a budget of requests per minute, then returns 429.

    The budget belongs to the key id named in the bearer token, whether or not
    the secret matches, so guessing a credential's secret is slowed down as
    much as using it. Requests without a well-formed credential share one
    budget per client address. The moving window lives in this process.
    """

    def __init__(self, app: ASGIApp, limit_per_minute: int) -> None:
        self.app = app
        self.limit_per_minute = limit_per_minute
        self._item = RateLimitItemPerMinute(limit_per_minute)
        # NOTE: the budget is per replica, so N replicas behind a load balancer allow N times it.
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in RATE_LIMIT_EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        identity = _rate_limit_identity(scope)
        if not self._limiter.hit(self._item, identity):
            reset_time = self._limiter.get_window_stats(self._item, identity).reset_time
            retry_after = max(1, math.ceil(reset_time - time.time()))
            error = RateLimitExceededError(self.limit_per_minute, retry_after)
            await error_response(error, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


class RequestBodyMiddleware:
    """Middleware that reads each request body up front and rejects it before any route runs.

    A body larger than `max_bytes` gets 413, judged by Content-Length when the
    client sends it and by counting otherwise, so a chunked upload is cut off
    at the limit. A non-empty body that is not JSON gets 415, and one nested
    deeper than MAX_JSON_DEPTH gets 400. The body that passes is replayed to
    the app unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
            if body is None:
                return
            _check_content_type(scope, body)
            _check_json_depth(body)
        except LedgerBridgeError as error:
            response = error_response(error, scope["path"])
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """Return the whole body, or None if the client disconnected while sending it."""
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise RequestTooLargeError(self.max_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise RequestTooLargeError(self.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


class MetricsMiddleware:
    """Middleware that counts requests and times responses by method, route and status."""

    def __init__(self, app: ASGIApp, metrics: BridgeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        # Route templates such as /v1/operations/{operation_id} keep the label set small.
        template = getattr(route, "path", "unmatched")
        method = scope["method"]
        self.metrics.http_requests.labels(method, template, str(status)).inc()
        self.metrics.http_request_duration.labels(method, template).observe(seconds)


def _rate_limit_identity(scope: Scope) -> str:
    """Return the key id of the request's bearer token, or the client address without one."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    parts = split_token(token.strip()) if scheme.lower() == "bearer" else None
    if parts is not None:
        return f"credential:{parts[0]}"
    client = scope.get("client")
    return f"client:{client[0] if client else 'unknown'}"


def _may_have_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length != "0")


def _check_content_type(scope: Scope, body: bytes) -> None:
    if not body:
        return
    content_type = Headers(scope=scope).get("content-type")
    if content_type is None or not _is_json(content_type):
        raise UnsupportedMediaTypeError(content_type)


def _check_json_depth(body: bytes) -> None:
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            raise JsonTooDeepError(MAX_JSON_DEPTH)


def _is_json(content_type: str) -> bool:
    header = HeaderMessage()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a receive callable that yields the buffered body, then defers to the client."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
