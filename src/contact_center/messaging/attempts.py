"""A message's attempt history: one row per try at sending it, the only writer of message_attempts.

Each row is written in the transaction that applies the try's outcome to the message, so the
history never disagrees with the message. A batch's rows go in multi-row INSERTs: a Kolmeya
request carries up to 1,000 messages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from contact_center.db import DriverCursor, chunks, utcnow
from contact_center.messaging.models import FINAL_FAILURES, Message, MessageAttempt
from contact_center.providers.base import ProviderError
from contact_center.translations import Words, as_words, rewrite_stored, store

SENT = ("sent", "delivered", "read", "played")


def outcome_of(message: Message) -> str:
    """What a try came to, read from the status it left the message in."""
    if message.status in SENT:
        return "sent"
    if message.status in FINAL_FAILURES:
        return "failed"
    if message.status == "unknown":
        return "unknown"
    return "retry"  # queued again


def error_details(exc: ProviderError | None) -> dict:
    """The HTTP status and provider code an error carries, whichever provider raised it."""
    if exc is None:
        return {}
    return {"http_status": getattr(exc, "http_status", None) or getattr(exc, "status_code", None),
            "provider_code": getattr(exc, "code", None)}


def record(session: Session, messages: Iterable[Message], started_at: datetime, *, outcome: str | None = None,
           reason: Words | str | None = None, http_status: int | None = None, provider_code: int | None = None,
           number_offset: int = 0) -> None:
    """One row per message for a try that started at `started_at` and whose outcome has just been
    applied to them. `outcome` and `reason` default to what the message's status now says;
    `number_offset` corrects the attempt number when the try was given back (a hold)."""
    now = utcnow()
    stored = store(reason)  # kept to be said in each reader's language, as the message's own reason
    rows = [{"message_id": m.id, "number": m.attempts + number_offset, "started_at": started_at, "finished_at": now,
             "outcome": outcome or outcome_of(m), "http_status": http_status, "provider_code": provider_code,
             "reason": stored if reason is not None else m.status_reason,
             "next_attempt_at": m.next_attempt_at if m.status in ("queued", "unknown") else None,
             "batch_reference": m.batch_reference}
            for m in messages]
    record_rows(session, rows)


COLUMNS = ("message_id", "number", "started_at", "finished_at", "outcome", "http_status", "provider_code", "reason",
           "next_attempt_at", "batch_reference")
_TIMES = ("started_at", "finished_at", "next_attempt_at")


def record_rows(session: Session, rows: list[dict]) -> None:
    """Rows already built (record's, or the sweeper's from a bulk update), inserted at the driver
    level: a Kolmeya request's 1,000 rows through SQLAlchemy cost more than SQLite's own work."""
    if not rows:
        return
    driver = DriverCursor(session.connection())
    stamp = driver.batch_timestamps()
    driver.insert("message_attempts", COLUMNS, [[stamp(row[column]) if column in _TIMES else row[column]
                                                 for column in COLUMNS] for row in rows])


def settle_unknown(message: Message, how: Words) -> None:
    """The provider, asked about a try whose outcome was unknown, has answered: the try's row says
    how it was settled, so the history reads "unknown → the provider had it" (or did not)."""
    session = object_session(message)
    latest = session.execute(select(MessageAttempt.id, MessageAttempt.outcome, MessageAttempt.reason)
                             .where(MessageAttempt.message_id == message.id)
                             .order_by(MessageAttempt.id.desc()).limit(1)).first()
    if latest is None or latest.outcome != "unknown":
        return
    settled = Words("{reason} → {how}", reason=as_words(latest.reason), how=how) if latest.reason else how
    session.execute(update(MessageAttempt).where(MessageAttempt.id == latest.id).values(reason=store(settled)))


def history(session: Session, message_ids: list[int]) -> dict[int, list[MessageAttempt]]:
    """Attempts by message id, oldest first, in one query per thousand messages."""
    found: dict[int, list[MessageAttempt]] = defaultdict(list)
    for chunk in chunks(message_ids):
        for row in session.scalars(select(MessageAttempt).where(MessageAttempt.message_id.in_(chunk))
                                   .order_by(MessageAttempt.message_id, MessageAttempt.id)):
            found[row.message_id].append(row)
    return found


def scrub_reasons(session: Session, message_ids: list[int], scrub) -> None:
    """Pass the reasons of these messages' tries through `scrub` (an LGPD erasure: a provider's
    error text may quote the phone)."""
    for chunk in chunks(message_ids):
        for attempt_id, reason in session.execute(select(MessageAttempt.id, MessageAttempt.reason).where(
                MessageAttempt.message_id.in_(chunk), MessageAttempt.reason.is_not(None))):
            if (clean := rewrite_stored(reason, scrub)) != reason:
                session.execute(update(MessageAttempt).where(MessageAttempt.id == attempt_id).values(reason=clean))
