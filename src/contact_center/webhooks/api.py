"""Provider callback endpoints, one per (path, kind) that a registered provider declares.

The channel's secret in the URL authenticates the call (providers like Kolmeya sign nothing);
the raw body is stored before it is applied, and a malformed one is kept in the event log and
answered with a 4xx that says what is wrong.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from contact_center.channels.service import (
    UNKNOWN_WEBHOOK_TOKEN, WebhookChannel, cached_webhook_channel, channel_for_webhook,
)
from contact_center.db import READ_ONLY
from contact_center.errors import DomainError, NotAuthenticated, error_response
from contact_center.providers.base import ProviderSpec
from contact_center.providers.registry import PROVIDERS
from contact_center.webhooks import service
from contact_center.webhooks.jwt import verify_hs256
from contact_center.messaging.inbound import ReplyIn
from contact_center.webhooks.writer import IngestWriter

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
_writer_lock = threading.Lock()


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


async def read_limited_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body has {declared} bytes; callbacks are limited to {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes; callbacks are limited to that")
    return bytes(body)


async def _channel(request: Request, specs: dict[str, ProviderSpec], session_factory) -> WebhookChannel:
    """Authenticate the callback: the channel's secret in the URL, and its JWT when one is configured."""
    token = request.query_params.get("token")
    channel = cached_webhook_channel(token) if token else None
    if channel is None:  # a cache miss reads the database, off the event loop
        def lookup() -> WebhookChannel:
            with session_factory() as session:
                session.connection(execution_options=READ_ONLY)
                return channel_for_webhook(session, token, tuple(specs))

        channel = await run_in_threadpool(lookup)
    if channel.provider not in specs:
        raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
    if channel.jwt_secret:
        scheme, _, jwt = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not jwt:
            raise NotAuthenticated("this channel requires a JWT in 'Authorization: Bearer <jwt>'")
        verify_hs256(jwt.strip(), channel.jwt_secret)
    return channel


def _writer(request: Request) -> IngestWriter:
    state = request.app.state
    if getattr(state, "ingest_writer", None) is None:
        with _writer_lock:
            if getattr(state, "ingest_writer", None) is None:
                state.ingest_writer = IngestWriter(state.session_factory)
    return state.ingest_writer


async def _reject(writer: IngestWriter, source: str, channel: WebhookChannel, raw: bytes,
                  error: service.PayloadRejected):
    """Keep the malformed body in the raw-event log, then answer 422 saying what is wrong."""
    await writer.submit(lambda s: service.store_rejected(s, source, channel, raw, error.message))
    raise error


def _endpoint(specs: dict[str, ProviderSpec], kind: str):
    async def receive(request: Request):
        raw = await read_limited_body(request)
        writer = _writer(request)
        channel = await _channel(request, specs, request.app.state.session_factory)
        spec = specs[channel.provider]
        source = f"{spec.name}.{kind}"
        if kind == "status":
            result = await writer.submit(lambda s: _statuses(s, spec, channel, raw))
            if isinstance(result, service.PayloadRejected):
                raise result
            return {"status": "success", "applied": result.count("applied"), "pending": result.count("pending"),
                    "ignored": result.count("ignored"), "duplicates": result.duplicates}
        try:
            reply = service.parse(spec.parse_reply, raw)
        except service.PayloadRejected as error:
            await _reject(writer, source, channel, raw, error)
        out = await writer.submit(ReplyIn(source, channel.id, reply, raw.decode("utf-8", "replace")))
        body = {"status": "success", "duplicate": out.outcome == "duplicate"}
        if out.message_id is not None:
            body["sms_id"] = out.message_id
        if out.outcome == "rejected":
            raise service.PayloadRejected(out.detail or "the reply could not be recorded", field="phone")
        return body

    receive.__name__ = f"{kind}_webhook"
    return receive


def _statuses(session: Session, spec: ProviderSpec, channel: WebhookChannel, raw: bytes):
    try:
        return service.ingest_statuses(session, spec, channel, raw)
    except service.PayloadRejected as exc:
        return exc  # the raw event is kept (the batch commits it); the caller answers 422


def _routes() -> dict[tuple[str, str], dict[str, ProviderSpec]]:
    routes: dict[tuple[str, str], dict[str, ProviderSpec]] = defaultdict(dict)
    for spec in PROVIDERS.values():
        for kind, path in spec.webhook_paths.items():
            routes[(path, kind)][spec.name] = spec
    return routes


def build_router() -> APIRouter:
    """The callbacks as documented routes (OpenAPI); WebhookFastPath serves them in practice."""
    router = APIRouter(tags=["provider webhooks"])
    for (path, kind), specs in _routes().items():
        router.add_api_route(
            path, _endpoint(specs, kind), methods=["POST"],
            summary=f"{kind.title()} callback from {', '.join(sorted(specs))}",
            description="Authenticated by the channel's `token` in the query string (copy the URL from the "
                        "channel's webhook settings). Replays are no-ops.",
        )
    return router


class WebhookFastPath:
    """Provider callbacks go straight to their endpoint, past FastAPI's per-request machinery
    (exit stacks, dependency solving, route matching over every API route): a campaign's replies
    arrive by the thousand per second and spend their time here, not in the database."""

    def __init__(self, app):
        self.app = app
        self.endpoints = {path: _endpoint(specs, kind) for (path, kind), specs in _routes().items()}

    async def __call__(self, scope, receive, send):
        endpoint = self.endpoints.get(scope.get("path")) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = JSONResponse(await endpoint(Request(scope, receive)))
        except DomainError as exc:
            response = error_response(exc)
        await response(scope, receive, send)
