"""Synchronous client for the WhatsApp Business Cloud API (Meta's Graph API).

Sends go to `POST /{version}/{phone_number_id}/messages` with a Bearer token. An answer names the
recipient twice: `contacts[].input` (what we sent) and `contacts[].wa_id` (who WhatsApp says it is;
for older Brazilian mobiles, without the ninth digit). Callers keep that mapping.

Errors are GraphError with Meta's code and the action it calls for (errors.classify). A send whose
answer was lost (timeout after sending, 5xx, an unreadable body) has `outcome_unknown=True`: it may
have gone out, so it is not sent again blindly.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from contact_center.providers.base import bearer_token, tls_context

from .errors import ErrorAction, GraphConnectionError, GraphError, GraphResponseError, GraphTimeout

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
MAX_TEXT_LENGTH = 4096
# Meta's largest media (documents); callers pass the cap of the type they expect.
DEFAULT_DOWNLOAD_CAP = 100 * 1024 * 1024
# Meta's media host refuses some non-browser agents (reported by several client libraries).
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
PHONE_NUMBER_FIELDS = "display_phone_number,verified_name,quality_rating,messaging_limit_tier,throughput"

_VERSION = re.compile(r"v\d+\.\d+")
_RECIPIENT_FORMATTING = re.compile(r"[\s().+-]")
BSUID = re.compile(r"[A-Z]{2}\.[0-9A-Za-z]{1,60}")  # a business-scoped user id: BR.1502576394655843


@dataclass(frozen=True)
class SendResponse:
    wamid: str
    input: str | None
    wa_id: str | None
    message_status: str  # accepted | held_for_quality_assessment | paused

    @property
    def held(self) -> bool:
        """Accepted by Meta but not (yet) sent to the customer."""
        return self.message_status != "accepted"


@dataclass(frozen=True)
class MediaInfo:
    url: str
    mime_type: str | None
    sha256: str | None
    file_size: int | None


@dataclass(frozen=True)
class PhoneNumberInfo:
    display_phone_number: str | None
    verified_name: str | None
    quality_rating: str | None
    messaging_limit_tier: str | None
    raw: dict[str, Any]


class MediaTooLarge(GraphError):
    """A download beyond the caller's size cap; nothing more is read."""


def normalize_token(token: str) -> str:
    return bearer_token(token, "Meta's Business settings")


def recipient_digits(to: str) -> str:
    """`to` as the API wants it: digits with the country code, no '+'."""
    digits = _RECIPIENT_FORMATTING.sub("", str(to))
    if not digits.isdigit():
        raise ValueError(f"A WhatsApp recipient is a phone number in digits with the country code, got {to!r}")
    return digits


def recipient_field(to: str) -> dict[str, str]:
    """Where the recipient goes in a send: `to` for a phone, `recipient` for a business-scoped user id
    (a customer who shares no phone)."""
    if BSUID.fullmatch(str(to)):
        return {"recipient": str(to)}
    return {"to": recipient_digits(to)}


def parse_send_response(data: Any, path: str) -> SendResponse:
    try:
        message = data["messages"][0]
        wamid = message["id"]
        if not isinstance(wamid, str) or not wamid:
            raise TypeError
    except (TypeError, KeyError, IndexError):
        # A 200 we cannot read: Meta may well have taken the message.
        raise GraphResponseError(
            f"WhatsApp's answer to POST {path} has no message id: {_excerpt(data)}. The message may "
            "have been sent; it is not sent again before its status is known.",
            path=path,
            outcome_unknown=True,
        ) from None
    contacts = data.get("contacts") if isinstance(data, dict) else None
    contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
    return SendResponse(
        wamid=wamid,
        input=_str_or_none(contact.get("input")),
        wa_id=_str_or_none(contact.get("wa_id")),
        message_status=str(message.get("message_status") or "accepted"),
    )


class GraphClient:
    """WhatsApp Cloud API client for one business number. Reuse it; close it (or use `with`)."""

    def __init__(
        self,
        access_token: str,
        *,
        phone_number_id: str,
        waba_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not _VERSION.fullmatch(api_version):
            raise ValueError(f"The Graph API version looks like 'v23.0', got {api_version!r}")
        if not str(phone_number_id).strip():
            raise ValueError("The WhatsApp phone number id is empty; copy it from Meta's WhatsApp Manager.")
        self._token = normalize_token(access_token)
        self.phone_number_id = str(phone_number_id).strip()
        self.waba_id = str(waba_id).strip() if waba_id else None
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(connect=timeout, read=timeout, write=timeout, pool=timeout),
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            transport=transport,
            verify=tls_context(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the token
        return f"GraphClient(phone_number_id={self.phone_number_id!r}, base_url={self.base_url!r})"

    # --- sending -------------------------------------------------------------------------------

    def send_text(
        self,
        to: str,
        body: str,
        *,
        reply_to: str | None = None,
        preview_url: bool = False,
        callback_data: str | None = None,
    ) -> SendResponse:
        if not body or not body.strip():
            raise ValueError("A WhatsApp text message needs a body")
        if len(body) > MAX_TEXT_LENGTH:
            raise ValueError(f"A WhatsApp text is at most {MAX_TEXT_LENGTH} characters, got {len(body)}")
        return self._send(to, "text", {"body": body, "preview_url": preview_url},
                          reply_to=reply_to, callback_data=callback_data)

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        components: list[dict[str, Any]] | None = None,
        *,
        callback_data: str | None = None,
    ) -> SendResponse:
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return self._send(to, "template", template, callback_data=callback_data)

    def send_media(
        self,
        to: str,
        media_type: str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> SendResponse:
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"media_type is one of {', '.join(MEDIA_TYPES)}, got {media_type!r}")
        if (media_id is None) == (link is None):
            raise ValueError("Give exactly one of media_id (uploaded first, preferred) or link")
        if caption and media_type in ("audio", "sticker"):
            raise ValueError(f"WhatsApp takes no caption on {media_type}")
        if filename and media_type != "document":
            raise ValueError("Only a document has a filename")
        media: dict[str, Any] = {"id": media_id} if media_id else {"link": link}
        if caption:
            media["caption"] = caption
        if filename:
            media["filename"] = filename
        return self._send(to, media_type, media, reply_to=reply_to, callback_data=callback_data)

    def send_reaction(self, to: str, message_id: str, emoji: str) -> SendResponse:
        """React to a message; an empty `emoji` removes our reaction."""
        return self._send(to, "reaction", {"message_id": message_id, "emoji": emoji})

    def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Mark an inbound message read (blue ticks); with `typing`, show "typing…" for a while."""
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        path = self._path(self.phone_number_id, "messages")
        data = self._request("POST", path, json=body)
        if not (isinstance(data, dict) and data.get("success") is True):
            raise GraphResponseError(
                f"WhatsApp's answer to marking a message read is not a success: {_excerpt(data)}",
                path=path,
            )

    def _send(
        self,
        to: str,
        kind: str,
        content: dict[str, Any],
        *,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> SendResponse:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **recipient_field(to),
            "type": kind,
            kind: content,
        }
        if reply_to:
            body["context"] = {"message_id": reply_to}
        if callback_data is not None:
            body["biz_opaque_callback_data"] = callback_data
        path = self._path(self.phone_number_id, "messages")
        return parse_send_response(self._request("POST", path, json=body), path)

    # --- media ---------------------------------------------------------------------------------

    def upload_media(self, content: bytes, mime_type: str, filename: str) -> str:
        """Upload a file for sending by id (kept 30 days by Meta); returns the media id."""
        path = self._path(self.phone_number_id, "media")
        data = self._request(
            "POST",
            path,
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, content, mime_type)},
        )
        media_id = data.get("id") if isinstance(data, dict) else None
        if not media_id:
            raise GraphResponseError(
                f"WhatsApp's answer to the media upload has no id: {_excerpt(data)}", path=path,
                outcome_unknown=True,
            )
        return str(media_id)

    def media_info(self, media_id: str) -> MediaInfo:
        """Where to fetch a media id's bytes; the URL lasts 5 minutes, so download at once."""
        path = self._path(media_id)
        data = self._request("GET", path, params={"phone_number_id": self.phone_number_id})
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise GraphResponseError(f"WhatsApp's media info has no url: {_excerpt(data)}", path=path)
        return MediaInfo(
            url=data["url"],
            mime_type=_str_or_none(data.get("mime_type")),
            sha256=_str_or_none(data.get("sha256")),
            file_size=_int_or_none(data.get("file_size")),
        )

    def download(self, url: str, *, max_bytes: int = DEFAULT_DOWNLOAD_CAP) -> bytes:
        """The bytes behind a media URL (from media_info), read up to `max_bytes`."""
        where = _without_query(url)
        try:
            with self._http.stream("GET", url, headers={"User-Agent": BROWSER_USER_AGENT}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error_for(response, where, "GET")
                declared = _int_or_none(response.headers.get("Content-Length"))
                if declared is not None and declared > max_bytes:
                    raise self._too_large(where, max_bytes)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise self._too_large(where, max_bytes)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "GET", where) from exc

    def _too_large(self, where: str, max_bytes: int) -> MediaTooLarge:
        return MediaTooLarge(
            f"The media at {where} is larger than the {max_bytes:,} bytes allowed for it; it was not downloaded.",
            path=where,
        )

    # --- account -------------------------------------------------------------------------------

    def templates(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every message template of the WhatsApp Business Account, page after page."""
        if not self.waba_id:
            raise ValueError("Listing templates needs the WhatsApp Business Account id (waba_id)")
        path = self._path(self.waba_id, "message_templates")
        params: dict[str, Any] = {"limit": page_size}
        while True:
            data = self._request("GET", path, params=params)
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise GraphResponseError(
                    f"WhatsApp's template list is not a page of data: {_excerpt(data)}", path=path
                )
            yield from (item for item in data["data"] if isinstance(item, dict))
            after = _next_cursor(data.get("paging"))
            if after is None or after == params.get("after"):
                return
            params = {"limit": page_size, "after": after}

    def phone_number(self) -> PhoneNumberInfo:
        path = self._path(self.phone_number_id)
        data = self._request("GET", path, params={"fields": PHONE_NUMBER_FIELDS})
        if not isinstance(data, dict):
            raise GraphResponseError(f"WhatsApp's phone number answer is not an object: {_excerpt(data)}", path=path)
        return PhoneNumberInfo(
            display_phone_number=_str_or_none(data.get("display_phone_number")),
            verified_name=_str_or_none(data.get("verified_name")),
            quality_rating=_str_or_none(data.get("quality_rating")),
            messaging_limit_tier=_str_or_none(data.get("messaging_limit_tier")),
            raw=data,
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/" + "/".join([self.api_version, *(str(part).strip("/") for part in parts)])

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, method, path) from exc
        logger.debug("WhatsApp %s %s -> HTTP %s: %s", method, path, response.status_code,
                     self._redact(_excerpt(response.text)))
        if response.status_code >= 400:
            raise self._error_for(response, path, method)
        sent = method == "POST"
        if response.status_code >= 300:
            raise GraphResponseError(
                f"WhatsApp answered {method} {path} with an unexpected HTTP {response.status_code}; "
                f"check the base URL ({self.base_url}).",
                http_status=response.status_code, path=path,
            )
        try:
            return response.json()
        except ValueError:
            raise GraphResponseError(
                f"WhatsApp answered {method} {path} with HTTP {response.status_code} but the body is not "
                f"JSON: {_excerpt(self._redact(response.text))}"
                + (". The request may have been carried out." if sent else ""),
                http_status=response.status_code, path=path, outcome_unknown=sent,
            ) from None

    def _transport_error(self, exc: httpx.HTTPError, method: str, path: str) -> GraphError:
        sent = method == "POST"
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            # The connection never opened: Meta cannot have seen the request.
            return GraphTimeout(
                f"Could not connect to WhatsApp at {self.base_url} within {self.timeout:g}s for {method} {path}; "
                "nothing was sent.",
                path=path, action=_RETRY,
            )
        if isinstance(exc, httpx.TimeoutException):
            return GraphTimeout(
                f"WhatsApp did not answer {method} {path} within {self.timeout:g}s ({type(exc).__name__})."
                + (" It may still have carried out the request." if sent else ""),
                path=path, outcome_unknown=sent, action=_RETRY,
            )
        never_sent = isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError)
        return GraphConnectionError(
            f"{'Could not reach' if never_sent else 'Lost the connection to'} WhatsApp at {self.base_url} "
            f"for {method} {path}: {self._redact(str(exc)) or type(exc).__name__}.",
            path=path, outcome_unknown=sent and not never_sent, action=_RETRY,
        )

    def _error_for(self, response: httpx.Response, path: str, method: str) -> GraphError:
        status = response.status_code
        error = _graph_error_body(response)
        retry_after = _retry_after_seconds(response)
        # A 5xx may come after the work was done (or from a proxy in front of Meta).
        unknown = method == "POST" and status >= 500
        if error is None:
            return GraphResponseError(
                f"WhatsApp answered {method} {path} with HTTP {status}: "
                f"{_excerpt(self._redact(response.text)) or 'no body'}",
                http_status=status, path=path, retry_after_seconds=retry_after, outcome_unknown=unknown,
            )
        code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
        error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        details = _str_or_none(error_data.get("details"))
        said = self._redact(str(error.get("message") or error.get("error_user_msg") or "no message"))
        return GraphError(
            f"WhatsApp refused {method} {path} (HTTP {status}, code {code}"
            f"{f'/{subcode}' if subcode else ''}): {said}"
            f"{f' — {self._redact(details)}' if details else ''}",
            code=code, subcode=subcode, details=self._redact(details) if details else None,
            http_status=status, fbtrace_id=_str_or_none(error.get("fbtrace_id")), path=path,
            retry_after_seconds=retry_after, outcome_unknown=unknown,
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


_RETRY = ErrorAction("retry", "WhatsApp sem resposta: nova tentativa em instantes")


def _graph_error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _next_cursor(paging: Any) -> str | None:
    """The `after` cursor of the next page, or None on the last one. We page with the cursor on
    our own path rather than follow `paging.next`, so the token only ever goes to `base_url`."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not after:
        after = (parse_qs(urlsplit(str(paging["next"])).query).get("after") or [None])[0]
    return str(after) if after else None


def _retry_after_seconds(response: httpx.Response) -> float | None:
    header = (response.headers.get("Retry-After") or "").strip()
    if not header:
        return None
    if header.isdigit():
        return float(header)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _without_query(url: str) -> str:
    # Media URLs carry a signature in the query string; keep it out of messages and logs.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _excerpt(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
