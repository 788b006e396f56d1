"""Provider callbacks: stored raw first, unique per (source, external id), then applied.

Replays and duplicates are no-ops; a status for a message we do not know yet is kept as pending
and applied when the message gets its provider id (or expires after a day). Statuses are applied
a set at a time: the messages of a whole slice are found with two queries, so the work for a
1,000-item callback, known ids or not, is a few queries and no per-item round trips.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from contact_center import json_input, phones
from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.errors import DomainError
from contact_center.messaging import fallback
from contact_center.messaging import service as messaging
from contact_center.messaging.inbound import ReplyIn, record_replies
from contact_center.messaging.models import Message
from contact_center.providers.base import InboundReply, ProviderSpec, StatusUpdate, TooManyItems, WebhookPayloadError
from contact_center.translations import say_stored, store
from contact_center.webhooks import events
from contact_center.webhooks.models import WebhookEvent

log = logging.getLogger(__name__)


class PayloadRejected(DomainError):
    status_code = 422
    code = "invalid_payload"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


@dataclass
class IngestResult:
    outcomes: list[str] = field(default_factory=list)  # applied | pending | ignored | rejected | error
    message_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    to_dispatch: list[int] = field(default_factory=list)  # messages queued by these events (an SMS fallback)

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)

    def merge(self, other: IngestResult) -> None:
        """Add the result of another slice of the same callback."""
        self.outcomes += other.outcomes
        self.message_ids += other.message_ids
        self.duplicates += other.duplicates
        self.to_dispatch += other.to_dispatch


def decode(raw: bytes) -> object:
    try:
        return json_input.loads(raw)
    except json_input.BadJson as exc:
        raise PayloadRejected(exc.message) from None
    except json.JSONDecodeError as exc:
        raise PayloadRejected("the body is not valid JSON: {exc}", exc=exc) from None


def parse(parser, raw: bytes):
    """Decode and parse a reply body without touching the database; PayloadRejected says what is wrong."""
    try:
        reply = parser(decode(raw))
    except WebhookPayloadError as exc:
        raise PayloadRejected(str(exc), field=exc.field) from None
    problem = _reply_problem(reply)
    if problem is not None:
        raise PayloadRejected(problem[1], field=problem[0])
    return reply


# Ids we store or match on must fit their columns: PostgreSQL refuses a longer value (a 500), SQLite
# would keep it whole. A provider never sends ids this long; a caller that does gets a clear 422.
MAX_ID_LENGTH = min(Message.__table__.c.provider_message_id.type.length, events.MAX_MATCH_LENGTH)
MAX_EXTERNAL_ID_LENGTH = events.MAX_EXTERNAL_ID_LENGTH


def _too_long(field: str, value: str | None, limit: int) -> tuple[str, str] | None:
    if value is not None and len(value) > limit:
        return field, f"{field}: {len(value)} characters long; at most {limit} are accepted"
    return None


def _reply_problem(reply: InboundReply) -> tuple[str, str] | None:
    """(field, message) when a well-formed reply still cannot be stored: an id too long, a phone that is
    not a phone number. Checked before anything is stored, so such a reply is refused, not half-kept."""
    try:
        phones.identify(reply.phone)
    except phones.PhoneNumberError as exc:
        return "phone", f"phone: {exc}"
    return _too_long("id", reply.external_id, MAX_ID_LENGTH)


def _status_problem(updates: list[StatusUpdate]) -> tuple[str, str] | None:
    if all(len(u.provider_message_id or "") <= MAX_ID_LENGTH and len(u.reference or "") <= MAX_ID_LENGTH
           and len(u.external_id) <= MAX_EXTERNAL_ID_LENGTH for u in updates):
        return None  # the common case, checked without building a message per item
    for index, update_ in enumerate(updates):
        where = f"messages[{index}]." if len(updates) > 1 else ""
        problem = (_too_long(f"{where}id", update_.provider_message_id, MAX_ID_LENGTH)
                   or _too_long(f"{where}reference", update_.reference, MAX_ID_LENGTH)
                   or _too_long(f"{where}id", update_.external_id, MAX_EXTERNAL_ID_LENGTH))
        if problem is not None:
            return problem
    return None


def record_reply(session: Session, source: str, channel, reply: InboundReply, payload: str,
                 result: IngestResult, origin: str = "webhook") -> int | None:
    """Store and apply one reply, however it reached us (webhook or poll); its message id, None for a replay."""
    out = record_replies(session, [ReplyIn(source, channel.id, reply, payload, origin)])[0]
    if out.outcome == "duplicate":
        result.duplicates += 1
        return None
    result.outcomes.append(out.outcome)
    if out.message_id is not None:
        result.message_ids.append(out.message_id)
    return out.message_id


class StatusReader:
    """A status body, read a part at a time without touching the database: a 1,000-item body takes
    milliseconds to check, and the webhook writer lets replies in between the parts. Nothing of
    it is applied before all of it has been read: a bad item refuses the whole callback."""

    def __init__(self, spec: ProviderSpec, raw: bytes, updates: Iterable[StatusUpdate] | None = None):
        """`updates`: the body's statuses, when the caller has parsed it already (they are still checked)."""
        self._spec, self._raw = spec, raw
        self._items: Iterator[StatusUpdate] | None = None if updates is None else iter(updates)
        self.updates: list[StatusUpdate] = []
        self.done = False

    def read(self, count: int) -> None:
        """Read up to `count` more statuses; PayloadRejected (or PayloadTooLarge past the
        provider's batch size) says what is wrong."""
        try:
            if self._items is None:
                self._items = iter(self._spec.parse_statuses(decode(self._raw)))
            for _ in range(count):
                update_ = next(self._items, None)
                if update_ is None:
                    break
                self.updates.append(update_)
            else:
                return
        except TooManyItems as exc:
            raise PayloadTooLarge(str(exc), field=exc.field) from None
        except WebhookPayloadError as exc:
            raise PayloadRejected(str(exc), field=exc.field) from None
        problem = _status_problem(self.updates)
        if problem is not None:
            raise PayloadRejected(problem[1], field=problem[0])
        self.done = True


def record_statuses(session: Session, source: str, channel_id: int, updates: list[StatusUpdate],
                    payload: str | None) -> IngestResult:
    """Store and apply the statuses not seen before (a slice of one callback). `payload` is the
    raw body when the callback holds one status; a batch's statuses are each kept as their record."""
    result = IngestResult()
    driver = DriverCursor(session.connection())
    seen = events.seen_by_driver(driver, source, [update_.external_id for update_ in updates])
    new: list[StatusUpdate] = []
    for update_ in updates:
        if update_.external_id in seen:
            result.duplicates += 1
            continue
        seen.add(update_.external_id)
        new.append(update_)
    stamp = driver.timestamp(utcnow())
    rows = []
    undeliverable = []
    spam: list[int] = []
    spam_reason = ""
    for update_, (outcome, message_id) in zip(new, _apply_updates(session, channel_id, new)):
        result.outcomes.append(outcome)
        if message_id is not None:
            result.message_ids.append(message_id)
        if outcome == "applied" and update_.pauses_campaign:
            spam.append(message_id)
            spam_reason = update_.text or ""
        if outcome == "applied" and update_.state == "failed" and update_.code in fallback.FALLBACK_CODES:
            undeliverable.append(message_id)
        rows.append(events.status_row(
            source=source, external_id=update_.external_id, channel_id=channel_id,
            payload=payload if payload is not None else _encode(_status_record(update_)),
            outcome=outcome, reference=update_.reference, provider_message_id=update_.provider_message_id,
            message_id=message_id, stamp=stamp))
    if rows:
        events.insert_statuses(driver, rows)
    pausing = next((u for u, outcome in zip(new, result.outcomes) if u.pauses_channel and outcome != "pending"), None)
    if pausing is not None:  # the provider refused the account itself, after the send: stop the channel
        from contact_center.channels.models import Channel
        from contact_center.channels.service import pause_channel

        pause_channel(session, session.get(Channel, channel_id), pausing.text)
    if spam:  # WhatsApp held a campaign's content against the number after the send: pause that campaign
        from contact_center.campaigns.service import pause_for_provider

        pause_for_provider(session, list(session.scalars(select(Message.campaign_id).where(
            Message.id.in_(spam), Message.campaign_id.is_not(None)))), spam_reason)
    result.to_dispatch += fallback.send_automatically(session, channel_id, undeliverable)
    return result


# What a status slice reads of its messages, and writes back: at the driver level, as a slice is
# written many times a second (the ORM's loading and unit of work cost more than the database).
_READ = ("id", "reference", "conversation_id", "contact_id", *messaging.STATUS_COLUMNS)
_WRITE = ("status", "status_reason", "status_inferred", "provider_status_code", *messaging.STATUS_COLUMNS[2:])


def _apply_updates(session: Session, channel_id: int, updates: list[StatusUpdate]) -> list[tuple[str, int | None]]:
    """Apply each status to its message (messaging.status_change), all of them found at once (by
    the provider's id, else by our reference, like messaging.find_outbound); per status: (applied,
    ignored or pending, the message's id)."""
    session.flush()  # what the ORM holds of these messages is in the database before it is read here
    driver = DriverCursor(session.connection())
    by_provider_id = _messages(driver, channel_id, "provider_message_id",
                               {u.provider_message_id for u in updates if u.provider_message_id})
    wanted_references = {u.reference for u in updates if u.reference} - {m["reference"] for m in by_provider_id.values()}
    by_reference = _messages(driver, channel_id, "reference", wanted_references)
    now = driver.timestamp(utcnow())
    outcomes: list[tuple[str, int | None]] = []
    changed: dict[int, dict] = {}
    announced: list[dict] = []
    for update_ in updates:
        message = by_provider_id.get(update_.provider_message_id) or by_reference.get(update_.reference)
        if message is None:
            outcomes.append(("pending", None))
            continue
        applied, changes = messaging.status_change(message, update_, now)
        if changes:
            message.update(changes)
            changed[message["id"]] = message
        if message["provider_message_id"]:
            by_provider_id.setdefault(message["provider_message_id"], message)
        outcomes.append(("applied" if applied else "ignored", message["id"]))
        if applied:
            # Its conversation's assignee, read with the message in this transaction (on SQLite
            # under the write lock, taken before the read), instead of a query at commit.
            announced.append({"message_id": message["id"], "conversation_id": message["conversation_id"],
                              "contact_id": message["contact_id"], "direction": "out", "status": message["status"],
                              "status_reason": say_stored(message["status_reason"], None),
                              "assignee_id": message["assignee_id"]})
    messaging.announce_message_events(session, "message.status", announced)
    driver.update_by_id("messages", (*_WRITE, "updated_at"), [(*(m.get(c) for c in _WRITE), now, m["id"])
                                                              for m in changed.values()])
    if changed:
        # ORM copies of these rows (a dispatch applying statuses that came early) are now stale.
        for message in session.identity_map.values():
            if isinstance(message, Message) and message.id in changed:
                session.expire(message)
    return outcomes


def apply_statuses(session: Session, channel_id: int, updates: list[StatusUpdate]) -> list[tuple[str, int | None]]:
    """Statuses read from the provider rather than called in (its status report): applied by the
    same rule and in the same bulk as a callback's, nothing stored as a webhook event. Per status:
    (applied, ignored or pending, the message's id)."""
    return _apply_updates(session, channel_id, updates)


_SELECTED = (*_READ, "status_reason", "provider_status_code")
_SELECT = (f"SELECT {', '.join(f'm.{c}' for c in _SELECTED)}, c.assignee_id FROM messages m "
           "LEFT JOIN conversations c ON c.id = m.conversation_id WHERE m.channel_id = ? AND m.")


def _messages(driver: DriverCursor, channel_id: int, column: str, values: set[str]) -> dict[str, dict]:
    """The messages whose `column` is one of `values`, each with its conversation's assignee."""
    found: dict[str, dict] = {}
    for chunk in chunks(list(values)):
        for row in driver.rows(f"{_SELECT}{column} IN ({driver.marks(len(chunk))})", [channel_id, *chunk]):
            message = dict(zip((*_SELECTED, "assignee_id"), row))
            message["status_inferred"] = bool(message["status_inferred"])
            found[message[column]] = message
    return found


_encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps builds an encoder per call given options


def _status_record(update_: StatusUpdate) -> dict:
    return {"provider_message_id": update_.provider_message_id, "reference": update_.reference,
            "state": update_.state, "code": update_.code, "text": store(update_.text)}


def _apply_stored(session: Session, stored: list[WebhookEvent]) -> int:
    """Apply again statuses stored as pending (or whose apply failed before): the ones whose
    message now exists. Returns how many found their message."""
    by_channel: dict[int, list[WebhookEvent]] = defaultdict(list)
    for event in stored:
        by_channel[event.channel_id].append(event)
    found = 0
    now = utcnow()
    for channel_id, stored_here in by_channel.items():
        updates = [_status_from_event(event) for event in stored_here]
        for event, (outcome, message_id) in zip(stored_here, _apply_updates(session, channel_id, updates)):
            if message_id is not None:
                events.settle(event, outcome, message_id, now)
                found += 1
    session.flush()
    return found


def apply_pending_for(session: Session, *messages: Message) -> int:
    """Statuses that arrived before we knew these messages' provider ids: apply them now, oldest first.

    One query for however many messages (dispatch calls it for each batch of up to 1000)."""
    if not messages:
        return 0
    pending = events.pending_for(session, {m.channel_id for m in messages}, [m.reference for m in messages],
                                 [m.provider_message_id for m in messages if m.provider_message_id])
    return _apply_stored(session, pending)


def _status_from_event(event: WebhookEvent) -> StatusUpdate:
    data = json.loads(event.payload)
    if "state" in data and "provider_message_id" in data:
        return StatusUpdate(external_id=event.external_id, provider_message_id=data["provider_message_id"],
                            reference=data["reference"], state=data["state"], code=data["code"], text=data["text"])
    from contact_center.providers.registry import PROVIDERS

    spec = PROVIDERS[event.source.split(".")[0]]
    return next(u for u in spec.parse_statuses(data) if u.external_id == event.external_id)


RETRY_WINDOW = timedelta(hours=24)


def retry_failed_events(session: Session, limit: int = 500) -> int:
    """Apply again the statuses still pending whose message now exists (and those whose apply
    failed in an earlier version, which kept them as `error`), newest first.

    Retrying stops after RETRY_WINDOW: a status still unmatched by then belongs to no message of
    ours (another system sending on the same Kolmeya account), and an event that kept failing
    needs a person; both are marked so, and stop costing the sweeper every minute."""
    return _apply_stored(session, events.to_retry(session, utcnow() - RETRY_WINDOW, limit))
