"""Read WhatsApp Cloud API webhooks (Meta's Graph API) into plain values.

Pure functions: no I/O and no database. The server does, in this order:

1. ``phone_number_ids(payload)`` / ``waba_ids(payload)`` on the decoded body, to find the channels
   it names and so the app secret (never trusting anything else in the body yet);
2. ``verify_signature(raw, header, app_secret)`` over the exact bytes received;
3. ``parse(payload)`` into a ``Batch`` of events, each with an ``external_id`` to de-duplicate on
   (Meta re-delivers for days and sends duplicates).

``parse`` checks shape and names the field that is wrong (``entry[0].changes[1].value.messages[2].id``);
it never raises anything but ``WebhookPayloadError`` (``TooManyItems`` past the cap), whatever JSON
it is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import phonenumbers

from contact_center.money import format_brl
from contact_center.phones import PhoneNumberError, match_key
from contact_center.providers.base import TooManyItems, WebhookPayloadError, describe_value

__all__ = [
    "MAX_ITEMS_PER_BODY",
    "SIGNATURE_HEADER",
    "STATUSES",
    "Batch",
    "Choice",
    "Event",
    "GraphErrorInfo",
    "InboundMessage",
    "Location",
    "Media",
    "MessageEdit",
    "PreferenceEvent",
    "Reaction",
    "Revocation",
    "Sender",
    "SharedContact",
    "SignatureError",
    "StatusEvent",
    "SystemChange",
    "TemplateStatusEvent",
    "UnknownChange",
    "ValueErrorEvent",
    "describe",
    "handshake",
    "parse",
    "phone_number_ids",
    "sign",
    "verify_signature",
    "waba_ids",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
OBJECT = "whatsapp_business_account"
STATUSES = frozenset({"sent", "delivered", "read", "played", "failed"})
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
# Far above what Meta batches into one POST; bounds the work one request can cause. Counts
# messages, statuses, contacts and preference items, and every change once.
MAX_ITEMS_PER_BODY = 1000


# --- signature and handshake -----------------------------------------------------


class SignatureError(Exception):
    """The body is not signed with the app secret: answer 401 and store nothing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sign(raw: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``raw``: ``sha256=<lowercase hex>``."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def verify_signature(raw: bytes, header: str | None, app_secret: str) -> None:
    """Raise SignatureError unless ``header`` is the HMAC-SHA256 of exactly ``raw``.

    ``raw`` must be the bytes as received: Meta signs its own serialisation (non-ASCII escaped as
    ``\\uXXXX``), so a body decoded and encoded again does not verify.
    """
    if not app_secret:
        # An empty key would make every forger's signature easy to compute.
        raise SignatureError("no app secret configured for this channel")
    if header is None or not header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme.strip().lower() != "sha256":
        raise SignatureError(f"{SIGNATURE_HEADER}: expected 'sha256=<hex digest>', got scheme {scheme[:20]!r}")
    digest = digest.strip()
    if len(digest) != 64:
        raise SignatureError(f"{SIGNATURE_HEADER}: expected 64 hex digits, got {len(digest)} characters")
    try:
        received = bytes.fromhex(digest)
    except ValueError:
        raise SignatureError(f"{SIGNATURE_HEADER}: the digest is not hexadecimal") from None
    expected = hmac.new(app_secret.encode("utf-8"), raw, hashlib.sha256).digest()
    if not hmac.compare_digest(received, expected):
        raise SignatureError(f"{SIGNATURE_HEADER}: signature does not match the body")


def handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to answer (200, raw body) to Meta's subscription check, or None (403)."""
    if not verify_token or params.get("hub.mode") != "subscribe":
        return None
    token = params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if not isinstance(token, str) or not isinstance(challenge, str) or not challenge:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return challenge


def phone_number_ids(payload: Any) -> set[str]:
    """The ``value.metadata.phone_number_id``s a body names, read before the body is trusted.

    Never raises. The routing rule the server applies: look every id up; one POST is signed by one
    Meta app, so all the known ids must belong to channels sharing one app secret. Ids of different
    secrets mean a misconfiguration or a forgery: reject (401) rather than pick one. Ids we do not
    know are acknowledged and logged, not an error (Meta would retry for days). Changes without a
    phone number (template status updates) are routed by ``waba_ids``.
    """
    ids: set[str] = set()
    for change in _loose_changes(payload):
        value = change.get("value")
        metadata = value.get("metadata") if isinstance(value, dict) else None
        pid = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
        if isinstance(pid, str) and pid.strip():
            ids.add(pid.strip())
        elif isinstance(pid, int) and not isinstance(pid, bool):
            ids.add(str(pid))
    return ids


def waba_ids(payload: Any) -> set[str]:
    """The ``entry[].id``s (WhatsApp Business Account ids) a body names. Never raises."""
    ids: set[str] = set()
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        wid = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(wid, str) and wid.strip():
            ids.add(wid.strip())
        elif isinstance(wid, int) and not isinstance(wid, bool):
            ids.add(str(wid))
    return ids


def _loose_changes(payload: Any) -> Iterator[dict[str, Any]]:
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            if isinstance(change, dict):
                yield change


# --- events ------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphErrorInfo:
    code: int | None
    title: str | None
    message: str | None
    details: str | None  # error_data.details: build on code and details, not on titles
    level: str  # where it came: value | message | status


@dataclass(frozen=True)
class Sender:
    from_raw: str | None  # the message's `from` as sent; absent for users sharing only a BSUID
    phone: str | None  # E.164; a Brazilian 12-digit mobile wa_id gets its ninth digit back
    wa_id: str | None  # `from`, or the matching contact's wa_id: WhatsApp's own form, kept as is
    user_id: str | None  # business-scoped user id (BSUID); changes when the user changes number
    parent_user_id: str | None
    username: str | None
    profile_name: str | None


@dataclass(frozen=True)
class Media:
    media_id: str | None  # expires after 7 days: fetch promptly
    mime_type: str | None
    sha256: str | None
    caption: str | None
    filename: str | None  # documents
    voice: bool  # audio recorded as a voice note
    animated: bool  # stickers
    url: str | None  # sometimes sent; still needs the Bearer token


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str | None
    address: str | None
    url: str | None


@dataclass(frozen=True)
class SharedContact:
    name: str | None
    phones: tuple[str, ...]  # as written in the card (`phone`), else '+' + wa_id


@dataclass(frozen=True)
class Choice:
    kind: str  # button_reply | list_reply | nfm_reply (interactive: a Flow's answer) | button (a template's quick reply)
    id: str | None  # the id (or template button payload) we set when sending
    title: str | None
    description: str | None


@dataclass(frozen=True)
class Reaction:
    message_id: str  # the wamid reacted to
    emoji: str | None  # None: the reaction was removed


@dataclass(frozen=True)
class MessageEdit:
    target_wamid: str | None
    text: str | None


@dataclass(frozen=True)
class Revocation:
    target_wamid: str | None


@dataclass(frozen=True)
class SystemChange:
    kind: str | None  # user_changed_number | user_changed_user_id | customer_identity_changed
    new_wa_id: str | None
    new_phone: str | None  # E.164 of new_wa_id, ninth digit restored like Sender.phone
    new_user_id: str | None
    body: str | None  # Meta's own sentence, in English


@dataclass(frozen=True)
class InboundMessage:
    external_id: str  # wa:msg:{wamid}
    phone_number_id: str
    waba_id: str | None
    wamid: str
    timestamp: datetime  # UTC
    type: str  # as sent, also for types we do not read
    sender: Sender
    context_wamid: str | None  # the message this one replies to
    forwarded: bool
    frequently_forwarded: bool
    referral: dict[str, Any] | None  # click-to-WhatsApp ad: source_url, headline, ctwa_clid...
    errors: tuple[GraphErrorInfo, ...]
    text: str | None  # body, caption, chosen title, button text, edited text
    media: Media | None = None
    location: Location | None = None
    shared_contacts: tuple[SharedContact, ...] = ()
    choice: Choice | None = None
    reaction: Reaction | None = None
    edit: MessageEdit | None = None
    revoke: Revocation | None = None
    system: SystemChange | None = None
    unsupported: bool = False  # Meta's `unsupported`, or a type we do not read (order, nfm_reply...)


@dataclass(frozen=True)
class StatusEvent:
    external_id: str  # wa:status:{wamid}:{status}
    phone_number_id: str
    waba_id: str | None
    wamid: str
    status: str  # sent | delivered | read | played | failed; order across webhooks is not guaranteed
    timestamp: datetime
    recipient_id: str | None  # E.164 (ninth digit restored); absent when we sent to a BSUID
    recipient_wa_id: str | None  # `recipient_id` as sent
    recipient_user_id: str | None
    callback_data: str | None  # biz_opaque_callback_data: our own reference, echoed
    pricing_category: str | None
    pricing_type: str | None
    errors: tuple[GraphErrorInfo, ...]


@dataclass(frozen=True)
class TemplateStatusEvent:
    external_id: str  # wa:change:{hash}: a template may go APPROVED -> PAUSED -> APPROVED again
    phone_number_id: str | None
    waba_id: str | None
    event: str  # APPROVED | REJECTED | PAUSED | DISABLED | PENDING_DELETION ...
    template_id: str | None
    template_name: str | None
    language: str | None
    reason: str | None  # Meta's "NONE" reads as None


@dataclass(frozen=True)
class PreferenceEvent:
    external_id: str  # wa:pref:{wa_id or user_id}:{category}:{value}:{unix timestamp}
    phone_number_id: str | None
    waba_id: str | None
    wa_id: str | None
    phone: str | None
    user_id: str | None
    category: str  # marketing_messages
    value: str  # stop | resume
    detail: str | None
    timestamp: datetime | None


@dataclass(frozen=True)
class ValueErrorEvent:
    external_id: str  # wa:change:{hash}
    phone_number_id: str | None
    waba_id: str | None
    field: str
    errors: tuple[GraphErrorInfo, ...]


@dataclass(frozen=True)
class UnknownChange:
    external_id: str  # wa:change:{hash}
    phone_number_id: str | None
    waba_id: str | None
    field: str  # acknowledged; the caller logs it once


Event = InboundMessage | StatusEvent | TemplateStatusEvent | PreferenceEvent | ValueErrorEvent | UnknownChange


@dataclass(frozen=True)
class Batch:
    events: tuple[Event, ...]  # in the order of the body

    @property
    def messages(self) -> tuple[InboundMessage, ...]:
        return tuple(e for e in self.events if isinstance(e, InboundMessage))

    @property
    def statuses(self) -> tuple[StatusEvent, ...]:
        return tuple(e for e in self.events if isinstance(e, StatusEvent))


# --- parse -------------------------------------------------------------------------


def parse(payload: Any) -> Batch:
    """Every event of a webhook body, in order. Raises WebhookPayloadError (TooManyItems)."""
    body = _object(payload, "", "the webhook body as an object")
    if body.get("object") != OBJECT:
        raise WebhookPayloadError(
            f"object: expected {OBJECT!r}, got {describe_value(body.get('object'))}", "object"
        )
    entries = _list(body.get("entry"), "entry", "a list of entries")
    events: list[Event] = []
    budget = _Budget()
    for e_index, raw_entry in enumerate(entries):
        e_path = f"entry[{e_index}]"
        entry = _object(raw_entry, e_path, "an entry object")
        waba_id = _opt_id(entry, "id", e_path)
        changes = _list(entry.get("changes"), f"{e_path}.changes", "a list of changes")
        for c_index, raw_change in enumerate(changes):
            budget.take(1, f"{e_path}.changes")
            c_path = f"{e_path}.changes[{c_index}]"
            change = _object(raw_change, c_path, "a change object")
            events.extend(_parse_change(change, c_path, waba_id, budget))
    return Batch(tuple(events))


class _Budget:
    def __init__(self) -> None:
        self.used = 0

    def take(self, count: int, path: str) -> None:
        self.used += count
        if self.used > MAX_ITEMS_PER_BODY:
            raise TooManyItems(
                f"{path}: more than {MAX_ITEMS_PER_BODY:,} changes, messages, statuses and contacts in one body; "
                "Meta sends far fewer",
                path,
            )


def _parse_change(change: dict[str, Any], path: str, waba_id: str | None, budget: _Budget) -> list[Event]:
    field = _req_text(change, "field", path, "the change's field name")
    if field not in ("messages", "message_template_status_update", "user_preferences"):
        value = change.get("value")
        metadata = value.get("metadata") if isinstance(value, dict) else None
        pid = _loose_id(metadata.get("phone_number_id")) if isinstance(metadata, dict) else None
        return [UnknownChange(_change_id(waba_id, change), pid, waba_id, field)]
    v_path = f"{path}.value"
    value = _object(change.get("value"), v_path, "the change's value as an object")
    m_path = f"{v_path}.metadata"
    if field == "messages":
        metadata = _object(value.get("metadata"), m_path, "metadata with phone_number_id")
        phone_number_id: str | None = _req_id(metadata, "phone_number_id", m_path)
    else:
        metadata = value.get("metadata")
        phone_number_id = None
        if metadata is not None:
            phone_number_id = _opt_id(_object(metadata, m_path, "a metadata object"), "phone_number_id", m_path)

    events: list[Event] = []
    if value.get("errors") is not None:
        errors = _errors(value, v_path, "value")
        if errors:
            events.append(ValueErrorEvent(_change_id(waba_id, change), phone_number_id, waba_id, field, errors))
    if field == "message_template_status_update":
        events.append(_template_status(value, v_path, change, waba_id, phone_number_id))
    elif field == "user_preferences":
        prefs = _list(value.get("user_preferences"), f"{v_path}.user_preferences", "a list of preferences")
        budget.take(len(prefs), f"{v_path}.user_preferences")
        for index, item in enumerate(prefs):
            events.append(_preference(item, f"{v_path}.user_preferences[{index}]", waba_id, phone_number_id))
    else:
        assert phone_number_id is not None
        events.extend(_messages_and_statuses(value, v_path, waba_id, phone_number_id, budget))
    return events


def _messages_and_statuses(value: dict[str, Any], path: str, waba_id: str | None, phone_number_id: str,
                           budget: _Budget) -> Iterator[Event]:
    messages = _opt_list(value, "messages", path, "a list of messages")
    statuses = _opt_list(value, "statuses", path, "a list of statuses")
    contacts_raw = _opt_list(value, "contacts", path, "a list of contacts")
    budget.take(len(messages) + len(statuses) + len(contacts_raw), path)
    contacts = [_contact(item, f"{path}.contacts[{i}]") for i, item in enumerate(contacts_raw)]
    for index, item in enumerate(messages):
        yield _message(item, f"{path}.messages[{index}]", waba_id, phone_number_id, contacts)
    for index, item in enumerate(statuses):
        yield _status(item, f"{path}.statuses[{index}]", waba_id, phone_number_id)


@dataclass(frozen=True)
class _Contact:
    wa_id: str | None
    user_id: str | None
    parent_user_id: str | None
    name: str | None
    username: str | None


def _contact(raw: Any, path: str) -> _Contact:
    obj = _object(raw, path, "a contact object")
    profile_raw = obj.get("profile")
    profile = _object(profile_raw, f"{path}.profile", "a profile object") if profile_raw is not None else {}
    p_path = f"{path}.profile"
    return _Contact(
        wa_id=_opt_id(obj, "wa_id", path),
        user_id=_opt_id(obj, "user_id", path),
        parent_user_id=_opt_id(obj, "parent_user_id", path),
        name=_opt_text(profile, "name", p_path),
        username=_opt_text(profile, "username", p_path),
    )


def _matching_contact(contacts: list[_Contact], wa_id: str | None, user_id: str | None) -> _Contact | None:
    """The contact entry of a message's sender: one sharing its wa_id or user_id. Failing that, the
    only contact of the value when none of its ids contradicts the message's."""
    for contact in contacts:
        if (wa_id and contact.wa_id == wa_id) or (user_id and contact.user_id == user_id):
            return contact
    if len(contacts) == 1:
        only = contacts[0]
        if (not wa_id or not only.wa_id) and (not user_id or not only.user_id):
            return only
    return None


def _message(raw: Any, path: str, waba_id: str | None, phone_number_id: str,
             contacts: list[_Contact]) -> InboundMessage:
    msg = _object(raw, path, "a message object")
    wamid = _req_text(msg, "id", path, "the message id (wamid)")
    kind = _req_text(msg, "type", path, "the message type")
    timestamp = _timestamp(msg, "timestamp", path)
    from_raw = _opt_id(msg, "from", path)
    from_user_id = _opt_id(msg, "from_user_id", path)
    contact = _matching_contact(contacts, from_raw, from_user_id)
    wa_id = from_raw or (contact.wa_id if contact else None)
    user_id = from_user_id or (contact.user_id if contact else None)
    if wa_id is None and user_id is None:
        raise WebhookPayloadError(
            f"{path}.from: missing; expected the sender's phone (from) or user id (from_user_id)",
            f"{path}.from",
        )
    sender = Sender(
        from_raw=from_raw,
        phone=_phone_from_wa_id(wa_id),
        wa_id=wa_id,
        user_id=user_id,
        parent_user_id=_opt_id(msg, "from_parent_user_id", path) or (contact.parent_user_id if contact else None),
        username=contact.username if contact else None,
        profile_name=contact.name if contact else None,
    )
    context_wamid = None
    forwarded = frequently_forwarded = False
    if msg.get("context") is not None:
        ctx_path = f"{path}.context"
        ctx = _object(msg["context"], ctx_path, "a context object")
        context_wamid = _opt_text(ctx, "id", ctx_path)
        forwarded = _opt_bool(ctx, "forwarded", ctx_path)
        frequently_forwarded = _opt_bool(ctx, "frequently_forwarded", ctx_path)
    referral = None
    if msg.get("referral") is not None:
        referral = _object(msg["referral"], f"{path}.referral", "a referral object")
    common = dict(
        external_id=f"wa:msg:{wamid}",
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        wamid=wamid,
        timestamp=timestamp,
        type=kind,
        sender=sender,
        context_wamid=context_wamid,
        forwarded=forwarded or frequently_forwarded,
        frequently_forwarded=frequently_forwarded,
        referral=referral,
        errors=_errors(msg, path, "message"),
    )
    return InboundMessage(**common, **_content(msg, kind, path))


def _content(msg: dict[str, Any], kind: str, path: str) -> dict[str, Any]:
    """The per-type fields of InboundMessage."""
    c_path = f"{path}.{kind}"
    if kind == "text":
        body = _object(msg.get("text"), c_path, "a text object")
        return {"text": _req_text(body, "body", c_path, "the text body", allow_empty=True)}
    if kind in MEDIA_TYPES:
        obj = _object(msg.get(kind), c_path, f"an {kind} object")
        media = Media(
            media_id=_opt_id(obj, "id", c_path),
            mime_type=_opt_text(obj, "mime_type", c_path),
            sha256=_opt_text(obj, "sha256", c_path),
            caption=_opt_text(obj, "caption", c_path),
            filename=_opt_text(obj, "filename", c_path),
            voice=_opt_bool(obj, "voice", c_path),
            animated=_opt_bool(obj, "animated", c_path),
            url=_opt_text(obj, "url", c_path),
        )
        if media.media_id is None and media.url is None:
            raise WebhookPayloadError(f"{c_path}.id: missing; expected the media id", f"{c_path}.id")
        return {"media": media, "text": media.caption}
    if kind == "location":
        obj = _object(msg.get("location"), c_path, "a location object")
        return {"location": Location(
            latitude=_coordinate(obj, "latitude", c_path, 90),
            longitude=_coordinate(obj, "longitude", c_path, 180),
            name=_opt_text(obj, "name", c_path),
            address=_opt_text(obj, "address", c_path),
            url=_opt_text(obj, "url", c_path),
        ), "text": None}
    if kind == "contacts":
        cards = _list(msg.get("contacts"), c_path, "a list of contact cards")
        return {"shared_contacts": tuple(_card(card, f"{c_path}[{i}]") for i, card in enumerate(cards)),
                "text": None}
    if kind == "interactive":
        obj = _object(msg.get("interactive"), c_path, "an interactive object")
        sub = _req_text(obj, "type", c_path, "the interactive type")
        if sub == "nfm_reply":
            choice = _flow_answer(_object(obj.get(sub), f"{c_path}.{sub}", "an nfm_reply object"))
            return {"choice": choice, "text": choice.title}
        if sub not in ("button_reply", "list_reply"):
            return {"text": None, "unsupported": True}
        s_path = f"{c_path}.{sub}"
        reply = _object(obj.get(sub), s_path, f"a {sub} object")
        choice = Choice(sub, _opt_id(reply, "id", s_path), _opt_text(reply, "title", s_path),
                        _opt_text(reply, "description", s_path))
        return {"choice": choice, "text": choice.title}
    if kind == "button":
        obj = _object(msg.get("button"), c_path, "a button object")
        choice = Choice("button", _opt_id(obj, "payload", c_path), _opt_text(obj, "text", c_path), None)
        return {"choice": choice, "text": choice.title}
    if kind == "reaction":
        obj = _object(msg.get("reaction"), c_path, "a reaction object")
        target = _req_text(obj, "message_id", c_path, "the wamid reacted to")
        return {"reaction": Reaction(target, _opt_text(obj, "emoji", c_path) or None), "text": None}
    if kind == "edit":
        edit = _loose_edit(msg)
        return {"edit": edit, "text": edit.text}
    if kind == "revoke":
        return {"revoke": Revocation(_loose_target(msg, "revoke")), "text": None}
    if kind == "system":
        return {"system": _system(msg, c_path), "text": None}
    if kind == "order":
        return {"text": _order(_object(msg.get("order"), c_path, "an order object"), c_path)}
    return {"text": None, "unsupported": True}  # `unsupported`, `unknown`, request_welcome...


def _flow_answer(obj: dict[str, Any]) -> Choice:
    """A WhatsApp Flow's answer: the fields the customer filled in (not the flow's own token)."""
    answers = {}
    raw = obj.get("response_json")
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            answers = json.loads(raw)
    filled = [f"{key}: {value}" for key, value in (answers.items() if isinstance(answers, dict) else ())
              if key != "flow_token" and value not in (None, "", [], {})]
    summary = "; ".join(filled) or (obj.get("body") if isinstance(obj.get("body"), str) else "")
    title = f"📋 Formulário respondido: {summary}" if summary else "📋 Formulário respondido"
    return Choice("nfm_reply", obj.get("name") if isinstance(obj.get("name"), str) else None, title[:1000], None)


def _order(obj: dict[str, Any], path: str) -> str:
    """A catalog order as the operator reads it: how many items, the total, the customer's note."""
    items = _list(obj.get("product_items") or [], f"{path}.product_items", "a list of products")
    count, total, currencies = 0, Decimal(0), set()
    for item in items:
        if not isinstance(item, dict):
            continue
        quantity, price = item.get("quantity"), item.get("item_price")
        quantity = quantity if type(quantity) is int and 0 < quantity < 10**6 else 1
        count += quantity
        if type(price) in (int, float) and 0 <= price < 10**9:  # a price we can add up (no bool, nan or inf)
            total += quantity * Decimal(str(price))
        currencies.add(item.get("currency") if isinstance(item.get("currency"), str) else None)
    text = f"🛒 Pedido pelo catálogo: {count} {'item' if count == 1 else 'itens'}"
    if total and currencies == {"BRL"}:
        text += f", total {format_brl(total)}"
    note = obj.get("text")
    return f"{text} — {note}" if isinstance(note, str) and note.strip() else text


def _card(raw: Any, path: str) -> SharedContact:
    card = _object(raw, path, "a contact card")
    name = None
    if card.get("name") is not None:
        n_path = f"{path}.name"
        name_obj = _object(card["name"], n_path, "a name object")
        name = _opt_text(name_obj, "formatted_name", n_path) or " ".join(
            part for part in (_opt_text(name_obj, "first_name", n_path), _opt_text(name_obj, "last_name", n_path))
            if part
        ) or None
    phones = []
    for index, item in enumerate(_opt_list(card, "phones", path, "a list of phones")):
        p_path = f"{path}.phones[{index}]"
        phone = _object(item, p_path, "a phone object")
        written = _opt_text(phone, "phone", p_path)
        wa_id = _opt_id(phone, "wa_id", p_path)
        if written or wa_id:
            phones.append(written or f"+{wa_id}")
    return SharedContact(name, tuple(phones))


# `edit` and `revoke` are newer and barely documented, so both are read loosely. The target is the
# first of <type>.original_message_id, <type>.message_id, <type>.id, <type>.context.id and the
# message's own context.id; the new text of an edit is the first of edit.message.text.body,
# edit.message.caption, edit.text.body, edit.text (a string) and edit.body. A missing <type> object,
# target or text gives None, never an error: losing the notice would be worse.
_TARGET_KEYS = ("original_message_id", "message_id", "id")


def _loose_target(msg: dict[str, Any], kind: str) -> str | None:
    obj = msg.get(kind)
    if isinstance(obj, dict):
        for key in _TARGET_KEYS:
            if isinstance(obj.get(key), str) and obj[key]:
                return obj[key]
        ctx = obj.get("context")
        if isinstance(ctx, dict) and isinstance(ctx.get("id"), str) and ctx["id"]:
            return ctx["id"]
    ctx = msg.get("context")
    if isinstance(ctx, dict) and isinstance(ctx.get("id"), str) and ctx["id"]:
        return ctx["id"]
    return None


def _loose_edit(msg: dict[str, Any]) -> MessageEdit:
    obj = msg.get("edit")
    text = None
    if isinstance(obj, dict):
        inner = obj.get("message")
        candidates = []
        if isinstance(inner, dict):
            candidates += [_get(inner, "text", "body"), inner.get("caption")]
        candidates += [_get(obj, "text", "body"), obj.get("text"), obj.get("body")]
        text = next((c for c in candidates if isinstance(c, str)), None)
    return MessageEdit(_loose_target(msg, "edit"), text)


def _get(obj: dict[str, Any], key: str, inner: str) -> Any:
    value = obj.get(key)
    return value.get(inner) if isinstance(value, dict) else None


def _system(msg: dict[str, Any], path: str) -> SystemChange:
    obj = _object(msg.get("system"), path, "a system object")
    kind = _opt_text(obj, "type", path)
    if kind is None and msg.get("identity") is not None:
        kind = "customer_identity_changed"  # older shape: the change is in message.identity
    new_wa_id = _opt_id(obj, "new_wa_id", path) or _opt_id(obj, "wa_id", path)
    return SystemChange(
        kind=kind,
        new_wa_id=new_wa_id,
        new_phone=_phone_from_wa_id(new_wa_id),
        new_user_id=_opt_id(obj, "new_user_id", path) or _opt_id(obj, "user_id", path),
        body=_opt_text(obj, "body", path),
    )


def _status(raw: Any, path: str, waba_id: str | None, phone_number_id: str) -> StatusEvent:
    obj = _object(raw, path, "a status object")
    wamid = _req_text(obj, "id", path, "the message id (wamid)")
    status = _req_text(obj, "status", path, "the status")
    if status not in STATUSES:
        raise WebhookPayloadError(
            f"{path}.status: expected one of {', '.join(sorted(STATUSES))}, got {status[:40]!r}", f"{path}.status"
        )
    recipient = _opt_id(obj, "recipient_id", path)
    category = pricing_type = None
    if obj.get("pricing") is not None:
        p_path = f"{path}.pricing"
        pricing = _object(obj["pricing"], p_path, "a pricing object")
        category = _opt_text(pricing, "category", p_path)
        pricing_type = _opt_text(pricing, "type", p_path)
    return StatusEvent(
        external_id=f"wa:status:{wamid}:{status}",
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        wamid=wamid,
        status=status,
        timestamp=_timestamp(obj, "timestamp", path),
        recipient_id=_phone_from_wa_id(recipient),
        recipient_wa_id=recipient,
        recipient_user_id=_opt_id(obj, "recipient_user_id", path),
        callback_data=_opt_text(obj, "biz_opaque_callback_data", path),
        pricing_category=category,
        pricing_type=pricing_type,
        errors=_errors(obj, path, "status"),
    )


def _template_status(value: dict[str, Any], path: str, change: dict[str, Any], waba_id: str | None,
                     phone_number_id: str | None) -> TemplateStatusEvent:
    reason = _opt_text(value, "reason", path)
    return TemplateStatusEvent(
        external_id=_change_id(waba_id, change),
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        event=_req_text(value, "event", path, "the template event (APPROVED, REJECTED...)"),
        template_id=_opt_id(value, "message_template_id", path),
        template_name=_opt_text(value, "message_template_name", path),
        language=_opt_text(value, "message_template_language", path),
        reason=None if reason in (None, "", "NONE") else reason,
    )


def _preference(raw: Any, path: str, waba_id: str | None, phone_number_id: str | None) -> PreferenceEvent:
    obj = _object(raw, path, "a preference object")
    wa_id = _opt_id(obj, "wa_id", path)
    user_id = _opt_id(obj, "user_id", path)
    if wa_id is None and user_id is None:
        raise WebhookPayloadError(f"{path}.wa_id: missing; expected the user's wa_id or user_id", f"{path}.wa_id")
    category = _req_text(obj, "category", path, "the preference category")
    value = _req_text(obj, "value", path, "the preference value (stop, resume)")
    timestamp = _timestamp(obj, "timestamp", path, required=False)
    stamp = int(timestamp.timestamp()) if timestamp else ""
    return PreferenceEvent(
        external_id=f"wa:pref:{wa_id or user_id}:{category}:{value}:{stamp}",
        phone_number_id=phone_number_id,
        waba_id=waba_id,
        wa_id=wa_id,
        phone=_phone_from_wa_id(wa_id),
        user_id=user_id,
        category=category,
        value=value,
        detail=_opt_text(obj, "detail", path),
        timestamp=timestamp,
    )


def _errors(obj: dict[str, Any], path: str, level: str) -> tuple[GraphErrorInfo, ...]:
    items = _opt_list(obj, "errors", path, "a list of errors")
    result = []
    for index, raw in enumerate(items):
        e_path = f"{path}.errors[{index}]"
        err = _object(raw, e_path, "an error object")
        code = err.get("code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            if isinstance(code, str) and code.strip().isascii() and code.strip().isdigit() \
                    and len(code.strip()) <= 12:
                code = int(code)
            else:
                raise WebhookPayloadError(f"{e_path}.code: expected an integer, got {describe_value(code)}", f"{e_path}.code")
        details = None
        if err.get("error_data") is not None:
            d_path = f"{e_path}.error_data"
            details = _opt_text(_object(err["error_data"], d_path, "an error_data object"), "details", d_path)
        result.append(GraphErrorInfo(code, _opt_text(err, "title", e_path), _opt_text(err, "message", e_path),
                                     details, level))
    return tuple(result)


# --- small readers -------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{path or 'body'}: expected {what}, got {describe_value(value)}", path or None)
    return value


def _list(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{path}: expected {what}, got {describe_value(value)}", path)
    return value


def _opt_list(obj: dict[str, Any], key: str, path: str, what: str) -> list[Any]:
    value = obj.get(key)
    return [] if value is None else _list(value, _join(path, key), what)


def _req_text(obj: dict[str, Any], key: str, path: str, what: str, allow_empty: bool = False) -> str:
    where = _join(path, key)
    value = obj.get(key)
    if value is None or (value == "" and not allow_empty):
        raise WebhookPayloadError(f"{where}: missing; expected {what} as a string", where)
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{where}: expected {what} as a string, got {describe_value(value)}", where)
    return value


def _opt_text(obj: dict[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        where = _join(path, key)
        raise WebhookPayloadError(f"{where}: expected a string, got {describe_value(value)}", where)
    return value


def _opt_id(obj: dict[str, Any], key: str, path: str) -> str | None:
    """An id Meta sends as a string; numbers are taken too (some ids look numeric)."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        where = _join(path, key)
        raise WebhookPayloadError(f"{where}: expected an id as a string, got {describe_value(value)}", where)
    return str(value).strip() or None


def _req_id(obj: dict[str, Any], key: str, path: str) -> str:
    value = _opt_id(obj, key, path)
    if value is None:
        where = _join(path, key)
        raise WebhookPayloadError(f"{where}: missing; expected an id as a string", where)
    return value


def _loose_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _opt_bool(obj: dict[str, Any], key: str, path: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        where = _join(path, key)
        raise WebhookPayloadError(f"{where}: expected true or false, got {describe_value(value)}", where)
    return value


def _timestamp(obj: dict[str, Any], key: str, path: str, required: bool = True) -> datetime | None:
    """Unix seconds, as a string (usual) or an integer, read as aware UTC."""
    where = _join(path, key)
    value = obj.get(key)
    if value is None or value == "":
        if not required:
            return None
        raise WebhookPayloadError(f"{where}: missing; expected unix seconds", where)
    text = value.strip() if isinstance(value, str) else None
    if (isinstance(value, int) and not isinstance(value, bool)) or (
            text and len(text) <= 12 and text.isascii() and text.isdigit()):
        try:
            return datetime.fromtimestamp(int(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    raise WebhookPayloadError(f"{where}: expected unix seconds, got {describe_value(value)}", where)


def _coordinate(obj: dict[str, Any], key: str, path: str, limit: int) -> float:
    where = _join(path, key)
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= limit:
        raise WebhookPayloadError(f"{where}: expected degrees from -{limit} to {limit}, got {describe_value(value)}",
                                  where)
    return float(value)


def _phone_from_wa_id(wa_id: str | None) -> str | None:
    """E.164 of a wa_id (country code and digits, no '+'). A Brazilian mobile reported in the old
    12-digit form gets its ninth digit, so it meets the contact we have with it; a landline never
    does (phones.match_key). None when the wa_id is not a phone number we can read."""
    if not wa_id or not wa_id.isascii() or not wa_id.isdigit():
        return None
    try:
        return match_key("+" + wa_id)
    except (PhoneNumberError, ValueError):
        return None


def _change_id(waba_id: str | None, change: dict[str, Any]) -> str:
    """A change without a natural id, identified by its content: a re-delivery hashes the same."""
    canonical = json.dumps([waba_id, change], sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=str)
    return "wa:change:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# --- describe ----------------------------------------------------------------------

_SYSTEM_TEXTS = {
    "user_changed_user_id": "O cliente mudou de identificador no WhatsApp",
    "customer_identity_changed": "A identidade do cliente no WhatsApp mudou (novo aparelho ou reinstalação)",
}


def describe(event: InboundMessage) -> str:
    """The one line an operator sees for the message in the inbox list, in Portuguese."""
    return " ".join(_describe_message(event).split())  # one line, even for a text with line breaks


def _describe_message(event: InboundMessage) -> str:
    if event.reaction is not None:
        if event.reaction.emoji is None:
            return "Removeu a reação a uma mensagem"
        return f"Reagiu com {event.reaction.emoji} a uma mensagem"
    if event.revoke is not None:
        return "Mensagem apagada pelo cliente"
    if event.edit is not None:
        return _labelled("✏️ Mensagem editada", event.edit.text)
    if event.system is not None:
        system = event.system
        if system.kind == "user_changed_number":
            number = _display_phone(system.new_phone) or system.new_wa_id
            return f"O cliente mudou de número: {number}" if number else "O cliente mudou de número"
        return _SYSTEM_TEXTS.get(system.kind or "") or system.body or "Aviso do WhatsApp"
    if event.media is not None:
        media = event.media
        if event.type == "image":
            return _labelled("📷 Imagem", media.caption)
        if event.type == "video":
            return _labelled("🎬 Vídeo", media.caption)
        if event.type == "audio":
            return "🎤 Mensagem de voz" if media.voice else "🎵 Áudio"
        if event.type == "document":
            return _labelled("📄 Documento", media.filename or media.caption)
        return "Sticker"
    if event.location is not None:
        place = " — ".join(part for part in (event.location.name, event.location.address) if part)
        return _labelled("📍 Localização", place)
    if event.shared_contacts:
        names = [c.name or (c.phones[0] if c.phones else "sem nome") for c in event.shared_contacts]
        label = "👤 Contato" if len(names) == 1 else "👤 Contatos"
        return f"{label}: {', '.join(names)}"
    if event.choice is not None:
        return event.choice.title or event.choice.id or "Botão escolhido"
    if event.unsupported:
        return "Tipo de mensagem não suportado"
    return event.text or ""


def _labelled(label: str, detail: str | None) -> str:
    return f"{label}: {detail}" if detail and detail.strip() else label


def _display_phone(e164: str | None) -> str | None:
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
