"""Every HTTP request's latency, by route template, and its request id.

A plain ASGI wrapper, not a BaseHTTPMiddleware: it only watches what goes by, so streamed bodies
(the live event stream, CSV exports) flow as they did. The time measured ends when the response
starts: the whole request for an ordinary answer, the first byte for a stream (which may stay open
for hours). Routes are labelled by their template (`/api/messages/{message_id}`), never the raw
path, so the number of series stays that of the routes.
"""

from __future__ import annotations

import re
import secrets
import time

from contact_center import logs
from contact_center.metrics.instruments import REQUEST_LATENCY

_GOOD_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "unmatched"  # a path no route has (a 404): one series for all of them


def route_template(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


def request_id_of(scope) -> str:
    """The proxy's X-Request-ID when it looks like one, else a new id."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _GOOD_REQUEST_ID.fullmatch(text):
                return text
            break
    return secrets.token_hex(8)


class RequestMetrics:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        started_response = False

        async def watched_send(message):
            nonlocal started_response
            if message["type"] == "http.response.start" and not started_response:
                started_response = True
                REQUEST_LATENCY.labels(scope["method"], route_template(scope), str(message["status"])).observe(
                    time.perf_counter() - started)
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", request_id.encode())]}
            await send(message)

        token = logs.request_id.set(request_id)
        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            if not started_response:  # the error page is sent further out (ServerErrorMiddleware): a 500
                REQUEST_LATENCY.labels(scope["method"], route_template(scope), "500").observe(
                    time.perf_counter() - started)
            raise
        finally:
            logs.request_id.reset(token)
