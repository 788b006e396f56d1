"""A local Kolmeya: a real HTTP server speaking the Kolmeya SMS API, quirks included.

For development without a Kolmeya account (no credit spent) and for tests. It accepts sends,
keeps the balance, answers status and reply queries, and posts status and reply callbacks to our
server the way Kolmeya does, including the awkward parts: duplicate and out-of-order callbacks,
rate limits, opt-out lists. Everything lives in memory.

Endpoints under /_sandbox/ are not part of Kolmeya's API; they inspect and steer the sandbox:
  GET  /_sandbox/ledger   every accepted message with its status history, replies, callbacks
  GET  /_sandbox/config   current settings
  POST /_sandbox/config   change settings (see SandboxConfig) and queue forced failures
  POST /_sandbox/reply    a customer answers: {"phone", "text", "reference"?, "shape"?, "deliver"?, "ago_seconds"?}
  POST /_sandbox/status   Kolmeya's record of a message changes, no callback sent: {"reference" | "id", "code"}
  POST /_sandbox/reset    forget everything and return to the settings given at start
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from contact_center.messaging.segments import count_segments
from contact_center.providers.local_server import LocalServer, control_error, json_object, pydantic_message
from contact_center.money import brl_digits

from .webhooks import BRAZIL_TZ, STATUS_TEXTS

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_sandbox"
MAX_ITEMS = 1000
STORE_BUCKETS = ("valids", "invalids", "duplicates", "blacklist", "not_disturb")
SEGMENTS = [{"id": 109, "name": "CORPORATIVO"}, {"id": 110, "name": "COBRANCA"}]
APIS = [{"id": 47, "name": "Kolmeya"}]
FORCEABLE_ERRORS = (401, 403, 404, 422, 429, 500, 502, 503)
# Besides the HTTP errors: "timeout" stalls the answer, "html" answers 200 with a non-JSON page,
# "garbage" answers 200 with JSON of a shape no endpoint has.
FORCEABLE_MODES = ("timeout", "html", "garbage")
MAX_REPORT_ROWS = 30_000
MAX_REPORT_DAYS = 7
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M"
_MAINTENANCE_PAGE = "<html><body><h1>Em manutenção</h1></body></html>"

# Kolmeya accepts formatting characters but refuses a leading '+'; after dropping the formatting,
# a Brazilian number is 55 + area code + 8 or 9 digits.
_FORMATTING = re.compile(r"[\s().-]")
_VALID_PHONE = re.compile(r"55\d{10,11}")


class SandboxConfig(BaseModel):
    """Settings; every field can be given to create_sandbox_app() or POST /_sandbox/config."""

    model_config = ConfigDict(extra="forbid")

    reply_webhook_url: str | None = None
    status_webhook_url: str | None = None  # used when /sms/store carries no webhook_url
    callback_shape: Literal["flat", "batch"] = "flat"
    reply_shape: Literal["flat", "nested"] = "flat"
    status_delay_seconds: float = Field(1.0, ge=0)  # pause before each status step
    status_progression: list[int] = [1, 2]  # non-final codes reported before the final one
    default_final_code: int = Field(3, ge=3, le=6)
    final_codes: dict[str, int] = {}  # phone (55 + digits) -> final code 3..6
    duplicate_callback_probability: float = Field(0.0, ge=0, le=1)
    # A status callback Kolmeya never sends (webhooks are not guaranteed): only polling tells.
    drop_status_callback_probability: float = Field(0.0, ge=0, le=1)
    out_of_order_probability: float = Field(0.0, ge=0, le=1)  # final callback before the previous
    random_seed: int | None = None
    callback_attempts: int = Field(3, ge=1)
    callback_retry_delay_seconds: float = Field(0.5, ge=0)
    balance: Decimal = Decimal("9396.84")  # setting it replaces the live balance
    price_per_segment: Decimal = Field(Decimal("0.08"), ge=0)
    rate_limit: int = Field(1000, ge=1)  # requests per window, on /api/v1 only
    rate_limit_window_seconds: float = Field(60.0, gt=0)
    blacklist: list[str] = []  # setting it replaces the live list
    not_disturb: list[str] = []
    replies_per_page: int = Field(15, ge=1)
    timeout_sleep_seconds: float = Field(20.0, ge=0)  # how long a forced "timeout" stalls
    send_delay_seconds: float = Field(0.0, ge=0, le=30)  # each /sms/store answers this much later: a slow Kolmeya
    fail_only: list[str] | None = None  # only calls to these endpoints (e.g. "/sms/store") take forced failures
    # 0 turns it off: then the sandbox keeps every copy it is sent, as nobody knows whether Kolmeya drops them
    duplicate_window_seconds: float = Field(300.0, ge=0)  # same phone + text within it = duplicate

    @field_validator("status_progression")
    @classmethod
    def _non_final_codes(cls, codes: list[int]) -> list[int]:
        if any(code not in (1, 2) for code in codes):
            raise ValueError("only the non-final codes 1 and 2 can come before the final code")
        return codes

    @field_validator("final_codes")
    @classmethod
    def _final_codes(cls, codes: dict[str, int]) -> dict[str, int]:
        if any(code not in (3, 4, 5, 6) for code in codes.values()):
            raise ValueError("final codes are 3 (delivered), 4 (not delivered), 5 (rejected) or 6 (expired)")
        return codes


@dataclass
class _Message:
    id: str
    request_id: str
    reference: str | None
    phone: str
    text: str
    segments: int
    cost: Decimal
    created_at: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        return self.history[-1]["code"]

    def set_status(self, code: int) -> None:
        self.history.append({"code": code, "status": STATUS_TEXTS[code], "at": _iso(time.time())})

    def status_item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reference": self.reference,
            "status": STATUS_TEXTS[self.status_code],
            "status_code": self.status_code,
            "phone": self.phone,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "reference": self.reference,
            "phone": self.phone,
            "text": self.text,
            "segments": self.segments,
            "cost": str(self.cost),
            "status_code": self.status_code,
            "status": STATUS_TEXTS[self.status_code],
            "history": list(self.history),
            "created_at": _iso(self.created_at),
        }


@dataclass
class _SendRequest:
    id: str
    reference: str | None
    webhook_url: str | None
    messages: list[_Message]
    segment_id: int = 109


@dataclass
class _Reply:
    received: float
    item: dict[str, Any]  # as listed by /sms/replys


class Sandbox:
    """State and behaviour behind the app. All of it runs on the server's event loop."""

    def __init__(self, token: str, config: SandboxConfig):
        self.token = token
        self._initial_config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._endpoints: dict[str, Callable[[dict[str, Any], Request], Response]] = {
            "/sms/store": self._store,
            "/sms/balance": lambda body, request: JSONResponse({"balance": format_brl(self.balance)}),
            "/sms/status/request": self._request_status,
            "/sms/status/message": self._message_status,
            "/sms/replys": self._replies,
            "/sms/reports/statuses": self._report_statuses,
            "/sms/segments": lambda body, request: JSONResponse({"segments": SEGMENTS}),
            "/sms/apis": lambda body, request: JSONResponse(APIS),
            "/blacklist/store": self._blacklist_store,
            "/blacklist/destroy": self._blacklist_destroy,
        }
        self._restore()

    def _restore(self) -> None:
        self.config = self._initial_config.model_copy(deep=True)
        self.balance = self.config.balance
        self.blacklist = {_digits(p) for p in self.config.blacklist}
        self.not_disturb = {_digits(p) for p in self.config.not_disturb}
        self.rng = random.Random(self.config.random_seed)
        self.fail_next: deque[int | str] = deque()
        self.messages: dict[str, _Message] = {}
        self.requests: dict[str, _SendRequest] = {}
        self.replies: list[_Reply] = []
        self.callbacks: list[dict[str, Any]] = []
        self.api_calls: list[dict[str, Any]] = []
        self._last_sent: dict[tuple[str, str], float] = {}
        self._window_reset = 0.0
        self._window_used = 0

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- the Kolmeya API ---------------------------------------------------------------------

    async def api(self, request: Request) -> Response:
        allowed, limit_headers = self._take_rate_slot()
        response = await self._api_response(request, allowed, limit_headers)
        response.headers.update(limit_headers)
        self.api_calls.append(
            {
                "method": request.method,
                "path": request.url.path,
                "status_code": response.status_code,
                "at": _iso(time.time()),
            }
        )
        return response

    async def _api_response(self, request: Request, allowed: bool, limit_headers: dict[str, str]) -> Response:
        only = self.config.fail_only
        targeted = only is None or request.url.path.removeprefix(API_PREFIX) in only
        forced = self.fail_next.popleft() if self.fail_next and targeted else None
        if forced == "timeout":
            # As a slow Kolmeya does: the request is carried out, the answer comes too late.
            response = await self._handle(request, allowed, limit_headers)
            await asyncio.sleep(self.config.timeout_sleep_seconds)
            return response
        if forced == "html":
            return HTMLResponse(_MAINTENANCE_PAGE)
        if forced == "garbage":
            return JSONResponse({"mensagens": "relatório indisponível", "data": [None]})
        if forced is not None:
            return _forced_error(int(forced), limit_headers)
        if self.config.send_delay_seconds and request.url.path.endswith("/sms/store"):
            await asyncio.sleep(self.config.send_delay_seconds)
        return await self._handle(request, allowed, limit_headers)

    async def _handle(self, request: Request, allowed: bool, limit_headers: dict[str, str]) -> Response:
        if not allowed:
            return JSONResponse({"errors": ["Too Many Requests"]}, 429, headers=_retry_after(limit_headers))
        handler = self._endpoints.get(request.url.path.removeprefix(API_PREFIX))
        if request.method != "POST" or handler is None:
            return _not_found()
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return JSONResponse({"errors": ["Unauthenticated."]}, 401)
        try:
            body = await request.json()
        except ValueError:
            body = {}  # Laravel reads an unreadable body as no input
        return handler(body if isinstance(body, dict) else {}, request)

    def _take_rate_slot(self) -> tuple[bool, dict[str, str]]:
        now = time.time()
        if now >= self._window_reset:
            self._window_reset = now + self.config.rate_limit_window_seconds
            self._window_used = 0
        allowed = self._window_used < self.config.rate_limit
        if allowed:
            self._window_used += 1
        headers = {
            "X-RateLimit-Limit": str(self.config.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.config.rate_limit - self._window_used)),
            "X-RateLimit-Reset": str(math.ceil(self._window_reset)),
        }
        return allowed, headers

    def _store(self, body: dict[str, Any], request: Request) -> Response:
        items = body.get("messages")
        if not isinstance(items, list) or not items:
            return _invalid({"messages": ["The messages field is required."]})
        if len(items) > MAX_ITEMS:
            return _invalid({"messages": [f"The messages field must not have more than {MAX_ITEMS} items."]})
        errors: dict[str, list[str]] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                errors[f"messages.{index}"] = [f"The messages.{index} field must be an array."]
                continue
            if item.get("phone") in (None, ""):
                errors[f"messages.{index}.phone"] = [f"The messages.{index}.phone field is required."]
            if not isinstance(item.get("message"), str) or not item["message"]:
                errors[f"messages.{index}.message"] = [f"The messages.{index}.message field is required."]
        for key, known in (("tenant_segment_id", SEGMENTS), ("sms_api_id", APIS)):
            if key in body and str(body[key]) not in {str(entry["id"]) for entry in known}:
                errors[key] = [f"The selected {key.replace('_', ' ')} is invalid."]
        if errors:
            return _invalid(errors)

        now = time.time()
        send = _SendRequest(
            id=str(uuid.uuid4()),
            reference=body.get("reference"),
            webhook_url=body.get("webhook_url") or self.config.status_webhook_url,
            messages=[],
            segment_id=int(body.get("tenant_segment_id") or SEGMENTS[0]["id"]),
        )
        answer: dict[str, Any] = {"id": send.id, "reference": send.reference}
        answer.update({bucket: [] for bucket in STORE_BUCKETS})
        for item in items:
            raw_phone, text, reference = item["phone"], item["message"], item.get("reference")
            phone = _FORMATTING.sub("", str(raw_phone))
            if not _VALID_PHONE.fullmatch(phone):
                answer["invalids"].append(
                    {"phone": raw_phone, "message": text, "reference": reference, "error": "Número inválido"}
                )
                continue
            if phone in self.blacklist:
                answer["blacklist"].append({"phone": int(phone), "reference": reference})
                continue
            if phone in self.not_disturb:
                answer["not_disturb"].append({"phone": int(phone), "reference": reference})
                continue
            last = self._last_sent.get((phone, text))
            if last is not None and now - last < self.config.duplicate_window_seconds:
                answer["duplicates"].append({"phone": int(phone), "reference": reference})
                continue
            self._last_sent[(phone, text)] = now
            segments = count_segments(text).segments
            message = _Message(
                id=str(uuid.uuid4()),
                request_id=send.id,
                reference=reference,
                phone=phone,
                text=text,
                segments=segments,
                cost=self.config.price_per_segment * segments,
                created_at=now,
            )
            message.set_status(1)
            self.messages[message.id] = message
            self.balance -= message.cost
            send.messages.append(message)
            # Quirk kept on purpose: the phone comes back as an integer without the 55.
            answer["valids"].append({"id": message.id, "phone": int(phone[2:]), "reference": reference})
        self.requests[send.id] = send
        if send.messages:
            self._spawn(self._progress(send))
        return JSONResponse(answer)

    def _request_status(self, body: dict[str, Any], request: Request) -> Response:
        # By Kolmeya's request id, or by the reference the request was sent with (the newest
        # request with it): how a client asks about a send whose answer it never got.
        if body.get("id"):
            send = self.requests.get(str(body["id"]))
        elif body.get("reference"):
            reference = str(body["reference"])
            send = next((s for s in reversed(self.requests.values())
                         if s.reference is not None and str(s.reference) == reference), None)
        else:
            return _invalid({"id": ["The id field is required when reference is not present."]})
        if send is None:
            return _not_found()
        return JSONResponse(
            {
                "id": send.id,
                "status": "Válido",
                "status_code": 2,
                "reference": send.reference,
                "messages": [message.status_item() for message in send.messages],
            }
        )

    def _report_statuses(self, body: dict[str, Any], request: Request) -> Response:
        """The status report, from the ledger: every message sent in [start_at, end_at] (Brazil's
        time, whole minutes), oldest first, at most `limit`. Which of Kolmeya's ids `job` and
        `lote` really are is not published; here `job` is the request's id and `lote` its reference."""
        errors: dict[str, list[str]] = {}
        bounds = {}
        for key in ("start_at", "end_at"):
            try:
                bounds[key] = datetime.strptime(str(body.get(key) or ""), REPORT_TIME_FORMAT).replace(tzinfo=BRAZIL_TZ)
            except ValueError:
                errors[key] = [f"The {key.replace('_', ' ')} field must match the format Y-m-d H:i."]
        limit = body.get("limit", MAX_REPORT_ROWS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REPORT_ROWS:
            errors["limit"] = [f"The limit field must be between 1 and {MAX_REPORT_ROWS}."]
        if not errors and bounds["end_at"] < bounds["start_at"]:
            errors["end_at"] = ["The end at field must be a date after or equal to start at."]
        elif not errors and bounds["end_at"] - bounds["start_at"] > timedelta(days=MAX_REPORT_DAYS):
            errors["end_at"] = [f"The period must not be longer than {MAX_REPORT_DAYS} days."]
        if errors:
            return _invalid(errors)
        segment = body.get("tenant_segment_id")
        start, end = bounds["start_at"].timestamp(), bounds["end_at"].timestamp() + 60  # end_at's whole minute
        names = {entry["id"]: entry["name"] for entry in SEGMENTS}
        rows = []
        for send in self.requests.values():
            if segment is not None and str(segment) != str(send.segment_id):
                continue
            for message in send.messages:
                if start <= message.created_at < end:
                    rows.append((message.created_at, send, message))
        rows.sort(key=lambda row: row[0])
        return JSONResponse({"messages": [
            {
                "telefone": message.phone,
                "nome": None,
                "cpf": None,
                "mensagem": message.text,
                "status": STATUS_TEXTS[message.status_code],
                "enviada_em": datetime.fromtimestamp(created, tz=BRAZIL_TZ).strftime("%d/%m/%Y %H:%M"),
                "lote": send.reference,
                "job": send.id,
                "centro_custo": names.get(send.segment_id),
                "api": APIS[0]["name"],
                "broker": "sandbox",
                "produto": "SMS",
            }
            for created, send, message in rows[:limit]
        ]})

    def _message_status(self, body: dict[str, Any], request: Request) -> Response:
        if not body.get("id"):
            return _invalid({"id": ["The id field is required."]})
        message = self.messages.get(str(body["id"]))
        return JSONResponse(message.status_item()) if message else _not_found()

    def _replies(self, body: dict[str, Any], request: Request) -> Response:
        period = body.get("period", 24)
        if isinstance(period, str) and period.isdigit():
            period = int(period)  # Laravel's integer rule accepts numeric strings
        if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 168:
            return _invalid({"period": ["The period field must be between 1 and 168."]})
        try:
            page = max(1, int(body.get("page") or request.query_params.get("page") or 1))
        except (TypeError, ValueError):
            page = 1
        since = time.time() - period * 3600
        listed = [reply.item for reply in reversed(self.replies) if reply.received >= since]
        per_page = self.config.replies_per_page
        last_page = max(1, math.ceil(len(listed) / per_page))
        chunk = listed[(page - 1) * per_page : page * per_page]
        path = str(request.url.replace(query=""))
        first = (page - 1) * per_page + 1
        return JSONResponse(
            {
                "current_page": page,
                "data": chunk,
                "first_page_url": f"{path}?page=1",
                "from": first if chunk else None,
                "last_page": last_page,
                "last_page_url": f"{path}?page={last_page}",
                "next_page_url": f"{path}?page={page + 1}" if page < last_page else None,
                "path": path,
                "per_page": per_page,
                "prev_page_url": f"{path}?page={page - 1}" if page > 1 else None,
                "to": first + len(chunk) - 1 if chunk else None,
                "total": len(listed),
            }
        )

    def _blacklist_store(self, body: dict[str, Any], request: Request) -> Response:
        phones, error = _blacklist_phones(body)
        if error:
            return error
        self.blacklist.update(phones)
        return Response(status_code=201)

    def _blacklist_destroy(self, body: dict[str, Any], request: Request) -> Response:
        phones, error = _blacklist_phones(body)
        if error:
            return error
        self.blacklist.difference_update(phones)
        return Response(status_code=204)

    # --- status callbacks --------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference, or the task may be garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _progress(self, send: _SendRequest) -> None:
        """Walk the request's messages through the configured codes, posting a callback per step."""
        config = self.config  # settings at send time apply to the whole progression
        steps: list[list[tuple[_Message, int]]] = [
            [(message, code) for message in send.messages] for code in config.status_progression
        ]
        steps.append(
            [(m, config.final_codes.get(m.phone, config.default_final_code)) for m in send.messages]
        )
        # Out of order: hold back the step before the final one and post it after the final.
        reorder = len(steps) > 1 and self.rng.random() < config.out_of_order_probability
        held: list[dict[str, Any]] = []
        for index, step in enumerate(steps):
            await asyncio.sleep(config.status_delay_seconds)
            for message, code in step:
                if code != message.status_code:
                    message.set_status(code)
            payloads = self._status_payloads(send, step, config.callback_shape)
            if reorder and index == len(steps) - 2:
                held = payloads
                continue
            if index == len(steps) - 1:
                payloads += held
            for payload in payloads:
                await self._post_status(send.webhook_url, payload, config)

    @staticmethod
    def _status_payloads(
        send: _SendRequest, step: list[tuple[_Message, int]], shape: str
    ) -> list[dict[str, Any]]:
        items = [
            {
                "id": message.id,
                "reference": message.reference,
                "status": STATUS_TEXTS[code],
                "status_code": code,
                "phone": message.phone,
            }
            for message, code in step
        ]
        if shape == "batch":
            return [{"id": send.id, "reference": send.reference, "messages": items}]
        return items

    async def _post_status(self, url: str | None, payload: dict[str, Any], config: SandboxConfig) -> None:
        if not url:
            return
        if self.rng.random() < config.drop_status_callback_probability:
            self.callbacks.append({"kind": "status", "url": url, "payload": payload, "dropped": True,
                                   "at": _iso(time.time())})
            return
        await self._deliver("status", url, payload, config)
        if self.rng.random() < config.duplicate_callback_probability:
            await self._deliver("status", url, payload, config)

    async def _deliver(
        self, kind: str, url: str, payload: dict[str, Any], config: SandboxConfig
    ) -> dict[str, Any]:
        """POST one callback, retrying a few times; every attempt is recorded in the ledger."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        record: dict[str, Any] = {}
        for attempt in range(1, config.callback_attempts + 1):
            record = {
                "kind": kind, "url": url, "payload": payload, "attempt": attempt, "at": _iso(time.time())
            }
            try:
                response = await self._http.post(url, json=payload)
                record["status_code"] = response.status_code
                ok = response.is_success
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                ok = False
            self.callbacks.append(record)
            if ok:
                return record
            logger.warning(
                "Kolmeya sandbox could not deliver a %s callback to %s (attempt %d of %d): %s",
                kind,
                _without_query(url),
                attempt,
                config.callback_attempts,
                record.get("error") or f"HTTP {record.get('status_code')}",
            )
            if attempt < config.callback_attempts:
                await asyncio.sleep(config.callback_retry_delay_seconds)
        return record

    # --- control endpoints -------------------------------------------------------------------

    async def ledger(self, request: Request) -> Response:
        return JSONResponse(
            {
                "balance": format_brl(self.balance),
                "messages": [message.as_dict() for message in self.messages.values()],
                "requests": [
                    {"id": s.id, "reference": s.reference, "message_ids": [m.id for m in s.messages]}
                    for s in self.requests.values()
                ],
                "replies": [reply.item for reply in self.replies],
                "callbacks": [{**record, "url": masked_url(record["url"])} for record in self.callbacks],
                "api_calls": self.api_calls,
                "blacklist": sorted(self.blacklist),
                "not_disturb": sorted(self.not_disturb),
            }
        )

    async def get_config(self, request: Request) -> Response:
        return JSONResponse(self._config_view())

    async def set_config(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return control_error("send a JSON object of settings; GET /_sandbox/config lists them")
        fail_next = body.pop("fail_next", None)
        if fail_next is not None:
            failures = fail_next if isinstance(fail_next, list) else [fail_next]
            if any(f not in FORCEABLE_MODES and f not in FORCEABLE_ERRORS for f in failures):
                return control_error(
                    f"fail_next: expected a list of HTTP codes {list(FORCEABLE_ERRORS)} "
                    f"or modes {list(FORCEABLE_MODES)}, got {fail_next!r}"
                )
        try:
            config = SandboxConfig.model_validate({**self.config.model_dump(), **body})
        except ValidationError as exc:
            return control_error("; ".join(pydantic_message(e) for e in exc.errors()))
        self.config = config
        if "balance" in body:
            self.balance = config.balance
        if "blacklist" in body:
            self.blacklist = {_digits(p) for p in config.blacklist}
        if "not_disturb" in body:
            self.not_disturb = {_digits(p) for p in config.not_disturb}
        if "random_seed" in body:
            self.rng = random.Random(config.random_seed)
        if fail_next is not None:
            self.fail_next = deque(failures)
        return JSONResponse(self._config_view())

    async def reply(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None or not body.get("phone") or not isinstance(body.get("text"), str):
            return control_error(
                'send {"phone": "5511900000001", "text": "Oi", "reference"?: "...", '
                '"shape"?: "flat"|"nested", "deliver"?: true, "webhook_url"?: "...", "ago_seconds"?: 0}'
            )
        ago = body.get("ago_seconds", 0)
        if isinstance(ago, bool) or not isinstance(ago, (int, float)) or ago < 0:
            return control_error("ago_seconds: expected how many seconds ago the customer replied, a number >= 0")
        phone = _digits(str(body["phone"]))
        original = self._original_for(phone, body.get("reference"))
        if original is None:
            answered = "with that reference" if body.get("reference") else f"to {phone}"
            return control_error(
                f"the sandbox has sent no SMS {answered}; send one first "
                "(a Kolmeya reply always answers an SMS we sent)",
                409,
            )
        shape = body.get("shape") or self.config.reply_shape
        if shape not in ("flat", "nested"):
            return control_error('shape: expected "flat" or "nested"')
        deliver = body.get("deliver", True)
        url = body.get("webhook_url") or self.config.reply_webhook_url
        if deliver and not url:
            return control_error(
                "no reply webhook URL: set reply_webhook_url with POST /_sandbox/config, pass "
                '"webhook_url", or pass "deliver": false to only list the reply in /sms/replys',
                409,
            )

        received = time.time() - ago  # when Kolmeya got it from the customer
        local = datetime.fromtimestamp(received, tz=BRAZIL_TZ)
        item = {
            "id": str(uuid.uuid4()),
            "reply": body["text"],
            "received_at": local.strftime("%d/%m/%Y %H:%M:%S"),
            "message": {
                "id": original.id,
                "reference": original.reference,
                "phone": original.phone,
                "content": original.text,
            },
        }
        self.replies.append(_Reply(received=received, item=item))
        if shape == "nested":
            payload: dict[str, Any] = {"reply": item}
        else:
            payload = {
                "phone": original.phone,
                "message": body["text"],
                "reference": original.reference,
                "data": local.strftime("%Y-%m-%d %H:%M:%S"),
            }
        delivery = await self._deliver("reply", url, payload, self.config) if deliver else None
        if delivery is not None:
            delivery = {**delivery, "url": masked_url(delivery["url"])}
        return JSONResponse({"reply": item, "payload": payload, "delivery": delivery})

    async def set_status(self, request: Request) -> Response:
        body = await json_object(request)
        code = body.get("code") if body else None
        known = not isinstance(code, bool) and code in STATUS_TEXTS
        if body is None or not known or not (body.get("id") or body.get("reference")):
            return control_error('send {"id" or "reference": "...", "code": 1..6}')
        if body.get("id"):
            message = self.messages.get(str(body["id"]))
        else:
            message = next((m for m in reversed(list(self.messages.values()))
                            if m.reference == str(body["reference"])), None)
        if message is None:
            return control_error("the sandbox has no such message", 404)
        message.set_status(code)
        return JSONResponse(message.as_dict())

    async def reset(self, request: Request) -> Response:
        for task in list(self._tasks):
            task.cancel()
        self._restore()
        return JSONResponse({"status": "reset"})

    def _original_for(self, phone: str, reference: Any) -> _Message | None:
        candidates = reversed(list(self.messages.values()))
        if reference:
            return next((m for m in candidates if m.reference == str(reference)), None)
        return next((m for m in candidates if m.phone == phone), None)

    def _config_view(self) -> dict[str, Any]:
        view = self.config.model_dump(mode="json")
        for key in ("reply_webhook_url", "status_webhook_url"):
            view[key] = masked_url(view[key])
        view.update(
            balance=format_brl(self.balance),
            blacklist=sorted(self.blacklist),
            not_disturb=sorted(self.not_disturb),
            fail_next=list(self.fail_next),
        )
        return view


def create_sandbox_app(
    token: str = "sandbox-token",
    *,
    reply_webhook_url: str | None = None,
    status_webhook_url: str | None = None,
    **settings: Any,
) -> Starlette:
    """The sandbox as an ASGI app. `settings` are SandboxConfig fields (unknown names raise)."""
    config = SandboxConfig(
        reply_webhook_url=reply_webhook_url, status_webhook_url=status_webhook_url, **settings
    )
    sandbox = Sandbox(token, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _not_found()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route(f"{API_PREFIX}/{{path:path}}", sandbox.api, methods=methods),
            Route(f"{CONTROL_PREFIX}/ledger", sandbox.ledger, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/config", sandbox.get_config, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/config", sandbox.set_config, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/reply", sandbox.reply, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/status", sandbox.set_status, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/reset", sandbox.reset, methods=["POST"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app


def run_sandbox(host: str = "127.0.0.1", port: int = 8900, **options: Any) -> None:
    """Serve the sandbox until interrupted (for `contact-center sandbox kolmeya`)."""
    app = create_sandbox_app(**options)
    base = f"http://{host}:{port}"
    logger.info(
        "Kolmeya sandbox: API at %s%s (token %r), controls at %s%s",
        base, API_PREFIX, app.state.sandbox.token, base, CONTROL_PREFIX,
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


class SandboxServer(LocalServer):
    """Runs the sandbox on a free local port in a background thread; for tests.

        with SandboxServer(status_delay_seconds=0.05) as sandbox:
            client = KolmeyaClient(sandbox.token, base_url=sandbox.base_url)
    """

    name = "Kolmeya sandbox"
    control_prefix = CONTROL_PREFIX

    def __init__(
        self, token: str = "sandbox-token", *, host: str = "127.0.0.1", port: int = 0, **options: Any
    ):
        super().__init__(create_sandbox_app(token, **options), host=host, port=port)
        self.token = token

    @property
    def base_url(self) -> str:
        return self.root_url + API_PREFIX

    # Conveniences over the control endpoints.
    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._control("POST", "/config", settings)

    def ledger(self) -> dict[str, Any]:
        return self._control("GET", "/ledger")

    def reset(self) -> None:
        self._control("POST", "/reset", {})

    def reply(self, phone: str, text: str, **extra: Any) -> dict[str, Any]:
        return self._control("POST", "/reply", {"phone": phone, "text": text, **extra})

    def set_status(self, code: int, *, reference: str | None = None, id: str | None = None) -> dict[str, Any]:
        return self._control("POST", "/status", {"code": code, "reference": reference, "id": id})


def format_brl(amount: Decimal) -> str:
    """Kolmeya's balance format, no space after R$: Decimal("9396.84") -> "R$9.396,84", "-R$5,00"."""
    return f"{'-' if amount < 0 else ''}R${brl_digits(amount)}"


def _blacklist_phones(body: dict[str, Any]) -> tuple[set[str], Response | None]:
    entries = body.get("phones")
    if not isinstance(entries, list) or not entries:
        return set(), _invalid({"phones": ["The phones field is required."]})
    if len(entries) > MAX_ITEMS:
        return set(), _invalid({"phones": [f"The phones field must not have more than {MAX_ITEMS} items."]})
    phones = set()
    for index, entry in enumerate(entries):
        phone = entry.get("phone") if isinstance(entry, dict) else None
        if phone in (None, ""):
            field = f"phones.{index}.phone"
            return set(), _invalid({field: [f"The {field} field is required."]})
        phones.add(_digits(str(phone)))
    return phones, None


def _invalid(errors: dict[str, list[str]]) -> JSONResponse:
    """Laravel's 422: the first message, a count of the rest, and every error by field."""
    first = next(iter(errors.values()))[0]
    others = sum(len(messages) for messages in errors.values()) - 1
    message = first + (f" (and {others} more error{'s' if others > 1 else ''})" if others else "")
    return JSONResponse({"message": message, "errors": errors}, 422)


def _not_found() -> JSONResponse:
    return JSONResponse({"errors": ["Not found."]}, 404)


def _forced_error(status: int, limit_headers: dict[str, str]) -> JSONResponse:
    if status == 401:
        return JSONResponse({"errors": ["Unauthenticated."]}, 401)
    if status == 404:
        return _not_found()
    if status == 422:
        return _invalid({"messages": ["The messages field is required."]})
    if status == 429:
        limit_headers["X-RateLimit-Remaining"] = "0"
        return JSONResponse({"errors": ["Too Many Requests"]}, 429, headers=_retry_after(limit_headers))
    if status >= 500:
        return JSONResponse({"message": "Server Error"}, status)
    return JSONResponse({"errors": ["This action is unauthorized."]}, status)


def _retry_after(limit_headers: dict[str, str]) -> dict[str, str]:
    seconds = max(1, math.ceil(int(limit_headers["X-RateLimit-Reset"]) - time.time()))
    return {"Retry-After": str(seconds)}


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def masked_url(url: str | None) -> str | None:
    """`url` with its secrets masked: our callback URLs carry the channel's webhook secret in
    `token`, and the inspection endpoints answer anyone who can reach the sandbox."""
    if not url:
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [pair.partition("=") for pair in parts.query.split("&")]
    query = "&".join(key + equals + ("***" if equals and key.lower() in _SECRET_PARAMETERS else value)
                     for key, equals, value in pairs)
    return urlunsplit(parts._replace(query=query))


_SECRET_PARAMETERS = {"token", "secret", "key", "api_key", "access_token"}


def _without_query(url: str) -> str:
    # Our callback URLs carry a secret in the query string; keep it out of the log.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()
