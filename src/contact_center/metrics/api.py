"""GET /metrics (Prometheus text format) and GET /healthz."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from contact_center import __version__
from contact_center.metrics.access import MetricsAccess
from contact_center.metrics.database import DatabaseCollector
from contact_center.metrics.health import Health
from contact_center.routes import CheckedRoute
from contact_center.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"], route_class=CheckedRoute)


class Observability:
    """What one app's /metrics and /healthz need, built once."""

    def __init__(self, runtime: Runtime):
        self.access = MetricsAccess(runtime.settings)
        self.database = CollectorRegistry(auto_describe=False)  # this app's database, not the process's
        self.database.register(DatabaseCollector(runtime.engine, runtime.jobs))
        self.health = Health(runtime)

    def exposition(self) -> bytes:
        """The process's own figures, then the database's."""
        return generate_latest(REGISTRY) + generate_latest(self.database)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request):
    """Prometheus metrics: `Authorization: Bearer <CONTACT_CENTER_METRICS_TOKEN>` and/or an address in
    CONTACT_CENTER_METRICS_ALLOW; with neither configured, only this machine is answered."""
    observability: Observability = request.app.state.observability
    client = request.client.host if request.client else None
    refusal = observability.access.refusal(client, request.headers.get("authorization"))
    if refusal is not None:
        log.warning("metrics: refused a scrape from %s (%s)", client, refusal.key)
        body, headers = refusal.answer(request.headers.get("accept-language"))
        return JSONResponse(body, status_code=refusal.status, headers=headers)
    return Response(observability.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz(request: Request):
    """`database`, `queue` and `redis` (when configured), each `ok` or `error`; `checks` has each
    one's reason and latency. 200 when all are ok, else 503."""
    status, body = request.app.state.observability.health.report()
    return JSONResponse({**body, "version": __version__}, status_code=status)
