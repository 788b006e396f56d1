"""Parse Kolmeya callbacks (SMS replies and delivery statuses) into plain values.

Pure functions: no I/O and no database. Kolmeya does not sign its callbacks, so checking that a
callback is genuine (the secret in our callback URL) is the caller's job; this module checks shape
and explains what is wrong when the shape is not one Kolmeya is known to send.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contact_center.providers.base import InboundReply, TooManyItems, WebhookPayloadError, describe_value

logger = logging.getLogger(__name__)

try:
    BRAZIL_TZ: timezone | ZoneInfo = ZoneInfo("America/Sao_Paulo")
except ZoneInfoNotFoundError:  # no tz database on this machine
    # Brazil dropped daylight saving in 2019, so UTC-3 is exact for current dates.
    BRAZIL_TZ = timezone(timedelta(hours=-3), "BRT")

_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")

STATUS_TEXTS = {
    1: "tentando enviar",
    2: "enviado",
    3: "entregue",
    4: "não entregue",
    5: "rejeitado",
    6: "expirada",
}
STATUS_STATES = {
    1: "accepted",  # queued at Kolmeya, still trying to hand it to the carrier
    2: "sent",
    3: "delivered",
    4: "failed",
    5: "rejected",
    6: "expired",
}
FINAL_CODES = frozenset({3, 4, 5, 6})
MAX_STATUSES_PER_CALLBACK = 1000  # a batch callback reports one /sms/store request: 1 to 1000 messages

# "Forward only": a state may replace another of lower rank, and a final state never moves.
# "blocked" is not a Kolmeya status code; the client reports it at send time (opt-out lists).
_TEXT_CODES = {
    "tentando enviar": 1,
    "enviado": 2,
    "entregue": 3,
    "nao entregue": 4,
    "rejeitado": 5,
    "expirada": 6,
    "expirado": 6,
}


# Kolmeya's replies carry exactly what the protocol's InboundReply holds.
KolmeyaReply = InboundReply


@dataclass(frozen=True)
class KolmeyaStatus:
    external_id: str  # message id + code: replays collide, successive statuses do not
    provider_message_id: str | None
    reference: str | None
    code: int
    state: str
    text: str | None
    final: bool
    phone: str | None


def parse_kolmeya_datetime(value: str) -> datetime:
    """Read Kolmeya's Brazil-local 'YYYY-MM-DD HH:MM:SS' or 'dd/mm/YYYY HH:MM:SS' as aware UTC."""
    text = value.strip()
    if len(text) == 19 and text[4] == text[7] == "-" and text[10] == " " and text[13] == text[16] == ":":
        try:  # the shape every reply carries, read far faster than by strptime
            return datetime.fromisoformat(text).replace(tzinfo=BRAZIL_TZ).astimezone(timezone.utc)
        except ValueError:
            pass
    for fmt in _DATE_FORMATS:
        try:
            local = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=BRAZIL_TZ).astimezone(timezone.utc)
    raise ValueError(f"expected 'YYYY-MM-DD HH:MM:SS' or 'dd/mm/YYYY HH:MM:SS', got {value!r}")


def parse_reply(payload: Any) -> KolmeyaReply:
    """Read a reply callback in any known shape.

    - flat (seen in production): {"phone", "message", "reference"?, "data"?}
    - nested: {"reply": {"id", "reply", "received_at", "message": {"id", "reference", "phone"}}}
    - the inner object alone, as listed by POST /sms/replys
    """
    if not isinstance(payload, dict):
        raise WebhookPayloadError(
            f"a reply callback must be a JSON object, got {describe_value(payload)}", None
        )
    inner = payload.get("reply")
    if isinstance(inner, dict):
        return _parse_reply_object(inner, "reply.")
    if "reply" in payload and "phone" not in payload:
        return _parse_reply_object(payload, "")
    return _parse_flat_reply(payload)


def parse_statuses(payload: Any) -> list[KolmeyaStatus]:
    """Read a status callback: flat {"id", "reference", "status", "status_code", "phone"}
    or batch {"id": <request id>, "reference", "messages": [<flat items>]}."""
    return list(iter_statuses(payload))


def iter_statuses(payload: Any) -> Iterator[KolmeyaStatus]:
    """parse_statuses one status at a time, the checks of the whole body first: a large batch can
    be read in turns (the webhook writer lets replies in between)."""
    if not isinstance(payload, dict):
        raise WebhookPayloadError(
            f"a status callback must be a JSON object, got {describe_value(payload)}", None
        )
    if "messages" not in payload:
        yield _parse_status_item(payload, "")
        return
    items = payload["messages"]
    if not isinstance(items, list):
        raise WebhookPayloadError(
            f"messages: expected a list of message statuses, got {describe_value(items)}", "messages"
        )
    if not items:
        raise WebhookPayloadError(
            "messages: expected at least one message status, got an empty list", "messages"
        )
    if len(items) > MAX_STATUSES_PER_CALLBACK:
        raise TooManyItems(
            f"messages: {len(items):,} statuses in one callback; Kolmeya sends at most "
            f"{MAX_STATUSES_PER_CALLBACK:,} (the largest request it takes)", "messages"
        )
    for index, item in enumerate(items):
        yield _parse_status_item(item, f"messages[{index}].")


def _parse_flat_reply(payload: dict[str, Any]) -> KolmeyaReply:
    phone = _required_phone(payload, "phone", "phone")
    text = _required_text(payload, "message", "message", "the reply text")
    reference = _optional_id(payload.get("reference"), "reference")
    date_raw, received_at = _optional_date(payload.get("data"), "data")
    return KolmeyaReply(
        external_id=_reply_id(phone, text, date_raw, received_at, reference),
        phone=phone,
        text=text,
        received_at=received_at,
        in_reply_to_reference=reference,
        in_reply_to_provider_id=None,
    )


def _parse_reply_object(obj: dict[str, Any], prefix: str) -> KolmeyaReply:
    text = _required_text(obj, "reply", f"{prefix}reply", "the reply text")
    original = obj.get("message")
    if original is None:
        original = {}
    elif not isinstance(original, dict):
        raise WebhookPayloadError(
            f"{prefix}message: expected the original SMS as an object, got {describe_value(original)}",
            f"{prefix}message",
        )
    if original.get("phone") not in (None, ""):
        phone = _required_phone(original, "phone", f"{prefix}message.phone")
    else:
        phone = _required_phone(obj, "phone", f"{prefix}message.phone")
    reference = _optional_id(original.get("reference"), f"{prefix}message.reference")
    provider_id = _optional_id(original.get("id"), f"{prefix}message.id")
    reply_id = _optional_id(obj.get("id"), f"{prefix}id")
    date_raw, received_at = _optional_date(obj.get("received_at"), f"{prefix}received_at")
    return KolmeyaReply(
        external_id=reply_id or _reply_id(phone, text, date_raw, received_at, reference),
        phone=phone,
        text=text,
        received_at=received_at,
        in_reply_to_reference=reference,
        in_reply_to_provider_id=provider_id,
    )


def _parse_status_item(obj: Any, prefix: str) -> KolmeyaStatus:
    if not isinstance(obj, dict):
        where = prefix.rstrip(".") or None
        raise WebhookPayloadError(
            f"{where or 'status'}: expected an object with id, status_code and status, got {describe_value(obj)}",
            where,
        )
    provider_id = _optional_id(obj.get("id"), f"{prefix}id")
    reference = _optional_id(obj.get("reference"), f"{prefix}reference")
    if provider_id is None and reference is None:
        raise WebhookPayloadError(
            f"{prefix}id: expected the Kolmeya message id or our reference to identify the message, "
            "got neither",
            f"{prefix}id",
        )
    text = obj.get("status")
    if text is not None and not isinstance(text, str):
        raise WebhookPayloadError(
            f"{prefix}status: expected the status text (e.g. 'entregue'), got {describe_value(text)}",
            f"{prefix}status",
        )
    code = _status_code(obj.get("status_code"), text, f"{prefix}status_code")
    phone = None
    if obj.get("phone") not in (None, ""):
        phone = _required_phone(obj, "phone", f"{prefix}phone")
    return KolmeyaStatus(
        external_id=f"{provider_id or 'ref:' + str(reference)}:{code}",
        provider_message_id=provider_id,
        reference=reference,
        code=code,
        state=STATUS_STATES[code],
        text=text,
        final=code in FINAL_CODES,
        phone=phone,
    )


def _status_code(raw: Any, text: str | None, field: str) -> int:
    expected = "expected an integer status code from 1 to 6"
    if raw is None:
        # Some callbacks carry only the text ("entregue"); it maps to exactly one code.
        code = _TEXT_CODES.get(_fold(text)) if text else None
        if code is None:
            raise WebhookPayloadError(
                f"{field}: missing, and the status text {text!r} is not a known Kolmeya status; "
                f"{expected} or one of {sorted(set(STATUS_TEXTS.values()))}",
                field,
            )
        return code
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise WebhookPayloadError(f"{field}: {expected}, got {describe_value(raw)}", field)
    if isinstance(raw, str):
        if not re.fullmatch(r"\s*\d+\s*", raw):
            raise WebhookPayloadError(f"{field}: {expected}, got {raw!r}", field)
        raw = int(raw)
    if raw not in STATUS_STATES:
        raise WebhookPayloadError(f"{field}: {expected}, got {raw}", field)
    return raw


def _required_phone(obj: dict[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    expected = "expected the phone number as digits (string or number)"
    if value is None or value == "":
        raise WebhookPayloadError(f"{field}: missing; {expected}", field)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WebhookPayloadError(f"{field}: {expected}, got {describe_value(value)}", field)
    # Keep the number as sent (country code and all); only formatting characters go.
    digits = re.sub(r"\D", "", str(value))
    if not digits:
        raise WebhookPayloadError(f"{field}: {expected}, got {value!r}", field)
    return digits


def _required_text(obj: dict[str, Any], key: str, field: str, what: str) -> str:
    if key not in obj or obj[key] is None:
        raise WebhookPayloadError(f"{field}: missing; expected {what} as a string", field)
    value = obj[key]
    if not isinstance(value, str):
        raise WebhookPayloadError(
            f"{field}: expected {what} as a string, got {describe_value(value)}", field
        )
    return value


def _optional_id(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WebhookPayloadError(
            f"{field}: expected a string or number, got {describe_value(value)}", field
        )
    return str(value).strip() or None


def _optional_date(value: Any, field: str) -> tuple[str | None, datetime | None]:
    """Return (raw text, parsed UTC). A date in an unknown format is logged, not fatal:
    losing a customer's reply over its timestamp would be worse than a missing timestamp."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, str):
        raise WebhookPayloadError(
            f"{field}: expected a date string like '2025-11-15 14:30:00', got {describe_value(value)}",
            field,
        )
    try:
        return value.strip(), parse_kolmeya_datetime(value)
    except ValueError as exc:
        logger.warning("Kolmeya callback %s is not a date we can read (%s); keeping it empty", field, exc)
        return value.strip(), None


def _reply_id(phone: str, text: str, date_raw: str | None, received_at: datetime | None,
              reference: str | None) -> str:
    """The id of a reply Kolmeya sent without one: its UTC time, then a hash of its content.

    Two identical replies from the same phone in the same second collapse into one; that is the
    price of recognising a replayed callback. The time comes first so that the unique indexes on
    reply ids (webhook events, messages) grow at their end, like the replies arrive, instead of
    dirtying a random page each: a third of what a batch of replies writes (migration 0004 gave
    the replies stored before the same form)."""
    canonical = json.dumps([phone, text, date_raw, reference], ensure_ascii=False)
    return time_first("sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32], received_at)


def time_first(digest: str, received_at: datetime | None) -> str:
    """`digest` behind the reply's UTC time (YYYYMMDDHHMMSS-), or alone when the time is unknown."""
    return f"{received_at:%Y%m%d%H%M%S}-{digest}" if received_at else digest


def code_for_text(text: str | None) -> int | None:
    """The status code a Kolmeya status text stands for ('Não entregue' -> 4); None for a text we do not know."""
    return _TEXT_CODES.get(_fold(text)) if text else None


def _fold(text: str | None) -> str:
    """Lower-case, accent-free, single-spaced: 'Não  Entregue' -> 'nao entregue'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.lower().split())


