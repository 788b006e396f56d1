"""A local WhatsApp Cloud API: a real HTTP server speaking the Graph calls the WhatsApp channel uses.

For development without a Meta account and for tests. It accepts sends, stores media, lists
templates, and posts signed webhooks to our server the way Meta does: the same envelope, non-ASCII
escaped in the signed bytes, statuses in any order, `delivered` sometimes missing, duplicates, and
the Brazilian 12-digit wa_id for older mobiles. Everything lives in memory. Any `vNN.N` version
is accepted; a wrong token gets Meta's 401 (code 190).

Graph API (Authorization: Bearer <token>):
  POST /{v}/{phone_number_id}/messages    text, template, image/document/audio/video/sticker,
                                          reaction, and mark-as-read ({"status": "read"})
  POST /{v}/{phone_number_id}/media       multipart upload (file, type, messaging_product)
  GET  /{v}/{media_id}                    {url, mime_type, sha256, file_size}; the url lasts
                                          media_url_ttl_seconds (5 minutes) and needs the token
  GET  /_media/{media_id}?sig=...         the bytes behind that url
  GET  /{v}/{waba_id}/message_templates   cursor-paged (limit, after)
  GET  /{v}/{phone_number_id}?fields=...  display_phone_number, verified_name, quality_rating, ...

Endpoints under /_sandbox/ are not Meta's; they inspect and steer the sandbox:
  GET  /_sandbox/ledger            every accepted send with its status history, reads, media,
                                   inbound messages, and each webhook POST with our answer
  GET  /_sandbox/config            current settings
  POST /_sandbox/config            change settings (see SandboxConfig); "fail_next": [131047,
                                   190, 130429, "timeout", "html", "http500", ...] fails the next
                                   Graph calls (only those named in "fail_only", if set)
  POST /_sandbox/inbound           a customer writes: {"from": "+55 48 99191-0234" | "user_id":
                                   "BR.…", "name", "username"?, "type": text|image|sticker|audio|
                                   voice|video|document|location|contacts|interactive|button|
                                   reaction|unsupported|edit|revoke|system, type fields ("text",
                                   "caption", "filename", "context", "emoji", "message_id",
                                   "latitude", "longitude", "location_name", "address", "button_id",
                                   "list_id", "title", "payload", "system", "new_phone",
                                   "new_user_id", "content_base64", ...),
                                   "messages": [...] several in one POST, "separate_entries"?,
                                   "deliver"?: true}
  POST /_sandbox/template_status   {"name", "language"?, "event": APPROVED|REJECTED|PAUSED|
                                   DISABLED, "reason"?}: a message_template_status_update webhook
  POST /_sandbox/user_preferences  {"from" | "user_id", "value": "stop"|"resume"}: marketing opt-out
  POST /_sandbox/reset             forget everything and return to the settings given at start
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import httpx
import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from contact_center.providers.local_server import LocalServer, control_error, json_object, pydantic_message
from contact_center.providers.whatsapp_cloud.client import BSUID
from contact_center.providers.whatsapp_cloud.webhooks import sign

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox"
MEDIA_PREFIX = "/_media"
STATUSES = ("sent", "delivered", "read")
FORCEABLE_MODES = ("timeout", "html", "http500", "http502", "http503")
FAILABLE_ENDPOINTS = ("messages", "media", "media_info", "download", "templates", "phone_number")
MESSAGE_TYPES = ("text", "template", "image", "document", "audio", "video", "sticker", "reaction")
INBOUND_TYPES = (
    "text", "image", "sticker", "audio", "voice", "video", "document", "location", "contacts",
    "interactive", "button", "reaction", "unsupported", "edit", "revoke", "system",
)
# Area codes whose mobiles all got the ninth digit in WhatsApp's records: São Paulo state,
# Rio de Janeiro and Espírito Santo. Elsewhere older accounts keep the 12-digit wa_id.
NINTH_DIGIT_AREAS = {*map(str, range(11, 20)), "21", "22", "24", "27", "28"}
_VERSION = re.compile(r"v\d+\.\d+")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")

# Meta's titles for the codes the sandbox produces.
ERROR_TITLES: dict[int, str] = {
    0: "AuthException",
    2: "Service temporarily unavailable",
    4: "Application request limit reached",
    10: "Permission denied",
    100: "Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131016: "Service unavailable",
    131026: "Message undeliverable",
    131031: "Account has been locked",
    131042: "Business eligibility payment issue",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages.",
    131051: "Message type unknown",
    131052: "Media download error",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template format character policy violated",
    132008: "Template parameter format mismatch",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is Paused",
    132016: "Template is Disabled",
    135000: "Generic user error",
}
_ERROR_DETAILS: dict[int, str] = {
    131026: "Message Undeliverable.",
    131047: "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number.",
    131050: "Recipient has opted out of marketing messages.",
    131051: "Message type is currently not supported.",
    131056: "Too many messages sent from this phone number to the same phone number in a short period.",
}

# A 1x1 PNG, so an image downloaded from the sandbox opens as one.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
_INBOUND_MEDIA: dict[str, tuple[str, bytes]] = {
    "image": ("image/jpeg", _PNG),
    "sticker": ("image/webp", b"RIFF\x1a\x00\x00\x00WEBPVP8 sandbox sticker"),
    "audio": ("audio/mpeg", b"ID3\x03\x00\x00\x00sandbox audio"),
    "voice": ("audio/ogg; codecs=opus", b"OggS\x00\x02sandbox voice note"),
    "video": ("video/mp4", b"\x00\x00\x00\x18ftypmp42sandbox video"),
    "document": ("application/pdf", b"%PDF-1.4\n% sandbox document\n%%EOF\n"),
}

BUILTIN_TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "900000000000001", "name": "cobranca_lembrete", "language": "pt_BR", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [
            {"type": "BODY", "text": "Olá {{1}}, sua fatura de {{2}} vence em {{3}}.",
             "example": {"body_text": [["Ana", "R$ 120,00", "10/12"]]}},
            {"type": "FOOTER", "text": "Contact Center"},
        ],
    },
    {
        "id": "900000000000002", "name": "boas_vindas", "language": "pt_BR", "status": "APPROVED",
        "category": "MARKETING", "parameter_format": "NAMED",
        "components": [
            {"type": "BODY", "text": "Olá {{first_name}}, boas-vindas! Responda esta mensagem se precisar de ajuda.",
             "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}},
        ],
    },
    {
        "id": "900000000000003", "name": "segunda_via_boleto", "language": "pt_BR", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://exemplo.com.br/boleto.png"]}},
            {"type": "BODY", "text": "Olá {{1}}, a segunda via do seu boleto está pronta.",
             "example": {"body_text": [["Ana"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Ver boleto", "url": "https://exemplo.com.br/boleto/{{1}}",
                 "example": ["https://exemplo.com.br/boleto/123"]},
            ]},
        ],
    },
    {
        "id": "900000000000004", "name": "promocao_relampago", "language": "pt_BR", "status": "REJECTED",
        "category": "MARKETING", "parameter_format": "POSITIONAL", "rejected_reason": "PROMOTIONAL",
        "components": [{"type": "BODY", "text": "Só hoje: {{1}}% de desconto em tudo!",
                        "example": {"body_text": [["30"]]}}],
    },
    {
        "id": "900000000000005", "name": "pesquisa_satisfacao", "language": "pt_BR", "status": "PAUSED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [
            {"type": "BODY", "text": "Como foi seu atendimento, {{1}}?", "example": {"body_text": [["Ana"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Ótimo"},
                                            {"type": "QUICK_REPLY", "text": "Ruim"}]},
        ],
    },
]


class SandboxConfig(BaseModel):
    """Settings; every field can be given to create_sandbox_app() or POST /_sandbox/config."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    app_secret: str = "sandbox-app-secret"
    waba_id: str = "100000000000001"
    phone_number_id: str = "100000000000002"
    display_phone_number: str = "5511900000099"
    verified_name: str = "Contact Center Sandbox"
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_1K"
    # Statuses reported after each accepted send, each after status_delay_seconds.
    status_script: list[str] = ["sent", "delivered", "read"]
    status_delay_seconds: float = Field(0.5, ge=0)
    out_of_order: bool = False  # post the script's callbacks last-first (the ledger keeps the truth)
    duplicate_callbacks: bool = False  # post every status callback twice
    status_batch: bool = False  # all statuses of a send in one POST
    fail_with: int | None = None  # every send then ends in a `failed` status with this code
    fail_numbers: dict[str, int] = {}  # recipient digits -> code of its `failed` status
    not_on_whatsapp: list[str] = []  # digits; sends to them fail with 131026
    wa_ids: dict[str, str] = {}  # input digits -> wa_id, over the ninth-digit rule
    message_status: Literal["accepted", "held_for_quality_assessment", "paused"] | None = "accepted"
    enforce_window: bool = False  # free-form sends outside 24 h of the customer's last message fail (131047)
    window_seconds: float = Field(24 * 3600, gt=0)
    media_url_ttl_seconds: float = Field(300.0, gt=0)
    templates_page_limit: int = Field(25, ge=1)  # a page never holds more, whatever `limit` asks
    retry_after_seconds: int = Field(2, ge=0)  # Retry-After of a forced 130429
    callback_attempts: int = Field(3, ge=1)
    callback_retry_delay_seconds: float = Field(0.5, ge=0)
    timeout_sleep_seconds: float = Field(20.0, ge=0)  # how long a forced "timeout" stalls
    fail_only: list[str] | None = None  # endpoints taking forced failures; see FAILABLE_ENDPOINTS

    @field_validator("status_script")
    @classmethod
    def _statuses(cls, script: list[str]) -> list[str]:
        if any(status not in STATUSES for status in script):
            raise ValueError(f"each status is one of {', '.join(STATUSES)}")
        return script

    @field_validator("fail_only")
    @classmethod
    def _endpoints(cls, endpoints: list[str] | None) -> list[str] | None:
        if endpoints and any(e not in FAILABLE_ENDPOINTS for e in endpoints):
            raise ValueError(f"endpoints are {', '.join(FAILABLE_ENDPOINTS)}")
        return endpoints


@dataclass
class _Sent:
    wamid: str
    to: str
    wa_id: str  # empty when sent to a user id whose phone the sandbox does not know
    type: str
    payload: dict[str, Any]
    callback_data: str | None
    message_status: str | None
    category: str
    created_at: float
    user_id: str | None = None  # sent with `recipient` (a BSUID) instead of `to`
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wamid": self.wamid, "to": self.to, "recipient": self.user_id, "wa_id": self.wa_id, "type": self.type,
            "payload": self.payload, "callback_data": self.callback_data,
            "message_status": self.message_status or "accepted", "history": list(self.history),
            "status": self.history[-1]["status"] if self.history else "accepted",
            "created_at": _iso(self.created_at),
        }


@dataclass
class _Media:
    id: str
    content: bytes
    mime_type: str
    filename: str | None
    origin: str  # upload | inbound
    sha256: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "mime_type": self.mime_type, "sha256": self.sha256,
                "file_size": len(self.content), "filename": self.filename, "origin": self.origin}


class _GraphFailure(Exception):
    def __init__(self, code: int, details: str | None = None, http_status: int | None = None):
        self.code, self.details, self.http_status = code, details, http_status


class Sandbox:
    """State and behaviour behind the app. All of it runs on the server's event loop."""

    def __init__(self, token: str, config: SandboxConfig):
        self.token = token
        self._initial_config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._restore()

    def _restore(self) -> None:
        self.config = self._initial_config.model_copy(deep=True)
        self.fail_next: deque[int | str] = deque()
        self.messages: dict[str, _Sent] = {}
        self.reads: list[dict[str, Any]] = []
        self.media: dict[str, _Media] = {}
        self.media_urls: dict[str, tuple[str, float]] = {}  # sig -> (media id, expires at)
        self.templates: list[dict[str, Any]] = copy.deepcopy(BUILTIN_TEMPLATES)
        self.known_wa_ids: dict[str, str] = {}  # input digits -> wa_id, as learned by senders
        self.user_ids: dict[str, str] = {}  # wa_id -> BSUID
        self.last_inbound: dict[str, float] = {}  # wa_id -> when the customer last wrote
        self.marketing_stopped: set[str] = set()
        self.inbound_log: list[dict[str, Any]] = []
        self.callbacks: list[dict[str, Any]] = []
        self.api_calls: list[dict[str, Any]] = []

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- identities ----------------------------------------------------------------------------

    def wa_id_for(self, digits: str) -> str:
        """Who WhatsApp says `digits` is: the 12-digit form for an older Brazilian mobile outside
        the areas that all got the ninth digit; a configured wa_id wins."""
        if digits in self.config.wa_ids:
            return self.config.wa_ids[digits]
        if len(digits) == 13 and digits.startswith("55") and digits[4] == "9" and digits[2:4] not in NINTH_DIGIT_AREAS:
            return digits[:4] + digits[5:]
        return digits

    def user_id_for(self, wa_id: str) -> str:
        if wa_id not in self.user_ids:
            number = int(hashlib.sha256(wa_id.encode()).hexdigest(), 16) % 10**16
            self.user_ids[wa_id] = f"{wa_id[:2] == '55' and 'BR' or 'US'}.{number:016d}"
        return self.user_ids[wa_id]

    # --- the Graph API -------------------------------------------------------------------------

    async def graph(self, request: Request) -> Response:
        version, rest = request.path_params["version"], request.path_params["rest"].strip("/")
        endpoint = self._endpoint(request.method, rest)
        response = await self._graph_response(request, version, rest, endpoint)
        self.api_calls.append({"method": request.method, "path": request.url.path, "endpoint": endpoint,
                               "status_code": response.status_code, "at": _iso(time.time())})
        return response

    def _endpoint(self, method: str, rest: str) -> str | None:
        parts = rest.split("/")
        if method == "POST" and parts == [self.config.phone_number_id, "messages"]:
            return "messages"
        if method == "POST" and parts == [self.config.phone_number_id, "media"]:
            return "media"
        if method == "GET" and parts == [self.config.waba_id, "message_templates"]:
            return "templates"
        if method == "GET" and parts == [self.config.phone_number_id]:
            return "phone_number"
        if method == "GET" and len(parts) == 1:
            return "media_info"
        return None

    async def _graph_response(self, request: Request, version: str, rest: str, endpoint: str | None) -> Response:
        if not _VERSION.fullmatch(version):
            return _graph_error(100, f"Unknown path components: /{version}", http_status=400)
        if not self._authorized(request):
            return _graph_error(190, "Invalid OAuth access token - Cannot parse access token", http_status=401)
        if endpoint is None:
            return _graph_error(
                100, f"Unsupported {request.method.lower()} request. Object with ID '{rest.split('/')[0]}' "
                "does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                http_status=400,
            )
        forced = self._take_failure(endpoint)
        if forced == "html":
            return HTMLResponse("<html><body><h1>Sorry, something went wrong.</h1></body></html>")
        if isinstance(forced, str) and forced.startswith("http"):
            return PlainTextResponse("Internal Server Error", int(forced[4:]))
        if isinstance(forced, int):
            return _graph_error(forced, _ERROR_DETAILS.get(forced), retry_after=self.config.retry_after_seconds)
        try:
            response = await self._handle(request, endpoint, rest)
        except _GraphFailure as failure:
            response = _graph_error(failure.code, failure.details, http_status=failure.http_status)
        if forced == "timeout":
            # As a slow Meta does: the request is carried out, the answer comes too late.
            await asyncio.sleep(self.config.timeout_sleep_seconds)
        return response

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def _take_failure(self, endpoint: str) -> int | str | None:
        only = self.config.fail_only
        if self.fail_next and (only is None or endpoint in only):
            return self.fail_next.popleft()
        return None

    async def _handle(self, request: Request, endpoint: str, rest: str) -> Response:
        if endpoint == "messages":
            body = await json_object(request)
            if body is None:
                raise _GraphFailure(100, "The request body is not a JSON object")
            return self._messages(body, request)
        if endpoint == "media":
            return await self._upload(request)
        if endpoint == "templates":
            return self._template_page(request)
        if endpoint == "phone_number":
            return self._phone_number(request)
        return self._media_info(request, rest)

    def _messages(self, body: dict[str, Any], request: Request) -> Response:
        if body.get("messaging_product") != "whatsapp":
            raise _GraphFailure(100, "The parameter messaging_product is required and must be 'whatsapp'.")
        if body.get("status") == "read":
            message_id = body.get("message_id")
            if not isinstance(message_id, str) or not message_id:
                raise _GraphFailure(100, "The parameter message_id is required.")
            self.reads.append({"message_id": message_id, "typing_indicator": body.get("typing_indicator"),
                               "at": _iso(time.time())})
            return JSONResponse({"success": True})
        to, user_id = str(body.get("to") or ""), str(body.get("recipient") or "")
        if user_id and not BSUID.fullmatch(user_id):
            raise _GraphFailure(100, "The parameter recipient must be a business-scoped user id such as BR.1502576394655843.")
        if not user_id and not to.isdigit():
            raise _GraphFailure(100, "The parameter to is required and must be the recipient's phone number in digits.")
        kind = body.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise _GraphFailure(100, f"Param type must be one of {{{', '.join(MESSAGE_TYPES)}}} - got \"{kind}\".")
        content = body.get(kind)
        if not isinstance(content, dict):
            raise _GraphFailure(100, f"The parameter {kind} is required.")
        category = self._check_content(kind, content)

        if user_id:  # a customer who shares no phone: their number stays theirs
            wa_id = next((phone for phone, user in self.user_ids.items() if user == user_id), "")
        else:
            wa_id = self.wa_id_for(to)
            self.known_wa_ids[to] = wa_id
        callback_data = body.get("biz_opaque_callback_data")
        now = time.time()
        sent = _Sent(
            wamid=_wamid(), to=to, wa_id=wa_id, user_id=user_id or None, type=kind, payload=body,
            callback_data=str(callback_data) if callback_data is not None else None,
            message_status=self.config.message_status, category=category, created_at=now,
        )
        self.messages[sent.wamid] = sent
        message: dict[str, Any] = {"id": sent.wamid}
        if self.config.message_status is not None:
            message["message_status"] = self.config.message_status
        if self.config.message_status in (None, "accepted"):
            self._spawn(self._progress(sent, self._script_for(sent), self.config))
        return JSONResponse({"messaging_product": "whatsapp",
                             "contacts": [{"input": user_id, "user_id": user_id} if user_id else
                                          {"input": to, "wa_id": wa_id}], "messages": [message]})

    def _check_content(self, kind: str, content: dict[str, Any]) -> str:
        """Meta's synchronous checks; returns the pricing category of the message."""
        if kind == "text":
            text = content.get("body")
            if not isinstance(text, str) or not text:
                raise _GraphFailure(100, "The parameter text['body'] is required.")
            if len(text) > 4096:
                raise _GraphFailure(100, "Param text['body'] must be at most 4096 characters long.")
        elif kind == "template":
            return self._check_template(content)
        elif kind == "reaction":
            if not content.get("message_id"):
                raise _GraphFailure(100, "The parameter reaction['message_id'] is required.")
        else:
            media_id, link = content.get("id"), content.get("link")
            if bool(media_id) == bool(link):
                raise _GraphFailure(100, f"Exactly one of {kind}['id'] or {kind}['link'] is required.")
            if media_id and str(media_id) not in self.media:
                raise _GraphFailure(131053, f"Media id {media_id} was not found; upload it first.")
        return "service"

    def _check_template(self, content: dict[str, Any]) -> str:
        name = content.get("name")
        language = (content.get("language") or {}).get("code") if isinstance(content.get("language"), dict) else None
        template = next((t for t in self.templates if t["name"] == name and t["language"] == language), None)
        if template is None or template["status"] in ("REJECTED", "PENDING"):
            raise _GraphFailure(132001, f"template name ({name}) does not exist in {language}")
        if template["status"] == "PAUSED":
            raise _GraphFailure(132015, f"Template {name} is paused because of low quality.")
        if template["status"] == "DISABLED":
            raise _GraphFailure(132016, f"Template {name} is disabled.")
        given = {str(c.get("type", "")).lower(): c for c in content.get("components") or [] if isinstance(c, dict)}
        named = template.get("parameter_format") == "NAMED"
        for component in template["components"]:
            ctype = component["type"]
            if ctype == "BODY":
                expected = _PLACEHOLDER.findall(component["text"])
                params = (given.get("body") or {}).get("parameters") or []
                if len(params) != len(expected):
                    raise _GraphFailure(
                        132000, f"body: number of localizable_params ({len(params)}) does not match the "
                        f"expected number of params ({len(expected)})")
                for param in params:
                    if not isinstance(param, dict) or not param.get("text") and param.get("type") == "text":
                        raise _GraphFailure(132008, "body: a text parameter is empty")
                    if named and param.get("parameter_name") not in expected:
                        raise _GraphFailure(
                            132012, f"body: parameter_name {param.get('parameter_name')!r} is not one of "
                            f"{', '.join(expected)}")
            elif ctype == "HEADER" and component.get("format") in ("IMAGE", "VIDEO", "DOCUMENT"):
                wanted = component["format"].lower()
                params = (given.get("header") or {}).get("parameters") or []
                if not params or params[0].get("type") != wanted:
                    got = params[0].get("type", "UNKNOWN").upper() if params else "UNKNOWN"
                    raise _GraphFailure(
                        132012, f"header: Format mismatch, expected {wanted.upper()}, received {got}")
            elif ctype == "BUTTONS":
                for index, button in enumerate(component["buttons"]):
                    if button["type"] == "URL" and _PLACEHOLDER.search(button.get("url", "")):
                        ours = [c for c in content.get("components") or []
                                if isinstance(c, dict) and c.get("type") == "button"
                                and str(c.get("index")) == str(index)]
                        if not ours or len(ours[0].get("parameters") or []) != 1:
                            raise _GraphFailure(132000, f"button {index}: number of params does not match (1)")
        return template["category"].lower()

    def _script_for(self, sent: _Sent) -> list[tuple[str, int | None]]:
        config = self.config
        code = config.fail_numbers.get(sent.to) or config.fail_numbers.get(sent.wa_id)
        if code is None and (sent.to in config.not_on_whatsapp or sent.wa_id in config.not_on_whatsapp):
            code = 131026
        if code is None and sent.category == "marketing" and sent.wa_id in self.marketing_stopped:
            code = 131050
        if code is None and config.enforce_window and sent.type != "template":
            last = self.last_inbound.get(sent.wa_id or sent.user_id)
            if last is None or time.time() - last > config.window_seconds:
                code = 131047
        if code is None:
            code = config.fail_with
        if code is not None:
            return [("failed", code)]
        return [(status, None) for status in config.status_script]

    async def _upload(self, request: Request) -> Response:
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001 (Starlette raises several kinds for a bad multipart body)
            raise _GraphFailure(100, "The request is not multipart/form-data.") from None
        upload = form.get("file")
        if form.get("messaging_product") != "whatsapp":
            raise _GraphFailure(100, "The parameter messaging_product is required and must be 'whatsapp'.")
        if upload is None or isinstance(upload, str):
            raise _GraphFailure(100, "The parameter file is required.")
        content = await upload.read()
        mime = str(form.get("type") or upload.content_type or "application/octet-stream")
        media = _Media(_media_id(), content, mime, upload.filename, "upload")
        self.media[media.id] = media
        return JSONResponse({"id": media.id})

    def _media_info(self, request: Request, media_id: str) -> Response:
        media = self.media.get(media_id)
        if media is None:
            raise _GraphFailure(
                100, f"Unsupported get request. Object with ID '{media_id}' does not exist.", http_status=400)
        sig = secrets.token_urlsafe(16)
        self.media_urls[sig] = (media.id, time.time() + self.config.media_url_ttl_seconds)
        url = f"{request.base_url}{MEDIA_PREFIX.lstrip('/')}/{media.id}?sig={sig}"
        return JSONResponse({"messaging_product": "whatsapp", "url": url, "mime_type": media.mime_type,
                             "sha256": media.sha256, "file_size": len(media.content), "id": media.id})

    async def download(self, request: Request) -> Response:
        if not self._authorized(request):
            return _graph_error(190, "Invalid OAuth access token", http_status=401)
        forced = self._take_failure("download")
        if forced is not None:
            if forced == "timeout":
                await asyncio.sleep(self.config.timeout_sleep_seconds)
            return PlainTextResponse("Internal Server Error", 500)
        media_id = request.path_params["media_id"]
        entry = self.media_urls.get(request.query_params.get("sig", ""))
        if entry is None or entry[0] != media_id:
            return PlainTextResponse("URL signature mismatch", 403)
        if time.time() > entry[1]:
            # [?] Meta's media host refuses an expired URL; ask media_info for a fresh one.
            return PlainTextResponse("URL signature expired", 404)
        media = self.media[media_id]
        return Response(media.content, media_type=media.mime_type.split(";")[0])

    def _template_page(self, request: Request) -> Response:
        try:
            limit = max(1, int(request.query_params.get("limit") or 25))
            after = request.query_params.get("after")
            start = int(base64.urlsafe_b64decode(after.encode()).decode()) if after else 0
        except (ValueError, UnicodeDecodeError):
            raise _GraphFailure(100, "limit and after must be numbers in the sandbox") from None
        limit = min(limit, self.config.templates_page_limit)
        chunk = self.templates[start:start + limit]
        # Cursors are opaque at Meta; here they are base64 of the offset.
        paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}}
        if start + len(chunk) < len(self.templates):
            paging["next"] = str(request.url.include_query_params(after=_cursor(start + len(chunk))))
        return JSONResponse({"data": chunk, "paging": paging})

    def _phone_number(self, request: Request) -> Response:
        c = self.config
        everything = {
            "id": c.phone_number_id, "display_phone_number": _display(c.display_phone_number),
            "verified_name": c.verified_name, "quality_rating": c.quality_rating,
            "messaging_limit_tier": c.messaging_limit_tier, "throughput": {"level": "STANDARD"},
            "code_verification_status": "VERIFIED", "platform_type": "CLOUD_API",
        }
        wanted = [f for f in (request.query_params.get("fields") or "").split(",") if f]
        default = ("id", "display_phone_number", "verified_name", "quality_rating")
        return JSONResponse({k: v for k, v in everything.items() if k == "id" or k in (wanted or default)})

    # --- webhooks ------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # keep a reference, or the task may be garbage-collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _progress(self, sent: _Sent, script: list[tuple[str, int | None]], config: SandboxConfig) -> None:
        """Walk one send through its statuses, posting a webhook per status (or all in one)."""
        statuses: list[dict[str, Any]] = []
        for status, code in script:
            await asyncio.sleep(config.status_delay_seconds)
            now = time.time()
            sent.history.append({"status": status, "at": _iso(now), **({"code": code} if code else {})})
            statuses.append(self._status_item(sent, status, code, now))
            if not (config.out_of_order or config.status_batch):
                await self._post_statuses([statuses[-1]], config)
        if config.out_of_order:
            statuses.reverse()
        if config.status_batch:
            await self._post_statuses(statuses, config)
        elif config.out_of_order:
            for item in statuses:
                await self._post_statuses([item], config)

    async def _post_statuses(self, statuses: list[dict[str, Any]], config: SandboxConfig) -> None:
        value = {**self._value_head(), "statuses": statuses}
        for _ in range(2 if config.duplicate_callbacks else 1):
            await self._deliver("status", self._envelope([("messages", value)]), config)

    def _status_item(self, sent: _Sent, status: str, code: int | None, at: float) -> dict[str, Any]:
        item: dict[str, Any] = {"id": sent.wamid, "status": status, "timestamp": str(int(at))}
        if sent.user_id:  # Meta names the user as we did: by id, not by phone
            item["recipient_user_id"] = sent.user_id
        else:
            item["recipient_id"] = sent.wa_id
        if sent.callback_data is not None:
            item["biz_opaque_callback_data"] = sent.callback_data
        if code is not None:
            item["errors"] = [_error_item(code)]
        else:
            free = sent.category == "service"
            item["pricing"] = {"pricing_model": "PMP", "category": sent.category,
                               "type": "free_customer_service" if free else "regular"}
        return item

    def _value_head(self) -> dict[str, Any]:
        return {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": self.config.display_phone_number,
                             "phone_number_id": self.config.phone_number_id}}

    def _envelope(self, changes: list[tuple[str, dict[str, Any]]], separate_entries: bool = False) -> dict[str, Any]:
        items = [{"field": name, "value": value} for name, value in changes]
        groups = [[item] for item in items] if separate_entries else [items]
        return {"object": "whatsapp_business_account",
                "entry": [{"id": self.config.waba_id, "changes": group} for group in groups]}

    async def _deliver(self, kind: str, envelope: dict[str, Any], config: SandboxConfig) -> dict[str, Any] | None:
        """POST one webhook, signed as Meta signs it, retrying a few times; every attempt is in the ledger."""
        url = config.webhook_url
        if not url:
            self.callbacks.append({"kind": kind, "body": envelope, "attempt": 0, "error": "no webhook_url",
                                   "at": _iso(time.time())})
            return None
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        raw = json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        signature = sign(raw, config.app_secret)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature,
                   "User-Agent": "facebookexternalua"}
        record: dict[str, Any] = {}
        for attempt in range(1, config.callback_attempts + 1):
            record = {"kind": kind, "url": url, "body": envelope, "signature": signature,
                      "attempt": attempt, "at": _iso(time.time())}
            try:
                response = await self._http.post(url, content=raw, headers=headers)
                record["status_code"] = response.status_code
                record["response"] = response.text[:300]
                ok = response.is_success
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
                ok = False
            self.callbacks.append(record)
            if ok:
                return record
            logger.warning("WhatsApp sandbox could not deliver a %s webhook (attempt %d of %d): %s", kind,
                           attempt, config.callback_attempts, record.get("error") or f"HTTP {record.get('status_code')}")
            if attempt < config.callback_attempts:
                await asyncio.sleep(config.callback_retry_delay_seconds)
        return record

    # --- control endpoints ---------------------------------------------------------------------

    async def ledger(self, request: Request) -> Response:
        return JSONResponse({
            "messages": [m.as_dict() for m in self.messages.values()],
            "reads": self.reads,
            "media": [m.as_dict() for m in self.media.values()],
            "inbound": self.inbound_log,
            "callbacks": self.callbacks,
            "wa_ids": self.known_wa_ids,
            "marketing_stopped": sorted(self.marketing_stopped),
            "api_calls": self.api_calls,
        })

    async def get_config(self, request: Request) -> Response:
        return JSONResponse(self._config_view())

    async def set_config(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return control_error("send a JSON object of settings; GET /_sandbox/config lists them")
        fail_next = body.pop("fail_next", None)
        if fail_next is not None:
            failures = fail_next if isinstance(fail_next, list) else [fail_next]
            if any(not (f in FORCEABLE_MODES or (isinstance(f, int) and not isinstance(f, bool)))
                   for f in failures):
                return control_error(f"fail_next: expected Graph error codes (e.g. 131047, 190, 130429) "
                                      f"or modes {list(FORCEABLE_MODES)}, got {fail_next!r}")
        try:
            self.config = SandboxConfig.model_validate({**self.config.model_dump(), **body})
        except ValidationError as exc:
            return control_error("; ".join(pydantic_message(e) for e in exc.errors()))
        if fail_next is not None:
            self.fail_next = deque(failures)
        return JSONResponse(self._config_view())

    async def reset(self, request: Request) -> Response:
        for task in list(self._tasks):
            task.cancel()
        self._restore()
        return JSONResponse({"status": "reset"})

    async def inbound(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return control_error(_INBOUND_HELP)
        items = body.get("messages") if isinstance(body.get("messages"), list) else [body]
        changes: list[tuple[str, dict[str, Any]]] = []
        built: list[dict[str, Any]] = []
        try:
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError("each of messages is an object like the single form")
                contact, message = self._inbound_message(item)
                value = {**self._value_head(), **({"contacts": [contact]} if contact else {}),
                         "messages": [message]}
                changes.append(("messages", value))
                built.append(message)
        except ValueError as exc:
            return control_error(f"{exc}. {_INBOUND_HELP}")
        separate = bool(body.get("separate_entries"))
        if not separate and len(changes) > 1:
            # One change holding every message, as Meta batches them.
            merged = {**self._value_head(), "contacts": [], "messages": []}
            for _, value in changes:
                merged["contacts"] += value.get("contacts", [])
                merged["messages"] += value["messages"]
            if not merged["contacts"]:
                del merged["contacts"]
            changes = [("messages", merged)]
        envelope = self._envelope(changes, separate_entries=separate)
        self.inbound_log.extend(built)
        delivery = await self._deliver("inbound", envelope, self.config) if body.get("deliver", True) else None
        return JSONResponse({"messages": built, "payload": envelope, "delivery": delivery})

    def _inbound_message(self, item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        kind = item.get("type", "text")
        if kind not in INBOUND_TYPES:
            raise ValueError(f"type: one of {', '.join(INBOUND_TYPES)}")
        wa_id, user_id = self._sender(item)
        now = time.time() - float(item.get("ago_seconds") or 0)
        message: dict[str, Any] = {}
        if wa_id:
            message["from"] = wa_id
        message["from_user_id"] = user_id
        message.update(id=_wamid(), timestamp=str(int(now)), type="audio" if kind == "voice" else kind)
        if item.get("context"):
            context = item["context"]
            message["context"] = ({"from": self.config.display_phone_number, "id": context}
                                  if isinstance(context, str) else context)
        if item.get("forwarded"):
            message.setdefault("context", {})["forwarded"] = True
        if isinstance(item.get("referral"), dict):
            message["referral"] = item["referral"]
        message.update(self._inbound_content(kind, item, wa_id))
        customer = wa_id or user_id
        self.last_inbound[customer] = max(now, self.last_inbound.get(customer, 0))
        if kind == "system":
            return None, message  # Meta sends no contacts[] with a system message
        profile: dict[str, Any] = {"name": str(item.get("name") or "Cliente Sandbox")}
        if item.get("username"):
            profile["username"] = str(item["username"])
        contact: dict[str, Any] = {"profile": profile}
        if wa_id:
            contact["wa_id"] = wa_id
        contact["user_id"] = user_id
        return contact, message

    def _sender(self, item: dict[str, Any]) -> tuple[str | None, str]:
        raw = item.get("from")
        if raw:
            digits = re.sub(r"\D", "", str(raw))
            if len(digits) < 8:
                raise ValueError(f"from: a phone with the country code, got {raw!r}")
            wa_id = self.wa_id_for(digits)
            user_id = str(item.get("user_id") or self.user_id_for(wa_id))
            self.user_ids[wa_id] = user_id
            return wa_id, user_id
        if item.get("user_id"):
            return None, str(item["user_id"])  # a username user who shares no phone
        raise ValueError('give "from" (a phone) or "user_id" (a BSUID such as "BR.1502576394655843")')

    def _inbound_content(self, kind: str, item: dict[str, Any], wa_id: str | None) -> dict[str, Any]:
        if kind == "text":
            return {"text": {"body": str(item.get("text") or "Oi")}}
        if kind in _INBOUND_MEDIA:
            mime, content = _INBOUND_MEDIA[kind]
            if item.get("content_base64"):
                content = base64.b64decode(item["content_base64"])
            mime = str(item.get("mime_type") or mime)
            filename = str(item.get("filename") or "documento.pdf") if kind == "document" else None
            media = _Media(_media_id(), content, mime, filename, "inbound")
            self.media[media.id] = media
            part: dict[str, Any] = {"id": media.id, "mime_type": mime, "sha256": media.sha256}
            if item.get("caption") and kind in ("image", "video", "document"):
                part["caption"] = str(item["caption"])
            if kind == "document":
                part["filename"] = filename
            if kind == "voice":
                part["voice"] = True
            if kind == "sticker":
                part["animated"] = bool(item.get("animated", False))
            return {"audio" if kind == "voice" else kind: part}
        if kind == "location":
            try:
                location: dict[str, Any] = {"latitude": float(item["latitude"]), "longitude": float(item["longitude"])}
            except (KeyError, TypeError, ValueError):
                raise ValueError("location: latitude and longitude are numbers") from None
            # "name" is the sender's profile name; the place's name is "location_name".
            extra = {"name": item.get("location_name"), "address": item.get("address"), "url": item.get("url")}
            location.update({k: str(v) for k, v in extra.items() if v})
            return {"location": location}
        if kind == "contacts":
            if isinstance(item.get("contacts"), list):
                return {"contacts": item["contacts"]}
            phone = re.sub(r"\D", "", str(item.get("contact_phone") or "5511900000002"))
            name = str(item.get("contact_name") or "Maria Exemplo")
            return {"contacts": [{"name": {"formatted_name": name, "first_name": name.split()[0]},
                                  "phones": [{"phone": f"+{phone}", "wa_id": self.wa_id_for(phone), "type": "CELL"}]}]}
        if kind == "interactive":
            if item.get("list_id"):
                reply = {"id": str(item["list_id"]), "title": str(item.get("title") or "Opção")}
                if item.get("description"):
                    reply["description"] = str(item["description"])
                return {"interactive": {"type": "list_reply", "list_reply": reply}}
            return {"interactive": {"type": "button_reply", "button_reply": {
                "id": str(item.get("button_id") or "btn-1"), "title": str(item.get("title") or "Sim")}}}
        if kind == "button":
            text = str(item.get("title") or item.get("text") or "Sim")
            return {"button": {"payload": str(item.get("payload") or item.get("button_id") or text), "text": text}}
        if kind == "reaction":
            message_id = item.get("message_id") or item.get("context")
            if not message_id:
                raise ValueError("reaction: message_id is the wamid reacted to")
            reaction: dict[str, Any] = {"message_id": str(message_id)}
            if item.get("emoji"):
                reaction["emoji"] = str(item["emoji"])  # none: the reaction was removed
            return {"reaction": reaction}
        if kind == "unsupported":
            return {"errors": [_error_item(131051)], "unsupported": {"type": str(item.get("original_type") or "poll")}}
        if kind == "edit":
            # [?] Shape from client libraries; Meta's reference does not describe it yet.
            original = item.get("message_id") or item.get("context")
            if not original:
                raise ValueError("edit: message_id is the wamid of the edited message")
            return {"edit": {"original_message_id": str(original),
                             "message": {"type": "text", "text": {"body": str(item.get("text") or "")}}}}
        if kind == "revoke":
            original = item.get("message_id") or item.get("context")
            if not original:
                raise ValueError("revoke: message_id is the wamid of the deleted message")
            return {"revoke": {"original_message_id": str(original)}}
        return {"system": self._system(item, wa_id)}

    def _system(self, item: dict[str, Any], wa_id: str | None) -> dict[str, Any]:
        system_kind = item.get("system") or "user_changed_number"
        if system_kind == "user_changed_number":
            new_phone = re.sub(r"\D", "", str(item.get("new_phone") or ""))
            if not new_phone:
                raise ValueError("system user_changed_number: new_phone is the customer's new number")
            new_wa_id = self.wa_id_for(new_phone)
            new_user_id = str(item.get("new_user_id") or self.user_id_for(new_wa_id))
            self.user_ids[new_wa_id] = new_user_id
            return {"body": f"User {wa_id or ''} changed from {wa_id or ''} to {new_wa_id}".replace("  ", " "),
                    "type": "user_changed_number", "new_wa_id": new_wa_id, "new_user_id": new_user_id}
        if system_kind == "user_changed_user_id":
            new_user_id = str(item.get("new_user_id") or "")
            if not new_user_id:
                raise ValueError("system user_changed_user_id: new_user_id is the customer's new BSUID")
            if wa_id:
                self.user_ids[wa_id] = new_user_id
            return {"body": "User changed their business-scoped user id", "type": "user_changed_user_id",
                    "new_user_id": new_user_id}
        raise ValueError("system: user_changed_number or user_changed_user_id")

    async def template_status(self, request: Request) -> Response:
        body = await json_object(request) or {}
        event = str(body.get("event") or "").upper()
        language = str(body.get("language") or "pt_BR")
        template = next((t for t in self.templates if t["name"] == body.get("name") and t["language"] == language), None)
        if template is None or event not in ("APPROVED", "REJECTED", "PAUSED", "DISABLED", "PENDING"):
            return control_error('send {"name": "cobranca_lembrete", "language"?: "pt_BR", "event": '
                                  '"APPROVED"|"REJECTED"|"PAUSED"|"DISABLED", "reason"?: "..."} for a listed template')
        template["status"] = event
        value = {"event": event, "message_template_id": int(template["id"]),
                 "message_template_name": template["name"], "message_template_language": language,
                 "reason": body.get("reason") or ("NONE" if event != "REJECTED" else "INCORRECT_CATEGORY")}
        delivery = await self._deliver("template_status", self._envelope([("message_template_status_update", value)]),
                                       self.config)
        return JSONResponse({"template": template, "value": value, "delivery": delivery})

    async def user_preferences(self, request: Request) -> Response:
        body = await json_object(request) or {}
        value_kind = body.get("value", "stop")
        if value_kind not in ("stop", "resume") or not (body.get("from") or body.get("user_id")):
            return control_error('send {"from": "+55 11 90000-0001" | "user_id": "BR.…", "value": "stop"|"resume"}')
        try:
            wa_id, user_id = self._sender(body)
        except ValueError as exc:
            return control_error(str(exc))
        if wa_id:
            (self.marketing_stopped.add if value_kind == "stop" else self.marketing_stopped.discard)(wa_id)
        preference: dict[str, Any] = {
            "detail": "User requested to stop marketing messages" if value_kind == "stop"
            else "User requested to resume marketing messages",
            "category": "marketing_messages", "value": value_kind, "timestamp": int(time.time()),
            "user_id": user_id,
        }
        contact: dict[str, Any] = {"profile": {"name": str(body.get("name") or "Cliente Sandbox")}, "user_id": user_id}
        if wa_id:
            preference["wa_id"] = contact["wa_id"] = wa_id
        value = {**self._value_head(), "contacts": [contact], "user_preferences": [preference]}
        delivery = await self._deliver("user_preferences", self._envelope([("user_preferences", value)]), self.config)
        return JSONResponse({"value": value, "delivery": delivery})

    def _config_view(self) -> dict[str, Any]:
        view = self.config.model_dump(mode="json")
        view["app_secret"] = "***"  # the inspection endpoints answer anyone who can reach the sandbox
        view["fail_next"] = list(self.fail_next)
        return view


_INBOUND_HELP = (
    'send {"from": "+55 48 99191-0234" | "user_id": "BR.…", "name"?, "username"?, "type"?: "text", '
    '"text"?: "Oi", ...} or {"messages": [...], "separate_entries"?: false}'
)


def create_sandbox_app(token: str = "sandbox-token", **settings: Any) -> Starlette:
    """The sandbox as an ASGI app. `settings` are SandboxConfig fields (unknown names raise)."""
    sandbox = Sandbox(token, SandboxConfig(**settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return _graph_error(100, "Unknown path components", http_status=404)

    app = Starlette(
        routes=[
            Route(f"{CONTROL_PREFIX}/ledger", sandbox.ledger, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/config", sandbox.get_config, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/config", sandbox.set_config, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/reset", sandbox.reset, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/inbound", sandbox.inbound, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/template_status", sandbox.template_status, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/user_preferences", sandbox.user_preferences, methods=["POST"]),
            Route(f"{MEDIA_PREFIX}/{{media_id}}", sandbox.download, methods=["GET"]),
            Route("/{version}/{rest:path}", sandbox.graph, methods=["GET", "POST", "DELETE"]),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app


def run_sandbox(host: str = "127.0.0.1", port: int = 8901, **options: Any) -> None:
    """Serve the sandbox until interrupted (for `contact-center sandbox whatsapp`)."""
    app = create_sandbox_app(**options)
    sandbox: Sandbox = app.state.sandbox
    base = f"http://{host}:{port}"
    logger.info("WhatsApp sandbox: Graph API at %s (token %r, phone_number_id %s, waba_id %s), controls at %s%s",
                base, sandbox.token, sandbox.config.phone_number_id, sandbox.config.waba_id, base, CONTROL_PREFIX)
    uvicorn.run(app, host=host, port=port, log_level="info")


class SandboxServer(LocalServer):
    """Runs the sandbox on a free local port in a background thread; for tests.

        with SandboxServer(webhook_url=..., status_delay_seconds=0.02) as sandbox:
            client = GraphClient(sandbox.token, phone_number_id=sandbox.phone_number_id,
                                 waba_id=sandbox.waba_id, base_url=sandbox.base_url)
    """

    name = "WhatsApp sandbox"
    control_prefix = CONTROL_PREFIX

    def __init__(self, token: str = "sandbox-token", *, host: str = "127.0.0.1", port: int = 0, **options: Any):
        super().__init__(create_sandbox_app(token, **options), host=host, port=port)
        self.token = token

    @property
    def sandbox(self) -> Sandbox:
        return self.app.state.sandbox

    @property
    def base_url(self) -> str:
        """What GraphClient takes as base_url (the version goes in each path)."""
        return self.root_url

    @property
    def phone_number_id(self) -> str:
        return self.sandbox.config.phone_number_id

    @property
    def waba_id(self) -> str:
        return self.sandbox.config.waba_id

    @property
    def app_secret(self) -> str:
        return self.sandbox.config.app_secret

    def client(self, **options: Any) -> Any:
        from .client import GraphClient

        return GraphClient(options.pop("access_token", self.token), phone_number_id=self.phone_number_id,
                           waba_id=self.waba_id, base_url=self.base_url, **options)

    # Conveniences over the control endpoints.
    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._control("POST", "/config", settings)

    def ledger(self) -> dict[str, Any]:
        return self._control("GET", "/ledger")

    def reset(self) -> None:
        self._control("POST", "/reset", {})

    def inbound(self, **message: Any) -> dict[str, Any]:
        """A customer writes; `from_` stands for "from", a Python keyword."""
        if "from_" in message:
            message["from"] = message.pop("from_")
        return self._control("POST", "/inbound", message)

    def template_status(self, name: str, event: str, **extra: Any) -> dict[str, Any]:
        return self._control("POST", "/template_status", {"name": name, "event": event, **extra})

    def user_preferences(self, value: str = "stop", **who: Any) -> dict[str, Any]:
        if "from_" in who:
            who["from"] = who.pop("from_")
        return self._control("POST", "/user_preferences", {"value": value, **who})


def _http_status_for(code: int) -> int:
    if code in (190, 0):
        return 401
    if code == 10 or 200 <= code <= 299:
        return 403
    if code in (4, 80007, 130429):
        return 429
    if code in (131000, 131016, 2):
        return 500 if code == 131000 else 503
    return 400


def _graph_error(code: int, details: str | None = None, *, http_status: int | None = None,
                 retry_after: int | None = None) -> JSONResponse:
    title = ERROR_TITLES.get(code, "Unknown error")
    error: dict[str, Any] = {"message": f"(#{code}) {title}" if code != 190 else title,
                             "type": "OAuthException", "code": code}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    status = http_status or _http_status_for(code)
    headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after is not None else None
    return JSONResponse({"error": error}, status, headers=headers)


def _error_item(code: int) -> dict[str, Any]:
    title = ERROR_TITLES.get(code, "Unknown error")
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": _ERROR_DETAILS.get(code, title)}}


def _wamid() -> str:
    # Letters and digits only, like Meta's: safe in a URL or a file name.
    raw = base64.b64encode(uuid.uuid4().bytes + secrets.token_bytes(8)).decode().rstrip("=")
    return "wamid.HBgN" + raw.translate(str.maketrans("+/", "AB"))


def _media_id() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _display(digits: str) -> str:
    if len(digits) == 13 and digits.startswith("55"):
        return f"+55 {digits[2:4]} {digits[4:9]}-{digits[9:]}"
    return f"+{digits}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()
