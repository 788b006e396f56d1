"""The web application: REST API, provider webhooks, health and OpenAPI docs."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from contact_center import __version__
from contact_center.audit.api import router as audit_router
from contact_center.auth.api import router as auth_router
from contact_center.campaigns.api import router as campaigns_router
from contact_center.contacts.api import router as contacts_router
from contact_center.contacts.fields_api import router as contact_fields_router
from contact_center.templates.api import router as templates_router
from contact_center.channels.api import router as channels_router
from contact_center.db import background_checkpoints
from contact_center.errors import DomainError, error_response
from contact_center.translations.validation import problem_text
from contact_center.inbox.api import router as inbox_router
from contact_center.messaging.api import router as messaging_router
from contact_center.metrics.api import Observability
from contact_center.metrics.api import router as metrics_router
from contact_center.metrics.middleware import RequestMetrics
from contact_center.privacy.api import router as privacy_router
from contact_center.routes import CheckedRoute
from contact_center.runtime import Runtime
from contact_center.web import install as install_web
from contact_center.web.i18n import request_language
from contact_center.webhooks.api import WebhookFastPath
from contact_center.webhooks.api import build_router as build_webhooks_router
from contact_center.webhooks.writer import WriterProcess


class ContactCenterApp(FastAPI):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.provider_callbacks = WebhookFastPath(self)  # (FastAPI has its own `webhooks`)

    async def __call__(self, scope, receive, send):
        # Provider callbacks are answered ahead of FastAPI and every middleware (see WebhookFastPath).
        if not await self.provider_callbacks.serve(scope, receive, send):
            await super().__call__(scope, receive, send)


def create_app(runtime: Runtime) -> FastAPI:
    settings, engine = runtime.settings, runtime.engine
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with background_checkpoints(engine):
            if settings.webhook_writer_process:
                app.state.ingest_writer = WriterProcess(settings, runtime.events.publish_many)
                await app.state.ingest_writer.start()
            yield
            writer = getattr(app.state, "ingest_writer", None)
            if writer is not None:
                await writer.stop()
            hub = getattr(app.state, "event_hub", None)
            if hub is not None:
                hub.close()  # the bus outlives the app (tests, reloads): stop delivering to a closed loop

    app = ContactCenterApp(
        lifespan=lifespan,
        title="Contact Center",
        version=__version__,
        description="SMS (Kolmeya) and WhatsApp in one inbox. Authenticate with `Authorization: Bearer <token>`.",
    )
    app.router.route_class = CheckedRoute  # the app's own routes too
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.session_factory = runtime.session_factory

    _install_error_handlers(app)
    app.include_router(build_webhooks_router())  # documents them; WebhookFastPath serves them
    app.include_router(auth_router)
    app.include_router(contacts_router)
    app.include_router(contact_fields_router)
    app.include_router(templates_router)
    app.include_router(channels_router)
    app.include_router(messaging_router)
    app.include_router(campaigns_router)
    app.include_router(inbox_router)
    app.state.observability = Observability(runtime)
    app.include_router(metrics_router)  # /metrics and /healthz
    app.add_middleware(RequestMetrics)
    app.include_router(audit_router)
    app.include_router(privacy_router)
    install_web(app)  # the operator UI at /, after the error handlers it extends

    return app


def _field_name(location: tuple) -> str:
    """('body', 'phone') → 'phone'; only the leading part says where (body, query, path…)."""
    parts = location[1:] if location and location[0] in ("body", "query", "path", "header", "cookie") else location
    return ".".join(str(part) for part in parts)


def _problem(error: dict, lang: str | None) -> dict:
    # A body that is not JSON has a character position as its location, not a field.
    field = "body" if error.get("type") == "json_invalid" else _field_name(error["loc"])
    return {"field": field, "message": problem_text(lang, error)}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        return error_response(exc, request_language(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        # Say where and why, but never echo the input back: it may hold a password or a token.
        lang = request_language(request)
        problems = [_problem(error, lang) for error in exc.errors()]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems)
        return JSONResponse(
            {"error": {"code": "invalid_input", "message": summary, "problems": problems}}, status_code=422
        )
