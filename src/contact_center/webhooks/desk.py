"""What a provider's callback handler is given to work with: the request as read off the ASGI
scope, its body (size-capped), the channel a URL token names, the writer that stores and applies
callbacks, and the shape of an answer.

Each provider declares its callback routes (ProviderSpec.webhooks) and writes their handlers with
these; webhooks/api.py serves them. The routes name their handler ("module:function") rather than
import it: handlers use the messaging core, which itself looks providers up in the registry.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect

from contact_center.errors import NotAuthenticated

if TYPE_CHECKING:
    from contact_center.channels.service import WebhookChannel
    from contact_center.providers.base import ProviderSpec

MAX_BODY_BYTES = 1024 * 1024
_writer_lock = threading.Lock()


@dataclass
class Callback:
    """A callback request as its handler needs it, read from the ASGI scope."""

    app: Any  # the FastAPI application, for its state
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case; the last value of a repeated header
    receive: Callable[[], Awaitable[dict]]
    accepted: dict[str, ProviderSpec] = field(default_factory=dict)  # the providers whose route this is

    @classmethod
    def from_scope(cls, app, scope, receive, accepted: dict[str, ProviderSpec]) -> Callback:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        return cls(app, scope["method"], scope["path"], query, headers, receive, accepted)

    @property
    def token(self) -> str | None:
        return self.query.get("token")

    @property
    def session_factory(self):
        return self.app.state.session_factory

    async def body(self) -> bytes:
        """The raw body, refused past MAX_BODY_BYTES before it is all read."""
        from contact_center.webhooks import service

        length = self.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise service.PayloadTooLarge("the body has {length} bytes; callbacks are limited to {MAX_BODY_BYTES} "
                                          "bytes", length=length, MAX_BODY_BYTES=MAX_BODY_BYTES)
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise service.PayloadTooLarge("the body is over {MAX_BODY_BYTES} bytes; callbacks are limited to that",
                                              MAX_BODY_BYTES=MAX_BODY_BYTES)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def writer(self):
        """The writer process the lifespan started, else a writer thread of this process."""
        from contact_center.webhooks.writer import IngestWriter

        state = self.app.state
        if getattr(state, "ingest_writer", None) is None:
            with _writer_lock:
                if getattr(state, "ingest_writer", None) is None:
                    state.ingest_writer = IngestWriter(state.session_factory)
        return state.ingest_writer

    async def channel_by_token(self) -> WebhookChannel:
        """The channel whose secret the URL carries (`?token=`), of one of this route's providers."""
        from fastapi.concurrency import run_in_threadpool

        from contact_center.channels.service import (
            UNKNOWN_WEBHOOK_TOKEN, cached_webhook_channel, channel_for_webhook,
        )
        from contact_center.db import READ_ONLY

        token = self.token
        if not token:
            raise NotAuthenticated("this webhook URL needs the channel's token (?token=...); "
                                   "copy the URL from the channel's webhook settings")
        if len(token) > 200 or not token.isprintable():  # no secret of ours looks like that: no lookup
            raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
        channel = cached_webhook_channel(token)
        if channel is None:  # a cache miss reads the database, off the event loop
            def lookup() -> WebhookChannel:
                with self.session_factory() as session:
                    session.connection(execution_options=READ_ONLY)
                    return channel_for_webhook(session, token)

            channel = await run_in_threadpool(lookup)
        if channel.provider not in self.accepted:
            raise NotAuthenticated(UNKNOWN_WEBHOOK_TOKEN)
        return channel


@dataclass
class Answer:
    """What a handler answers: JSON (a dict) or raw bytes with their content type."""

    body: dict | bytes
    status: int = 200
    content_type: str = "application/json"


Handler = Callable[[Callback], Awaitable[Answer | dict]]


@dataclass(frozen=True)
class WebhookRoute:
    """A callback URL a provider has on our server."""

    method: str  # GET | POST
    path: str
    name: str  # what it receives (reply, status, events…): the key of its URL in a channel's webhook URLs
    handler: str  # "package.module:function", a Handler
    summary: str
    # The URL carries the channel's secret (?token=…), as for providers that sign nothing. False: one
    # URL serves every channel of the provider, which the handler tells apart (WhatsApp: by number).
    per_channel: bool = True

    def resolve(self) -> Handler:
        module, _, function = self.handler.partition(":")
        return getattr(importlib.import_module(module), function)
