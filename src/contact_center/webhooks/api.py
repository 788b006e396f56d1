"""Provider callback endpoints: every route a registered provider declares (ProviderSpec.webhooks).

Routes several providers share (Kolmeya and its sandbox) are one endpoint; its handler is told
which providers it serves (Callback.accepted). WebhookFastPath serves them ahead of FastAPI; the
router only documents them (OpenAPI).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from contact_center.errors import DomainError
from contact_center.metrics import instruments
from contact_center.providers.base import ProviderSpec
from contact_center.providers.registry import PROVIDERS
from contact_center.routes import CheckedRoute
from contact_center.webhooks.desk import Answer, Callback, Handler, WebhookRoute

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    route: WebhookRoute
    accepted: dict[str, ProviderSpec]
    handle: Handler

    @cached_property
    def metric_labels(self) -> tuple[str, str]:
        """(provider, endpoint): the real provider whose route this is (its sandbox shares it), and
        "POST /kolmeya/webhook/reply"."""
        real = sorted(name for name, spec in self.accepted.items() if not spec.sandbox)
        return "+".join(real or sorted(self.accepted)), f"{self.route.method} {self.route.path}"

    @cached_property
    def received(self):
        return instruments.WEBHOOK_RECEIVED.labels(*self.metric_labels)  # bound once: callbacks come by thousands


def endpoints() -> dict[tuple[str, str], Endpoint]:
    """(method, path) → the endpoint serving it, for every provider's routes."""
    found: dict[tuple[str, str], Endpoint] = {}
    for spec in PROVIDERS.values():
        for route in spec.webhooks:
            key = (route.method, route.path)
            if key not in found:
                found[key] = Endpoint(route, {}, route.resolve())
            elif found[key].route.handler != route.handler:
                raise RuntimeError(f"{route.method} {route.path} is declared with two handlers")
            found[key].accepted[spec.name] = spec
    return found


def path_prefixes() -> tuple[str, ...]:
    """The first segment of every callback path ("/kolmeya/"): never a UI page."""
    return tuple(sorted({"/" + path.strip("/").split("/")[0] + "/" for _, path in endpoints()}))


def _answer(result: Answer | dict) -> Answer:
    return result if isinstance(result, Answer) else Answer(result)


def _documented(endpoint: Endpoint):
    async def serve(request: Request):
        answer = _answer(await endpoint.handle(
            Callback.from_scope(request.app, request.scope, request.receive, endpoint.accepted)))
        if isinstance(answer.body, dict):
            return JSONResponse(answer.body, status_code=answer.status)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    return serve


def build_router() -> APIRouter:
    router = APIRouter(tags=["provider webhooks"], route_class=CheckedRoute)
    for (method, path), endpoint in endpoints().items():
        serve = _documented(endpoint)
        serve.__name__ = f"{'_'.join(sorted(endpoint.accepted))}_{endpoint.route.name}_{method.lower()}_webhook"
        route = endpoint.route
        router.add_api_route(
            path, serve, methods=[method], summary=f"{route.summary} ({', '.join(sorted(endpoint.accepted))})",
            description=("Authenticated by the channel's `token` in the query string (copy the URL from the "
                         "channel's webhook settings). " if route.per_channel else "")
                        + "Replays are no-ops.",
        )
    return router


class WebhookFastPath:
    """Provider callbacks go straight to their handler, ahead of FastAPI itself (its telemetry
    checks, middlewares, exit stacks, dependency solving, route matching over every API route): a
    campaign's replies arrive by the thousand per second and should spend their time in the
    database, not in the framework. The app hands it every request first (see
    app.ContactCenterApp), so it answers its own errors."""

    def __init__(self, app):
        self.app = app
        self.endpoints = endpoints()

    async def serve(self, scope, receive, send) -> bool:
        """Answer `scope` when it is a provider callback; False leaves it to the app."""
        if scope["type"] != "http":
            return False
        endpoint = self.endpoints.get((scope["method"], scope.get("path")))
        if endpoint is None:
            return False
        headers = []
        started = time.perf_counter()
        labels = endpoint.metric_labels
        endpoint.received.inc()
        try:
            answer = _answer(await endpoint.handle(Callback.from_scope(self.app, scope, receive, endpoint.accepted)))
        except ClientDisconnect:
            instruments.WEBHOOK_REJECTED.labels(*labels, "client_disconnected").inc()
            return True
        except DomainError as exc:
            answer = Answer({"error": exc.as_dict()}, exc.status_code)
            if exc.status_code == 401:
                headers.append((b"www-authenticate", b"Bearer"))
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            answer = Answer({"error": {"code": "internal_error", "message": "the callback could not be handled; "
                                                                             "send it again"}}, 500)
        if answer.status >= 400:
            code = answer.body.get("error", {}).get("code") if isinstance(answer.body, dict) else None
            instruments.WEBHOOK_REJECTED.labels(*labels, code or f"http_{answer.status}").inc()
        payload = _ENCODER.encode(answer.body).encode() if isinstance(answer.body, dict) else answer.body
        headers += [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        instruments.REQUEST_LATENCY.labels(scope["method"], endpoint.route.path, str(answer.status)).observe(
            time.perf_counter() - started)
        await send({"type": "http.response.body", "body": payload})
        return True


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: it is per answer otherwise
