"""The operator web UI, served by the same app as the API: `install(app)` adds its routes."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from contact_center.web.session import LoginRequired

from contact_center.webhooks.api import path_prefixes

API_PREFIXES = ("/api/", "/events", "/docs", "/openapi", "/healthz", *path_prefixes())


def install(app: FastAPI) -> None:
    from contact_center.web import admin, audit, campaigns, contact_merge, contacts, live, pages, reports
    from contact_center.web import errors as error_pages

    app.include_router(pages.router)
    app.include_router(admin.router)
    app.include_router(campaigns.router)
    app.include_router(contacts.router)
    app.include_router(contact_merge.router)
    app.include_router(audit.router)
    app.include_router(live.router)
    app.include_router(reports.router)
    app.include_router(reports.api_router)
    app.mount("/static", StaticFiles(packages=[("contact_center.web", "static")]), name="static")

    error_pages.install(app)

    async def login_required(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
