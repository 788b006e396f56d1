"""/metrics for `contact-center worker --metrics-port`: a worker has no web server, and what it does
(dispatch latency, provider errors) is counted only in its own process. The same rule as the web
app's /metrics decides who may read it; only the process's own figures are served (the database
totals come from any web process)."""

from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from contact_center.metrics import instruments  # noqa: F401  every metric listed from the first scrape
from contact_center.metrics.access import MetricsAccess
from contact_center.settings import Settings

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape would drown the worker's log
        pass


def metrics_app(access: MetricsAccess):
    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            message = "caminho desconhecido: este servidor de métricas só responde a GET /metrics"
            return [json.dumps({"error": {"code": "not_found", "message": message}}, ensure_ascii=False).encode()]
        refusal = access.refusal(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"))
        if refusal is not None:
            body, headers = refusal.answer(environ.get("HTTP_ACCEPT_LANGUAGE"))
            log.warning("metrics: refused a scrape from %s (%s)", environ.get("REMOTE_ADDR"), refusal.key)
            start_response("401 Unauthorized" if refusal.status == 401 else "403 Forbidden",
                           [("Content-Type", "application/json"), *headers.items()])
            return [json.dumps(body, ensure_ascii=False).encode()]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(REGISTRY)]

    return app


def start_metrics_server(settings: Settings, host: str, port: int) -> WSGIServer:
    """Serve /metrics on a daemon thread; returns the server (`server_address`, `shutdown()`)."""
    server = make_server(host, port, metrics_app(MetricsAccess(settings)), server_class=_Server,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("worker metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
