"""The raw-event log, `webhook_events`, and the one module that writes it.

Every provider callback is kept here before it is applied, unique per (source, external id), so
that a replay or a provider's duplicate changes nothing: a reply recorded a batch at a time
(messaging/inbound.py, at the driver level), a status applied or left pending (webhooks/service.py),
a malformed body kept with what is wrong with it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.webhooks.models import PENDING, WebhookEvent

log = logging.getLogger(__name__)

# The columns of a row as the reply batches insert it (rows are tuples in this order).
REPLY_COLUMNS = ("source", "external_id", "channel_id", "payload", "outcome", "detail", "message_id",
                 "received_at", "handled_at")
MAX_EXTERNAL_ID_LENGTH = WebhookEvent.__table__.c.external_id.type.length
MAX_MATCH_LENGTH = min(WebhookEvent.__table__.c.match_reference.type.length,
                       WebhookEvent.__table__.c.match_provider_id.type.length)
IGNORED_DETAIL = "older than the message's current status; kept for the record"


def raw_text(raw: bytes) -> str:
    """A callback's body as text we can store on any database: what is not UTF-8 is replaced, and
    NUL (which PostgreSQL's text refuses; a UTF-16 body is full of them) is escaped."""
    return raw.decode("utf-8", "replace").replace("\x00", "\\u0000")


# --- replies, a batch at a time, at the driver level ---------------------------------------------

def seen_by_driver(driver: DriverCursor, source: str, external_ids: list[str]) -> set[str]:
    """Which of these ids `source` has stored already."""
    seen: set[str] = set()
    for chunk in chunks(list(set(external_ids))):
        seen.update(eid for (eid,) in driver.rows(
            f"SELECT external_id FROM webhook_events WHERE source = ? AND external_id IN ({driver.marks(len(chunk))})",
            [source, *chunk]))
    return seen


def reply_row(source: str, external_id: str, channel_id: int, payload: str, outcome: str, detail: str | None,
              message_id: int | None, stamp) -> tuple:
    """The values of REPLY_COLUMNS; `stamp` is the batch's time, bound for the driver."""
    return source, external_id, channel_id, payload, outcome, detail, message_id, stamp, stamp


def insert_reply_rows(driver: DriverCursor, rows: list[tuple]) -> None:
    driver.insert("webhook_events", REPLY_COLUMNS, rows)


# --- statuses ------------------------------------------------------------------------------------

def seen(session: Session, source: str, external_ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(list(set(external_ids))):
        found.update(session.scalars(select(WebhookEvent.external_id).where(WebhookEvent.source == source,
                                                                            WebhookEvent.external_id.in_(chunk))))
    return found


# The columns of a status event as a status slice inserts it (status_row builds the tuples).
STATUS_COLUMNS = ("source", "external_id", "channel_id", "payload", "outcome", "detail", "match_reference",
                  "match_provider_id", "message_id", "received_at", "handled_at")


def insert_statuses(driver: DriverCursor, rows: list[tuple]) -> None:
    """Status events at the driver level: a status slice writes them many times a second."""
    driver.insert("webhook_events", STATUS_COLUMNS, rows)


def status_row(*, source: str, external_id: str, channel_id: int, payload: str, outcome: str,
               reference: str | None, provider_message_id: str | None, message_id: int | None, stamp) -> tuple:
    """The values of STATUS_COLUMNS; `stamp` is the slice's time, bound for the driver."""
    return (source, external_id, channel_id, payload, outcome, IGNORED_DETAIL if outcome == "ignored" else None,
            reference, provider_message_id, message_id, stamp, stamp if message_id is not None else None)


def pending_for(session: Session, channel_ids: set[int], references: list[str],
                provider_ids: list[str]) -> list[WebhookEvent]:
    """Pending statuses that name one of these messages (by our reference or the provider's id)."""
    conditions = [WebhookEvent.match_reference.in_(references)]
    if provider_ids:
        conditions.append(WebhookEvent.match_provider_id.in_(provider_ids))
    return list(session.scalars(select(WebhookEvent).where(text(PENDING),
                                                           WebhookEvent.channel_id.in_(channel_ids),
                                                           or_(*conditions)).order_by(WebhookEvent.id)))


def to_retry(session: Session, cutoff: datetime, limit: int) -> list[WebhookEvent]:
    """Pending statuses (and ones an earlier version kept as `error`) younger than `cutoff`; the
    older ones are closed: unmatched (no message of ours), or failed (a person should look)."""
    for outcome, final, detail in (
        ("pending", "unmatched", "no message of ours has this id or reference"),
        ("error", "failed", "still failing after 24 hours of retries; see the logs"),
    ):
        session.execute(update(WebhookEvent).where(WebhookEvent.outcome == outcome, WebhookEvent.received_at < cutoff)
                        .values(outcome=final, detail=detail, handled_at=utcnow()))
    return list(session.scalars(select(WebhookEvent).where(WebhookEvent.outcome.in_(("error", "pending")),
                                                           WebhookEvent.channel_id.is_not(None))
                                .order_by(WebhookEvent.id.desc()).limit(limit)))


def settle(event: WebhookEvent, outcome: str, message_id: int, now: datetime) -> None:
    """A stored status found its message at last."""
    event.outcome, event.message_id, event.handled_at = outcome, message_id, now
    event.detail = IGNORED_DETAIL if outcome == "ignored" else None


# --- malformed bodies ----------------------------------------------------------------------------

def store_rejected(session: Session, source: str, channel_id: int | None, raw: bytes, reason: str) -> None:
    """Keep a malformed callback (deduplicated by its bytes) and nothing else."""
    external_id = f"rejected:{hashlib.sha256(raw).hexdigest()}"
    if session.scalar(select(WebhookEvent.id).where(WebhookEvent.source == source,
                                                    WebhookEvent.external_id == external_id)) is not None:
        log.info("%s: the same malformed payload again", source)
        return
    now = utcnow()
    try:
        with session.begin_nested():
            session.add(WebhookEvent(source=source, external_id=external_id, channel_id=channel_id,
                                     payload=raw_text(raw), outcome="rejected", detail=reason, received_at=now,
                                     handled_at=now))
    except IntegrityError:  # the same body, concurrently: the other request stored it
        log.info("%s: the same malformed payload again", source)


# --- other events (a template's review, an opt-out, an identity change) ---------------------------

def store_new(session: Session, source: str, channel_id: int, payload: str, events: list[tuple[str, str, str | None]]
              ) -> set[str]:
    """Store each (external id, outcome, detail) not stored before; the ids that were new (the ones
    to apply: the others are replays)."""
    stored = seen(session, source, [event[0] for event in events])
    fresh = [event for event in events if event[0] not in stored]
    now = utcnow()
    if fresh:
        session.execute(insert(WebhookEvent), [
            {"source": source, "external_id": external_id, "channel_id": channel_id, "payload": payload,
             "outcome": outcome, "detail": detail, "received_at": now, "handled_at": now}
            for external_id, outcome, detail in {event[0]: event for event in fresh}.values()])
    return {event[0] for event in fresh}


# --- erasure -------------------------------------------------------------------------------------

ERASED_PAYLOAD = '{"apagado": true}'


def erase_payloads(session: Session, event_ids: list[int], scrub) -> None:
    """Drop the raw bodies of these callbacks (they hold phones, names and texts) and pass their
    detail through `scrub`; source, external id, outcome and times stay, so a replay is still
    recognised. For an LGPD erasure and the retention job."""
    for chunk in chunks(event_ids):
        for event_id, detail in session.execute(select(WebhookEvent.id, WebhookEvent.detail)
                                                .where(WebhookEvent.id.in_(chunk))):
            session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                            .values(payload=ERASED_PAYLOAD, detail=scrub(detail) if detail else detail))
