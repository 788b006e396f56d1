"""The operator web UI, served by the same app as the API: `install(app)` adds its routes."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from contact_center.errors import DomainError
from contact_center.web.session import LoginRequired

from contact_center.webhooks.api import path_prefixes

API_PREFIXES = ("/api/", "/events", "/docs", "/openapi", "/healthz", *path_prefixes())


def _wants_page(request: Request) -> bool:
    """A browser navigating (not the page script, not an API client) gets errors as a page."""
    path = request.url.path
    return (not path.startswith(API_PREFIXES) and "/fragments/" not in path
            and "text/html" in request.headers.get("accept", "")
            and request.headers.get("x-requested-with") != "fetch")


def install(app: FastAPI) -> None:
    from contact_center.web import admin, campaigns, live, pages, reports
    from contact_center.web.rendering import render

    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(campaigns.router)
    app.include_router(live.router)
    app.include_router(reports.router)
    app.include_router(reports.api_router)
    app.mount("/static", StaticFiles(packages=[("contact_center.web", "static")]), name="static")

    json_domain_error = app.exception_handlers[DomainError]

    async def domain_error(request: Request, exc: DomainError):
        if _wants_page(request):
            from contact_center.web.session import user_from_cookie

            session = request.app.state.session_factory()
            try:
                user = user_from_cookie(request, session)
                return render(request, "error.html", user, status_code=exc.status_code, error=exc)
            finally:
                session.close()
        return await json_domain_error(request, exc)

    async def login_required(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(LoginRequired, login_required)
