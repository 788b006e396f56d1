"""Synchronous client for the Kolmeya SMS API (https://kolmeya.com.br/api/v1).

Every endpoint is a POST with a JSON body, even the read-only ones. Results of a send are matched
to our messages by our `reference`, never by phone: Kolmeya echoes valid phones back as integers
without the country code.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from contact_center import phones
from contact_center.providers.base import OutgoingMessage, SendOutcome, SendResult, bearer_token, tls_context
from contact_center.translations import Words

from .errors import (
    KolmeyaAuthError,
    KolmeyaConnectionError,
    KolmeyaError,
    KolmeyaNotFound,
    KolmeyaPermissionError,
    KolmeyaRateLimited,
    KolmeyaResponseError,
    KolmeyaServerError,
    KolmeyaTimeout,
    KolmeyaValidationError,
)
from .webhooks import (
    BRAZIL_TZ,
    STATUS_STATES,
    KolmeyaReply,
    KolmeyaStatus,
    WebhookPayloadError,
    code_for_text,
    parse_reply,
    parse_statuses,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://kolmeya.com.br/api/v1"
DEFAULT_SEGMENT_ID = 109  # "CORPORATIVO" cost centre in the production account
MAX_MESSAGES_PER_REQUEST = 1000
MAX_REPLY_PERIOD_HOURS = 168
MAX_REPORT_ROWS = 30_000  # /sms/reports/statuses answers at most this many rows a call
MAX_REPORT_WINDOW = timedelta(days=7)  # and covers at most this long a window
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M"  # Brazil local time, to the minute

UNKNOWN_REASON = Words(
    "Kolmeya's answer did not list this message as valid, invalid, duplicate or blocked; it is not sent again "
    "before Kolmeya has been asked whether it has it"
)

# Which bucket of the /sms/store answer means what for the message.
_BUCKETS: dict[str, tuple[bool, str, Words | None]] = {
    "valids": (True, "sent", None),
    "invalids": (False, "rejected", None),  # reason: Kolmeya's own error text
    "duplicates": (
        False,
        "rejected",
        Words("duplicate: Kolmeya received the same text for this number shortly before and dropped this copy"),
    ),
    "blacklist": (
        False,
        "blocked",
        Words("the number is on Kolmeya's blacklist: the recipient asked not to receive SMS"),
    ),
    "not_disturb": (
        False,
        "blocked",
        Words("the number is on the Do Not Disturb register: Kolmeya delivers no SMS to it"),
    ),
}


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset_at: datetime | None  # aware, UTC


@dataclass(frozen=True)
class RepliesPage:
    replies: list[KolmeyaReply]
    current_page: int
    last_page: int | None
    per_page: int | None
    total: int | None
    next_page_url: str | None

    @property
    def has_next(self) -> bool:
        return self.next_page_url is not None


@dataclass(frozen=True)
class ReportRow:
    """One message of /sms/reports/statuses. It carries neither Kolmeya's message id nor our
    reference: what it is matched on (phone, job, lote, sent minute) is all there is."""

    phone: str  # digits, as Kolmeya wrote them
    status: str  # Kolmeya's text, e.g. "entregue"
    code: int | None  # from the text; None for a text we do not know (never guessed)
    sent_at: datetime | None  # `enviada_em`, aware UTC, to the minute; None when unreadable
    job: str | None
    lote: str | None
    text: str | None  # `mensagem`

    @property
    def state(self) -> str | None:
        return STATUS_STATES.get(self.code) if self.code is not None else None


@dataclass(frozen=True)
class Segment:
    id: int
    name: str


@dataclass(frozen=True)
class SmsApi:
    id: int
    name: str


def normalize_token(token: str) -> str:
    return bearer_token(token, "the Kolmeya panel")


def to_kolmeya_phone(phone: str) -> str:
    """Digits with the country code and no '+', which Kolmeya rejects: phones.kolmeya_form.

    An E.164 number keeps its own country (a '+1 415…' must never become a Brazilian '55 14 15…');
    a national number is Brazilian. What cannot be read as a number is sent as its digits, and
    Kolmeya reports it back under `invalids`.
    """
    try:
        return phones.kolmeya_form(str(phone))
    except phones.PhoneNumberError:
        return re.sub(r"\D", "", str(phone))


_BRAZILIAN_AMOUNT = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?")
_PLAIN_AMOUNT = re.compile(r"\d+(?:\.\d+)?")


def parse_balance(value: Any) -> Decimal:
    """Read Kolmeya's balance: "R$9.396,84" (Brazilian format) or "1500.50", or a number.

    A value with "R$" or a comma is Brazilian ('.' thousands, ',' decimals); otherwise a '.' is the
    decimal point. Anything else raises instead of becoming 0: a wrong balance misleads operators.
    """
    if isinstance(value, bool):
        raise _unreadable_balance(value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | Decimal):
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise _unreadable_balance(value)
        return amount
    if not isinstance(value, str):
        raise _unreadable_balance(value)

    text = re.sub(r"\s+", "", value)  # also drops the non-breaking space some formatters use
    brazilian = "R$" in text or "," in text
    text = text.replace("R$", "")
    negative = text.startswith("-")
    number = text[1:] if negative else text
    if brazilian:
        match = _BRAZILIAN_AMOUNT.fullmatch(number)
        if not match:
            raise _unreadable_balance(value)
        whole, cents = match.group(1).replace(".", ""), match.group(2)
        number = f"{whole}.{cents}" if cents else whole
    elif not _PLAIN_AMOUNT.fullmatch(number):
        raise _unreadable_balance(value)
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise _unreadable_balance(value) from None
    return -amount if negative else amount


def _unreadable_balance(value: Any) -> KolmeyaResponseError:
    return KolmeyaResponseError(
        f"Kolmeya returned a balance that cannot be read as an amount: {value!r}. "
        "Expected something like 'R$9.396,84' or '1500.50'; check the account in the Kolmeya panel.",
        path="/sms/balance",
    )


def parse_send_response(data: Any, sent: Sequence[OutgoingMessage]) -> SendResult:
    """Turn the /sms/store answer into one definite outcome per message we sent."""
    if not isinstance(data, dict):
        raise KolmeyaResponseError(
            Words("Kolmeya's answer to /sms/store is not a JSON object: {answer}. The messages may or may not have "
                  "been accepted; check their status before sending them again.", answer=_excerpt(data)),
            path="/sms/store",
        )
    ours = {message.reference for message in sent}
    found: dict[str, SendOutcome] = {}
    for bucket, (accepted, state, reason) in _BUCKETS.items():
        items = data.get(bucket) or []
        if not isinstance(items, list):
            logger.warning("Kolmeya /sms/store: %r is not a list, ignoring it: %r", bucket, items)
            continue
        for item in items:
            reference = _item_reference(item)
            if reference is None:
                logger.warning(
                    "Kolmeya /sms/store listed an entry under %r without a reference, so it cannot be "
                    "matched to a message: %r",
                    bucket,
                    item,
                )
                continue
            if reference not in ours:
                logger.warning(
                    "Kolmeya /sms/store listed reference %r under %r, but this request did not send "
                    "it: %r",
                    reference,
                    bucket,
                    item,
                )
                continue
            if reference in found:
                logger.warning(
                    "Kolmeya /sms/store listed reference %r twice; keeping %r, ignoring %r: %r",
                    reference,
                    found[reference].state,
                    bucket,
                    item,
                )
                continue
            provider_id = item.get("id") if accepted else None
            found[reference] = SendOutcome(
                reference=reference,
                accepted=accepted,
                provider_message_id=str(provider_id) if provider_id not in (None, "") else None,
                state=state,
                reason=reason if bucket != "invalids" else _invalid_reason(item),
                duplicate=bucket == "duplicates",
            )
    outcomes = {
        message.reference: found.get(message.reference)
        or SendOutcome(message.reference, False, None, "unknown", UNKNOWN_REASON)
        for message in sent
    }
    request_id = data.get("id")
    return SendResult(request_id=str(request_id) if request_id else None, outcomes=outcomes)


def _item_reference(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    reference = item.get("reference")
    if reference is None or reference == "":
        return None
    return str(reference)


def _invalid_reason(item: dict[str, Any]) -> Words | str:
    # The production answer used "reason"; integrations report "error".
    for key in ("error", "reason"):
        value = item.get(key)
        if isinstance(value, list):
            value = "; ".join(str(part) for part in value)
        if value:
            return str(value)
    return Words("Kolmeya listed the message as invalid without giving a reason")


_REPORT_DATE_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def parse_status_report(data: Any) -> list[ReportRow]:
    """Read the /sms/reports/statuses answer: {"messages": [{telefone, status, enviada_em, job,
    lote, ...}]}. An answer of another shape, or any row we cannot read as a message, refuses the
    whole report (KolmeyaResponseError): a changed format must not half-apply. A status text we
    do not know only leaves that row without a code."""
    path = "/sms/reports/statuses"
    items = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise KolmeyaResponseError(
            f"Kolmeya's answer to {path} is not {{\"messages\": [...]}}: {_excerpt(data)}. Nothing of it "
            "was applied.",
            path=path,
        )
    rows = []
    for index, item in enumerate(items):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise KolmeyaResponseError(
                f"Kolmeya's answer to {path}: {where} is not an object: {_excerpt(item)}. Nothing of the "
                "report was applied.",
                path=path,
            )
        raw_phone = item.get("telefone")
        readable = isinstance(raw_phone, int | str) and not isinstance(raw_phone, bool)
        phone = re.sub(r"\D", "", str(raw_phone)) if readable else ""
        status = item.get("status")
        if not phone or not isinstance(status, str) or not status.strip():
            raise KolmeyaResponseError(
                f"Kolmeya's answer to {path}: {where} has no readable 'telefone' and 'status': "
                f"{_excerpt(item)}. Nothing of the report was applied.",
                path=path,
            )
        code = code_for_text(status)
        if code is None:
            logger.warning("Kolmeya %s: %s has a status we do not know (%r); leaving that row alone", path, where,
                           status)
        rows.append(ReportRow(phone=phone, status=status.strip(), code=code,
                              sent_at=_report_time(item.get("enviada_em"), where),
                              job=_report_id(item.get("job")), lote=_report_id(item.get("lote")),
                              text=item.get("mensagem") if isinstance(item.get("mensagem"), str) else None))
    return rows


def _report_time(value: Any, where: str) -> datetime | None:
    if isinstance(value, str):
        for fmt in _REPORT_DATE_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt).replace(tzinfo=BRAZIL_TZ).astimezone(timezone.utc)
            except ValueError:
                continue
    if value not in (None, ""):
        logger.warning("Kolmeya /sms/reports/statuses: %s.enviada_em is not a date we can read: %r", where, value)
    return None


def _report_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value).strip() or None


def report_time(moment: datetime) -> str:
    """`moment` (aware) as the report's start_at/end_at take it: Brazil local time, to the minute."""
    return moment.astimezone(BRAZIL_TZ).strftime(REPORT_TIME_FORMAT)


class KolmeyaClient:
    """Kolmeya API client. Safe to reuse for many calls; close it (or use `with`) when done."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self._token = normalize_token(token)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.last_rate_limit: RateLimit | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(connect=timeout, read=timeout, write=timeout, pool=timeout),
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            transport=transport,
            verify=tls_context(),
        )

    def __enter__(self) -> KolmeyaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- sending -------------------------------------------------------------------------------

    def send(
        self,
        messages: Sequence[OutgoingMessage],
        *,
        segment_id: int | None = DEFAULT_SEGMENT_ID,
        sms_api_id: int | None = None,
        webhook_url: str | None = None,
        reference: str | None = None,
    ) -> SendResult:
        """Send 1..1000 messages in one request; every message gets a definite outcome."""
        if not 1 <= len(messages) <= MAX_MESSAGES_PER_REQUEST:
            raise ValueError(
                f"Kolmeya accepts 1 to {MAX_MESSAGES_PER_REQUEST} messages per request, "
                f"got {len(messages)}; split the batch."
            )
        references = [message.reference for message in messages]
        if not all(references) or len(set(references)) != len(references):
            raise ValueError(
                "Every message needs its own non-empty reference: Kolmeya's answer is matched to "
                "our messages by reference."
            )
        body: dict[str, Any] = {
            "messages": [
                {"phone": to_kolmeya_phone(m.phone), "message": m.body, "reference": m.reference}
                for m in messages
            ]
        }
        if segment_id is not None:
            body["tenant_segment_id"] = segment_id
        if sms_api_id is not None:
            body["sms_api_id"] = sms_api_id
        if webhook_url:
            body["webhook_url"] = webhook_url
        if reference:
            body["reference"] = reference
        return parse_send_response(self._post("/sms/store", body), messages)

    # --- account -------------------------------------------------------------------------------

    def balance(self) -> Decimal:
        data = self._post("/sms/balance")
        if not isinstance(data, dict) or "balance" not in data:
            raise KolmeyaResponseError(
                f"Kolmeya's answer to /sms/balance has no 'balance' field: {_excerpt(data)}",
                path="/sms/balance",
            )
        return parse_balance(data["balance"])

    def segments(self) -> list[Segment]:
        """Cost centres ("centros de custo"); their ids go into `send(segment_id=...)`."""
        return [Segment(i, n) for i, n in self._id_name_list("/sms/segments", "segments")]

    def apis(self) -> list[SmsApi]:
        """Sending routes; their ids go into `send(sms_api_id=...)`."""
        return [SmsApi(i, n) for i, n in self._id_name_list("/sms/apis", "apis")]

    # --- status and replies --------------------------------------------------------------------

    def request_status(self, request_id: str) -> list[KolmeyaStatus]:
        """Statuses of every message of one /sms/store request."""
        data = self._post("/sms/status/request", {"id": request_id})
        if isinstance(data, dict) and data.get("messages") == []:
            return []
        return self._statuses(data, "/sms/status/request")

    def find_request(self, reference: str) -> list[KolmeyaStatus] | None:
        """Statuses of the messages Kolmeya has from the /sms/store request sent with this
        `reference`; None when it has no request with it (it answers 404)."""
        try:
            data = self._post("/sms/status/request", {"reference": reference})
        except KolmeyaNotFound:
            return None
        if isinstance(data, dict) and data.get("messages") == []:
            return []
        return self._statuses(data, "/sms/status/request")

    def message_status(self, message_id: str) -> KolmeyaStatus:
        statuses = self._statuses(
            self._post("/sms/status/message", {"id": message_id}), "/sms/status/message"
        )
        if len(statuses) != 1:
            raise KolmeyaResponseError(
                f"Kolmeya's answer to /sms/status/message holds {len(statuses)} statuses, expected one",
                path="/sms/status/message",
            )
        return statuses[0]

    def replies(self, period_hours: int = 24, page: int = 1) -> RepliesPage:
        """Replies received in the last `period_hours` (1..168), one page at a time.

        Use it to recover replies whose webhook never reached us.
        """
        if not 1 <= period_hours <= MAX_REPLY_PERIOD_HOURS:
            raise ValueError(f"period_hours must be 1 to {MAX_REPLY_PERIOD_HOURS}, got {period_hours}")
        if page < 1:
            raise ValueError(f"page starts at 1, got {page}")
        data = self._post("/sms/replys", {"period": period_hours, "page": page})
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise KolmeyaResponseError(
                f"Kolmeya's answer to /sms/replys is not a paginated list: {_excerpt(data)}",
                path="/sms/replys",
            )
        replies = []
        for item in data["data"]:
            try:
                replies.append(parse_reply(item))
            except WebhookPayloadError as exc:
                logger.warning("Skipping a reply listed by Kolmeya that cannot be read (%s): %r", exc, item)
        return RepliesPage(
            replies=replies,
            current_page=_optional_int(data.get("current_page")) or page,
            last_page=_optional_int(data.get("last_page")),
            per_page=_optional_int(data.get("per_page")),
            total=_optional_int(data.get("total")),
            next_page_url=data.get("next_page_url") or None,
        )

    def reports_statuses(
        self,
        start_at: datetime,
        end_at: datetime,
        limit: int = MAX_REPORT_ROWS,
        *,
        segment_id: int | None = None,
    ) -> list[ReportRow]:
        """The statuses of the messages Kolmeya sent from `start_at` to `end_at` (aware datetimes,
        read to the minute in Brazil's time; at most 7 days apart), at most `limit` (1..30,000)
        rows. Exactly `limit` rows means there may be more: ask again for a shorter window."""
        if start_at.tzinfo is None or end_at.tzinfo is None:
            raise ValueError("start_at and end_at must be aware datetimes (Kolmeya reads them in Brazil's time)")
        if end_at < start_at:
            raise ValueError(f"end_at ({end_at.isoformat()}) is before start_at ({start_at.isoformat()})")
        if end_at - start_at > MAX_REPORT_WINDOW:
            raise ValueError(
                f"Kolmeya's status report covers at most 7 days; {start_at.isoformat()} to {end_at.isoformat()} "
                "is longer: split the window"
            )
        if not 1 <= limit <= MAX_REPORT_ROWS:
            raise ValueError(f"limit must be 1 to {MAX_REPORT_ROWS:,}, got {limit}")
        body: dict[str, Any] = {"start_at": report_time(start_at), "end_at": report_time(end_at), "limit": limit}
        if segment_id is not None:
            body["tenant_segment_id"] = segment_id
        return parse_status_report(self._post("/sms/reports/statuses", body))

    # --- blacklist -----------------------------------------------------------------------------

    def blacklist_add(self, phones: Iterable[str]) -> None:
        """Opt numbers out at Kolmeya: it will refuse to send to them."""
        self._post("/blacklist/store", {"phones": self._blacklist_entries(phones)})

    def blacklist_remove(self, phones: Iterable[str]) -> None:
        self._post("/blacklist/destroy", {"phones": self._blacklist_entries(phones)})

    @staticmethod
    def _blacklist_entries(phones: Iterable[str]) -> list[dict[str, int]]:
        numbers = [to_kolmeya_phone(phone) for phone in phones]
        if not 1 <= len(numbers) <= MAX_MESSAGES_PER_REQUEST:
            raise ValueError(
                f"Kolmeya takes 1 to {MAX_MESSAGES_PER_REQUEST} numbers per blacklist call, "
                f"got {len(numbers)}"
            )
        if not all(numbers):
            raise ValueError("Every blacklist entry needs a phone number with digits")
        return [{"phone": int(number)} for number in numbers]

    # --- plumbing ------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.post(path, json=body or {})
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The connection never opened: Kolmeya cannot have seen the request.
            raise KolmeyaTimeout(
                Words("Could not connect to Kolmeya at {url} within {seconds}s for POST {path} ({error}); nothing "
                      "was sent. Check this server's network and the base URL in the channel settings.",
                      url=self.base_url, seconds=f"{self.timeout:g}", path=path, error=type(exc).__name__),
                path=path,
                outcome_unknown=False,
            ) from exc
        except httpx.TimeoutException as exc:
            raise KolmeyaTimeout(
                Words("Kolmeya did not answer POST {path} within {seconds}s ({error}). It may still have processed "
                      "the request: messages it may have are not sent again before Kolmeya has been asked whether "
                      "it has them.", path=path, seconds=f"{self.timeout:g}", error=type(exc).__name__),
                path=path,
            ) from exc
        except httpx.TransportError as exc:
            # Refused or unresolvable: nothing reached Kolmeya. Broken mid-way: it may have.
            never_sent = isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol | httpx.ProxyError)
            what = {"url": self.base_url, "path": path, "error": self._redact(str(exc)) or type(exc).__name__}
            raise KolmeyaConnectionError(
                Words("Could not reach Kolmeya at {url} for POST {path}: {error}. Check this server's network and "
                      "DNS, and the base URL in the channel settings.", **what) if never_sent else
                Words("Lost the connection to Kolmeya at {url} for POST {path}: {error}. Check this server's "
                      "network and DNS, and the base URL in the channel settings.", **what),
                path=path,
                outcome_unknown=not never_sent,
            ) from exc

        self._record_rate_limit(response)
        logger.debug(
            "Kolmeya POST %s -> HTTP %s: %s", path, response.status_code, self._redact(response.text)
        )
        if response.status_code >= 400:
            raise self._error_for(response, path)
        if response.status_code >= 300:
            raise KolmeyaResponseError(
                Words("Kolmeya answered POST {path} with an unexpected HTTP {status}; check the base URL ({url}).",
                      path=path, status=response.status_code, url=self.base_url),
                status_code=response.status_code,
                path=path,
                outcome_unknown=False,  # a redirect is not carried out: nothing was done
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise KolmeyaResponseError(
                Words("Kolmeya answered POST {path} with HTTP {status} but the body is not JSON: {body}", path=path,
                      status=response.status_code, body=_excerpt(self._redact(response.text))),
                status_code=response.status_code,
                path=path,
            ) from None

    def _error_for(self, response: httpx.Response, path: str) -> KolmeyaError:
        status = response.status_code
        body = _json_or_none(response)
        said = self._redact(_error_text(body, response.text))
        if status == 401:
            return KolmeyaAuthError(
                Words("Kolmeya rejected the API token (HTTP 401: {said}). Check the token in the channel settings: "
                      "copy it again from the Kolmeya panel, with or without 'Bearer '.", said=said),
                status_code=status,
                path=path,
            )
        if status == 403:
            return KolmeyaPermissionError(
                Words("Kolmeya refused POST {path} (HTTP 403: {said}). The token has no permission for it, or this "
                      "server's public IP is not on the IP allow-list in the Kolmeya panel; ask the account "
                      "administrator to allow it.", path=path, said=said),
                status_code=status,
                path=path,
            )
        if status == 404:
            return KolmeyaNotFound(
                Words("Kolmeya answered 404 for POST {path} ({said}): the id does not exist, or the base URL ({url}) "
                      "is wrong; it should end in /api/v1.", path=path, said=said, url=self.base_url),
                status_code=status,
                path=path,
            )
        if status == 422:
            field_errors = _field_errors(body)
            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in field_errors.items())
            return KolmeyaValidationError(
                Words("Kolmeya rejected the request to {path} as invalid (HTTP 422): {details}", path=path,
                      details=self._redact(details or said)),
                field_errors=field_errors,
                path=path,
            )
        if status == 429:
            retry_after = _retry_after_seconds(response)
            limit = self.last_rate_limit.limit if self.last_rate_limit else None
            reached = (Words("Kolmeya's rate limit was reached (HTTP 429, {limit} requests per window).",
                             limit=limit) if limit else Words("Kolmeya's rate limit was reached (HTTP 429)."))
            wait = (Words("Retry in {seconds}s.", seconds=f"{retry_after:.0f}") if retry_after is not None
                    else Words("Wait a minute before retrying."))
            return KolmeyaRateLimited(
                Words("{reached} {wait} Spread bulk sends over time to stay under the limit.", reached=reached,
                      wait=wait),
                retry_after_seconds=retry_after,
                path=path,
            )
        if status >= 500:
            return KolmeyaServerError(
                Words("Kolmeya had a server error on POST {path} (HTTP {status}: {said}). This is on Kolmeya's side "
                      "and usually temporary; retry later.", path=path, status=status, said=said),
                status_code=status,
                path=path,
            )
        return KolmeyaResponseError(
            Words("Kolmeya answered POST {path} with unexpected HTTP {status}: {said}", path=path, status=status,
                  said=said),
            status_code=status,
            path=path,
            outcome_unknown=False,  # a 4xx refuses the request
        )

    def _record_rate_limit(self, response: httpx.Response) -> None:
        limit = _int_header(response, "X-RateLimit-Limit")
        remaining = _int_header(response, "X-RateLimit-Remaining")
        reset_at = _reset_at(response)
        if limit is None and remaining is None and reset_at is None:
            return
        self.last_rate_limit = RateLimit(limit=limit, remaining=remaining, reset_at=reset_at)
        if limit and remaining is not None and remaining < limit * 0.1:
            logger.warning(
                "Kolmeya rate limit almost used up: %d of %d requests left in this window%s. "
                "Further calls will fail with 429 until it resets.",
                remaining,
                limit,
                f" (resets at {reset_at:%H:%M:%S} UTC)" if reset_at else "",
            )

    def _statuses(self, data: Any, path: str) -> list[KolmeyaStatus]:
        try:
            return parse_statuses(data)
        except WebhookPayloadError as exc:
            raise KolmeyaResponseError(
                f"Kolmeya's answer to {path} has an unexpected shape ({exc}): {_excerpt(data)}",
                path=path,
            ) from None

    def _id_name_list(self, path: str, key: str) -> list[tuple[int, str]]:
        data = self._post(path)
        items = data.get(key) if isinstance(data, dict) else data
        try:
            return [(int(item["id"]), str(item.get("name", ""))) for item in items]
        except (TypeError, KeyError, ValueError, AttributeError):
            raise KolmeyaResponseError(
                f"Kolmeya's answer to {path} is not a list of {{id, name}}: {_excerpt(data)}",
                path=path,
            ) from None

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(body: Any, raw: str) -> str:
    """Kolmeya's own words: {"errors": [...]}, {"message": ...}, or the raw text."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        if body.get("message"):
            return str(body["message"])
    return _excerpt(raw) if raw else "no body"


def _field_errors(body: Any) -> dict[str, list[str]]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    return {
        str(field): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        for field, msgs in errors.items()
    }


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _reset_at(response: httpx.Response) -> datetime | None:
    value = _int_header(response, "X-RateLimit-Reset")
    if value is None:
        return None
    # Documented as an epoch; a small number can only be "seconds from now".
    epoch = value if value > 1_000_000_000 else time.time() + value
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _retry_after_seconds(response: httpx.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        if header.strip().isdigit():
            return float(header.strip())
        try:
            when = email.utils.parsedate_to_datetime(header)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    reset_at = _reset_at(response)
    if reset_at is not None:
        return max(0.0, reset_at.timestamp() - time.time())
    return None


def _optional_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _excerpt(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
