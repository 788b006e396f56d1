"""The report pages (supervisors and admins): one page a report with its filters, each chart with
its table beside it, a CSV a table (`/reports/<name>.csv?section=<table>`, or `?format=csv`), and
the same figures as JSON at `/api/reports/<name>` for API tokens. They only read."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from contact_center.auth.models import User
from contact_center.campaigns.models import Campaign
from contact_center.channels import service as channels
from contact_center.db import READ_ONLY
from contact_center.deps import DbSession
from contact_center.errors import InvalidInput, NotFound
from contact_center.reports import charts, tables
from contact_center.reports.period import Filters, ReportInputError, parse_filters
from contact_center.reports.queries import NAMES, REPORTS
from contact_center.routes import CheckedRoute
from contact_center.web.admin import SupervisorPageUser
from contact_center.web.i18n import page_language, pick, translator
from contact_center.web.rendering import render
from contact_center.web.session import SupervisorOperator

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False, route_class=CheckedRoute)
api_router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=CheckedRoute)
FILTER_CHOICES = 200  # campaigns offered in the filter: the latest ones


def _invalid(error: ReportInputError, t) -> InvalidInput:
    return InvalidInput(t(error.key, field=error.field, **error.params), field=error.field)


def _report(name: str, t):
    if name not in REPORTS:
        raise NotFound(t("reports.error.unknown", name=name[:40], names=", ".join(NAMES)))
    return REPORTS[name]


def compute(request: Request, name: str, filters: Filters):
    """The report's sections, read in a session of their own that never takes SQLite's write lock
    (a report must not hold up the webhook writer), timed for on-call (each page has 300 ms)."""
    started = time.perf_counter()
    with request.app.state.session_factory() as session:
        session.connection(execution_options=READ_ONLY)
        sections = REPORTS[name](session, filters)
    elapsed = (time.perf_counter() - started) * 1000
    log.log(logging.WARNING if elapsed > 300 else logging.DEBUG, "report %s %s–%s took %.0f ms", name,
            filters.start, filters.end, elapsed)
    return sections


def _csv(section: tables.Section, name: str, filters: Filters, t) -> Response:
    filename = f"{name}-{section.key}-{filters.start}-{filters.end}.csv"
    # A byte-order mark so that Excel, which most of our customers use, reads the accents right.
    return Response("\ufeff" + tables.csv_text(section, t), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _pick_section(sections, key: str, t) -> tables.Section:
    if not key:
        return sections[0]
    for section in sections:
        if section.key == key:
            return section
    raise InvalidInput(t("reports.error.section", value=key[:40], names=", ".join(s.key for s in sections)),
                       field="section")


def _choices(session) -> dict:
    campaigns = session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.id.desc())
                                .limit(FILTER_CHOICES)).all()
    operators = session.execute(select(User.id, User.name).order_by(User.name)).all()
    return {"channels": channels.list_channels(session), "campaigns": campaigns, "operators": operators}


@router.get("/reports")
def reports_home(request: Request, session: DbSession, user: SupervisorPageUser):
    return report_page("messages", request, session, user)


@router.get("/reports/{name}.csv")
def report_csv(name: str, request: Request, session: DbSession, user: SupervisorPageUser,
               section: str = Query("")):
    t = translator(page_language(request))
    _report(name, t)
    try:
        filters = parse_filters(request.query_params)
    except ReportInputError as error:
        raise _invalid(error, t) from None
    return _csv(_pick_section(compute(request, name, filters), section, t), name, filters, t)


@router.get("/reports/{name}")
def report_page(name: str, request: Request, session: DbSession, user: SupervisorPageUser):
    lang = page_language(request)
    t = translator(lang)
    _report(name, t)
    output = request.query_params.get("format", "")
    if output not in ("", "csv", "html"):
        raise InvalidInput(t("reports.error.format", value=output[:20]), field="format")
    try:
        filters = parse_filters(request.query_params)
    except ReportInputError as error:
        if output == "csv":
            raise _invalid(error, t) from None
        # The page again, the filters as typed, the mistake said where it is; nothing computed.
        return render(request, "reports.html", user, status_code=422, report=name, names=NAMES, sections=[],
                      filters=None, typed=request.query_params, error=t(error.key, field=error.field, **error.params),
                      error_field=error.field, active_nav="reports", **_choices(session))
    sections = compute(request, name, filters)
    if output == "csv":
        return _csv(_pick_section(sections, request.query_params.get("section", ""), t), name, filters, t)
    drawn = [{"section": s, "chart": charts.draw(s, t, lang),
              "cells": [[tables.cell(v, c, lang, t) for c, v in zip(s.columns, row)] for row in s.rows],
              "empty": not any(_counts(s))} for s in sections]
    return render(request, "reports.html", user, report=name, names=NAMES, sections=drawn, filters=filters,
                  typed=filters.query(), error=None, error_field=None, query=filters.query(),
                  active_nav="reports", **_choices(session))


def _counts(section: tables.Section):
    """The section's whole numbers: a table of zeros is an empty state, not a chart of nothing."""
    for row in section.rows:
        for column, value in zip(section.columns, row):
            if column.kind == "int" and value:
                yield value


@api_router.get("/{name}")
def report_json(name: str, request: Request, session: DbSession, user: SupervisorOperator):
    """A report's figures: one entry a table, its rows keyed by column (days ISO, rates 0–1,
    durations in seconds). Filters as on the page: start, end (YYYY-MM-DD, Brasília days; the last
    30 days by default), channel, campaign, operator (ids)."""
    lang = pick(request.headers.get("accept-language", "").split(",")[0].strip() or None)
    t = translator(lang)
    _report(name, t)
    try:
        filters = parse_filters(request.query_params)
    except ReportInputError as error:
        raise _invalid(error, t) from None
    sections = compute(request, name, filters)
    return {"report": name, "start": filters.start.isoformat(), "end": filters.end.isoformat(),
            "filters": {k: getattr(filters, f"{k}_id") for k in ("channel", "campaign", "operator")},
            "tables": {s.key: {"columns": [{"key": c.key, "kind": c.kind} for c in s.columns], "rows": s.as_dicts(lang)}
                       for s in sections}}
