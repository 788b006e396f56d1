"""Errors as pages: a browser that reaches a missing page, a forbidden one or a server error gets
an HTML page in the operator's language, in the product's layout, with a way back. API clients,
the page script and provider webhooks keep their JSON (or plain text) answers unchanged.

The page says what happened in the operator's words, and a domain error's own message in the
page's language (from the catalogs in contact_center/translations).
A server error shows only a request id; the log keeps the traceback under the same id.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from contact_center.errors import DomainError
from contact_center.web.i18n import request_language

log = logging.getLogger(__name__)

# What each kind of failure is called on the page: error.<kind>.title and error.<kind>.text in the catalogs (translations/).
_KINDS = {403: "forbidden", 404: "not_found", 405: "not_found", 422: "invalid", 500: "server"}


def wants_page(request: Request) -> bool:
    """A browser navigating (not the page script, not an API client) gets errors as a page."""
    from contact_center.web import API_PREFIXES

    path = request.url.path
    return (not path.startswith(API_PREFIXES) and "/fragments/" not in path
            and "text/html" in request.headers.get("accept", "")
            and request.headers.get("x-requested-with") != "fetch")


def _signed_in_user(request: Request):
    """Who is logged in, read without the write lock a request's transaction takes on SQLite: an
    error page must not wait behind (or hold up) anyone's writes."""
    from contact_center.db import READ_ONLY
    from contact_center.web.session import user_from_cookie

    session = request.app.state.session_factory()
    try:
        session.connection(execution_options=READ_ONLY)
        return user_from_cookie(request, session)  # the visit is not noted: nothing is committed
    finally:
        session.close()


async def error_page(request: Request, status_code: int, *, code: str | None = None, detail: str | None = None,
                     field: str | None = None, request_id: str | None = None):
    """The error page for `status_code`, for whoever is logged in (or with a way to the login)."""
    from contact_center.web.rendering import render

    try:
        user = await run_in_threadpool(_signed_in_user, request)
    except Exception:  # after a server error the database may be what failed: the page goes out anyway
        if status_code != 500:
            raise
        user = None
    kind = "expired" if code == "csrf_failed" else _KINDS.get(status_code, "other")
    response = render(request, "error.html", user, status_code=status_code, kind=kind, detail=detail,
                      field=field, path=request.url.path[:120], request_id=request_id)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


class ServerErrorPages:
    """Outermost but one: an exception nothing handled becomes a 500 with a request id, logged with
    its traceback once, as a page for a browser and as Starlette's plain answer for anything else."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:  # too late to answer anything else: let the server close the connection
                raise
            request = Request(scope, receive)
            request_id = secrets.token_hex(6)
            log.exception("server error %s on %s %s", request_id, request.method, request.url.path)
            try:
                if wants_page(request):
                    response = await error_page(request, 500, request_id=request_id)
                else:
                    response = PlainTextResponse("Internal Server Error", status_code=500,
                                                 headers={"X-Request-ID": request_id})
            except Exception:  # the page itself failed: the plain answer still carries the id
                log.exception("server error %s: the error page failed too", request_id)
                response = PlainTextResponse(f"Internal Server Error ({request_id})", status_code=500,
                                             headers={"X-Request-ID": request_id})
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Error pages on top of the JSON handlers the app already has (installed before this)."""
    json_domain_error = app.exception_handlers[DomainError]

    async def domain_error(request: Request, exc: DomainError):
        if wants_page(request):
            return await error_page(request, exc.status_code, code=exc.code, detail=exc.text(request_language(request)),
                                    field=exc.field)
        return await json_domain_error(request, exc)

    async def http_error(request: Request, exc: StarletteHTTPException):
        if wants_page(request) and exc.status_code in (404, 405):
            return await error_page(request, exc.status_code)
        return await http_exception_handler(request, exc)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(ServerErrorPages)
