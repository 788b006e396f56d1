"""Provider callback endpoints, one per (path, kind) that a registered provider declares.

The channel's secret in the URL authenticates the call (providers like Kolmeya sign nothing);
the raw body is stored before it is applied, and a malformed one is kept in the event log and
answered with a 4xx that says what is wrong.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from fastapi.concurrency import run_in_threadpool

from contact_center.channels.service import (
    UNKNOWN_WEBHOOK_TOKEN, WebhookChannel, cached_webhook_channel, channel_for_webhook,
)
from contact_center.db import READ_ONLY
from contact_center.errors import DomainError, NotAuthenticated
from contact_center.providers.base import ProviderSpec
from contact_center.providers.registry import PROVIDERS
from contact_center.webhooks import events, service
from contact_center.webhooks.jwt import verify_hs256
from contact_center.messaging.inbound import ReplyIn
from contact_center.webhooks.writer import IngestWriter, RejectedIn, StatusIn, WriterProcess
from contact_center.routes import CheckedRoute

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
_writer_lock = threading.Lock()


@dataclass
class Callback:
    """What a callback brings besides its body, read from the ASGI scope."""

    token: str | None
    authorization: str
    content_length: str | None


def _callback(scope) -> Callback:
    token = None
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == "token":
            token = value
    authorization, content_length = "", None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"content-length":
            content_length = value.decode("latin-1")
    return Callback(token, authorization, content_length)


async def read_limited_body(receive, content_length: str | None) -> bytes:
    if content_length and content_length.isdigit() and int(content_length) > MAX_BODY_BYTES:
        raise service.PayloadTooLarge(f"the body has {content_length} bytes; callbacks are limited to "
                                      f"{MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise service.PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes; callbacks are limited to that")
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _channel(callback: Callback, specs: dict[str, ProviderSpec], session_factory) -> WebhookChannel:
    """Authenticate the callback: the channel's secret in the URL, and its JWT when one is configured."""
    token = callback.token
    if not token:
        raise NotAuthenticated("this webhook URL needs the channel's token (?token=...); "
                               "copy the URL from the channel's webhook settings")
    if len(token) > 200 or not token.isprintable():  # no secret of ours looks like that: no lookup
        raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
    channel = cached_webhook_channel(token)
    if channel is None:  # a cache miss reads the database, off the event loop
        def lookup() -> WebhookChannel:
            with session_factory() as session:
                session.connection(execution_options=READ_ONLY)
                return channel_for_webhook(session, token)

        channel = await run_in_threadpool(lookup)
    if channel.provider not in specs:
        raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
    if channel.jwt_secret:
        scheme, _, jwt = callback.authorization.partition(" ")
        if scheme.lower() != "bearer" or not jwt:
            raise NotAuthenticated("this channel requires a JWT in 'Authorization: Bearer <jwt>'")
        verify_hs256(jwt.strip(), channel.jwt_secret)
    return channel


def _writer(app) -> IngestWriter | WriterProcess:
    """The writer process the lifespan started, else a writer thread of this process."""
    state = app.state
    if getattr(state, "ingest_writer", None) is None:
        with _writer_lock:
            if getattr(state, "ingest_writer", None) is None:
                state.ingest_writer = IngestWriter(state.session_factory)
    return state.ingest_writer


async def _reject(writer: IngestWriter | WriterProcess, source: str, channel: WebhookChannel, raw: bytes,
                  error: service.PayloadRejected):
    """Keep the malformed body in the raw-event log, then answer 422 saying what is wrong."""
    await writer.submit(RejectedIn(source, channel, raw, error.message))
    raise error


def _handler(specs: dict[str, ProviderSpec], kind: str):
    """handle(app, callback, receive) -> the answer's body; DomainErrors become 4xx answers."""
    async def handle(app, callback: Callback, receive) -> dict:
        raw = await read_limited_body(receive, callback.content_length)
        writer = _writer(app)
        channel = await _channel(callback, specs, app.state.session_factory)
        spec = specs[channel.provider]
        source = f"{spec.name}.{kind}"
        if kind == "status":  # parsed by the writer: a malformed body is kept there, and raised here
            result = await writer.submit(StatusIn(source, channel, raw))
            return {"status": "success", "applied": result.count("applied"), "pending": result.count("pending"),
                    "ignored": result.count("ignored"), "duplicates": result.duplicates}
        try:
            reply = service.parse(spec.parse_reply, raw)
        except service.PayloadRejected as error:
            await _reject(writer, source, channel, raw, error)
        out = await writer.submit(ReplyIn(source, channel.id, reply, events.raw_text(raw)))
        body = {"status": "success", "duplicate": out.outcome == "duplicate"}
        if out.message_id is not None:
            body["sms_id"] = out.message_id
        if out.outcome == "rejected":
            raise service.PayloadRejected(out.detail or "the reply could not be recorded", field="phone")
        return body

    return handle


def _route(handle, kind: str):
    async def endpoint(request: Request):
        return await handle(request.app, _callback(request.scope), request.receive)

    endpoint.__name__ = f"{kind}_webhook"
    return endpoint


def _routes() -> dict[tuple[str, str], dict[str, ProviderSpec]]:
    routes: dict[tuple[str, str], dict[str, ProviderSpec]] = defaultdict(dict)
    for spec in PROVIDERS.values():
        for kind, path in spec.webhook_paths.items():
            routes[(path, kind)][spec.name] = spec
    return routes


def build_router() -> APIRouter:
    """The callbacks as documented routes (OpenAPI); WebhookFastPath serves them in practice."""
    router = APIRouter(tags=["provider webhooks"], route_class=CheckedRoute)
    for (path, kind), specs in _routes().items():
        router.add_api_route(
            path, _route(_handler(specs, kind), kind), methods=["POST"],
            summary=f"{kind.title()} callback from {', '.join(sorted(specs))}",
            description="Authenticated by the channel's `token` in the query string (copy the URL from the "
                        "channel's webhook settings). Replays are no-ops.",
        )
    return router


class WebhookFastPath:
    """Provider callbacks go straight to their handler, ahead of FastAPI itself (its telemetry
    checks, middlewares, exit stacks, dependency solving, route matching over every API route): a
    campaign's replies arrive by the thousand per second and should spend their time in the
    database, not in the framework. The app hands it every request first (see
    app.ContactCenterApp), so it answers its own errors."""

    def __init__(self, app):
        self.app = app  # the FastAPI application, for its state
        self.handlers = {path: _handler(specs, kind) for (path, kind), specs in _routes().items()}

    async def serve(self, scope, receive, send) -> bool:
        """Answer `scope` when it is a provider callback; False leaves it to the app."""
        handle = self.handlers.get(scope.get("path")) if scope["type"] == "http" else None
        if handle is None or scope["method"] != "POST":
            return False
        status, headers = 200, [(b"content-type", b"application/json")]
        try:
            body = await handle(self.app, _callback(scope), receive)
        except ClientDisconnect:
            return True
        except DomainError as exc:
            status, body = exc.status_code, {"error": exc.as_dict()}
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            status, body = 500, {"error": {"code": "internal_error", "message": "the callback could not be "
                                                                                 "handled; send it again"}}
        payload = _ENCODER.encode(body).encode()
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return True


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: it is per answer otherwise
